"""Modules, state dicts, and optimizers against hand-written NumPy updates."""
import functools
import tracemalloc

import numpy as np
import pytest

import tinynet as tn
from tinynet import functional as F
from tinynet import nn, optim
from tinynet.kernels import threads


def make_mlp(seed=0):
    rng = np.random.default_rng(seed)
    return nn.Sequential(nn.Linear(2, 8, rng=rng), nn.Tanh(), nn.Dropout(0.0, rng=rng), nn.Linear(8, 1, rng=rng))


def test_named_parameters_state_dict_round_trip_and_train_eval():
    model = make_mlp()
    names = [name for name, _ in model.named_parameters()]
    assert names == ["layers.0.weight", "layers.0.bias", "layers.3.weight", "layers.3.bias"]
    other = make_mlp(seed=1).load_state_dict(model.state_dict())
    for a, b in zip(model.parameters(), other.parameters()):
        np.testing.assert_array_equal(a.data, b.data)
    model.eval()
    assert not any(m.training for m in model.modules())
    with pytest.raises(KeyError, match="missing"):
        model.load_state_dict({})


def test_pooling_layers_pool_as_their_functions():
    x = tn.Tensor(np.random.default_rng(0).standard_normal((1, 2, 5, 5)))
    np.testing.assert_array_equal(nn.MaxPool2d(2, padding="same")(x).data, F.max_pool2d(x, 2, 2, "same").data)
    np.testing.assert_array_equal(nn.AvgPool2d(3, 1)(x).data, F.avg_pool2d(x, 3, 1).data)
    assert not isinstance(nn.AvgPool2d(2), nn.MaxPool2d)


def test_linear_init_is_pytorch_uniform_and_shape_errors_are_clear():
    layer = nn.Linear(100, 50, rng=np.random.default_rng(0))
    assert layer.weight.shape == (50, 100) and np.abs(layer.weight.data).max() <= 0.1
    with pytest.raises(ValueError, match=r"expected input of shape \(N, 100\), got \(100,\)"):
        layer(tn.Tensor(np.zeros(100)))


def test_mlp_learns_xor():
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
    y = np.array([[0], [1], [1], [0]], dtype=np.float32)
    model = make_mlp()
    optimizer = optim.Adam(model.parameters(), lr=0.05)
    for _ in range(300):
        optimizer.zero_grad()
        loss = F.binary_cross_entropy_with_logits(model(tn.Tensor(x)), y)
        loss.backward()
        optimizer.step()
    predictions = model(tn.Tensor(x)).data > 0
    np.testing.assert_array_equal(predictions, y > 0.5)


def quadratic_gradients(optimizer_class, steps, **options):
    """Run an optimizer on f(p) = sum(c * p^2) and return the parameter after each step."""
    p = tn.Tensor(np.array([1.0, -2.0, 0.5]), requires_grad=True)
    c = np.array([1.0, 3.0, 0.1])
    optimizer = optimizer_class([p], **options)
    history = []
    for _ in range(steps):
        optimizer.zero_grad()
        (p * p * c).sum().backward()
        optimizer.step()
        history.append(p.data.copy())
    return history, c


@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_momentum_matches_a_hand_written_update(nesterov):
    history, c = quadratic_gradients(optim.SGD, 5, lr=0.1, momentum=0.9, nesterov=nesterov, weight_decay=0.01)
    p, buffer = np.array([1.0, -2.0, 0.5]), None
    for expected in history:
        g = 2 * c * p + 0.01 * p
        buffer = g if buffer is None else 0.9 * buffer + g
        p = p - 0.1 * (g + 0.9 * buffer if nesterov else buffer)
        np.testing.assert_allclose(expected, p, rtol=1e-6, atol=1e-6)


def test_adam_matches_a_hand_written_update():
    history, c = quadratic_gradients(optim.Adam, 5, lr=0.01, betas=(0.9, 0.999), eps=1e-8)
    p, m, v = np.array([1.0, -2.0, 0.5]), 0.0, 0.0
    for t, expected in enumerate(history, start=1):
        g = 2 * c * p
        m, v = 0.9 * m + 0.1 * g, 0.999 * v + 0.001 * g * g
        p = p - 0.01 * (m / (1 - 0.9 ** t)) / (np.sqrt(v / (1 - 0.999 ** t)) + 1e-8)
        np.testing.assert_allclose(expected, p, rtol=1e-6, atol=1e-6)


