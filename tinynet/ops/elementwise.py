"""Elementwise arithmetic. Inputs broadcast; the graph core sums gradients back to shape."""
import numpy as np

from ..function import Function, run


class Add(Function):
    """a + b."""

    double_backward = True

    @staticmethod
    def forward(ctx, a, b):
        return a + b

    @staticmethod
    def backward(ctx, grad_out):
        return grad_out, grad_out


class Mul(Function):
    """a * b: d/da = b, d/db = a."""

    double_backward, saved_inputs = True, ("a", "b")

    @staticmethod
    def forward(ctx, a, b):
        ctx.a, ctx.b = a, b
        return a * b

    @staticmethod
    def backward(ctx, grad_out):
        return grad_out * ctx.b, grad_out * ctx.a


class Div(Function):
    """a / b: d/da = 1/b, d/db = -a/b**2."""

    double_backward, saved_inputs = True, ("a", "b")

    @staticmethod
    def forward(ctx, a, b):
        ctx.a, ctx.b = a, b
        return a / b

    @staticmethod
    def backward(ctx, grad_out):
        grad_a = grad_out / ctx.b
        grad_b = -grad_a * ctx.a / ctx.b if ctx.needs_input_grad[1] else None
        return grad_a, grad_b


class Neg(Function):
    """-a."""

    double_backward = True

    @staticmethod
    def forward(ctx, a):
        return -a

    @staticmethod
    def backward(ctx, grad_out):
        return (-grad_out,)


class Pow(Function):
    """a ** exponent for a constant exponent: d/da = exponent * a**(exponent - 1), and 0 for exponent 0
    (also at a = 0, where the formula would give 0 * inf)."""

    double_backward, saved_inputs = True, ("a",)

    @staticmethod
    def forward(ctx, a, exponent):
        ctx.a, ctx.exponent = a, exponent
        return a ** exponent

    @staticmethod
    def backward(ctx, grad_out):
        if ctx.exponent == 0:
            return (grad_out * 0,)
        return (grad_out * ctx.exponent * ctx.a ** (ctx.exponent - 1),)


class Exp(Function):
    """exp(a): its own derivative."""

    double_backward, saved_output = True, "out"

    @staticmethod
    def forward(ctx, a):
        ctx.out = np.exp(a)
        return ctx.out

    @staticmethod
    def backward(ctx, grad_out):
        return (grad_out * ctx.out,)


class Log(Function):
    """Natural log of a (a > 0): d/da = 1/a."""

    double_backward, saved_inputs = True, ("a",)

    @staticmethod
    def forward(ctx, a):
        ctx.a = a
        return np.log(a)

    @staticmethod
    def backward(ctx, grad_out):
        return (grad_out / ctx.a,)


class Abs(Function):
    """|a|: d/da = sign(a), 0 at 0 (as in PyTorch)."""

    double_backward = True  # sign(a) is piecewise constant

    @staticmethod
    def forward(ctx, a):
        ctx.sign = np.sign(a)
        return np.abs(a)

    @staticmethod
    def backward(ctx, grad_out):
        return (grad_out * ctx.sign,)

    @staticmethod
    def branch(ctx):
        return ctx.sign


class Where(Function):
    """a where the constant boolean `condition` holds, else b: each side's gradient where it was chosen."""

    double_backward = True

    @staticmethod
    def forward(ctx, a, b, condition):
        ctx.condition = condition
        return np.where(condition, a, b)

    @staticmethod
    def backward(ctx, grad_out):
        zero = np.zeros((), dtype=grad_out.dtype)
        return run(Where, grad_out, zero, condition=ctx.condition), run(Where, zero, grad_out, condition=ctx.condition)

    @staticmethod
    def branch(ctx):
        return ctx.condition  # clamp and leaky_relu choose by a condition on x: their kinks show here


class Cast(Function):
    """a copied into another float dtype; the gradient is cast back to a's dtype."""

    double_backward = True

    @staticmethod
    def forward(ctx, a, dtype):
        ctx.dtype = a.dtype
        return a.astype(dtype)

    @staticmethod
    def backward(ctx, grad_out):
        return (run(Cast, grad_out, dtype=ctx.dtype),)
