"""What gradient tests in float64 cannot see: every op's output and gradient dtype in float32, VJPs that leave grad_out
alone, the values at kinks (PyTorch's conventions), un-broadcasting to and from empty shapes, and the conv's
batch chunks."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinynet as tn
from op_calls import CALLS, inputs_of
from strategies import seeds
from tinynet import functional as F
from tinynet.kernels import conv as conv_kernels
from tinynet.kernels.conv_choice import ALGORITHMS
from tinynet.observers import observe_forward


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(CALLS))
def test_every_gradient_has_its_inputs_dtype_and_shape(name, dtype):
    inputs = inputs_of(name, dtype)
    out = CALLS[name][0](*inputs)
    out.backward(np.ones(out.shape, dtype=out.dtype))
    for x in inputs:
        assert x.grad.dtype == dtype and x.grad.shape == x.shape, f"{name}: {x.grad.dtype} {x.grad.shape}"


@pytest.mark.parametrize("name", sorted(set(CALLS) - {"cast"}))
def test_every_output_has_its_inputs_dtype(name):
    """float32 in, float32 out: an op that promoted to float64 (say a helper's float64 constant) would go unseen
    by the gradient dtypes above, since the reverse pass casts a gradient of the output's dtype back."""
    out = CALLS[name][0](*inputs_of(name, np.float32))
    assert out.dtype == np.float32, f"{name}: {out.dtype}"


def frozen(grad):
    """A read-only copy of grad."""
    grad = np.array(grad)
    grad.flags.writeable = False
    return grad


def freeze_grad_out(op, ctx, inputs, params, out):
    """A forward observer: out's op will be handed a read-only grad_out."""
    if out.requires_grad:
        out.register_hook(frozen)


@pytest.mark.parametrize("name", sorted(CALLS))
def test_no_vjp_writes_into_its_grad_out(name):
    """Every op's grad_out is read-only here, so a VJP that wrote into it would raise; and in op(x) + y, where
    Add hands the same grad_out to both parents, y's gradient is grad_out's value."""
    inputs = inputs_of(name, np.float64)
    with observe_forward(freeze_grad_out):
        out = CALLS[name][0](*inputs)
    y = tn.Tensor(np.zeros(out.shape), requires_grad=True)
    grad = np.random.default_rng(1).standard_normal(out.shape)
    (out + y).backward(grad.copy())
    np.testing.assert_array_equal(y.grad, grad)


def torch_max(x, torch):
    return torch.max(x)


# name: (tinynet's call, PyTorch's call or None, input values, the gradient for grad_out = 1). PyTorch's
# conventions at the kinks; where torch has no counterpart with the same convention, None (and the why).
KINKS = {
    "relu at 0": (F.relu, lambda x, torch: torch.relu(x), [0.0, -0.0, 1.0], [0.0, 0.0, 1.0]),
    "abs at 0": (F.abs, lambda x, torch: torch.abs(x), [0.0, -0.0, -2.0], [0.0, 0.0, -1.0]),
    "l1_loss where prediction is target": (lambda x: F.l1_loss(x, np.array([0.0, 1.0]), reduction="sum"),
                                           lambda x, torch: torch.nn.functional.l1_loss(
                                               x, torch.tensor([0.0, 1.0], dtype=x.dtype), reduction="sum"),
                                           [0.0, 1.0], [0.0, 0.0]),
    "leaky_relu at 0": (lambda x: F.leaky_relu(x, 0.1),
                        lambda x, torch: torch.nn.functional.leaky_relu(x, 0.1), [0.0, -0.0], [0.1, 0.1]),
    "clamp at its bounds": (lambda x: F.clamp(x, -1.0, 1.0), lambda x, torch: torch.clamp(x, -1.0, 1.0),
                            [-1.0, 1.0, -1.5, 1.5], [1.0, 1.0, 0.0, 0.0]),
    "clamp(min=0) at 0": (lambda x: F.clamp(x, min=0.0), lambda x, torch: torch.clamp(x, min=0.0), [0.0], [1.0]),
    "softplus at its threshold": (lambda x: F.softplus(x, threshold=2.0),
                                  lambda x, torch: torch.nn.functional.softplus(x, threshold=2.0),
                                  [2.0], [1 / (1 + np.exp(-2.0))]),
    "amax shares a tie equally": (lambda x: F.amax(x, 0), lambda x, torch: torch.amax(x, 0),
                                  [3.0, 1.0, 3.0, 3.0], [1 / 3, 0.0, 1 / 3, 1 / 3]),
    "amin shares a tie equally": (lambda x: F.amin(x, 0), lambda x, torch: torch.amin(x, 0),
                                  [1.0, 1.0, 3.0], [0.5, 0.5, 0.0]),
    "max over an axis shares a tie (as amax; torch.max(x, 0) picks one)":
        (lambda x: F.max(x, 0).values, lambda x, torch: torch.amax(x, 0), [3.0, 3.0], [0.5, 0.5]),
    "max of all shares a tie": (F.max, torch_max, [2.0, 1.0, 2.0], [0.5, 0.0, 0.5]),
    # A NaN is the max of its slice and takes the gradient, NaNs sharing it, as torch.max(x) does. torch.amax
    # (2.13) gives every element NaN there: its mask x == max is all False, and it divides by that count, 0.
    "max of all with a NaN": (F.max, torch_max, [1.0, np.nan, 3.0], [0.0, 1.0, 0.0]),
    "max of all with two NaNs": (F.max, torch_max, [np.nan, 1.0, np.nan], [0.5, 0.0, 0.5]),
    "amax with a NaN": (lambda x: F.amax(x, 0), None, [1.0, 5.0, np.nan], [0.0, 0.0, 1.0]),
    "amin with a NaN": (lambda x: F.amin(x, 0), None, [1.0, np.nan, -3.0], [0.0, 1.0, 0.0]),
    "max_pool2d takes the first of a tie": (lambda x: F.max_pool2d(F.reshape(x, (1, 1, 1, 3)), (1, 3)),
                                            lambda x, torch: torch.nn.functional.max_pool2d(x.reshape(1, 1, 1, 3),
                                                                                            (1, 3)),
                                            [3.0, 1.0, 3.0], [1.0, 0.0, 0.0]),
    "max_pool2d with a NaN": (lambda x: F.max_pool2d(F.reshape(x, (1, 1, 1, 3)), (1, 3)),
                              lambda x, torch: torch.nn.functional.max_pool2d(x.reshape(1, 1, 1, 3), (1, 3)),
                              [3.0, np.nan, 1.0], [0.0, 1.0, 0.0]),
    "max_pool2d with two NaNs takes the first (torch 2.13: the last)":
        (lambda x: F.max_pool2d(F.reshape(x, (1, 1, 1, 3)), (1, 3)), None, [np.nan, 3.0, np.nan], [1.0, 0.0, 0.0]),
    "std of equal values": (F.std, lambda x, torch: torch.std(x), [2.0, 2.0, 2.0], [0.0, 0.0, 0.0]),
}
GRAD_OUT = 1.5  # not 1: the gradient at a kink is grad_out times the convention's slope


def gradient_at(call, values, dtype):
    x = tn.Tensor(np.array(values, dtype=dtype), requires_grad=True)
    out = call(x)
    out.backward(np.full(out.shape, GRAD_OUT, dtype=dtype))
    return x.grad


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(KINKS))
def test_gradient_at_a_kink_follows_pytorch(name, dtype):
    call, _, values, expected = KINKS[name]
    np.testing.assert_allclose(gradient_at(call, values, dtype), GRAD_OUT * np.array(expected), rtol=1e-6,
                               strict=False)


