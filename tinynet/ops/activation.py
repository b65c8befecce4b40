"""Activation functions. Each saves what its derivative needs: the input or the output.

All are elementwise: each JVP is its VJP with the tangent as grad_out (tinynet.function.Elementwise)."""
import math

import numpy as np

from ..function import Elementwise, once_differentiable, run
from ..kernels.threads import elementwise
from .elementwise import Where


class ReLU(Elementwise):
    """max(x, 0): the gradient passes where x > 0 (so it is 0 at x = 0, as in PyTorch).

    Elsewhere it is 0 whatever grad_out holds, as in PyTorch: chosen (Where), not grad_out * mask, which would
    turn an inf or NaN that came back (c / relu(x) is inf there) into NaN.
    """

    @staticmethod
    def forward(ctx, x):
        if not any(ctx.needs_input_grad):  # no gradient wanted: no mask (branch makes it if asked)
            ctx.x = x
        else:
            ctx.positive = x > 0  # piecewise constant: a constant to a double backward
        return elementwise(np.maximum, x, np.zeros((), x.dtype))

    vjp_formulas = {"x": "g where x > 0, else 0"}

    @staticmethod
    def backward(ctx, grad_out):
        return (run(Where, grad_out, np.zeros((), grad_out.dtype), condition=ctx.positive),)

    @staticmethod
    def branch(ctx):
        return ctx.positive if hasattr(ctx, "positive") else ctx.x > 0


class Tanh(Elementwise):
    """tanh(x): d/dx = 1 - tanh(x)**2."""

    @staticmethod
    def forward(ctx, x):
        out = np.tanh(x)
        ctx.save_for_backward(out)
        return out

    vjp_formulas = {"x": "g · (1 − tanh(x)²)"}

    @staticmethod
    def backward(ctx, grad_out):
        (out,) = ctx.saved_tensors
        return (grad_out * (1 - out * out),)


def stable_sigmoid(x: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-x)) for x >= 0 and exp(x) / (1 + exp(x)) for x < 0: exp(-|x|) never overflows, and neither
    form cancels, so a tiny sigmoid(x) keeps its digits ((1 + tanh(x/2)) / 2 gave sigmoid(-40) = 0, not 4.2e-18)."""
    small = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + small), small / (1 + small))


class Sigmoid(Elementwise):
    """sigmoid(x): d/dx = s (1 - s)."""

    @staticmethod
    def forward(ctx, x):
        out = stable_sigmoid(x)
        ctx.save_for_backward(out)
        return out

    vjp_formulas = {"x": "g · s · (1 − s), s = sigmoid(x)"}

    @staticmethod
    def backward(ctx, grad_out):
        (out,) = ctx.saved_tensors
        return (grad_out * out * (1 - out),)


class Softplus(Elementwise):
    """log(1 + exp(x)), computed as logaddexp(0, x) so it never overflows: d/dx = sigmoid(x)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.logaddexp(0, x)

    vjp_formulas = {"x": "g · sigmoid(x)"}

    @staticmethod
    def backward(ctx, grad_out):
        (x,) = ctx.saved_tensors
        return (grad_out * run(Sigmoid, x),)


_erf = np.vectorize(math.erf, otypes=[np.float64])  # NumPy has no erf; GELU is too rare to need a kernel


def normal_cdf(x: np.ndarray) -> np.ndarray:
    """Phi(x) = (1 + erf(x / sqrt 2)) / 2, in x's dtype."""
    return ((1 + _erf(x / math.sqrt(2))) / 2).astype(x.dtype)


class GELU(Elementwise):
    """x * Phi(x), Phi the standard normal CDF (PyTorch's exact gelu): d/dx = Phi(x) + x * phi(x).

    Once differentiable: the kept cdf is a smooth function of x, and there is no erf op to recompute it.
    """

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        ctx.cdf = normal_cdf(x)
        return x * ctx.cdf

    vjp_formulas = {"x": "g · (Φ(x) + x · φ(x))"}

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        (x,) = ctx.saved_tensors
        density = np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)
        return (grad_out * (ctx.cdf + x * density),)
