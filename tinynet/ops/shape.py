"""Ops that move values without changing them: reshape, transpose, index, concatenate, pad, expand.

All are linear: each one's JVP is the op itself applied to the tangents (LinearOp)."""
import numpy as np

from ..function import Function, LinearOp, contiguous, run


class Reshape(LinearOp):
    """x viewed with a new shape of the same size."""

    @staticmethod
    def forward(ctx, x, shape):
        ctx.shape = x.shape
        return x.reshape(shape)

    vjp_formulas = {"x": "g reshaped to x's shape"}

    @staticmethod
    def backward(ctx, grad_out):
        return (grad_out.reshape(ctx.shape),)


def normalize_axis(axis: int, ndim: int) -> int:
    """axis (negatives count from the end) as a non-negative int; a clear error when out of range."""
    if not -ndim <= axis < ndim:
        raise ValueError(f"axis {axis} is out of range for a tensor with {ndim} dimensions")
    return axis % ndim


class Transpose(LinearOp):
    """x with its axes permuted (reversed when axes is None): a view, no copy.

    The gradient goes back through the inverse permutation.
    """

    @staticmethod
    def forward(ctx, x, axes=None):
        permutation = tuple(reversed(range(x.ndim))) if axes is None else tuple(normalize_axis(a, x.ndim) for a in axes)
        if sorted(permutation) != list(range(x.ndim)):
            raise ValueError(f"transpose axes must be a permutation of the {x.ndim} axes, got {axes}")
        ctx.inverse = np.argsort(permutation)
        return np.transpose(x, permutation)

    vjp_formulas = {"x": "g with its axes permuted back"}

    @staticmethod
    def backward(ctx, grad_out):
        return (run(Transpose, grad_out, axes=tuple(ctx.inverse)),)


class GetItem(LinearOp):
    """x[index] for any NumPy index (slices, integers, integer or boolean arrays).

    Backward scatters (ScatterAdd), so an element picked twice gets both gradients.
    """

    @staticmethod
    def forward(ctx, x, index):
        ctx.shape, ctx.index = x.shape, index
        return np.array(x[index])

    vjp_formulas = {"x": "zeros of x's shape, g added at index"}

    @staticmethod
    def backward(ctx, grad_out):
        return (run(ScatterAdd, grad_out, shape=ctx.shape, index=ctx.index),)


class ScatterAdd(LinearOp):
    """zeros(shape) with values added at index (np.add.at: repeated indices add up); GetItem's VJP.

    An index that picks no element twice (slices, integers, a boolean mask) writes the values in one assignment:
    np.add.at, element by element, took 4 of the RPN experiment's 50 s for `outputs[..., :4]` alone.
    Its own VJP is GetItem: each value's gradient is grad_out[index].
    """

    @staticmethod
    def forward(ctx, values, shape, index):
        ctx.index = index
        out = np.zeros(shape, dtype=values.dtype)
        if picks_each_element_once(index):
            out[index] = values
        else:
            np.add.at(out, index, values)
        return out

    vjp_formulas = {"values": "g[index]"}

    @staticmethod
    def backward(ctx, grad_out):
        return (grad_out[ctx.index],)


def picks_each_element_once(index) -> bool:
    """Whether x[index] can name no element of x twice: basic indexing (integers, slices, None, Ellipsis) and at
    most one array index, a boolean mask. An integer array may repeat an element."""
    parts = index if isinstance(index, tuple) else (index,)
    arrays = [part for part in parts if isinstance(part, (np.ndarray, list))]
    return not arrays or (len(arrays) == 1 and np.asarray(arrays[0]).dtype == bool)


class Concatenate(Function):
    """Join arrays along an existing axis; backward slices the gradient at the seams."""

    @staticmethod
    def forward(ctx, *arrays, axis=0):
        axis = normalize_axis(axis, arrays[0].ndim)
        ends = np.cumsum([a.shape[axis] for a in arrays])
        before = (slice(None),) * axis
        ctx.pieces = [before + (slice(end - a.shape[axis], end),) for a, end in zip(arrays, ends)]
        ctx.shapes = [a.shape for a in arrays]
        return np.concatenate(arrays, axis=axis)

    @staticmethod
    def backward(ctx, grad_out):
        return tuple(grad_out[piece] for piece in ctx.pieces)

    @staticmethod
    def jvp(ctx, *tangents):
        """The tangents joined, zeros for the inputs without one."""
        dtype = next(tangent.dtype for tangent in tangents if tangent is not None)
        return run(Concatenate, *(np.zeros(shape, dtype) if tangent is None else tangent
                                  for tangent, shape in zip(tangents, ctx.shapes)), **ctx.params)


class Pad(LinearOp):
    """x zero-padded: pad_width is ((before, after),) per axis, as np.pad takes it."""

    @staticmethod
    def forward(ctx, x, pad_width):
        ctx.inside = tuple(slice(before, before + size) for (before, _), size in zip(pad_width, x.shape))
        return np.pad(x, pad_width)

    vjp_formulas = {"x": "g with the padding cut off"}

    @staticmethod
    def backward(ctx, grad_out):
        return (contiguous(grad_out[ctx.inside]),)


class Expand(LinearOp):
    """x broadcast to shape (a copy); backward returns grad_out whole: the graph core sums it back."""

    @staticmethod
    def forward(ctx, x, shape):
        return np.broadcast_to(x, shape).copy()

    vjp_formulas = {"x": "g summed over the axes it stretched"}

    @staticmethod
    def backward(ctx, grad_out):
        return (grad_out,)