@pytest.mark.parametrize("name", sorted(name for name, case in KINKS.items() if case[1] is not None))
def test_gradient_at_a_kink_is_torchs(name):
    torch = pytest.importorskip("torch")
    call, torch_call, values, _ = KINKS[name]
    x = torch.tensor(values, dtype=torch.float64, requires_grad=True)
    out = torch_call(x, torch)
    out.backward(torch.full(out.shape, GRAD_OUT, dtype=torch.float64))
    np.testing.assert_allclose(gradient_at(call, values, np.float64), x.grad.numpy(), rtol=1e-12)


def gradient_by_hand(grad_out, shape, factor):
    """d/d operand of a broadcast elementwise op, one output element at a time: each adds grad_out * factor
    (the op's partial derivative there) to the operand element it read."""
    grad = np.zeros(shape)
    extra = grad_out.ndim - len(shape)
    for index in np.ndindex(grad_out.shape):
        read = tuple(0 if size == 1 else i for i, size in zip(index[extra:], shape))
        grad[read] += grad_out[index] * factor[index]
    return grad


@pytest.mark.parametrize("shapes", [((1,), (0,)), ((2, 1), (2, 0)), ((), (0,)), ((0, 1), (1, 3)), ((1, 1), (0, 3)),
                                    ((), (1,)), ((1,), (2, 3)), ((3, 1), (1, 1, 4))])
@given(seed=seeds, swap=st.booleans())
def test_gradients_sum_back_to_empty_and_size_one_shapes(shapes, seed, swap):
    shape_a, shape_b = shapes[::-1] if swap else shapes
    rng = np.random.default_rng(seed)
    a, b = (tn.Tensor(rng.standard_normal(shape), requires_grad=True) for shape in (shape_a, shape_b))
    grad_out = rng.standard_normal(np.broadcast_shapes(shape_a, shape_b))
    (F.add(a, b) + F.mul(a, b)).backward(grad_out)
    a_wide, b_wide = (np.broadcast_to(t.data, grad_out.shape) for t in (a, b))
    for tensor, partial in [(a, 1 + b_wide), (b, 1 + a_wide)]:
        assert tensor.grad.shape == tensor.shape
        np.testing.assert_allclose(tensor.grad, gradient_by_hand(grad_out, tensor.shape, partial), rtol=1e-12)


