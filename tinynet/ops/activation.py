"""Activation functions. Each saves what its derivative needs: the input or the output."""
import math

import numpy as np

from ..function import Function, run


class ReLU(Function):
    """max(x, 0): the gradient passes where x > 0."""

    double_backward = True  # the mask x > 0 is piecewise constant

    @staticmethod
    def forward(ctx, x):
        ctx.positive = x > 0
        return np.maximum(x, 0)

    @staticmethod
    def backward(ctx, grad_out):
        return (grad_out * ctx.positive,)

    @staticmethod
    def branch(ctx):
        return ctx.positive


class Tanh(Function):
    """tanh(x): d/dx = 1 - tanh(x)**2."""

    double_backward, saved_output = True, "out"

    @staticmethod
    def forward(ctx, x):
        ctx.out = np.tanh(x)
        return ctx.out

    @staticmethod
    def backward(ctx, grad_out):
        return (grad_out * (1 - ctx.out * ctx.out),)


def stable_sigmoid(x: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-x)) written as (1 + tanh(x/2)) / 2, which never overflows."""
    return (1 + np.tanh(x / 2)) / 2


class Sigmoid(Function):
    """sigmoid(x): d/dx = s (1 - s)."""

    double_backward, saved_output = True, "out"

    @staticmethod
    def forward(ctx, x):
        ctx.out = stable_sigmoid(x)
        return ctx.out

    @staticmethod
    def backward(ctx, grad_out):
        return (grad_out * ctx.out * (1 - ctx.out),)


class Softplus(Function):
    """log(1 + exp(x)), computed as logaddexp(0, x) so it never overflows: d/dx = sigmoid(x)."""

    double_backward, saved_inputs = True, ("x",)

    @staticmethod
    def forward(ctx, x):
        ctx.x = x
        return np.logaddexp(0, x)

    @staticmethod
    def backward(ctx, grad_out):
        return (grad_out * run(Sigmoid, ctx.x),)


_erf = np.vectorize(math.erf, otypes=[np.float64])  # NumPy has no erf; GELU is too rare to need a kernel


def normal_cdf(x: np.ndarray) -> np.ndarray:
    """Phi(x) = (1 + erf(x / sqrt 2)) / 2, in x's dtype."""
    return ((1 + _erf(x / math.sqrt(2))) / 2).astype(x.dtype)


class GELU(Function):
    """x * Phi(x), Phi the standard normal CDF (PyTorch's exact gelu): d/dx = Phi(x) + x * phi(x).

    No double backward: the saved cdf is a smooth function of x, and there is no erf op to recompute it.
    """

    @staticmethod
    def forward(ctx, x):
        ctx.x, ctx.cdf = x, normal_cdf(x)
        return x * ctx.cdf

    @staticmethod
    def backward(ctx, grad_out):
        density = np.exp(-0.5 * ctx.x * ctx.x) / math.sqrt(2 * math.pi)
        return (grad_out * (ctx.cdf + ctx.x * density),)
