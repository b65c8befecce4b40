"""The public functions of tinynet, PyTorch names. Each is one primitive op or a composition.

Arguments may be Tensors, NumPy arrays or Python numbers; non-Tensors are constants.
`sum`, `max` and `pow` take PyTorch's names and so shadow Python's builtins: in this module
`sum(x)` is the Tensor sum. Elsewhere, call them as F.sum, F.max, F.pow (no `import *`).
"""
import functools
import math
import numbers
from typing import NamedTuple

import numpy as np

from .batching import BatchedArray, BatchedTensor, every_example, looked_up, values
from .grad_mode import enable_grad
from .kernels.windows import checked_int, is_int, sliding_window
from .ops.activation import GELU, ReLU, Sigmoid, Softplus, Tanh
from .ops.conv import Conv2d
from .ops.elementwise import Abs, Add, Cast, Div, Exp, Log, Mul, Neg, Pow, Where
from .ops.linear import Linear, MatMul
from .ops.loss import BinaryCrossEntropyWithLogits, CrossEntropy, LogSoftmax, check_class_indices
from .ops.norm import LocalResponseNorm
from .ops.pool import AvgPool2d, MaxPool2d
from .ops.reduce import Max, Sum, normalize_axes
from .ops.shape import Concatenate, GetItem, Pad, Reshape, Transpose, normalize_axis
from .tensor import Tensor, as_tensors, grad, values_of


def as_tensor(x) -> Tensor:
    """x itself if it is a Tensor, else a constant Tensor of it."""
    return x if isinstance(x, Tensor) else Tensor(x)


def torch_names(function):
    """Let function also take PyTorch's names dim= and keepdim= for its axis= and keepdims=."""
    @functools.wraps(function)
    def with_torch_names(*args, dim=None, keepdim=None, **kwargs):
        if dim is not None:
            if "axis" in kwargs:
                raise TypeError(f"{function.__name__}() takes axis= or dim=, not both")
            kwargs["axis"] = dim
        if keepdim is not None:
            kwargs["keepdims"] = keepdim
        return function(*args, **kwargs)
    return with_torch_names


# ---- elementwise arithmetic ---------------------------------------------------------------
def add(a, b): return Add.apply(a, b)
def mul(a, b): return Mul.apply(a, b)
def div(a, b): return Div.apply(a, b)
def neg(a): return Neg.apply(a)
def exp(x): return Exp.apply(x)
def log(x): return Log.apply(x)
def sqrt(x): return pow(x, 0.5)


def sub(a, b):
    """a + (-b); a constant b takes the graph's dtype before it is negated (a float32 -0.1 would round)."""
    a, b = as_tensors(a, b)
    return add(a, neg(b))


def pow(x, exponent):
    """x ** exponent. A constant (Python or NumPy number) exponent: any x, which keeps its dtype.
    A Tensor or array exponent: x > 0 (computed as exp(exponent * log(x)); NaN for x < 0)."""
    if isinstance(exponent, numbers.Real):
        exponent = int(exponent) if isinstance(exponent, numbers.Integral) else float(exponent)
        return Pow.apply(x, exponent=exponent)
    x, exponent = as_tensors(x, exponent)
    return exp(exponent * log(x))


def where(condition, a, b):
    """a where condition (booleans: an array, or a Tensor's nonzero entries) holds, else b (torch.where)."""
    if isinstance(condition, Tensor):
        condition = values(condition) != 0
    return Where.apply(a, b, condition=condition.astype(bool) if isinstance(condition, BatchedArray) else
                       np.asarray(condition, dtype=bool))


def abs(x):
    """|x|: the gradient is sign(x), 0 at 0 (as in PyTorch)."""
    return Abs.apply(x)


def clamp(x, min=None, max=None):
    """x limited to [min, max] (either may be None); the gradient passes where min <= x <= max, at the bounds
    too, as in PyTorch (clamp(x, min=0) at x = 0 has slope 1)."""
    x = as_tensor(x)
    low, high = -np.inf if min is None else min, np.inf if max is None else max
    return where((values(x) >= low) & (values(x) <= high), x, np.clip(values(x), low, high))


def cast(x, dtype):
    """x copied into a float dtype (np.float32 or np.float64); the gradient comes back in x's dtype."""
    if not np.issubdtype(dtype, np.floating):
        raise TypeError(f"a Tensor holds floating-point numbers, got dtype={np.dtype(dtype)}")
    return Cast.apply(x, dtype=np.dtype(dtype))


