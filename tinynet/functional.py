"""The public functions of tinynet, PyTorch names. Each is one primitive op or a composition.

Arguments may be Tensors, NumPy arrays or Python numbers; non-Tensors are constants.
`sum`, `max` and `pow` take PyTorch's names and so shadow Python's builtins: in this module
`sum(x)` is the Tensor sum. Elsewhere, call them as F.sum, F.max, F.pow (no `import *`).
"""
import numpy as np

from .kernels.padding import output_size, pair, resolve_padding
from .ops.activation import ReLU, Sigmoid, Tanh
from .ops.conv import Conv2d
from .ops.elementwise import Add, Div, Exp, Log, Mul, Neg, Pow
from .ops.linear import MatMul
from .ops.loss import BinaryCrossEntropyWithLogits, LogSoftmax
from .ops.norm import LocalResponseNorm
from .ops.pool import AvgPool2d, MaxPool2d
from .ops.reduce import Max, Sum
from .ops.shape import Concatenate, GetItem, Pad, Reshape, Transpose
from .tensor import Tensor, apply


def as_tensor(x) -> Tensor:
    """x itself if it is a Tensor, else a constant Tensor of it."""
    return x if isinstance(x, Tensor) else Tensor(x)


# ---- elementwise arithmetic ---------------------------------------------------------------
def add(a, b): return apply(Add, a, b)
def mul(a, b): return apply(Mul, a, b)
def div(a, b): return apply(Div, a, b)
def neg(a): return apply(Neg, a)
def sub(a, b): return add(a, neg(b))
def exp(x): return apply(Exp, x)
def log(x): return apply(Log, x)


def pow(x, exponent):
    """x ** exponent, for a constant (Python number) exponent."""
    if not np.isscalar(exponent):
        raise TypeError(f"pow takes a constant number as exponent, got {type(exponent).__name__}")
    return apply(Pow, x, exponent=exponent)


# ---- activations --------------------------------------------------------------------------
def relu(x): return apply(ReLU, x)
def tanh(x): return apply(Tanh, x)
def sigmoid(x): return apply(Sigmoid, x)


# ---- reductions ---------------------------------------------------------------------------
def sum(x, axis=None, keepdims=False):
    """Sum over axis (None: all axes)."""
    return apply(Sum, x, axis=axis, keepdims=keepdims)


