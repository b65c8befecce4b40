"""2-D convolution of NCHW images; the heavy lifting is in tinynet.kernels.conv."""
from ..function import Function
from ..kernels.conv import conv2d_backward, conv2d_forward


class Conv2d(Function):
    """out = x (N, C, H, W) cross-correlated with weight (O, C/groups, kh, kw) -> (N, O, Ho, Wo).

    stride, dilation: (h, w); pads: ((top, bottom), (left, right)). The bias is added
    outside, by a broadcast add (see functional.conv2d).
    """

    @staticmethod
    def forward(ctx, x, weight, stride, pads, dilation, groups):
        out, columns = conv2d_forward(x, weight, stride, pads, dilation, groups)
        ctx.columns, ctx.x_shape, ctx.weight = columns, x.shape, weight
        ctx.settings = (stride, pads, dilation, groups)
        return out

    @staticmethod
    def backward(ctx, grad_out):
        need_x, need_weight = ctx.needs_input_grad
        return conv2d_backward(grad_out, ctx.columns, ctx.x_shape, ctx.weight, *ctx.settings,
                               need_x=need_x, need_weight=need_weight)
