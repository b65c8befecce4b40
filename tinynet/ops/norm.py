"""Local response normalization (TensorFlow's definition); kernels in tinynet.kernels.lrn."""
from ..function import Function
from ..kernels.lrn import lrn_backward, lrn_forward


class LocalResponseNorm(Function):
    """x (N, C, H, W) / (bias + alpha * sum of x^2 over 2r+1 neighbouring channels) ** beta."""

    @staticmethod
    def forward(ctx, x, depth_radius, bias, alpha, beta):
        out, saved = lrn_forward(x, depth_radius, bias, alpha, beta)
        ctx.x, ctx.saved, ctx.settings = x, saved, (depth_radius, alpha, beta)
        return out

    @staticmethod
    def backward(ctx, grad_out):
        return (lrn_backward(grad_out, ctx.x, ctx.saved, *ctx.settings),)
