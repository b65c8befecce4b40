"""The numerically delicate pieces of classification losses, each with a hand-written VJP."""
import numpy as np

from ..function import Elementwise, Function, run
from .activation import Sigmoid
from .elementwise import Exp


def log_softmax(x, axis):
    """log softmax(x) along axis, as x - max - log(sum(exp(x - max))): never overflows."""
    if x.size == 0:
        return x.copy()  # nothing to normalize (an empty axis has no max, and log would see a sum of 0)
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


class LogSoftmax(Function):
    """log softmax(x) along `axis` (see log_softmax).

    VJP: grad_out - softmax(x) * sum(grad_out), softmax(x) = exp(out); JVP: tangent - sum(softmax(x) * tangent).
    """

    @staticmethod
    def forward(ctx, x, axis=-1):
        out = log_softmax(x, axis)
        ctx.save_for_backward(out)
        ctx.axis = axis
        return out

    vjp_formulas = {"x": "g − softmax(x) · Σg"}

    @staticmethod
    def backward(ctx, grad_out):
        (out,) = ctx.saved_tensors
        softmax = run(Exp, out)
        return (grad_out - softmax * grad_out.sum(axis=ctx.axis, keepdims=True),)

    @staticmethod
    def jvp(ctx, tangent):
        (out,) = ctx.saved_tensors
        return tangent - (run(Exp, out) * tangent).sum(axis=ctx.axis, keepdims=True)


def check_class_indices(target, classes, or_else=""):
    """ValueError unless every class index in target lies in [0, classes); or_else: what the message also allows."""
    if target.size and (target.min() < 0 or target.max() >= classes):
        raise ValueError(f"class indices must lie in [0, {classes}){or_else}, got [{target.min()}, {target.max()}]")


class CrossEntropy(Function):
    """Softmax cross-entropy of class indices, fused: logits (N, C), target (N,) integers in [0, C) -> ().

    The sum over the batch of -log softmax(logits)[i, target[i]], divided by N for reduction="mean".
    VJP: (softmax(logits) - one_hot(target)) * grad_out / N (no / N for "sum"), softmax(logits) being
    exp(log softmax(logits)): the forward's log-probabilities (ctx.log_probs) in a first-order backward; in a
    double backward, recomputed from the saved logits by ops (run), so that the VJP is itself differentiable.
    """

    @staticmethod
    def forward(ctx, logits, target, reduction="mean"):
        n, classes = logits.shape
        target = np.asarray(target)
        check_class_indices(target, classes)
        if reduction not in ("mean", "sum"):
            raise ValueError(f"CrossEntropy reduces by 'mean' or 'sum', got {reduction!r}")
        ctx.save_for_backward(logits)
        ctx.target, ctx.divisor = target, n if reduction == "mean" else 1
        ctx.log_probs = log_softmax(logits, axis=1)
        losses = -ctx.log_probs[np.arange(n), target]
        return np.asarray(losses.sum() / ctx.divisor)

    vjp_formulas = {"logits": "(softmax(logits) − one_hot(target)) · g / N"}

    @staticmethod
    def backward(ctx, grad_out):
        (logits,) = ctx.saved_tensors
        if isinstance(logits, np.ndarray):  # first order: the forward's log-probabilities, not computed again
            softmax = np.exp(ctx.log_probs)
        else:  # a double backward: recomputed by ops, so that the graph records how they depend on the logits
            softmax = run(Exp, run(LogSoftmax, logits, axis=1))
        one_hot = np.zeros(logits.shape, logits.dtype)
        one_hot[np.arange(len(ctx.target)), ctx.target] = 1
        scale = grad_out / ctx.divisor
        # Not (softmax - one_hot) * scale: these roundings are those of LogSoftmax's VJP of the picked
        # log-probabilities' gradient, so the fused loss trains exactly as log_softmax and nll_loss did.
        return (softmax * scale - one_hot * scale,)

    @staticmethod
    def jvp(ctx, tangent):
        """<d loss / d logits, tangent>: the loss is a scalar, so its Jacobian is one row, which backward gives
        for grad_out = 1."""
        (gradient,) = CrossEntropy.backward(ctx, np.ones((), tangent.dtype))
        return (gradient * tangent).sum()


class BinaryCrossEntropyWithLogits(Elementwise):
    """Elementwise -[y log s(x) + (1 - y) log(1 - s(x))], s the sigmoid, y a constant target.

    Computed as max(x, 0) - x y + log(1 + exp(-|x|)), finite for any x.
    VJP with respect to x: s(x) - y.
    """

    @staticmethod
    def forward(ctx, logits, target):
        ctx.save_for_backward(logits, target)
        return np.maximum(logits, 0) - logits * target + np.log1p(np.exp(-np.abs(logits)))

    vjp_formulas = {"logits": "g · (sigmoid(logits) − target)"}

    @staticmethod
    def backward(ctx, grad_out):
        logits, target = ctx.saved_tensors
        return grad_out * (run(Sigmoid, logits) - target), None
