"""2-D convolution of NCHW images; the algorithms are in tinynet.kernels (conv_choice picks one per shape)."""
from ..function import Function
from ..kernels.conv_choice import choose


class Conv2d(Function):
    """out = x (N, C, H, W) cross-correlated with weight (O, C/groups, kh, kw) -> (N, O, Ho, Wo).

    out[n, o, y, x] = sum over c, i, j of x_padded[n, c, y*sh + i*dh, x*sw + j*dw] * weight[o, c, i, j]
    (c in o's group), so grad_x is the transposed convolution of grad_out with weight and
    grad_weight the correlation of x_padded with grad_out. stride, dilation: (h, w); pads:
    ((top, bottom), (left, right)). The bias is added outside, by a broadcast add (see functional.conv2d).
    """

    @staticmethod
    def forward(ctx, x, weight, stride, pads, dilation, groups):
        ctx.settings = (stride, pads, dilation, groups)
        ctx.kernels = choose(x.shape, weight.shape, *ctx.settings, x.dtype).kernels
        ctx.x, ctx.weight = x, weight
        return ctx.kernels.conv2d_forward(x, weight, *ctx.settings)

    @staticmethod
    def backward(ctx, grad_out):
        need_x, need_weight = ctx.needs_input_grad
        grad_x = ctx.kernels.conv2d_input_grad(grad_out, ctx.x.shape, ctx.weight, *ctx.settings) if need_x else None
        grad_weight = ctx.kernels.conv2d_weight_grad(grad_out, ctx.x, ctx.weight.shape, *ctx.settings) \
            if need_weight else None
        return grad_x, grad_weight
