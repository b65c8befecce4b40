"""The Tensor API a PyTorch user reaches for first (issue 17): each new op gradchecked, each alias checked."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinynet as tn
from strategies import away_from_zero, random_tensor, seeds, small_shapes
from tinynet import functional as F

smooth_ops = {"gelu": F.gelu, "softplus": F.softplus, "softplus_beta": lambda x: F.softplus(x, beta=2.0, threshold=3.0),
              "sqrt": lambda x: (x * x + 0.5).sqrt(), "rpow": lambda x: 2.5 ** x,
              "tensor_pow": lambda x: (x * x + 0.5) ** x,
              "double": lambda x: x.double() * 2, "clone": lambda x: x.clone() * 2,
              "expand": lambda x: x.expand(2, *x.shape), "unsqueeze": lambda x: x.unsqueeze(-1).squeeze(-1),
              "view": lambda x: x.view(-1), "flatten": lambda x: x.flatten(), "var": lambda x: x.var(dim=0),
              "std": lambda x: (x * x + 1).std(keepdim=True), "log_softmax": lambda x: x.log_softmax(dim=-1),
              "softmax": lambda x: x.softmax(0), "layer_norm": lambda x: F.layer_norm(x, x.shape[-1:])}


@pytest.mark.parametrize("op", smooth_ops.values(), ids=smooth_ops.keys())
@given(shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=2, max_side=4), seed=seeds)
def test_smooth_ops_and_methods(op, shape, seed):
    tn.gradcheck(op, [random_tensor(shape, seed)])


kinked_ops = {"abs": abs, "leaky_relu": lambda x: F.leaky_relu(x, 0.2), "clamp": lambda x: x.clamp(-0.5, 0.7),
              "clamp_min": lambda x: x.clamp(min=0.3), "min": lambda x: x.min(dim=-1).values,
              "l1_loss": lambda x: F.l1_loss(x, np.zeros(x.shape))}


@pytest.mark.parametrize("op", kinked_ops.values(), ids=kinked_ops.keys())
@given(shape=small_shapes, seed=seeds)
def test_ops_with_kinks_off_their_kinks(op, shape, seed):
    x = away_from_zero(shape, seed)
    x.data[np.abs(np.abs(x.data) - 0.5) < 1e-3] += 0.01  # off the clamp bounds
    x.data += np.arange(x.size).reshape(shape) * 1e-3  # no ties for min
    x.data[np.abs(x.data - 0.3) < 1e-3] += 0.01
    x.data[np.abs(x.data - 0.7) < 1e-3] += 0.01
    tn.gradcheck(op, [x])


@given(shape=hnp.array_shapes(min_dims=2, max_dims=4, min_side=2, max_side=3), seed=seeds, training=st.booleans())
def test_batch_norm(shape, seed, training):
    channels = shape[1]
    rng = np.random.default_rng(seed)
    running_mean, running_var = rng.standard_normal(channels), 1 + rng.random(channels)
    inputs = [random_tensor(shape, seed), random_tensor(channels, seed + 1), random_tensor(channels, seed + 2)]
    tn.gradcheck(lambda x, w, b: F.batch_norm(x, running_mean.copy(), running_var.copy(), w, b, training=training),
                 inputs)


def test_batch_norm_updates_running_statistics_as_pytorch_does():
    x = np.random.default_rng(0).standard_normal((4, 3, 2))
    running_mean, running_var = np.zeros(3), np.ones(3)
    out = F.batch_norm(x, running_mean, running_var, training=True, momentum=0.1)
    np.testing.assert_allclose(running_mean, 0.1 * x.mean(axis=(0, 2)))
    np.testing.assert_allclose(running_var, 0.9 + 0.1 * x.var(axis=(0, 2), ddof=1))
    np.testing.assert_allclose(out.data.mean(axis=(0, 2)), 0, atol=1e-12)
    evaluated = F.batch_norm(x, running_mean, running_var)
    np.testing.assert_allclose(evaluated.data, (x - running_mean[:, None]) / np.sqrt(running_var[:, None] + 1e-5))


@given(n=st.integers(1, 5), classes=st.integers(2, 5), seed=seeds, reduction=st.sampled_from(["mean", "sum", "none"]),
       smoothing=st.sampled_from([0.0, 0.2]), weighted=st.booleans(), ignore=st.booleans())
def test_cross_entropy_and_nll_loss_with_weight_ignore_index_and_label_smoothing(n, classes, seed, reduction,
                                                                                 smoothing, weighted, ignore):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n)
    if ignore:
        labels[0] = -100
        labels[-1] = max(labels[-1], 0)
    weight = 0.5 + rng.random(classes) if weighted else None
    logits = random_tensor((n, classes), seed)
    tn.gradcheck(lambda x: F.cross_entropy(x, labels, weight=weight, reduction=reduction, label_smoothing=smoothing),
                 [logits])
    tn.gradcheck(lambda x: F.nll_loss(x, labels, weight=weight, reduction=reduction), [logits])
    probabilities = rng.dirichlet(np.ones(classes), n)
    tn.gradcheck(lambda x: F.cross_entropy(x, probabilities, weight=weight, reduction=reduction,
                                           label_smoothing=smoothing), [logits])


def test_cross_entropy_options_known_values():
    logits = np.log(np.array([[0.2, 0.3, 0.5], [0.1, 0.1, 0.8]]))
    weight = np.array([1.0, 2.0, 3.0])
    expected = (3 * -np.log(0.5)) / 3  # the ignored second sample counts in neither sum
    assert F.cross_entropy(logits, np.array([2, -1]), weight=weight, ignore_index=-1).item() == pytest.approx(expected)
    smoothed = 0.9 * -np.log(0.5) + 0.1 * -np.log([0.2, 0.3, 0.5]).mean()
    assert F.cross_entropy(logits[:1], np.array([2]), label_smoothing=0.1).item() == pytest.approx(smoothed)
    with pytest.raises(TypeError):
        F.cross_entropy(logits, np.array([2, 1]), "sum")  # PyTorch's third positional argument is weight


@given(shape=small_shapes, seed=seeds, reduction=st.sampled_from(["mean", "sum"]))
def test_binary_cross_entropy(shape, seed, reduction):
    target = np.random.default_rng(seed).random(shape)
    probabilities = random_tensor(shape, seed, low=0.0)
    probabilities.data = 0.05 + 0.9 * probabilities.data
    tn.gradcheck(lambda p: F.binary_cross_entropy(p, target, reduction=reduction), [probabilities])
    np.testing.assert_allclose(F.binary_cross_entropy(probabilities, target, reduction="none").data,
                               -(target * np.log(probabilities.data) + (1 - target) * np.log(1 - probabilities.data)))


def test_binary_cross_entropy_is_finite_at_0_and_1():
    p = tn.Tensor(np.array([0.0, 1.0]), requires_grad=True)
    loss = F.binary_cross_entropy(p, np.array([1.0, 0.0]), reduction="sum")
    assert loss.item() == pytest.approx(200.0)
    loss.backward()
    assert np.all(np.isfinite(p.grad))


def test_max_and_min_over_a_dim_return_values_and_indices_as_pytorch():
    """PyTorch's habit `x.max(1)[1]` (the argmax) must not silently give the max of row 1."""
    x = tn.Tensor(np.array([[1.0, 5.0, 2.0], [7.0, 0.0, 3.0]]), requires_grad=True)
    values, indices = x.max(1)
    assert values.tolist() == [5.0, 7.0] and indices.tolist() == [1, 0] and x.max(dim=1)[1].tolist() == [1, 0]
    assert x.min(dim=0, keepdim=True).values.tolist() == [[1.0, 0.0, 2.0]] and x.min(0).indices.tolist() == [0, 1, 0]
    assert x.max().item() == 7.0 and F.min(x).item() == 0.0 and x.amax((0, 1)).item() == 7.0
    with pytest.raises(TypeError, match=r"max\(\) over one axis takes an int.*amax\(\) reduces over several"):
        x.max((0, 1))
    values.sum().backward()
    assert x.grad.tolist() == [[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]


def test_one_hot_argmax_and_small_methods():
    np.testing.assert_array_equal(F.one_hot(np.array([0, 2])), [[1, 0, 0], [0, 0, 1]])
    assert F.one_hot(tn.Tensor([1.0]), 4).tolist() == [[0, 1, 0, 0]]
    with pytest.raises(ValueError, match="whole numbers"):
        F.one_hot(np.array([0.5]))
    x = tn.Tensor(np.array([[1.0, 5.0, 2.0], [7.0, 0.0, 3.0]]))
    np.testing.assert_array_equal(x.argmax(dim=1), [1, 0])
    assert x.argmax() == 3 and x.numel() == 6 and x.dim() == 2 and x.t().shape == (3, 2)
    assert x.tolist() == [[1.0, 5.0, 2.0], [7.0, 0.0, 3.0]]
    assert x.sum(dim=1, keepdim=True).shape == (2, 1) and x.amax(0).tolist() == [7.0, 5.0, 3.0]
    assert x.clone().zero_().tolist() == [[0.0] * 3] * 2 and x.data[0, 0] == 1.0
    assert x.requires_grad_().requires_grad
    x.float().sum().backward()
    assert x.float().dtype == np.float32 and x.grad.dtype == np.float64 and x.grad.tolist() == [[1.0] * 3] * 2
    with pytest.raises(TypeError, match="axis= or dim="):
        F.sum(x, axis=0, dim=0)
    with pytest.raises(ValueError, match="at most 2 dimensions"):
        tn.Tensor(np.zeros((1, 1, 1))).t()
    assert F.squeeze(np.zeros((1, 2, 1)), 0).shape == (2, 1) and F.stack([np.zeros(2)] * 3, dim=-1).shape == (2, 3)