@pytest.mark.parametrize("algorithm", sorted(ALGORITHMS))
def test_conv_batch_chunks_give_the_unchunked_result(algorithm, monkeypatch):
    """Columns (im2col), spectra (FFT: forward without a weight gradient), channels-last copies and tiles (Winograd)
    go through in chunks of the batch that fit a worker's share of COLUMNS_BUDGET_BYTES: lowered here to two
    images' worth of the call that needs least per image, so that 7 images go through in 4 chunks there, as even as
    they can be, and in more where an image needs more; each result as without chunks, to round-off."""
    rng = np.random.default_rng(0)
    x, weight, bias = rng.standard_normal((7, 2, 6, 5)), rng.standard_normal((3, 2, 3, 3)), rng.standard_normal(3)
    grad_out = rng.standard_normal((7, 3, 6, 5))

    def results():
        tensors = [tn.Tensor(array, requires_grad=True) for array in (x, weight, bias)]
        with tn.force_conv_algorithm(algorithm):
            out = F.conv2d(*tensors, padding=1)
            with tn.no_grad():
                evaluated = F.conv2d(*tensors, padding=1)
        out.backward(grad_out)
        return [out.data, evaluated.data] + [t.grad for t in tensors]

    chunkings = []

    def recorded_batch_chunks(n_images, bytes_per_image):
        chunks = real_batch_chunks(n_images, bytes_per_image)
        chunkings.append((bytes_per_image, [chunk.stop - chunk.start for chunk in chunks]))
        return chunks

    module = ALGORITHMS[algorithm]
    real_batch_chunks = module.batch_chunks
    monkeypatch.setattr(module, "batch_chunks", recorded_batch_chunks)
    unchunked = results()
    assert chunkings and all(sizes == [7] for _, sizes in chunkings)
    monkeypatch.setattr(conv_kernels, "COLUMNS_BUDGET_BYTES",  # two images per worker
                        2 * conv_kernels.workers() * min(size for size, _ in chunkings))
    chunkings.clear()
    chunked = results()
    smallest = min(size for size, _ in chunkings)
    assert chunkings and all(sizes == [1, 2, 2, 2] for size, sizes in chunkings if size == smallest)
    assert all(sum(sizes) == 7 and len(sizes) >= 4 for _, sizes in chunkings)
    for got, expected in zip(chunked, unchunked):
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_binary_cross_entropy_with_logits_is_exact_at_extreme_logits(dtype):
    """At logits of +-1e4 the loss is 0 where the sign agrees with the target and 1e4 where not; the gradient
    sigmoid(x) - target is 0 or +-1 (over 4 elements: the mean's 1/4), with no overflow on the way."""
    logits = tn.Tensor(np.array([1e4, -1e4, 1e4, -1e4], dtype=dtype), requires_grad=True)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        loss = F.binary_cross_entropy_with_logits(logits, np.array([1.0, 0.0, 0.0, 1.0], dtype=dtype))
        loss.backward()
    assert loss.dtype == logits.grad.dtype == dtype
    assert loss.item() == 2e4 / 4
    np.testing.assert_array_equal(logits.grad, np.array([0.0, 0.0, 1.0, -1.0], dtype=dtype) / 4)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relu_gradient_is_0_where_off_whatever_comes_back(dtype):
    """Where x <= 0 relu's gradient is 0 even when the gradient coming back is inf or NaN, as PyTorch's: it chooses
    between grad_out and 0, where grad_out * mask would make 0 * inf = NaN. c / relu(x) is inf there and
    (c / relu(x))**-2 is 0, flat, but its chain rule sends back 0 * inf = NaN through the division."""
    x = tn.Tensor(np.array([-1.0, 0.0, 2.0], dtype=dtype), requires_grad=True)
    F.relu(x).backward(np.array([np.nan, np.inf, 1.5], dtype=dtype))
    np.testing.assert_array_equal(x.grad, np.array([0.0, 0.0, 1.5], dtype=dtype))
    x.grad = None
    with np.errstate(divide="ignore", invalid="ignore"):
        ((3 / F.relu(x)) ** -2).sum().backward()  # x**2 / 9 where x > 0, else 0
    np.testing.assert_allclose(x.grad, [0.0, 0.0, 4 / 9], rtol=1e-6)
    (slope,) = tn.grad(F.relu(x) ** 2, [x], np.ones(3, dtype), create_graph=True)  # the choice is differentiable
    np.testing.assert_array_equal(tn.grad(slope.sum(), [x])[0].data, [0.0, 0.0, 2.0])
