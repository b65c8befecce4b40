"""2-D convolution of NCHW images; the heavy lifting is in tinynet.kernels.conv."""
import numpy as np

from ..function import Function, run
from ..kernels.conv import conv2d_backward, conv2d_forward


class Conv2d(Function):
    """out = x (N, C, H, W) cross-correlated with weight (O, C/groups, kh, kw) -> (N, O, Ho, Wo).

    stride, dilation: (h, w); pads: ((top, bottom), (left, right)). The bias is added
    outside, by a broadcast add (see functional.conv2d).

    out is bilinear in (x, weight), and so are its two VJPs: a double backward runs them as ops
    (Conv2dInputGrad, Conv2dWeightGrad), whose own VJPs are the other two of the three.
    """

    double_backward, saved_inputs = True, ("x", "weight")  # ctx.x exists only in a double backward

    @staticmethod
    def forward(ctx, x, weight, stride, pads, dilation, groups):
        out, columns = conv2d_forward(x, weight, stride, pads, dilation, groups)
        ctx.columns, ctx.x_shape, ctx.weight = columns, x.shape, weight
        ctx.settings = (stride, pads, dilation, groups)
        return out

    @staticmethod
    def backward(ctx, grad_out):
        need_x, need_weight = ctx.needs_input_grad
        if isinstance(grad_out, np.ndarray):  # first order: the saved columns spare an im2col
            return conv2d_backward(grad_out, ctx.columns, ctx.x_shape, ctx.weight, *ctx.settings,
                                   need_x=need_x, need_weight=need_weight)
        return (run(Conv2dInputGrad, grad_out, ctx.weight, x_shape=ctx.x_shape, settings=ctx.settings)
                if need_x else None,
                run(Conv2dWeightGrad, ctx.x, grad_out, weight_shape=ctx.weight.shape, settings=ctx.settings)
                if need_weight else None)


def shaped_zeros(shape, dtype):
    """A read-only array of zeros that takes no memory: for kernel arguments of which only the shape is read."""
    return np.broadcast_to(np.zeros((), dtype), shape)


def conv_params(settings):
    """Conv2d's saved settings (stride, pads, dilation, groups) as its keyword parameters."""
    return dict(zip(("stride", "pads", "dilation", "groups"), settings))


class Conv2dInputGrad(Function):
    """d <grad_out, conv2d(x, weight)> / dx (N, C, H, W) for grad_out (N, O, Ho, Wo): linear in each argument."""

    double_backward, saved_inputs = True, ("grad_out", "weight")

    @staticmethod
    def forward(ctx, grad_out, weight, x_shape, settings):
        ctx.grad_out, ctx.weight, ctx.settings = grad_out, weight, settings
        columns_shape = (x_shape[1] * weight.shape[2] * weight.shape[3], x_shape[0]) + grad_out.shape[2:]
        return conv2d_backward(grad_out, shaped_zeros(columns_shape, grad_out.dtype), x_shape, weight, *settings,
                               need_weight=False)[0]

    @staticmethod
    def backward(ctx, grad_x):
        return (run(Conv2d, grad_x, ctx.weight, **conv_params(ctx.settings)),
                run(Conv2dWeightGrad, grad_x, ctx.grad_out, weight_shape=ctx.weight.shape, settings=ctx.settings))


class Conv2dWeightGrad(Function):
    """d <grad_out, conv2d(x, weight)> / d weight (O, C/groups, kh, kw): linear in x and in grad_out."""

    double_backward, saved_inputs = True, ("x", "grad_out")

    @staticmethod
    def forward(ctx, x, grad_out, weight_shape, settings):
        ctx.x, ctx.grad_out, ctx.settings = x, grad_out, settings
        # the columns of x as forward makes them (its product with zero weights is wasted: double backward is rare)
        _, columns = conv2d_forward(x, shaped_zeros(weight_shape, x.dtype), *settings)
        return conv2d_backward(grad_out, columns, x.shape, shaped_zeros(weight_shape, x.dtype), *settings,
                               need_x=False)[1]

    @staticmethod
    def backward(ctx, grad_weight):
        return (run(Conv2dInputGrad, ctx.grad_out, grad_weight, x_shape=ctx.x.shape, settings=ctx.settings),
                run(Conv2d, ctx.x, grad_weight, **conv_params(ctx.settings)))
