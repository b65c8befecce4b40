"""vmap's machinery: a function written for one example, run on a whole batch at once.

Inside tinynet.func.vmap(f), each batched argument is a BatchedTensor: it looks like the Tensor of ONE
example (its shape is the example's), but holds the values of all B examples, stacked along axis 0 of a
plain Tensor, its `physical` tensor. When an op meets a BatchedTensor, Function.apply hands it to the
op's batch rule (below), which computes all B results at once with ordinary ops on the physical tensors,
moving or folding the batch axis as the op needs:

    elementwise ops, matmul   align the ranks (the batch axis first), and broadcasting does the rest
    reductions, softmax       the same op, its axes shifted by one
    reshape, transpose, ...   the same op, the batch axis kept in front
    linear layer              the batch folded into the rows: one matrix product for all examples
    conv2d, pools, LRN        the batch folded into the images' axis N
    a weight per example      conv2d: one grouped convolution, a group per example; linear: batched matmul

The ordinary ops record the ordinary graph, so reverse and forward mode need nothing new inside a vmap:
every VJP and JVP is the op's own. Per-example gradients, vmap(grad(loss)), come from that: grad inside a
vmap differentiates with respect to one copy of each input per example (an unbatched weight broadcast
without copying memory), so one backward pass of the batched graph leaves example b's gradient in copy b.

An op without a batch rule raises, naming it. Class labels (integer arrays) ride along as BatchedArray,
which indexing and cross_entropy accept.
"""
import contextlib
import math

import numpy as np

from . import function
from .function import Elementwise
from .ops.conv import Conv2d
from .ops.elementwise import Add, Cast, Mul
from .ops.linear import Linear, MatMul
from .ops.loss import CrossEntropy, LogSoftmax, check_class_indices
from .ops.norm import LocalResponseNorm
from .ops.pool import AvgPool2d, MaxPool2d
from .ops.reduce import Max, Sum, normalize_axes
from .ops.shape import Concatenate, Expand, GetItem, Pad, Reshape, Transpose, normalize_axis
from .tensor import Tensor, as_tensors

INSIDE_VMAP = ("inside vmap a tensor holds one value per example, so it has no single array: {what}. Compute with "
               "tinynet's ops or elementwise NumPy functions of x.data (they are batched), and read the values "
               "after vmap returns")


class OneExample:
    """What a batched value shows inside a vmap: one example's shape; `physical` holds all B examples, (B, *shape)."""

    physical = None

    @property
    def shape(self):
        return self.physical.shape[1:]

    @property
    def ndim(self):
        return self.physical.ndim - 1

    @property
    def dtype(self):
        return self.physical.dtype


class BatchedTensor(OneExample, Tensor):
    """One example's Tensor inside a vmap: shape, ndim and size are the example's; `physical`, a plain Tensor, holds
    all B examples' values along its axis 0. It is not itself in the graph: its physical tensor is."""

    node = grad = None

    def __init__(self, physical: Tensor, vmap):
        self.physical, self.vmap = physical, vmap

    @property
    def _data(self):
        raise RuntimeError(INSIDE_VMAP.format(what="its values were read as one array (.item(), or a function that "
                                                   "reads them)"))

    @property
    def data(self):
        """Every example's values as one example's array (a BatchedArray): for masks and constants made from them."""
        return BatchedArray(self.physical._data)

    @property
    def size(self):
        return math.prod(self.shape)

    @property
    def requires_grad(self):
        return self.physical.requires_grad

    def __len__(self):
        return self.shape[0]

    def __repr__(self):
        return f"BatchedTensor(one example of shape {self.shape}, batch of {self.physical.shape[0]})"

    def backward(self, *args, **kwargs):
        raise RuntimeError("backward() inside vmap: use tinynet.func.grad (or vjp) on the function of one example, "
                           "e.g. func.vmap(func.grad(loss))")