# ---- activations --------------------------------------------------------------------------
def relu(x): return ReLU.apply(x)
def tanh(x): return Tanh.apply(x)
def sigmoid(x): return Sigmoid.apply(x)
def gelu(x): return GELU.apply(x)


def leaky_relu(x, negative_slope=0.01):
    """x where x > 0, else negative_slope * x; the slope at 0 is negative_slope, as in PyTorch."""
    x = as_tensor(x)
    return where(values(x) > 0, x, x * negative_slope)


def softplus(x, beta=1.0, threshold=20.0):
    """log(1 + exp(beta x)) / beta, and x itself where beta x > threshold (PyTorch's rule)."""
    x = as_tensor(x)
    scaled = x * beta
    return where(values(scaled) > threshold, x, Softplus.apply(scaled) / beta)


# ---- reductions (each also takes PyTorch's dim= and keepdim=) -------------------------------
def reduced_count(x, axis) -> int:
    """How many elements of x each result of a reduction over axis combines."""
    return math.prod(x.shape[a] for a in normalize_axes(axis, x.ndim))


@torch_names
def sum(x, axis=None, keepdims=False):
    """Sum over axis (None: all axes)."""
    return Sum.apply(x, axis=axis, keepdims=keepdims)


@torch_names
def mean(x, axis=None, keepdims=False):
    """Mean over axis (None: all axes): the sum divided by the number of summed elements."""
    x = as_tensor(x)
    return sum(x, axis, keepdims) / reduced_count(x, axis)


@torch_names
def var(x, axis=None, keepdims=False, correction=1):
    """Variance over axis: sum((x - mean)^2) / (n - correction); correction=1 (Bessel's) as in torch.var."""
    x = as_tensor(x)
    deviation = x - mean(x, axis, keepdims=True)
    return sum(deviation * deviation, axis, keepdims) / (reduced_count(x, axis) - correction)


@torch_names
def std(x, axis=None, keepdims=False, correction=1):
    """Standard deviation over axis: sqrt(var). Where var is 0 the gradient is 0, as in PyTorch (not 0 * inf:
    the inner where keeps sqrt away from 0, so its backward never multiplies by an infinite slope)."""
    variance = var(x, axis, keepdims, correction)
    zero = values(variance) == 0
    return where(zero, 0.0, sqrt(where(zero, 1.0, variance)))


@torch_names
def amax(x, axis=None, keepdims=False):
    """Max over axis (None: all axes; an int or a tuple), the values only (torch.amax); tied maxima share the
    gradient equally."""
    return Max.apply(x, axis=axis, keepdims=keepdims)


@torch_names
def amin(x, axis=None, keepdims=False):
    """Min over axis, values only (torch.amin), as -amax(-x)."""
    return neg(amax(neg(x), axis, keepdims))


class ValuesAndIndices(NamedTuple):
    """What max and min over one axis return, as torch.max(x, dim): the values (a Tensor) and where they are
    (a NumPy int64 array: Tensors hold floats)."""
    values: Tensor
    indices: np.ndarray


@torch_names
def max(x, axis=None, keepdims=False):
    """As torch.max: without an axis, the largest element (a Tensor); over one axis (an int), the
    (values, indices) pair, so that PyTorch's `x.max(1)[1]` is the argmax here too. amax takes several axes."""
    return extreme(amax, argmax, x, axis, keepdims)


@torch_names
def min(x, axis=None, keepdims=False):
    """As torch.min: without an axis, the smallest element; over one axis, (values, indices)."""
    return extreme(amin, argmin, x, axis, keepdims)


def extreme(values_of_extreme, index_of_extreme, x, axis, keepdims):
    """max or min as PyTorch's: values_of_extreme (amax, amin) over everything, or with its indices over one axis."""
    if axis is None:
        return values_of_extreme(x)
    if not is_int(axis):
        raise TypeError(f"{values_of_extreme.__name__[1:]}() over one axis takes an int, got {axis!r}: "
                        f"{values_of_extreme.__name__}() reduces over several")
    return ValuesAndIndices(values_of_extreme(x, axis, keepdims), index_of_extreme(x, axis, keepdims))


@torch_names
def argmax(x, axis=None, keepdims=False):
    """Index of the max along axis (None: in the flattened x), as a NumPy int64 array (Tensors hold floats)."""
    return np.argmax(values(as_tensor(x)), axis=axis, keepdims=keepdims)


