"""Local response normalization (TensorFlow's definition); kernels in tinynet.kernels.lrn."""
from ..function import Function, once_differentiable
from ..kernels.lrn import channel_window_sum_reference, lrn_backward, lrn_forward


class LocalResponseNorm(Function):
    """x (N, C, H, W) / (bias + alpha * sum of x^2 over 2r+1 neighbouring channels) ** beta.

    Once differentiable: its backward is a kernel on arrays, which uses what the forward kernel kept
    (a smooth function of x). JVP, with d the denominator and s = d^-beta (both kept):
    d out = dx s - 2 alpha beta x (s / d) * (sum of x dx over the window).
    """

    @staticmethod
    def forward(ctx, x, depth_radius, bias, alpha, beta):
        out, kept = lrn_forward(x, depth_radius, bias, alpha, beta)
        ctx.save_for_backward(x)
        ctx.kept, ctx.settings = kept, (depth_radius, alpha, beta)
        return out

    vjp_formulas = {"x": "g · d^−β − 2αβ · x · Σ_window(g · x · d^(−β−1)), d = bias + α · Σ_window x²"}

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        (x,) = ctx.saved_tensors
        return (lrn_backward(grad_out, x, ctx.kept, *ctx.settings),)

    @staticmethod
    def jvp(ctx, tangent):
        (x,) = ctx.saved_tensors
        scale, denominator = ctx.kept
        radius, alpha, beta = ctx.settings
        window = channel_window_sum_reference(x * tangent, radius)  # a loop over channels: forward mode is rare
        return tangent * scale - 2 * alpha * beta * x * scale / denominator * window
