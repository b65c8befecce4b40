"""Ops that move values without changing them: reshape, transpose, index, concatenate, pad."""
import numpy as np

from ..function import Function


class Reshape(Function):
    """x viewed with a new shape of the same size."""

    @staticmethod
    def forward(ctx, x, shape):
        ctx.shape = x.shape
        return x.reshape(shape)

    @staticmethod
    def backward(ctx, grad_out):
        return (grad_out.reshape(ctx.shape),)


def normalize_axis(axis: int, ndim: int) -> int:
    """axis (negatives count from the end) as a non-negative int; a clear error when out of range."""
    if not -ndim <= axis < ndim:
        raise ValueError(f"axis {axis} is out of range for a tensor with {ndim} dimensions")
    return axis % ndim


class Transpose(Function):
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

    @staticmethod
    def backward(ctx, grad_out):
        return (np.transpose(grad_out, ctx.inverse),)


class GetItem(Function):
    """x[index] for any NumPy index (slices, integers, integer or boolean arrays).

    Backward scatters with np.add.at, so an element picked twice gets both gradients.
    """

    @staticmethod
    def forward(ctx, x, index):
        ctx.shape, ctx.index = x.shape, index
        return np.array(x[index])

    @staticmethod
    def backward(ctx, grad_out):
        grad = np.zeros(ctx.shape, dtype=grad_out.dtype)
        np.add.at(grad, ctx.index, grad_out)
        return (grad,)


class Concatenate(Function):
    """Join arrays along an existing axis; backward splits the gradient at the seams."""

    @staticmethod
    def forward(ctx, *arrays, axis=0):
        ctx.axis = axis
        ctx.seams = np.cumsum([a.shape[axis] for a in arrays])[:-1]
        return np.concatenate(arrays, axis=axis)

    @staticmethod
    def backward(ctx, grad_out):
        return tuple(np.split(grad_out, ctx.seams, axis=ctx.axis))


class Pad(Function):
    """x zero-padded: pad_width is ((before, after),) per axis, as np.pad takes it."""

    @staticmethod
    def forward(ctx, x, pad_width):
        ctx.inside = tuple(slice(before, before + size) for (before, _), size in zip(pad_width, x.shape))
        return np.pad(x, pad_width)

    @staticmethod
    def backward(ctx, grad_out):
        return (np.asarray(grad_out[ctx.inside], order="C"),)
