"""What gradient tests in float64 cannot see: every op's output and gradient dtype in float32, VJPs that leave grad_out
alone, the values at kinks (PyTorch's conventions), un-broadcasting to and from empty shapes, and the conv's
batch chunks."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinynet as tn
from strategies import seeds
from tinynet import functional as F
from tinynet.kernels import conv as conv_kernels
from tinynet.kernels.conv_choice import ALGORITHMS
from tinynet.observers import observe_forward

LABELS = np.array([2, 0])


def probabilities(x):
    """x squashed into (0, 1), for binary_cross_entropy."""
    return F.sigmoid(x)


def targets(x):
    """Constant targets in (0, 1) of x's shape and dtype."""
    return np.linspace(0.1, 0.9, x.size, dtype=x.dtype).reshape(x.shape)


def positive(x):
    """x moved into [0.5, inf), for log, sqrt, a divisor."""
    return x * x + 0.5


# name: (function of the input Tensors, the inputs' shapes). Every op reachable from tinynet.functional, in
# small calls; inputs go through `positive` or `probabilities` where the op's domain needs it.
CALLS = {
    "add": (F.add, [(2, 3), (3,)]),
    "sub": (F.sub, [(2, 3), (2, 1)]),
    "mul": (F.mul, [(2, 3), (1, 3)]),
    "div": (lambda a, b: F.div(a, positive(b)), [(2, 3), (2, 3)]),
    "neg": (F.neg, [(2, 3)]),
    "exp": (F.exp, [(2, 3)]),
    "log": (lambda x: F.log(positive(x)), [(2, 3)]),
    "sqrt": (lambda x: F.sqrt(positive(x)), [(2, 3)]),
    "pow_int": (lambda x: F.pow(x, 3), [(2, 3)]),
    "pow_float": (lambda x: F.pow(positive(x), 2.5), [(2, 3)]),
    "pow_zero": (lambda x: F.pow(x, 0), [(2, 3)]),
    "pow_tensor": (lambda x, e: F.pow(positive(x), e), [(2, 3), (2, 3)]),
    "abs": (F.abs, [(2, 3)]),
    "clamp": (lambda x: F.clamp(x, -0.5, 0.5), [(2, 3)]),
    "where": (lambda a, b: F.where(a.data > 0, a, b), [(2, 3), (3,)]),
    "cast": (lambda x: F.cast(x, np.float64 if x.dtype == np.float32 else np.float32), [(2, 3)]),
    "relu": (F.relu, [(2, 3)]),
    "tanh": (F.tanh, [(2, 3)]),
    "sigmoid": (F.sigmoid, [(2, 3)]),
    "gelu": (F.gelu, [(2, 3)]),
    "leaky_relu": (F.leaky_relu, [(2, 3)]),
    "softplus": (lambda x: F.softplus(x * 10, threshold=5), [(2, 3)]),
    "sum": (lambda x: F.sum(x, 1), [(2, 3)]),
    "mean": (F.mean, [(2, 3)]),
    "var": (lambda x: F.var(x, 0), [(2, 3)]),
    "std": (F.std, [(2, 3)]),
    "amax": (lambda x: F.amax(x, 1), [(2, 3)]),
    "amin": (F.amin, [(2, 3)]),
    "max": (lambda x: F.max(x, 0).values, [(2, 3)]),
    "min": (F.min, [(2, 3)]),
    "reshape": (lambda x: F.reshape(x, (3, 2)), [(2, 3)]),
    "transpose": (F.transpose, [(2, 3)]),
    "permute": (lambda x: F.permute(x, (2, 0, 1)), [(2, 3, 2)]),
    "getitem": (lambda x: F.getitem(x, (slice(None), [0, 2, 2])), [(2, 3)]),
    "concatenate": (lambda a, b: F.concatenate([a, b], 1), [(2, 3), (2, 1)]),
    "stack": (lambda a, b: F.stack([a, b]), [(2, 3), (2, 3)]),
    "unsqueeze": (lambda x: F.unsqueeze(x, 1), [(2, 3)]),
    "squeeze": (F.squeeze, [(2, 1, 3)]),
    "expand": (lambda x: F.expand(x, (4, 2, 3)), [(2, 1)]),
    "pad": (lambda x: F.pad(x, (1, 2)), [(2, 3)]),
    "flatten": (F.flatten, [(2, 3, 2)]),
    "matmul": (F.matmul, [(2, 3), (3, 4)]),
    "linear": (F.linear, [(2, 3), (4, 3), (4,)]),
    "log_softmax": (F.log_softmax, [(2, 3)]),
    "softmax": (lambda x: F.softmax(x, 0), [(2, 3)]),
    "cross_entropy": (lambda x: F.cross_entropy(x, LABELS), [(2, 3)]),
    "cross_entropy_smoothed": (lambda x: F.cross_entropy(x, LABELS, label_smoothing=0.1), [(2, 3)]),
    "nll_loss": (lambda x: F.nll_loss(F.log_softmax(x), LABELS), [(2, 3)]),
    "bce_with_logits": (lambda x: F.binary_cross_entropy_with_logits(x, targets(x)), [(2, 3)]),
    "bce": (lambda p, t: F.binary_cross_entropy(probabilities(p), probabilities(t)), [(2, 3), (2, 3)]),
    "mse_loss": (F.mse_loss, [(2, 3), (2, 3)]),
    "l1_loss": (F.l1_loss, [(2, 3), (2, 3)]),
    "dropout": (lambda x: F.dropout(x, 0.5, rng=np.random.default_rng(0)), [(2, 3)]),
    "conv2d": (lambda x, w, b: F.conv2d(x, w, b, padding=1), [(2, 2, 5, 5), (3, 2, 3, 3), (3,)]),
    "max_pool2d": (lambda x: F.max_pool2d(x, 2), [(2, 2, 4, 5)]),
    "avg_pool2d": (lambda x: F.avg_pool2d(x, 3, 2, 1), [(2, 2, 4, 5)]),
    "global_avg_pool2d": (F.global_avg_pool2d, [(2, 2, 4, 5)]),
    "local_response_norm": (lambda x: F.local_response_norm(x, depth_radius=1, alpha=0.5), [(2, 3, 2, 2)]),
    "layer_norm": (lambda x, w, b: F.layer_norm(x, 3, w, b), [(2, 3), (3,), (3,)]),
    "batch_norm": (lambda x, w, b: F.batch_norm(x, weight=w, bias=b, training=True), [(4, 3, 2), (3,), (3,)]),
}


def inputs_of(name, dtype, seed=0):
    rng = np.random.default_rng(seed)
    return [tn.Tensor(rng.standard_normal(shape).astype(dtype), requires_grad=True) for shape in CALLS[name][1]]


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
    """Columns (im2col), spectra (FFT: forward without a weight gradient) and tiles (Winograd) go through
    in chunks of the batch that fit COLUMNS_BUDGET_BYTES: lowered here to two images' worth, so that 7
    images go through in 4 chunks, the last ragged; each result as without chunks, to round-off."""
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
    monkeypatch.setattr(conv_kernels, "COLUMNS_BUDGET_BYTES", 2 * min(size for size, _ in chunkings))
    chunkings.clear()
    chunked = results()
    assert chunkings and all(sizes == [2, 2, 2, 1] for _, sizes in chunkings)
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
