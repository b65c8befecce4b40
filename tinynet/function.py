"""The op base class: a forward on arrays and its vector-Jacobian product, side by side; and
`Function.apply`, which runs an op on Tensors and records it in the graph.

An op's forward and backward know nothing of Tensor: they take and return arrays.
`OpClass.apply(*inputs, **params)` runs `forward` on the inputs' arrays and, when gradients are
wanted, gives the output Tensor a `Node` (the op, its context, its parents) so that the reverse
pass (tinynet.tensor) can later call `backward`.

The contract is PyTorch's `autograd.Function`: forward keeps the inputs and the output that
backward needs with `ctx.save_for_backward(a, b)`, and backward reads them back as
`a, b = ctx.saved_tensors`; anything else backward needs (shapes, settings, masks) is an attribute
of ctx.

Double backward (`backward(create_graph=True)`, `tn.grad(..., create_graph=True)`) calls the same
`backward` once more, with grad_out a Tensor and with `ctx.saved_tensors` holding the Tensors of
the saved inputs and output, which the graph core finds by identity (so it never needs a name, and
saving anything else raises then). The VJP's arithmetic then records a graph, which can itself be
differentiated: a VJP written with operators that arrays and Tensors share (+, *, @, reshape,
transpose, indexing, .sum) is differentiable as it stands; where it needs another function, it
calls that op through `run`. Attributes of ctx stay constants, which is right for piecewise constant
ones (ReLU's mask, Max's share): their derivative is 0 almost everywhere. A backward that uses
attributes that are smooth functions of the inputs (GELU's cdf, LRN's denominator) would give wrong
second derivatives that way: it is marked `@once_differentiable`, and create_graph through it
raises an error naming the op.
"""
import contextlib

import numpy as np

from .grad_mode import is_grad_enabled
from .observers import forward_observers
from .saved_hooks import active_hooks
from .tensor import Tensor, as_tensors


class Context:
    """Scratch space an op's forward fills for its backward.

    `save_for_backward(*arrays)` keeps inputs of forward and its output (None allowed) for backward,
    which reads them as `ctx.saved_tensors`; other things backward needs are attributes.
    `needs_input_grad[i]` says whether input i wants a gradient, so backward may skip work (and a
    forward keep less: under tn.no_grad no input wants one). Inside tn.saved_tensors_hooks(pack, unpack)
    the arrays are kept packed and unpacked at each read (tinynet.saved_hooks).
    """

    saved_for_backward = ()  # what save_for_backward kept: the arrays, or what the pack hook made of each
    unpack = None  # the unpack hook of packed saves, else None

    def __init__(self, needs_input_grad):
        self.needs_input_grad = tuple(needs_input_grad)

    def save_for_backward(self, *arrays):
        """Keep these inputs and/or output of forward for backward (ctx.saved_tensors, in this order)."""
        if active_hooks and any(self.needs_input_grad):
            pack, self.unpack = active_hooks[-1]
            arrays = tuple(None if array is None else pack(array) for array in arrays)
        self.saved_for_backward = arrays

    @property
    def saved_tensors(self) -> tuple:
        """What save_for_backward kept, unpacked again at each read if it was packed."""
        if self.unpack is None:
            return self.saved_for_backward
        return tuple(None if packed is None else self.unpack(packed) for packed in self.saved_for_backward)

    @saved_tensors.setter
    def saved_tensors(self, values):
        self.saved_for_backward, self.unpack = tuple(values), None


class Node:
    """How a tensor was computed: op(ctx) applied to parents; call_site is set by the tools that want it."""

    __slots__ = ("op", "ctx", "parents", "call_site")

    def __init__(self, op, ctx, parents):
        self.op, self.ctx, self.parents, self.call_site = op, ctx, parents, None


def once_differentiable(backward):
    """Mark an op's backward as first-order only: it uses ctx attributes that are smooth functions of the
    inputs, so differentiating it with create_graph=True would be wrong, and raises an error naming the op.

        @staticmethod
        @once_differentiable
        def backward(ctx, grad_out): ...
    """
    backward.once_differentiable = True
    return backward


class Function:
    """A differentiable primitive.

    Subclasses define two static methods:
      forward(ctx, *arrays, **params) -> array, saving what backward needs (ctx.save_for_backward)
      backward(ctx, grad_out) -> tuple with one array (or None) per array input of forward.
    and, if the op has kinks, `branch(ctx)` (see below). `MyOp.apply(x, y, axis=1)` runs it on Tensors.
    The gradient backward returns for an input may have the broadcast shape of the output:
    the graph core sums it back to the input's shape (see `unbroadcast`); any other shape, or a dtype
    other than the input's or the output's, raises (see `checked_gradients`).
    """

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

    @staticmethod
    def implementation(ctx):
        """Which of the op's implementations its forward ran, by name (Conv2d: the conv algorithm), or None.

        Tools that re-run an op (gradcheck's op locator) run it the same way again, under implemented_as.
        """
        return None

    @staticmethod
    def implemented_as(name):
        """A context manager within which forward runs the implementation `name` again (see implementation)."""
        return contextlib.nullcontext()

    @classmethod
    def apply(cls, *inputs, **params) -> Tensor:
        """Run forward on the inputs' arrays; record the op in the graph when a gradient is wanted.

        inputs: Tensors, arrays or Python numbers (the latter two are constants).
        params: non-differentiable settings passed to forward (axis, stride, ...).
        """
        tensors = as_tensors(*inputs)
        needs_grad = [t.requires_grad for t in tensors]
        record = is_grad_enabled() and any(needs_grad)
        ctx = Context([needs and record for needs in needs_grad])  # where no graph is recorded, no input wants one
        out = Tensor.__new__(Tensor)
        out.data = cls.forward(ctx, *(t.data for t in tensors), **params)
        out.grad = None
        out.requires_grad = record
        out.node = Node(cls, ctx, tensors) if record else None
        for observer in forward_observers:
            observer(cls, ctx, tensors, params, out)
        return out


def run(op, *inputs, **params):
    """op's forward on arrays; on Tensors (in a double backward), op applied so that the graph records it.

    For VJPs that need another op (LogSoftmax's needs exp): one line serves both backward passes.
    """
    if all(isinstance(x, (np.ndarray, np.generic, int, float)) for x in inputs):
        return op.forward(Context((False,) * len(inputs)), *inputs, **params)
    return op.apply(*inputs, **params)


def contiguous(x):
    """x as a C-contiguous array (kernels downstream need it); a Tensor as it is (its arrays already are)."""
    return np.ascontiguousarray(x) if isinstance(x, np.ndarray) else x