@torch_names
def argmin(x, axis=None, keepdims=False):
    """Index of the min along axis (None: in the flattened x), as a NumPy int64 array."""
    return np.argmin(values(as_tensor(x)), axis=axis, keepdims=keepdims)


# ---- shape --------------------------------------------------------------------------------
def reshape(x, shape): return Reshape.apply(x, shape=shape)


def transpose(x, *dims):
    """x with two axes swapped, as PyTorch's transpose(x, dim0, dim1); a view, no copy.

    NumPy's forms work too: transpose(x) reverses the axes (x.T), and transpose(x, axes) with one
    sequence permutes them (as permute). Any other call raises rather than guess: NumPy's
    x.transpose(0, 2, 1) permutes where PyTorch's transpose takes exactly two dims.
    """
    if not dims:
        return Transpose.apply(x, axes=None)
    if len(dims) == 1 and not np.isscalar(dims[0]):
        return permute(x, dims[0])
    if len(dims) != 2 or not all(is_int(d) for d in dims):
        raise TypeError(f"transpose{dims} takes two dims to swap (PyTorch's transpose(dim0, dim1)) or one sequence "
                        f"of all the axes (NumPy's transpose(axes)); to permute, use permute{dims}")
    axes = list(range(x.ndim))
    first, second = (normalize_axis(d, x.ndim) for d in dims)
    axes[first], axes[second] = axes[second], axes[first]
    return Transpose.apply(x, axes=tuple(axes))


def permute(x, dims):
    """x with its axes in the order dims (a permutation of all of them), as PyTorch's permute; a view."""
    return Transpose.apply(x, axes=tuple(dims))


def getitem(x, index):
    """x[index] with NumPy indexing; Tensors inside the index are used as integer arrays."""
    if isinstance(index, tuple):
        index = tuple(i._data.astype(np.intp) if isinstance(i, Tensor) else i for i in index)
    elif isinstance(index, Tensor):
        index = index._data.astype(np.intp)
    return GetItem.apply(x, index=index)


@torch_names
def concatenate(tensors, axis=0):
    """Join tensors along an existing axis."""
    return Concatenate.apply(*tensors, axis=axis)


@torch_names
def stack(tensors, axis=0):
    """Join tensors of one shape along a new axis."""
    return concatenate([unsqueeze(t, axis) for t in as_tensors(*tensors)], axis)


def unsqueeze(x, axis):
    """x with a new axis of size 1 at position axis (negative: counted in the result)."""
    x = as_tensor(x)
    axis = normalize_axis(axis, x.ndim + 1)
    return reshape(x, x.shape[:axis] + (1,) + x.shape[axis:])


def squeeze(x, axis=None):
    """x without its axes of size 1 (only those among axis, when given)."""
    x = as_tensor(x)
    axes = normalize_axes(axis, x.ndim)
    return reshape(x, tuple(size for a, size in enumerate(x.shape) if a not in axes or size != 1))


def expand(x, shape):
    """x broadcast to shape (-1 keeps a size), as x + zeros(shape): the gradient is summed back."""
    x = as_tensor(x)
    kept = (None,) * (len(shape) - x.ndim) + x.shape
    return x + np.zeros(tuple(old if size == -1 else size for size, old in zip(shape, kept)), dtype=x.dtype)


def pad(x, pad):
    """x zero-padded, with pad in either library's format:

    PyTorch's flat (left, right, top, bottom, ...): pairs for the last axes, the last axis first
    (pad(x, (1, 1)) pads the last axis by one on each side); or NumPy's pad_width, one (before,
    after) pair per axis, the first axis first.
    """
    x = as_tensor(x)
    if all(is_int(p) for p in pad):
        if len(pad) % 2 or len(pad) > 2 * x.ndim:
            raise ValueError(f"pad {tuple(pad)} in PyTorch's flat format needs an even number of sizes, at most 2 per "
                             f"axis of the {x.ndim} axes")
        flat = [(pad[k], pad[k + 1]) for k in range(0, len(pad), 2)]
        pad = [(0, 0)] * (x.ndim - len(flat)) + flat[::-1]
    return Pad.apply(x, pad_width=tuple((int(before), int(after)) for before, after in pad))