def test_rmsprop_matches_a_hand_written_update():
    history, c = quadratic_gradients(optim.RMSprop, 5, lr=0.001, alpha=0.9, eps=1e-7)
    p, v = np.array([1.0, -2.0, 0.5]), 0.0
    for expected in history:
        g = 2 * c * p
        v = 0.9 * v + 0.1 * g * g
        p = p - 0.001 * g / (np.sqrt(v) + 1e-7)
        np.testing.assert_allclose(expected, p, rtol=1e-6, atol=1e-6)


def test_optimizer_input_errors():
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.SGD([], lr=0.1)
    with pytest.raises(ValueError, match="learning rate"):
        optim.Adam(make_mlp().parameters(), lr=0)


def test_to_converts_every_parameter():
    model = make_mlp().to(np.float64)
    assert all(p.dtype == np.float64 for p in model.parameters())
    assert model(tn.Tensor(np.ones((1, 2)), dtype=np.float64)).dtype == np.float64


def test_a_parameter_owns_a_copy_of_its_initial_values():
    initial = np.ones((2, 2), dtype=np.float32)
    weight = nn.Parameter(initial)
    weight.grad = np.ones((2, 2), dtype=np.float32)
    optim.SGD([weight], lr=0.5).step()
    np.testing.assert_array_equal(initial, 1.0)
    np.testing.assert_array_equal(weight.data, 0.5)


def test_linear_weight_gradient_is_laid_out_as_the_weight():
    """nn.Linear's weight enters matmul as a transposed view; its gradient must still come back C-ordered,
    as the weight is, or the optimizer's in-place update becomes a strided transpose (5x slower at 35M floats)."""
    layer = nn.Linear(7, 5, rng=np.random.default_rng(0))
    F.sum(layer(tn.Tensor(np.ones((3, 7), np.float32)))).backward()
    assert layer.weight.grad.flags.c_contiguous
    np.testing.assert_allclose(layer.weight.grad, np.full((5, 7), 3.0))


@pytest.mark.parametrize("shared_out", [False, True], ids=["one thread", "two threads"])
@pytest.mark.parametrize("contiguous", [True, False])
def test_sgd_updates_a_parameter_larger_than_a_block_as_one_subtraction_would(contiguous, shared_out, monkeypatch):
    """In blocks, and with two workers each its own range of blocks (kernels.threads), the same numbers."""
    if shared_out:
        monkeypatch.setattr(threads, "workers", lambda: 2)
        monkeypatch.setattr(threads, "SPLIT_ELEMENTS", 0)
        monkeypatch.setattr(threads, "_pool", functools.cache(threads._pool.__wrapped__))
    rng = np.random.default_rng(0)
    weight = nn.Parameter(rng.standard_normal((optim.BLOCK_ELEMENTS + 7, 3), dtype=np.float32))
    grad = rng.standard_normal((3, optim.BLOCK_ELEMENTS + 7), dtype=np.float32).T  # a transposed view
    weight.grad = np.ascontiguousarray(grad) if contiguous else grad
    expected = weight.data - np.float32(0.1) * weight.grad
    optim.SGD([weight], lr=0.1).step()
    np.testing.assert_array_equal(weight.data, expected)


def test_a_parameter_copies_its_data_once_in_its_own_dtype():
    """Seed 004's fc layer draws 35M weights in float64: copying them as float64 before the cast to float32 added
    277 MB to the peak of making the layer. One copy, in the parameter's dtype, and the caller's array untouched."""
    data = np.random.default_rng(0).standard_normal((1000, 500))
    tracemalloc.start()
    parameter = nn.Parameter(data, dtype=np.float32)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert parameter.dtype == np.float32 and peak < 1.5 * parameter.data.nbytes
    np.testing.assert_array_equal(parameter.data, data.astype(np.float32))
    parameter.data[...] = 0
    assert data.any()
