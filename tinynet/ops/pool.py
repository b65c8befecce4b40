"""Max and average pooling of NCHW images; kernels in tinynet.kernels.pool."""
import numpy as np

from ..function import Function
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
        ctx.argmax, ctx.x_shape = argmax, x.shape
        return out

    @staticmethod
    def backward(ctx, grad_out):
        grad_x = np.zeros(ctx.x_shape, dtype=grad_out.dtype)
        max_pool_backward_kernel(as_planes(grad_x), as_planes(grad_out), as_planes(ctx.argmax), work=grad_x.size)
        return (grad_x,)

    @staticmethod
    def branch(ctx):
        return ctx.argmax


class AvgPool2d(Function):
    """The mean of the real (unpadded) pixels of each kh x kw window."""

    @staticmethod
    def forward(ctx, x, kernel, stride, pads):
        out = np.empty(pooled_shape(x.shape, kernel, stride, pads), dtype=x.dtype)
        avg_pool_kernel(as_planes(out), as_planes(x), *kernel, *stride, pads[0][0], pads[1][0], work=x.size)
        ctx.x_shape, ctx.settings = x.shape, (*kernel, *stride, pads[0][0], pads[1][0])
        return out

    @staticmethod
    def backward(ctx, grad_out):
        grad_x = np.zeros(ctx.x_shape, dtype=grad_out.dtype)
        avg_pool_backward_kernel(as_planes(grad_x), as_planes(grad_out), *ctx.settings, work=grad_x.size)
        return (grad_x,)