def flatten(x, start_dim=0, end_dim=-1):
    """x with axes start_dim..end_dim merged into one, as torch.flatten: flatten(x, 1) takes (N, C, H, W) to
    (N, C*H*W) (what nn.Flatten does), flatten(x) to (N*C*H*W,)."""
    x = as_tensor(x)
    start, end = normalize_axis(start_dim, x.ndim), normalize_axis(end_dim, x.ndim) + 1
    return reshape(x, x.shape[:start] + (math.prod(x.shape[start:end]),) + x.shape[end:])


# ---- linear algebra -----------------------------------------------------------------------
def matmul(a, b):
    """a @ b with NumPy's rules: batched over leading axes; a 1-D operand is a vector."""
    a, b = as_tensors(a, b)
    out = MatMul.apply(a.reshape(1, -1) if a.ndim == 1 else a, b.reshape(-1, 1) if b.ndim == 1 else b)
    if a.ndim == 1 or b.ndim == 1:
        shape = out.shape[:-2] + out.shape[-2:][a.ndim == 1:2 - (b.ndim == 1)]
        out = reshape(out, shape)
    return out


def linear(x, weight, bias=None):
    """x @ weight^T + bias with x: (..., in), weight: (out, in), bias: (out,) -> (..., out), as PyTorch's.

    One op (ops.linear.Linear) on a batch x: (N, in); x of another shape is reshaped to one and back.
    """
    x, weight, bias = as_tensors(x, weight, bias)
    if weight.ndim != 2 or x.shape[-1:] != weight.shape[1:] or (bias is not None and bias.shape != weight.shape[:1]):
        raise ValueError(f"linear expects x (..., in), weight (out, in) and bias (out,), got x {x.shape}, "
                         f"weight {weight.shape}" + ("" if bias is None else f", bias {bias.shape}"))
    if x.ndim != 2:
        return reshape(linear(reshape(x, (-1, x.shape[-1])), weight, bias), x.shape[:-1] + weight.shape[:1])
    return Linear.apply(x, weight) if bias is None else Linear.apply(x, weight, bias)


# ---- softmax and losses -------------------------------------------------------------------
@torch_names
def log_softmax(x, axis=-1):
    """log(softmax(x)) along axis, computed stably (log-sum-exp)."""
    return LogSoftmax.apply(x, axis=axis)


@torch_names
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


def constant_array(value, dtype=None):
    """The values of a constant argument (a Tensor's data, an array, a number: targets, class weights) as an array
    of dtype (None: their own); inside a vmap, one example's (a BatchedArray) when they differ per example."""
    value = values(value) if isinstance(value, Tensor) else value
    if isinstance(value, BatchedArray):
        return value if dtype is None else value.astype(dtype)
    return np.asarray(value, dtype=dtype)


def negative_log_likelihood(log_probs, target, weight, ignore_index):
    """The pieces of nll_loss for log_probs (N, C) and class indices target (N,):

    loss (N,) = -weight[t] log_probs[i, t] (0 where t is ignore_index), sample_weight (N,) = weight[t]
    (0 where ignored), class_weight (C,) = weight or ones, kept (N,) = the float mask of samples not ignored.
    """
    n, classes = log_probs.shape
    is_kept = target != ignore_index
    check_class_indices(every_example(np.where(is_kept, target, 0)), classes,
                        or_else=f" or be ignore_index={ignore_index}")
    class_weight = np.ones(classes, log_probs.dtype) if weight is None else constant_array(weight, log_probs.dtype)
    if class_weight.shape != (classes,):
        raise ValueError(f"expected weight of shape ({classes},), got {class_weight.shape}")
    target, kept = np.where(is_kept, target, 0), is_kept.astype(log_probs.dtype)
    sample_weight = looked_up(class_weight, target) * kept
    return -log_probs[np.arange(n), target] * sample_weight, sample_weight, class_weight, kept


def weighted_reduction(loss, sample_weight, reduction):
    """reduce_loss, except that 'mean' divides by the total weight of the samples (PyTorch's rule)."""
    return sum(loss) / sample_weight.sum() if reduction == "mean" else reduce_loss(loss, reduction)


def nll_loss(log_probs, target, *, weight=None, ignore_index=-100, reduction="mean"):
    """-weight[t] * log_probs[i, t] for each sample i with class index t = target[i].

    log_probs: (N, C), target: integers (N,), weight: (C,). Samples whose target is ignore_index
    count 0; 'mean' divides by the total weight of the other samples.
    """
    loss, sample_weight, _, _ = negative_log_likelihood(as_tensor(log_probs), constant_array(target), weight,
                                                        ignore_index)
    return weighted_reduction(loss, sample_weight, reduction)


