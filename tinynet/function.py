"""The op base class: a forward on arrays and its vector-Jacobian product, side by side.

An op knows nothing of Tensor. `tinynet.tensor.apply(OpClass, *inputs, **params)` runs
`forward` on the inputs' arrays, and, when gradients are wanted, remembers the op, its
context and its parents so that `Tensor.backward` can later call `backward`.

Double backward (`backward(create_graph=True)`, `tn.grad(..., create_graph=True)`) calls the same
`backward` once more, with grad_out a Tensor and with the ctx attributes that hold the op's inputs
(`saved_inputs`) and output (`saved_output`) replaced by their Tensors: the VJP's arithmetic then
records a graph, which can itself be differentiated. So a VJP written with operators that arrays and
Tensors share (+, *, @, reshape, transpose, indexing, .sum) is differentiable as it stands; where it
needs another function, it calls that op through `run`. Saved arrays that are piecewise constant
(ReLU's mask, Max's share) stay constants, which is right: their derivative is 0 almost everywhere.
An op whose backward uses saved arrays that are smooth functions of its inputs (GELU's cdf, LRN's
denominator) would give wrong second derivatives that way: it keeps `double_backward = False`, and
create_graph raises an error naming it.
"""
import numpy as np


class Context:
    """Scratch space an op's forward fills for its backward (saved arrays, shapes, params).

    `needs_input_grad[i]` says whether input i wants a gradient, so backward may skip work (and a
    forward keep less: under tn.no_grad no input wants one).
    """

    def __init__(self, needs_input_grad):
        self.needs_input_grad = tuple(needs_input_grad)


class Function:
    """A differentiable primitive.

    Subclasses define two static methods:
      forward(ctx, *arrays, **params) -> array
      backward(ctx, grad_out) -> tuple with one array (or None) per array input of forward.
    and, if the op has kinks, `branch(ctx)` (see below).
    The gradient backward returns for an input may have the broadcast shape of the output:
    the graph core sums it back to the input's shape (see `unbroadcast`).

    For double backward (see the module docstring): `double_backward = True` when backward also
    works on Tensors, `saved_inputs` the names of the ctx attributes holding inputs 0, 1, ... (None
    for an input not saved), `saved_output` the name of the one holding the output.
    """

    double_backward = False
    saved_inputs = ()
    saved_output = None

    @staticmethod
    def forward(ctx, *arrays, **params):
        raise NotImplementedError

    @staticmethod
    def backward(ctx, grad_out):
        raise NotImplementedError

    @staticmethod
    def branch(ctx):
        """Which side of its kinks the forward took, as an array (ReLU: x > 0), or None.

        Ops that are not differentiable everywhere (ReLU at 0, max at a tie) define it, so that
        gradcheck can tell when a finite-difference step crossed a kink: the branches taken at
        x + h and at x - h then differ.
        """
        return None


def run(op, *inputs, **params):
    """op's forward on arrays; on Tensors (in a double backward), op applied so that the graph records it.

    For VJPs that need another op (LogSoftmax's needs exp): one line serves both backward passes.
    """
    if all(isinstance(x, (np.ndarray, np.generic, int, float)) for x in inputs):
        return op.forward(Context((False,) * len(inputs)), *inputs, **params)
    from .tensor import apply  # the graph core builds on this module; only a double backward comes here
    return apply(op, *inputs, **params)


def contiguous(x):
    """x as a C-contiguous array (kernels downstream need it); a Tensor as it is (its arrays already are)."""
    return np.ascontiguousarray(x) if isinstance(x, np.ndarray) else x
