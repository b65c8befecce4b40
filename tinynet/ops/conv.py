"""2-D convolution of NCHW images; the algorithms are in tinynet.kernels (conv_choice picks one per shape)."""
from ..function import Bilinear, run
from ..kernels.conv_choice import choose, force_conv_algorithm


class Conv2d(Bilinear):
    """out = x (N, C, H, W) cross-correlated with weight (O, C/groups, kh, kw) -> (N, O, Ho, Wo).

    out[n, o, y, x] = sum over c, i, j of x_padded[n, c, y*sh + i*dh, x*sw + j*dw] * weight[o, c, i, j]
    (c in o's group), so grad_x is the transposed convolution of grad_out with weight and
    grad_weight the correlation of x_padded with grad_out. stride, dilation: (h, w); pads:
    ((top, bottom), (left, right)). The bias is added outside, by a broadcast add (see functional.conv2d).

    out is bilinear in (x, weight), and so are its two VJPs; they run as ops (Conv2dInputGrad,
    Conv2dWeightGrad), so that a double backward can differentiate them: each one's VJP is the
    other two of the three maps, and each one's JVP the product rule (Bilinear). All three run the
    algorithm chosen for the forward, through ctx.plan: that algorithm's three functions for this layer,
    which may keep work they share for the inputs that want gradients (FFT spectra); it lives in ctx, so
    nothing is kept where no graph is recorded (tn.no_grad). Each input's gradient reads only the other input, so
    forward keeps x only when the weight wants a gradient and the weight only when x does (an input gradient
    through frozen weights keeps no activations here), and each op keeps the shapes it needs as attributes.
    """

    @staticmethod
    def forward(ctx, x, weight, stride, pads, dilation, groups):
        ctx.settings = (stride, pads, dilation, groups)
        choice = choose(x.shape, weight.shape, *ctx.settings, x.dtype, arrays=(x, weight))
        ctx.algorithm, ctx.plan = choice.algorithm, choice.plan(*ctx.needs_input_grad)
        ctx.x_shape, ctx.weight_shape = x.shape, weight.shape
        need_x, need_weight = ctx.needs_input_grad
        ctx.save_for_backward(x if need_weight else None, weight if need_x else None)
        return ctx.plan.conv2d_forward(x, weight, *ctx.settings)

    @staticmethod
    def implementation(ctx):
        return ctx.algorithm

    implemented_as = staticmethod(force_conv_algorithm)

    vjp_formulas = {"x": "g convolved back through weight (transposed convolution)",
                    "weight": "x (padded) correlated with g"}

    @staticmethod
    def backward(ctx, grad_out):
        x, weight = ctx.saved_tensors
        need_x, need_weight = ctx.needs_input_grad
        grad_x = run(Conv2dInputGrad, grad_out, weight, x_shape=ctx.x_shape, settings=ctx.settings,
                     plan=ctx.plan) if need_x else None
        grad_weight = run(Conv2dWeightGrad, x, grad_out, weight_shape=ctx.weight_shape, settings=ctx.settings,
                          plan=ctx.plan) if need_weight else None
        return grad_x, grad_weight


def conv_params(settings):
    """Conv2d's saved settings (stride, pads, dilation, groups) as its keyword parameters."""
    return dict(zip(("stride", "pads", "dilation", "groups"), settings))


class Conv2dInputGrad(Bilinear):
    """d <grad_out, conv2d(x, weight)> / dx (N, C, H, W) for grad_out (N, O, Ho, Wo): linear in each argument."""

    @staticmethod
    def forward(ctx, grad_out, weight, x_shape, settings, plan):
        need_grad_out, need_weight = ctx.needs_input_grad
        ctx.save_for_backward(grad_out if need_weight else None, weight if need_grad_out else None)
        ctx.settings, ctx.plan, ctx.weight_shape = settings, plan, weight.shape
        return plan.conv2d_input_grad(grad_out, x_shape, weight, *settings)

    @staticmethod
    def backward(ctx, grad_x):
        grad_out, weight = ctx.saved_tensors
        need_grad_out, need_weight = ctx.needs_input_grad
        return (run(Conv2d, grad_x, weight, **conv_params(ctx.settings)) if need_grad_out else None,
                run(Conv2dWeightGrad, grad_x, grad_out, weight_shape=ctx.weight_shape, settings=ctx.settings,
                    plan=ctx.plan) if need_weight else None)


class Conv2dWeightGrad(Bilinear):
    """d <grad_out, conv2d(x, weight)> / d weight (O, C/groups, kh, kw): linear in x and in grad_out."""

    @staticmethod
    def forward(ctx, x, grad_out, weight_shape, settings, plan):
        need_x, need_grad_out = ctx.needs_input_grad
        ctx.save_for_backward(x if need_grad_out else None, grad_out if need_x else None)
        ctx.settings, ctx.plan, ctx.x_shape = settings, plan, x.shape
        return plan.conv2d_weight_grad(grad_out, x, weight_shape, *settings)

    @staticmethod
    def backward(ctx, grad_weight):
        x, grad_out = ctx.saved_tensors
        need_x, need_grad_out = ctx.needs_input_grad
        return (run(Conv2dInputGrad, grad_out, grad_weight, x_shape=ctx.x_shape, settings=ctx.settings,
                    plan=ctx.plan) if need_x else None,
                run(Conv2d, x, grad_weight, **conv_params(ctx.settings)) if need_grad_out else None)