def cross_entropy(logits, target, *, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0):
    """Negative log-likelihood of the targets under softmax(logits), with PyTorch's options.

    logits: (N, C). target: integer class indices (N,), or one-hot / probabilities (N, C).
    weight (C,): a weight per class; ignore_index: a class index whose samples count 0;
    label_smoothing eps: the target becomes (1 - eps) target + eps / C. Without them, the
    gradient with respect to the logits is (softmax(logits) - one_hot(target)) / N for 'mean', and
    for integer targets reduced by 'mean' or 'sum' the loss is that one op (ops.loss.CrossEntropy).
    """
    logits = as_tensor(logits)
    target = constant_array(target)
    if logits.ndim != 2:
        raise ValueError(f"expected logits of shape (N, C), got {logits.shape}")
    n, classes = logits.shape
    if target.shape == (n,) and np.issubdtype(target.dtype, np.integer):
        plain = weight is None and not label_smoothing and reduction in ("mean", "sum")
        if plain and ignore_index not in target:  # the common case, one op with the same arithmetic
            return CrossEntropy.apply(logits, target=target, reduction=reduction)
        log_probs = log_softmax(logits, axis=1)
        loss, sample_weight, class_weight, kept = negative_log_likelihood(log_probs, target, weight, ignore_index)
        if label_smoothing:  # PyTorch's rule: the smoothed part is weighted and reduced like the rest
            smoothed = -sum(log_probs * class_weight, axis=1) * kept
            loss = loss * (1 - label_smoothing) + smoothed * (label_smoothing / classes)
        return weighted_reduction(loss, sample_weight, reduction)
    if target.shape == (n, classes):
        log_probs = log_softmax(logits, axis=1)
        probabilities = target.astype(logits.dtype) * (1 - label_smoothing) + label_smoothing / classes
        if weight is not None:
            probabilities = probabilities * constant_array(weight, logits.dtype)
        return reduce_loss(-sum(log_probs * probabilities, axis=1), reduction)
    raise ValueError(f"expected integer targets of shape ({n},) or one-hot targets of shape ({n}, {classes}), "
                     f"got {target.dtype} {target.shape}")


def binary_cross_entropy_with_logits(logits, target, reduction="mean"):
    """Binary cross-entropy of targets in [0, 1] under sigmoid(logits), finite for any logits."""
    logits = as_tensor(logits)
    target = constant_array(target, logits.dtype)
    if target.shape != logits.shape:
        raise ValueError(f"target shape {target.shape} differs from logits shape {logits.shape}")
    return reduce_loss(BinaryCrossEntropyWithLogits.apply(logits, target), reduction)


def binary_cross_entropy(probabilities, target, weight=None, reduction="mean"):
    """-weight * (y log p + (1 - y) log(1 - p)) for probabilities p, each log at least -100 as in PyTorch.

    binary_cross_entropy_with_logits is exact for any logits: prefer it after a sigmoid.
    """
    probabilities, target = as_tensors(probabilities, target)
    floor = math.exp(-100)
    loss = -(target * log(clamp(probabilities, min=floor)) + (1 - target) * log(clamp(1 - probabilities, min=floor)))
    return reduce_loss(loss if weight is None else loss * weight, reduction)


def mse_loss(prediction, target, reduction="mean"):
    """Squared error (prediction - target)**2, averaged (or summed) over all elements."""
    return reduce_loss(sub(prediction, target) ** 2, reduction)


def l1_loss(prediction, target, reduction="mean"):
    """Absolute error |prediction - target|, averaged (or summed) over all elements."""
    return reduce_loss(abs(sub(prediction, target)), reduction)


def one_hot(labels, num_classes=-1):
    """labels (...) integers in [0, num_classes) -> (..., num_classes) int64 NumPy array of 0s and 1s.

    num_classes=-1: one more than the largest label. (A NumPy array, not a Tensor: Tensors hold floats.)
    """
    values = np.asarray(values_of(labels))
    labels = values.astype(np.int64)
    if not np.array_equal(labels, values):
        raise ValueError(f"labels must be whole numbers, got {values[labels != values][0]}")
    num_classes = int(labels.max()) + 1 if num_classes == -1 else num_classes
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"labels must lie in [0, {num_classes}), got [{labels.min()}, {labels.max()}]")
    return np.eye(num_classes, dtype=np.int64)[labels]


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
    if isinstance(x, BatchedTensor):
        raise NotImplementedError("dropout inside vmap would draw one mask for every example: switch dropout off "
                                  "(model.eval(), training=False) in the vmapped function")
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


