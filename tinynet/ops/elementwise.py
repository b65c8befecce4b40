"""Elementwise arithmetic. Inputs broadcast; the graph core sums gradients back to shape.

Each op's JVP is its VJP with the tangent as grad_out (Elementwise: the Jacobian is diagonal); Cast is linear."""
import numpy as np

from ..function import Elementwise, LinearOp, run
from ..kernels.select import where
from ..kernels.threads import elementwise


class Add(Elementwise):
    """a + b."""

    @staticmethod
    def forward(ctx, a, b):
        return elementwise(np.add, a, b)

    vjp_formulas = {"a": "g", "b": "g"}

    @staticmethod
    def backward(ctx, grad_out):
        return grad_out, grad_out


class Mul(Elementwise):
    """a * b: d/da = b, d/db = a."""

    @staticmethod
    def forward(ctx, a, b):
        need_a, need_b = ctx.needs_input_grad
        ctx.save_for_backward(a if need_b else None, b if need_a else None)  # each gradient reads the other input
        return a * b

    vjp_formulas = {"a": "g · b", "b": "g · a"}

    @staticmethod
    def backward(ctx, grad_out):
        a, b = ctx.saved_tensors
        need_a, need_b = ctx.needs_input_grad
        return grad_out * b if need_a else None, grad_out * a if need_b else None


class Div(Elementwise):
    """a / b: d/da = 1/b, d/db = -a/b**2."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a if ctx.needs_input_grad[1] else None, b)  # only b's gradient reads a
        return a / b

    vjp_formulas = {"a": "g / b", "b": "−g · a / b²"}

    @staticmethod
    def backward(ctx, grad_out):
        a, b = ctx.saved_tensors
        grad_a = grad_out / b
        grad_b = -grad_a * a / b if ctx.needs_input_grad[1] else None
        return grad_a, grad_b


class Neg(Elementwise):
    """-a."""

    @staticmethod
    def forward(ctx, a):
        return -a

    vjp_formulas = {"a": "−g"}

    @staticmethod
    def backward(ctx, grad_out):
        return (-grad_out,)


class Pow(Elementwise):
    """a ** exponent for a constant exponent: d/da = exponent * a**(exponent - 1), and 0 for exponent 0
    (also at a = 0, where the formula would give 0 * inf)."""

    @staticmethod
    def forward(ctx, a, exponent):
        ctx.save_for_backward(a)
        ctx.exponent = exponent
        return a ** exponent

    vjp_formulas = {"a": "g · exponent · a^(exponent − 1)"}

    @staticmethod
    def backward(ctx, grad_out):
        if ctx.exponent == 0:
            return (grad_out * 0,)
        (a,) = ctx.saved_tensors
        return (grad_out * ctx.exponent * a ** (ctx.exponent - 1),)


class Exp(Elementwise):
    """exp(a): its own derivative."""

    @staticmethod
    def forward(ctx, a):
        out = np.exp(a)
        ctx.save_for_backward(out)
        return out

    vjp_formulas = {"a": "g · exp(a)"}

    @staticmethod
    def backward(ctx, grad_out):
        (out,) = ctx.saved_tensors
        return (grad_out * out,)


class Log(Elementwise):
    """Natural log of a (a > 0): d/da = 1/a."""

    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return np.log(a)

    vjp_formulas = {"a": "g / a"}

    @staticmethod
    def backward(ctx, grad_out):
        (a,) = ctx.saved_tensors
        return (grad_out / a,)


class Abs(Elementwise):
    """|a|: d/da = sign(a), 0 at 0 (as in PyTorch)."""

    @staticmethod
    def forward(ctx, a):
        ctx.sign = np.sign(a)  # piecewise constant: a constant to a double backward
        return np.abs(a)

    vjp_formulas = {"a": "g · sign(a)"}

    @staticmethod
    def backward(ctx, grad_out):
        return (grad_out * ctx.sign,)

    @staticmethod
    def branch(ctx):
        return ctx.sign


class Where(Elementwise):
    """a where the constant boolean `condition` holds, else b: each side's gradient where it was chosen."""

    @staticmethod
    def forward(ctx, a, b, condition):
        ctx.condition = condition
        return where(condition, a, b)

    vjp_formulas = {"a": "g where condition, else 0", "b": "g where not condition, else 0"}

    @staticmethod
    def backward(ctx, grad_out):
        zero = np.zeros((), dtype=grad_out.dtype)
        return run(Where, grad_out, zero, condition=ctx.condition), run(Where, zero, grad_out, condition=ctx.condition)

    @staticmethod
    def branch(ctx):
        return ctx.condition  # clamp and leaky_relu choose by a condition on x: their kinks show here


class Cast(LinearOp):
    """a copied into another float dtype; the gradient is cast back to a's dtype."""

    @staticmethod
    def forward(ctx, a, dtype):
        ctx.dtype = a.dtype
        return a.astype(dtype)

    vjp_formulas = {"a": "g cast to a's dtype"}

    @staticmethod
    def backward(ctx, grad_out):
        return (run(Cast, grad_out, dtype=ctx.dtype),)