class BatchedArray(OneExample, np.lib.mixins.NDArrayOperatorsMixin):
    """One example's array inside a vmap: class labels, or a mask or constant computed from a batched tensor's
    values (`x.data`); `physical`, an array, holds all B examples', (B, *shape). Arithmetic, comparisons and NumPy's
    elementwise functions work example by example and give BatchedArrays (so F.clamp's and F.where's masks do);
    making one array of it raises."""

    def __init__(self, physical):
        self.physical = np.asarray(physical)

    def __getitem__(self, index):
        return BatchedArray(self.physical[(slice(None), *as_tuple(index))])

    def astype(self, dtype):
        return BatchedArray(self.physical.astype(dtype))

    def sum(self):
        """Each example's sum."""
        return BatchedArray(self.physical.reshape(len(self.physical), -1).sum(axis=1))

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        if method != "__call__" or "out" in kwargs:
            return NotImplemented
        ndim = max(map(np.ndim, inputs))
        result = ufunc(*(aligned(x, ndim) for x in inputs), **kwargs)
        return tuple(map(BatchedArray, result)) if isinstance(result, tuple) else BatchedArray(result)

    def __array_function__(self, function, types, args, kwargs):
        if function in (np.ndim, np.shape):
            return getattr(args[0], function.__name__)
        if function is np.clip:  # as clip does it, with elementwise functions (NaN stays NaN)
            x, low, high = (*args, None, None)[:3]
            return np.minimum(np.maximum(x, kwargs.get("a_min", low)), kwargs.get("a_max", high))
        if function in (np.argmax, np.argmin):
            (x, *rest), axis = args, kwargs.pop("axis", None)
            rows = x.physical.reshape(len(x.physical), -1) if axis is None else x.physical
            return BatchedArray(function(rows, *rest, axis=1 if axis is None else normalize_axis(axis, x.ndim) + 1,
                                         **kwargs))
        if function in (np.any, np.all) and not kwargs and len(args) == 1:
            return function(args[0].physical)  # over every example
        if function is np.where and len(args) == 3:
            ndim = max(map(np.ndim, args))
            return BatchedArray(np.where(*(aligned(x, ndim) for x in args)))
        if function is np.sum and not kwargs:
            return self.sum()
        raise RuntimeError(INSIDE_VMAP.format(what=f"np.{function.__name__} was called on a tensor's values"))

    def __array__(self, *args, **kwargs):
        raise RuntimeError(INSIDE_VMAP.format(what="its values were converted to one array"))


# ---- entering and leaving a vmap ----------------------------------------------------------------
class Vmap:
    """The running vmap: its batch size; Function.apply asks it which ops take batched inputs."""

    def __init__(self, batch_size):
        self.batch_size = batch_size

    def takes(self, inputs, params) -> bool:
        """Whether an op on these inputs and settings must be batched: one of them belongs to this vmap."""
        return any(isinstance(x, OneExample) for x in inputs) or any(
            isinstance(p, OneExample) or isinstance(p, tuple) and any(isinstance(i, OneExample) for i in p)
            for p in params.values())

    def apply(self, op, inputs, params) -> BatchedTensor:
        """op on one example's inputs (Tensors, arrays, numbers; batched ones), run for the whole batch by op's batch
        rule. A BatchedArray input becomes a batched constant tensor, of the tensors' dtype."""
        dtype = np.result_type(*(x.dtype for x in inputs if isinstance(x, Tensor))) if any(
            isinstance(x, Tensor) for x in inputs) else None
        tensors = as_tensors(*(self.batched(Tensor(x.physical, dtype=dtype)) if isinstance(x, BatchedArray) else x
                               for x in inputs))
        for t in tensors:
            if isinstance(t, BatchedTensor) and t.vmap is not self:
                raise RuntimeError(f"{op.__name__} got a tensor of another vmap (one kept after its vmap ended): "
                                   "pass the values in as arguments of the vmapped function")
        rule = BATCH_RULES.get(op) or (broadcasting if issubclass(op, Elementwise) else None)
        if rule is None:
            raise NotImplementedError(f"vmap: {op.__name__} has no batch rule: tinynet.batching batches the course's "
                                      f"ops ({', '.join(sorted(op.__name__ for op in BATCH_RULES))} and every "
                                      "elementwise op); call it outside vmap, or loop over the examples")
        return self.batched(rule(op, self, tensors, **params))

    def batched(self, physical: Tensor) -> BatchedTensor:
        """physical (B, *shape) as one example's tensor of shape `shape`."""
        return BatchedTensor(physical, self)

    def argument(self, value, dim):
        """An argument of the vmapped function with its examples along axis dim, as one example's: a batched
        tensor (Tensors and float arrays; the axis moved first by an op, so the graph goes on to a Tensor) or
        batched labels (integer arrays)."""
        if isinstance(value, np.ndarray) and np.issubdtype(value.dtype, np.integer):
            return BatchedArray(np.moveaxis(value, dim, 0))
        x = value if isinstance(value, Tensor) else Tensor(value)
        dim %= x.ndim
        if dim:
            x = Transpose.apply(x, axes=(dim, *(a for a in range(x.ndim) if a != dim)))
        return self.batched(x)

    def result(self, value, axis):
        """An output of the vmapped function, its examples along `axis`: a batched tensor's physical tensor (the
        batch axis moved there), or an unbatched Tensor repeated for each example."""
        if isinstance(value, BatchedArray):
            return np.moveaxis(value.physical, 0, axis)
        if not isinstance(value, Tensor):
            raise TypeError(f"a vmapped function returns Tensors (or tuples, lists, dicts of them), got "
                            f"{type(value).__name__}")
        x = self.per_example(value)
        axis %= x.ndim
        if not axis:
            return x
        return Transpose.apply(x, axes=(*range(1, axis + 1), 0, *range(axis + 1, x.ndim)))

    def per_example(self, x: Tensor) -> Tensor:
        """x's values for every example, (B, *x.shape): a batched tensor's physical tensor, or x broadcast."""
        if isinstance(x, BatchedTensor):
            return x.physical
        return Expand.apply(Reshape.apply(x, shape=(1, *x.shape)), shape=(self.batch_size, *x.shape))


