"""Reductions over axes: sum and max (mean is a sum divided by a count, in functional)."""
import numpy as np

from ..function import Function, LinearOp, run
from .shape import Expand, normalize_axis


def normalize_axes(axis, ndim: int) -> tuple:
    """axis (None, int or tuple, negatives allowed) as a sorted tuple of non-negative ints."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if np.isscalar(axis) else tuple(axis)
    return tuple(sorted(normalize_axis(a, ndim) for a in axes))


def keepdims_shape(shape: tuple, axes: tuple) -> tuple:
    """shape with every reduced axis set to 1 (so the result broadcasts against the input)."""
    return tuple(1 if i in axes else size for i, size in enumerate(shape))


class Sum(LinearOp):
    """Sum over `axis`: every input element receives the gradient of its sum."""

    @staticmethod
    def forward(ctx, x, axis=None, keepdims=False):
        ctx.shape, ctx.axes = x.shape, normalize_axes(axis, x.ndim)
        return np.asarray(x.sum(axis=ctx.axes, keepdims=keepdims))

    vjp_formulas = {"x": "g copied to every element it summed"}

    @staticmethod
    def backward(ctx, grad_out):
        return (run(Expand, grad_out.reshape(keepdims_shape(ctx.shape, ctx.axes)), shape=ctx.shape),)


class Max(Function):
    """Max over `axis` (NaN where a NaN is reduced, as np.max). Ties share the gradient equally
    (as torch.amax does), and so do the NaNs of a slice, the other elements getting 0 (as torch.max(x)
    does; torch.amax 2.13 gives every element of the slice NaN there)."""

    @staticmethod
    def forward(ctx, x, axis=None, keepdims=False):
        ctx.axes = normalize_axes(axis, x.ndim)
        if any(x.shape[a] == 0 for a in ctx.axes):
            raise ValueError(f"max over an empty axis has no value: axis {axis} of shape {x.shape}")
        out = x.max(axis=ctx.axes, keepdims=True)
        is_max = (x == out) | np.isnan(x)  # a NaN is the max of its slice, as in np.max
        # piecewise constant: a constant to a double backward
        ctx.share = (is_max / is_max.sum(axis=ctx.axes, keepdims=True)).astype(x.dtype)
        ctx.kept_shape, ctx.keepdims = out.shape, keepdims
        return np.asarray(out if keepdims else out.reshape(np.delete(x.shape, ctx.axes)))

    vjp_formulas = {"x": "g at the maxima (ties share it equally), 0 elsewhere"}

    @staticmethod
    def backward(ctx, grad_out):
        return (grad_out.reshape(ctx.kept_shape) * ctx.share,)

    @staticmethod
    def jvp(ctx, tangent):
        """The tangent at the max, ties sharing it as they share the gradient (torch.amax's convention)."""
        return (tangent * ctx.share).sum(axis=ctx.axes, keepdims=ctx.keepdims)

    @staticmethod
    def branch(ctx):
        return ctx.share > 0
