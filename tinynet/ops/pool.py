"""Max and average pooling of NCHW images; kernels in tinynet.kernels.pool.

Each pooling's VJP is linear in grad_out, so it is an op too (MaxUnpool2d, AvgPool2dTranspose) whose own
VJP is the pooling's adjoint again: that makes pooling differentiable twice (create_graph).
"""
import numpy as np

from ..function import Function, run
from ..kernels.pool import avg_pool_backward_kernel, avg_pool_kernel, max_pool_backward_kernel, max_pool_kernel
from ..kernels.windows import output_shape


def pooled_shape(shape, kernel, stride, pads):
    """(N, C, Ho, Wo) of pooling an (N, C, H, W) input."""
    return shape[:2] + output_shape(shape[2:], kernel, stride, (1, 1), pads)


def as_planes(x):
    """(N, C, H, W) -> (N*C, H, W), contiguous, for the plane-parallel kernels."""
    return np.ascontiguousarray(x).reshape(-1, *x.shape[2:])


class MaxPool2d(Function):
    """The max of each kh x kw window (NaN if it holds one, as np.max); the gradient goes to the
    window's (first) maximum."""

    @staticmethod
    def forward(ctx, x, kernel, stride, pads):
        shape = pooled_shape(x.shape, kernel, stride, pads)
        out = np.empty(shape, dtype=x.dtype)
        argmax = np.empty(shape, dtype=np.int64)
        max_pool_kernel(as_planes(out), as_planes(argmax), as_planes(x), *kernel, *stride, pads[0][0], pads[1][0],
                        work=x.size)
        ctx.argmax, ctx.x_shape = argmax, x.shape  # argmax: piecewise constant, a constant to a double backward
        return out

    @staticmethod
    def backward(ctx, grad_out):
        return (run(MaxUnpool2d, grad_out, argmax=ctx.argmax, x_shape=ctx.x_shape),)

    @staticmethod
    def branch(ctx):
        return ctx.argmax


class MaxUnpool2d(Function):
    """values (N, C, Ho, Wo) added into zeros of x_shape at the flat in-plane indices argmax: MaxPool2d's VJP.

    Its own VJP gathers: each value's gradient is grad_out at its argmax.
    """

    @staticmethod
    def forward(ctx, values, argmax, x_shape):
        ctx.argmax = argmax
        out = np.zeros(x_shape, dtype=values.dtype)
        max_pool_backward_kernel(as_planes(out), as_planes(values), as_planes(argmax), work=out.size)
        return out

    @staticmethod
    def backward(ctx, grad_out):
        n_images, channels, out_h, out_w = ctx.argmax.shape
        planes, height, width = n_images * channels, grad_out.shape[2], grad_out.shape[3]
        rows = np.arange(planes)[:, None]
        picked = grad_out.reshape(planes, height * width)[rows, ctx.argmax.reshape(planes, out_h * out_w)]
        return (picked.reshape(ctx.argmax.shape),)


class AvgPool2d(Function):
    """The mean of the real (unpadded) pixels of each kh x kw window."""

    @staticmethod
    def forward(ctx, x, kernel, stride, pads):
        out = np.empty(pooled_shape(x.shape, kernel, stride, pads), dtype=x.dtype)
        avg_pool_kernel(as_planes(out), as_planes(x), *kernel, *stride, pads[0][0], pads[1][0], work=x.size)
        ctx.x_shape, ctx.settings = x.shape, dict(kernel=kernel, stride=stride, pads=pads)
        return out

    @staticmethod
    def backward(ctx, grad_out):
        return (run(AvgPool2dTranspose, grad_out, x_shape=ctx.x_shape, **ctx.settings),)


class AvgPool2dTranspose(Function):
    """grad_out (N, C, Ho, Wo) spread evenly over the real pixels of each window: AvgPool2d's VJP, (N, C, H, W).

    Its own VJP is AvgPool2d (the two are adjoint linear maps).
    """

    @staticmethod
    def forward(ctx, grad_out, x_shape, kernel, stride, pads):
        ctx.settings = dict(kernel=kernel, stride=stride, pads=pads)
        grad_x = np.zeros(x_shape, dtype=grad_out.dtype)
        avg_pool_backward_kernel(as_planes(grad_x), as_planes(grad_out), *kernel, *stride, pads[0][0], pads[1][0],
                                 work=grad_x.size)
        return grad_x

    @staticmethod
    def backward(ctx, grad_out):
        return (run(AvgPool2d, grad_out, **ctx.settings),)