@contextlib.contextmanager
def running(batch_size):
    """A block inside which ops batch over batch_size examples (func.vmap opens one); yields the Vmap."""
    if function._vmap is not None:
        raise RuntimeError("nested vmap is not supported: vmap inside vmap would need a batch axis per level; "
                           "flatten the two batch axes into one instead")
    function._vmap = Vmap(batch_size)
    try:
        yield function._vmap
    finally:
        function._vmap = None


def shared_copies(x: Tensor, batch_size) -> Tensor:
    """A leaf requiring grad that holds x once per example, (B, *x.shape), without copying x's memory (a view with
    stride 0 along the batch axis): the gradient of example b's loss with respect to it lands in copy b."""
    copies = Tensor.__new__(Tensor)
    copies._data = np.broadcast_to(x._data, (batch_size, *x.shape))
    copies.requires_grad, copies.grad, copies.node = True, None, None
    return copies


def looked_up(table, indices):
    """table[indices] for an array table every example shares: inside a vmap, with indices per example (a
    BatchedArray), each example's."""
    return BatchedArray(table[indices.physical]) if isinstance(indices, BatchedArray) else table[indices]


def every_example(x):
    """Inside a vmap, a batched value's values for every example, (B, *x.shape): a BatchedTensor's physical Tensor,
    a BatchedArray's physical array; anything else as it is."""
    return x.physical if isinstance(x, OneExample) else x


def values(x):
    """x's values, to compute a mask or a constant from: its array, or inside a vmap every example's (x.data, a
    BatchedArray)."""
    return x.data if isinstance(x, BatchedTensor) else x._data


def current():
    """The running Vmap, or None."""
    return function._vmap


def as_tuple(index):
    """An index as a tuple of its parts."""
    return index if isinstance(index, tuple) else (index,)


# ---- batch rules: each runs op for all B examples with ordinary ops on the physical tensors ----------------
def aligned(x, ndim):
    """A batched x's physical tensor (or array) with the example's shape padded with leading 1s to ndim axes, after
    the batch axis, so that it broadcasts against the others example by example; an unbatched x as it is (its axes
    align from the right, as in NumPy)."""
    if not isinstance(x, OneExample):
        return x
    shape = (len(x.physical), *(1,) * (ndim - x.ndim), *x.shape)
    if isinstance(x, BatchedArray):
        return x.physical.reshape(shape)
    return x.physical if x.ndim == ndim else Reshape.apply(x.physical, shape=shape)