def mean(x, axis=None, keepdims=False):
    """Mean over axis (None: all axes): the sum divided by the number of summed elements."""
    total = sum(x, axis, keepdims)
    return total / (as_tensor(x).size // total.size)


def max(x, axis=None, keepdims=False):
    """Max over axis (None: all axes); tied maxima share the gradient equally."""
    return apply(Max, x, axis=axis, keepdims=keepdims)


# ---- shape --------------------------------------------------------------------------------
def reshape(x, shape): return apply(Reshape, x, shape=shape)


def transpose(x, axes=None):
    """x with axes permuted; None reverses them (x.T)."""
    return apply(Transpose, x, axes=None if axes is None else tuple(axes))


def getitem(x, index):
    """x[index] with NumPy indexing; Tensors inside the index are used as integer arrays."""
    if isinstance(index, tuple):
        index = tuple(i.data.astype(np.intp) if isinstance(i, Tensor) else i for i in index)
    elif isinstance(index, Tensor):
        index = index.data.astype(np.intp)
    return apply(GetItem, x, index=index)


def concatenate(tensors, axis=0):
    """Join tensors along an existing axis."""
    return apply(Concatenate, *tensors, axis=axis)


def stack(tensors, axis=0):
    """Join tensors of one shape along a new axis."""
    tensors = [as_tensor(t) for t in tensors]
    new_axis = axis % (tensors[0].ndim + 1)
    return concatenate([reshape(t, t.shape[:new_axis] + (1,) + t.shape[new_axis:]) for t in tensors], new_axis)


def pad(x, pad_width):
    """x zero-padded; pad_width has one (before, after) pair per axis."""
    return apply(Pad, x, pad_width=tuple((int(before), int(after)) for before, after in pad_width))


def flatten(x, start_axis=1):
    """x reshaped to x.shape[:start_axis] + (-1,): (N, C, H, W) -> (N, C*H*W)."""
    x = as_tensor(x)
    return reshape(x, x.shape[:start_axis] + (-1,))


# ---- linear algebra -----------------------------------------------------------------------
def matmul(a, b):
    """a @ b with NumPy's rules: batched over leading axes; a 1-D operand is a vector."""
    a, b = as_tensor(a), as_tensor(b)
    out = apply(MatMul, a.reshape(1, -1) if a.ndim == 1 else a, b.reshape(-1, 1) if b.ndim == 1 else b)
    if a.ndim == 1 or b.ndim == 1:
        shape = out.shape[:-2] + out.shape[-2:][a.ndim == 1:2 - (b.ndim == 1)]
        out = reshape(out, shape)
    return out


def linear(x, weight, bias=None):
    """x @ weight^T + bias with x: (N, in), weight: (out, in), bias: (out,) -> (N, out)."""
    out = matmul(x, transpose(weight))
    return out if bias is None else out + bias


# ---- softmax and losses -------------------------------------------------------------------
def log_softmax(x, axis=-1):
    """log(softmax(x)) along axis, computed stably (log-sum-exp)."""
    return apply(LogSoftmax, x, axis=axis)


def softmax(x, axis=-1):
    """exp(x) / sum(exp(x)) along axis, as exp(log_softmax(x)) so it never overflows."""
    return exp(log_softmax(x, axis))


def reduce_loss(loss, reduction):
    """Apply a loss reduction: 'mean', 'sum' or 'none'."""
    if reduction == "mean":
        return mean(loss)
    if reduction == "sum":
        return sum(loss)
    if reduction == "none":
        return loss
    raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def cross_entropy(logits, target, reduction="mean"):
    """Negative log-likelihood of the targets under softmax(logits).

    logits: (N, C). target: integer class indices (N,), or one-hot / probabilities (N, C).
    The gradient with respect to the logits is (softmax(logits) - one_hot(target)) / N for
    reduction='mean'.
    """
    logits = as_tensor(logits)
    target = target.data if isinstance(target, Tensor) else np.asarray(target)
    if logits.ndim != 2:
        raise ValueError(f"expected logits of shape (N, C), got {logits.shape}")
    log_probs = log_softmax(logits, axis=1)
    n, classes = logits.shape
    if target.shape == (n,) and np.issubdtype(target.dtype, np.integer):
        if target.size and (target.min() < 0 or target.max() >= classes):
            raise ValueError(f"class indices must lie in [0, {classes}), got [{target.min()}, {target.max()}]")
        loss = -log_probs[np.arange(n), target]
    elif target.shape == (n, classes):
        loss = -sum(log_probs * target.astype(logits.dtype), axis=1)
    else:
        raise ValueError(f"expected integer targets of shape ({n},) or one-hot targets of shape ({n}, {classes}), "
                         f"got {target.dtype} {target.shape}")
    return reduce_loss(loss, reduction)


def binary_cross_entropy_with_logits(logits, target, reduction="mean"):
    """Binary cross-entropy of targets in [0, 1] under sigmoid(logits), finite for any logits."""
    logits = as_tensor(logits)
    target = np.asarray(target.data if isinstance(target, Tensor) else target, dtype=logits.dtype)
    if target.shape != logits.shape:
        raise ValueError(f"target shape {target.shape} differs from logits shape {logits.shape}")
    return reduce_loss(apply(BinaryCrossEntropyWithLogits, logits, target), reduction)


def mse_loss(prediction, target, reduction="mean"):
    """Squared error (prediction - target)**2, averaged (or summed) over all elements."""
    return reduce_loss((as_tensor(prediction) - target) ** 2, reduction)


def l2_penalty(parameters, coefficient=1.0):
    """coefficient * (sum of squares of every parameter): add it to a loss for weight decay."""
    return coefficient * sum(stack([sum(p * p) for p in parameters]))


def dropout(x, p=0.5, training=True, rng=None):
    """Zero each element with probability p and scale the rest by 1/(1-p) (identity in eval).

    rng: a numpy Generator, for reproducible masks.
    """
    if not 0 <= p <= 1:
        raise ValueError(f"dropout probability must be in [0, 1], got {p}")
    x = as_tensor(x)
    if not training or p == 0:
        return x
    if p == 1:
        return x * 0
    rng = np.random.default_rng() if rng is None else rng
    keep = 1 - p
    mask = (rng.random(x.shape) < keep).astype(x.dtype) / np.asarray(keep, dtype=x.dtype)
    return x * mask


# ---- convolution, pooling, normalization (NCHW) -------------------------------------------
def check_images(x, name="input"):
    """x as a Tensor, which must be a batch of images (N, C, H, W)."""
    x = as_tensor(x)
    if x.ndim != 4:
        raise ValueError(f"expected {name} of shape (N, C, H, W), got {x.shape}")
    return x


def conv2d(x, weight, bias=None, stride=1, padding=0, groups=1, dilation=1):
    """2-D convolution: x (N, C, H, W), weight (O, C/groups, kh, kw), bias (O,) -> (N, O, Ho, Wo).

    padding: int, (ph, pw), ((top, bottom), (left, right)), 'valid' or 'same' (TensorFlow's
    rule: Ho = ceil(H / stride), the odd extra pixel at the bottom/right).
    """
    x, weight = check_images(x), as_tensor(weight)
    if weight.ndim != 4:
        raise ValueError(f"expected weight of shape (O, C/groups, kh, kw), got {weight.shape}")
    if x.shape[1] != weight.shape[1] * groups or weight.shape[0] % groups:
        raise ValueError(f"input has {x.shape[1]} channels, weight {weight.shape} with groups={groups} expects "
                         f"{weight.shape[1] * groups} (and output channels divisible by groups)")
    stride, dilation = pair(stride, "stride"), pair(dilation, "dilation")
    pads = resolve_padding(padding, x.shape[2:], weight.shape[2:], stride, dilation)
    if min(output_size(*args, *pad) for args, pad in zip(zip(x.shape[2:], weight.shape[2:], stride, dilation), pads)) < 1:
        raise ValueError(f"kernel {weight.shape[2:]} (dilation {dilation}) does not fit input {x.shape[2:]} "
                         f"with padding {pads}")
    out = apply(Conv2d, x, weight, stride=stride, pads=pads, dilation=dilation, groups=groups)
    return out if bias is None else out + reshape(bias, (1, -1, 1, 1))


def pooling_settings(x, kernel_size, stride, padding):
    """(kernel, stride, pads) for pooling x; stride defaults to the kernel size."""
    kernel = pair(kernel_size, "kernel_size")
    stride = kernel if stride is None else pair(stride, "stride")
    pads = resolve_padding(padding, x.shape[2:], kernel, stride, (1, 1))
    if any(before >= k or after >= k for (before, after), k in zip(pads, kernel)):
        raise ValueError(f"padding {pads} must be smaller than the pooling window {kernel}")
    return kernel, stride, pads


def max_pool2d(x, kernel_size, stride=None, padding=0):
    """Max over kh x kw windows: x (N, C, H, W) -> (N, C, Ho, Wo); padding as in conv2d."""
    x = check_images(x)
    kernel, stride, pads = pooling_settings(x, kernel_size, stride, padding)
    return apply(MaxPool2d, x, kernel=kernel, stride=stride, pads=pads)


def avg_pool2d(x, kernel_size, stride=None, padding=0):
    """Mean over kh x kw windows, counting only real (unpadded) pixels: (N, C, H, W) -> (N, C, Ho, Wo)."""
    x = check_images(x)
    kernel, stride, pads = pooling_settings(x, kernel_size, stride, padding)
    return apply(AvgPool2d, x, kernel=kernel, stride=stride, pads=pads)


def global_avg_pool2d(x):
    """Mean over H and W: (N, C, H, W) -> (N, C)."""
    return mean(check_images(x), axis=(2, 3))


def local_response_norm(x, depth_radius=2, bias=1.0, alpha=2e-5, beta=0.75):
    """TensorFlow's LRN: x / (bias + alpha * sum of x^2 over channels c-r..c+r) ** beta."""
    return apply(LocalResponseNorm, check_images(x), depth_radius=depth_radius, bias=bias, alpha=alpha, beta=beta)
