"""Max and average pooling of NCHW images; the kernels' functions on arrays are in tinynet.kernels.pool.

Each pooling's VJP is linear in grad_out, so it is an op too (MaxUnpool2d, AvgPool2dTranspose) whose own
VJP is the pooling's adjoint again: that makes pooling differentiable twice (create_graph). Forward mode: the
three linear ones' JVPs are themselves (LinearOp); MaxPool2d's is MaxUnpool2d's VJP, the gather at the argmax.
"""
import numpy as np

from ..function import Function, LinearOp, run
from ..kernels.pool import avg_pool2d, avg_pool2d_transpose, max_pool2d, max_pool2d_values, max_unpool2d


class MaxPool2d(Function):
    """The max of each kh x kw window (NaN if it holds one, as np.max); the gradient goes to the
    window's first maximum, or its NaN (as in PyTorch; of several NaNs the first, where torch 2.13 takes the last)."""

    @staticmethod
    def forward(ctx, x, kernel, stride, pads):
        if not any(ctx.needs_input_grad):  # no gradient wanted: the faster maxima alone (branch finds the argmax)
            ctx.x, ctx.settings = x, (kernel, stride, pads)
            return max_pool2d_values(x, kernel, stride, pads)
        out, argmax = max_pool2d(x, kernel, stride, pads)
        ctx.argmax, ctx.x_shape = argmax, x.shape  # argmax: piecewise constant, a constant to a double backward
        return out

    vjp_formulas = {"x": "g sent to each window's argmax (added where windows overlap)"}

    @staticmethod
    def backward(ctx, grad_out):
        return (run(MaxUnpool2d, grad_out, argmax=ctx.argmax, x_shape=ctx.x_shape),)

    @staticmethod
    def jvp(ctx, tangent):
        """The tangent at each window's argmax: the gather MaxUnpool2d's VJP does (the two are adjoint)."""
        return MaxUnpool2d.backward(ctx, tangent)[0]

    @staticmethod
    def branch(ctx):
        return ctx.argmax if hasattr(ctx, "argmax") else max_pool2d(ctx.x, *ctx.settings)[1]


class MaxUnpool2d(LinearOp):
    """values (N, C, Ho, Wo) added into zeros of x_shape at the flat in-plane indices argmax: MaxPool2d's VJP.

    Its own VJP gathers: each value's gradient is grad_out at its argmax.
    """

    @staticmethod
    def forward(ctx, values, argmax, x_shape):
        ctx.argmax = argmax
        return max_unpool2d(values, argmax, x_shape)

    vjp_formulas = {"values": "g gathered at argmax"}

    @staticmethod
    def backward(ctx, grad_out):
        # indexing, not a kernel: on a Tensor grad_out (create_graph) it records a graph too
        n_images, channels, out_h, out_w = ctx.argmax.shape
        planes, height, width = n_images * channels, grad_out.shape[2], grad_out.shape[3]
        rows = np.arange(planes)[:, None]
        picked = grad_out.reshape(planes, height * width)[rows, ctx.argmax.reshape(planes, out_h * out_w)]
        return (picked.reshape(ctx.argmax.shape),)


class AvgPool2d(LinearOp):
    """The mean of the real (unpadded) pixels of each kh x kw window."""

    @staticmethod
    def forward(ctx, x, kernel, stride, pads):
        ctx.x_shape, ctx.settings = x.shape, dict(kernel=kernel, stride=stride, pads=pads)
        return avg_pool2d(x, kernel, stride, pads)

    vjp_formulas = {"x": "g spread evenly over each window's real pixels"}

    @staticmethod
    def backward(ctx, grad_out):
        return (run(AvgPool2dTranspose, grad_out, x_shape=ctx.x_shape, **ctx.settings),)


class AvgPool2dTranspose(LinearOp):
    """grad_out (N, C, Ho, Wo) spread evenly over the real pixels of each window: AvgPool2d's VJP, (N, C, H, W).

    Its own VJP is AvgPool2d (the two are adjoint linear maps).
    """

    @staticmethod
    def forward(ctx, grad_out, x_shape, kernel, stride, pads):
        ctx.settings = dict(kernel=kernel, stride=stride, pads=pads)
        return avg_pool2d_transpose(grad_out, x_shape, kernel, stride, pads)

    @staticmethod
    def backward(ctx, grad_out):
        return (run(AvgPool2d, grad_out, **ctx.settings),)