def broadcasting(op, vmap, inputs, **params):
    """Ops that broadcast (elementwise, matmul's leading axes): align the examples' ranks, then op as it is (a
    condition of where computed from batched values aligned too)."""
    ndim = max(np.ndim(x) for x in (*inputs, params.get("condition", 0)) if x is not None)
    return op.apply(*(aligned(x, ndim) for x in inputs),
                    **{key: aligned(value, ndim) for key, value in params.items()})


def matrix_product(op, vmap, inputs):
    """a @ b: with an unbatched matrix b, the examples' rows stacked into one product; else as it broadcasts."""
    a, b = inputs
    if not isinstance(b, BatchedTensor) and b.ndim == 2:
        rows = Reshape.apply(a.physical, shape=(-1, a.shape[-1]))
        return Reshape.apply(op.apply(rows, b), shape=(len(a.physical), *a.shape[:-1], b.shape[-1]))
    return broadcasting(op, vmap, inputs)


def linear(op, vmap, inputs):
    """x @ weight^T + bias: one matrix product for the batch's rows when the weight is shared; with a weight per
    example (vmap of grad), the batched matmul of each example's rows with its own weight."""
    x, weight, bias = (*inputs, None)[:3]
    if not isinstance(weight, BatchedTensor) and not isinstance(bias, BatchedTensor):
        rows = Reshape.apply(vmap.per_example(x), shape=(-1, x.shape[-1]))
        out = op.apply(rows, weight) if bias is None else op.apply(rows, weight, bias)
        return Reshape.apply(out, shape=(vmap.batch_size, *x.shape[:-1], weight.shape[0]))
    # out^T = weight @ x^T, example by example: the weight's gradient, grad_out^T @ x, then comes out in the
    # weight's own layout (B, out, in), where x @ weight^T would give it transposed
    columns = Transpose.apply(Reshape.apply(vmap.per_example(x), shape=(vmap.batch_size, -1, x.shape[-1])),
                              axes=(0, 2, 1))
    out = Transpose.apply(MatMul.apply(vmap.per_example(weight), columns), axes=(0, 2, 1))
    if bias is not None:
        out = Add.apply(out, Reshape.apply(vmap.per_example(bias), shape=(vmap.batch_size, 1, bias.shape[0])))
    return Reshape.apply(out, shape=(vmap.batch_size, *x.shape[:-1], weight.shape[0]))


def shifted_axes(axis, ndim):
    """An example's axis (int, tuple or None: all) as the physical tensor's: one more, past the batch axis."""
    return tuple(a + 1 for a in normalize_axes(axis, ndim))


def reduction(op, vmap, inputs, axis=None, keepdims=False):
    """sum, max: over the same axes of each example."""
    (x,) = inputs
    return op.apply(vmap.per_example(x), axis=shifted_axes(axis, x.ndim), keepdims=keepdims)


def along_axis(op, vmap, inputs, axis=-1):
    """log_softmax: along the same axis of each example."""
    (x,) = inputs
    return op.apply(vmap.per_example(x), axis=normalize_axis(axis, x.ndim) + 1)


def reshape(op, vmap, inputs, shape):
    (x,) = inputs
    return op.apply(vmap.per_example(x), shape=(vmap.batch_size, *shape))


def transpose(op, vmap, inputs, axes=None):
    (x,) = inputs
    axes = reversed(range(x.ndim)) if axes is None else (normalize_axis(a, x.ndim) for a in axes)
    return op.apply(vmap.per_example(x), axes=(0, *(a + 1 for a in axes)))


def expand(op, vmap, inputs, shape):
    (x,) = inputs
    return op.apply(aligned(x, len(shape)) if isinstance(x, BatchedTensor) else vmap.per_example(x),
                    shape=(vmap.batch_size, *shape))


def pad(op, vmap, inputs, pad_width):
    (x,) = inputs
    return op.apply(vmap.per_example(x), pad_width=((0, 0), *pad_width))


def concatenate(op, vmap, inputs, axis=0):
    return op.apply(*map(vmap.per_example, inputs), axis=normalize_axis(axis, inputs[0].ndim) + 1)


