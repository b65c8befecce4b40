"""The numerically delicate pieces of classification losses, each with a hand-written VJP."""
import numpy as np

from ..function import Function, run
from .activation import Sigmoid
from .elementwise import Exp


class LogSoftmax(Function):
    """log softmax(x) along `axis`, as x - max - log(sum(exp(x - max))): never overflows.

    VJP: grad_out - softmax(x) * sum(grad_out), softmax(x) = exp(out).
    """

    @staticmethod
    def forward(ctx, x, axis=-1):
        shifted = x - x.max(axis=axis, keepdims=True, initial=-np.inf)  # initial: an empty axis has no max
        out = shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))
        ctx.save_for_backward(out)
        ctx.axis = axis
        return out

    @staticmethod
    def backward(ctx, grad_out):
        (out,) = ctx.saved_tensors
        softmax = run(Exp, out)
        return (grad_out - softmax * grad_out.sum(axis=ctx.axis, keepdims=True),)


class BinaryCrossEntropyWithLogits(Function):
    """Elementwise -[y log s(x) + (1 - y) log(1 - s(x))], s the sigmoid, y a constant target.

    Computed as max(x, 0) - x y + log(1 + exp(-|x|)), finite for any x.
    VJP with respect to x: s(x) - y.
    """

    @staticmethod
    def forward(ctx, logits, target):
        ctx.save_for_backward(logits, target)
        return np.maximum(logits, 0) - logits * target + np.log1p(np.exp(-np.abs(logits)))

    @staticmethod
    def backward(ctx, grad_out):
        logits, target = ctx.saved_tensors
        return grad_out * (run(Sigmoid, logits) - target), None