def conv2d(x, weight, bias=None, stride=1, padding=0, *, groups=1, dilation=1):
    """2-D convolution: x (N, C, H, W), weight (O, C/groups, kh, kw), bias (O,) -> (N, O, Ho, Wo).

    stride, dilation: an int or an (h, w) pair, >= 1. padding: int, (ph, pw), ((top, bottom),
    (left, right)), 'valid' or 'same' (TensorFlow's rule: Ho = ceil(H / stride), the odd extra
    pixel at the bottom/right). groups and dilation are keyword-only: PyTorch's positional
    order differs (dilation before groups).
    """
    x, weight, bias = as_tensors(x, weight, bias)
    check_images(x)
    if weight.ndim != 4:
        raise ValueError(f"expected weight of shape (O, C/groups, kh, kw), got {weight.shape}")
    groups = checked_int(groups, "groups")
    if x.shape[1] != weight.shape[1] * groups or weight.shape[0] % groups:
        raise ValueError(f"input has {x.shape[1]} channels, weight {weight.shape} with groups={groups} expects "
                         f"{weight.shape[1] * groups} (and output channels divisible by groups)")
    _, stride, pads, dilation, _ = sliding_window(x.shape[2:], weight.shape[2:], stride, padding, dilation,
                                                  "weight's kernel size")
    out = Conv2d.apply(x, weight, stride=stride, pads=pads, dilation=dilation, groups=groups)
    return out if bias is None else out + reshape(bias, (1, -1, 1, 1))


def pooling_settings(x, kernel_size, stride, padding):
    """(kernel, stride, pads) for pooling x, checked; stride defaults to the kernel size."""
    kernel, stride, pads, _, _ = sliding_window(x.shape[2:], kernel_size, kernel_size if stride is None else stride,
                                                padding, 1)
    if any(before >= k or after >= k for (before, after), k in zip(pads, kernel)):  # every window holds a pixel
        raise ValueError(f"padding {pads} must be smaller than the pooling window {kernel}")
    return kernel, stride, pads


def max_pool2d(x, kernel_size, stride=None, padding=0):
    """Max over kh x kw windows: x (N, C, H, W) -> (N, C, Ho, Wo); padding as in conv2d."""
    x = check_images(x)
    kernel, stride, pads = pooling_settings(x, kernel_size, stride, padding)
    return MaxPool2d.apply(x, kernel=kernel, stride=stride, pads=pads)


def avg_pool2d(x, kernel_size, stride=None, padding=0, count_include_pad=True):
    """Mean over kh x kw windows: (N, C, H, W) -> (N, C, Ho, Wo); padding as in conv2d.

    As in PyTorch, the zeros of a numeric padding count in the mean (count_include_pad=True): the
    mean is the pool of the zero-padded image. With count_include_pad=False, and with padding='same'
    (TensorFlow's rule, whose pools count only real pixels), each window's mean is over its real pixels.
    """
    x = check_images(x)
    kernel, stride, pads = pooling_settings(x, kernel_size, stride, padding)
    if count_include_pad and not isinstance(padding, str) and any(map(any, pads)):
        x, pads = Pad.apply(x, pad_width=((0, 0), (0, 0)) + pads), ((0, 0), (0, 0))
    return AvgPool2d.apply(x, kernel=kernel, stride=stride, pads=pads)


def global_avg_pool2d(x):
    """Mean over H and W: (N, C, H, W) -> (N, C)."""
    return mean(check_images(x), axis=(2, 3))


LRN_ARGUMENTS = ("tinynet's local response norm is TensorFlow's and takes its settings as keywords: depth_radius=, "
                 "bias=, alpha=, beta=. PyTorch's local_response_norm(x, size, alpha, beta, k) is the same as "
                 "depth_radius=(size - 1) // 2 for an odd size, bias=k, alpha=alpha / size (PyTorch averages the "
                 "squares over the window, TensorFlow sums them)")