def get_item(op, vmap, inputs, index):
    """x[index] for each example. Batched labels in the index pick per example: they, and the example's number,
    become integer arrays of the physical index (NumPy then puts the picked axes first, so such an index must pick
    before any slice)."""
    (x,) = inputs
    index = as_tuple(index)
    if not any(isinstance(i, BatchedArray) for i in index):
        return op.apply(vmap.per_example(x), index=(slice(None), *index))
    picks = [k for k, i in enumerate(index) if not isinstance(i, (slice, type(None), type(Ellipsis)))]
    if picks != list(range(len(picks))):
        raise NotImplementedError(f"vmap: indexing with per-example labels must pick before any slice, ellipsis or "
                                  f"None (x[labels] or x[0, labels]), got the index {index}")
    ndim = max(np.ndim(i.physical) - 1 if isinstance(i, BatchedArray) else np.ndim(i) for i in index[:len(picks)])
    examples = np.arange(vmap.batch_size).reshape(-1, *(1,) * ndim)
    physical = tuple(i.physical.reshape(len(i.physical), *(1,) * (ndim - i.ndim), *i.shape)
                     if isinstance(i, BatchedArray) else i for i in index)
    return op.apply(vmap.per_example(x), index=(examples, *physical))


def images(op, vmap, inputs, **params):
    """Ops on NCHW images (pools, LRN; conv2d with a shared weight): the examples' images (N, C, H, W) folded into
    one batch of B*N images."""
    x, *weight = inputs
    out = op.apply(Reshape.apply(vmap.per_example(x), shape=(-1, *x.shape[1:])), *weight, **params)
    return Reshape.apply(out, shape=(vmap.batch_size, *x.shape[:1], *out.shape[1:]))


def conv2d(op, vmap, inputs, stride, pads, dilation, groups):
    """The examples' images folded into N when the weight is shared. With a weight per example: one convolution
    whose groups are the examples' (groups * B of them): the images' channels side by side, (N, B*C, H, W), each
    example's weight on its own channels, so that its gradient is that example's."""
    x, weight = inputs
    settings = dict(stride=stride, pads=pads, dilation=dilation)
    if not isinstance(weight, BatchedTensor):
        return images(op, vmap, inputs, groups=groups, **settings)
    batch, (n, channels, height, width) = vmap.batch_size, x.shape
    side_by_side = Reshape.apply(Transpose.apply(vmap.per_example(x), axes=(1, 0, 2, 3, 4)),
                                 shape=(n, batch * channels, height, width))
    weights = Reshape.apply(weight.physical, shape=(-1, *weight.shape[1:]))
    out = op.apply(side_by_side, weights, groups=groups * batch, **settings)
    out = Reshape.apply(out, shape=(n, batch, weight.shape[0], *out.shape[2:]))
    return Transpose.apply(out, axes=(1, 0, 2, 3, 4))


def cross_entropy(op, vmap, inputs, target, reduction="mean"):
    """Each example's loss: its log-softmax picked at its labels, summed, divided by its N for 'mean'."""
    (logits,) = inputs
    n, classes = logits.shape
    labels = target.physical if isinstance(target, BatchedArray) else np.broadcast_to(target, (vmap.batch_size, n))
    check_class_indices(labels, classes)
    log_probs = LogSoftmax.apply(vmap.per_example(logits), axis=2)
    picked = GetItem.apply(log_probs, index=(np.arange(vmap.batch_size)[:, None], np.arange(n), labels))
    scale = np.asarray(-1 / n if reduction == "mean" else -1, logits.dtype)
    return Mul.apply(Sum.apply(picked, axis=1), scale)


BATCH_RULES = {
    Cast: broadcasting, MatMul: matrix_product, Linear: linear,
    Sum: reduction, Max: reduction, LogSoftmax: along_axis,
    Reshape: reshape, Transpose: transpose, Expand: expand, Pad: pad, Concatenate: concatenate, GetItem: get_item,
    Conv2d: conv2d, MaxPool2d: images, AvgPool2d: images, LocalResponseNorm: images,
    CrossEntropy: cross_entropy,
}