def local_response_norm(x, *positional, depth_radius=2, bias=1.0, alpha=2e-5, beta=0.75, **other):
    """TensorFlow's LRN: x / (bias + alpha * sum of x^2 over channels c-r..c+r) ** beta.

    The settings are keywords only: a PyTorch-style call (size, alpha, beta, k) would mean other
    numbers here, so it raises a TypeError that says how to translate it (LRN_ARGUMENTS).
    """
    if positional or other:
        raise TypeError(LRN_ARGUMENTS)
    return LocalResponseNorm.apply(check_images(x), depth_radius=checked_int(depth_radius, "depth_radius", minimum=0),
                                   bias=bias, alpha=alpha, beta=beta)


def layer_norm(x, normalized_shape, weight=None, bias=None, eps=1e-5):
    """(x - mean) / sqrt(var + eps) over the last axes (those of normalized_shape), then * weight + bias.

    The variance is the biased one (divided by n), as in PyTorch.
    """
    x = as_tensor(x)
    normalized_shape = (normalized_shape,) if is_int(normalized_shape) else tuple(normalized_shape)
    if x.shape[x.ndim - len(normalized_shape):] != normalized_shape:
        raise ValueError(f"expected input whose last axes are {normalized_shape}, got {x.shape}")
    axes = tuple(range(x.ndim - len(normalized_shape), x.ndim))
    return affine(standardize(x, axes, eps), weight, bias)


def batch_norm(x, running_mean=None, running_var=None, weight=None, bias=None, training=False, momentum=0.1,
               eps=1e-5):
    """x (N, C, ...) standardized per channel C, then * weight (C,) + bias (C,), as in PyTorch.

    training: with the batch's mean and biased variance, and running_mean, running_var (C,) arrays
    (if given) updated in place by momentum (running_var with the unbiased variance). Otherwise
    with running_mean and running_var.
    """
    x = as_tensor(x)
    axes = (0,) + tuple(range(2, x.ndim))
    channel_shape = (1, -1) + (1,) * (x.ndim - 2)
    if training:
        for running, batch in [(running_mean, x._data.mean(axis=axes)), (running_var, x._data.var(axis=axes, ddof=1))]:
            if running is not None:
                running = values_of(running)
                running += momentum * (batch - running)
        out = standardize(x, axes, eps)
    else:
        centre, spread = (constant_array(stat, x.dtype).reshape(channel_shape) for stat in (running_mean, running_var))
        out = (x - centre) / np.sqrt(spread + eps)
    return affine(out, None if weight is None else reshape(weight, channel_shape),
                  None if bias is None else reshape(bias, channel_shape))


def standardize(x, axes, eps):
    """(x - mean) / sqrt(biased variance + eps) over axes."""
    centered = x - mean(x, axes, keepdims=True)
    return centered / sqrt(mean(centered * centered, axes, keepdims=True) + eps)


def affine(x, weight, bias):
    """x * weight + bias, either left out when None."""
    x = x if weight is None else x * weight
    return x if bias is None else x + bias


# ---- second derivatives (torch.autograd.functional's names) --------------------------------
def hvp(f, x, v):
    """(f(x), H v): H the Hessian of the scalar f at x, times v (x's shape), by double backward.

    As torch.autograd.functional.hvp: the gradient g(x) is taken with create_graph=True, then H v is
    the gradient of <g(x), v>. Costs about two backward passes; H itself is never formed.
    """
    x = Tensor(values_of(x), requires_grad=True)
    with enable_grad():
        value = f(x)
        (gradient,) = grad(value, x, create_graph=True)
        return value.detach(), second_derivative(gradient, x, constant_array(v, x.dtype))


def hessian(f, x):
    """The Hessian of the scalar f at x: shape x.shape + x.shape (as torch.autograd.functional.hessian).

    One backward pass per element of x through the graph of f's gradient: for few-parameter functions.
    """
    x = Tensor(values_of(x), requires_grad=True)
    with enable_grad():
        (gradient,) = grad(f(x), x, create_graph=True)
        rows = [second_derivative(gradient, x, unit.reshape(x.shape))._data for unit in np.eye(x.size, dtype=x.dtype)]
    return Tensor(np.stack(rows).reshape(x.shape + x.shape))


def second_derivative(gradient, x, v):
    """d <gradient, v> / d x as a constant Tensor; zeros where the gradient does not depend on x (f linear)."""
    if gradient.requires_grad:
        (result,) = grad(gradient, x, grad_outputs=v, allow_unused=True)
        if result is not None:
            return result.detach()
    return Tensor(np.zeros(x.shape, dtype=x.dtype))
