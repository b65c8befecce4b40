"""The op base class: a forward on arrays and its vector-Jacobian product, side by side; and
`Function.apply`, which runs an op on Tensors and records it in the graph.

An op's forward and backward know nothing of Tensor: they take and return arrays.
`OpClass.apply(*inputs, **params)` runs `forward` on the inputs' arrays and, when gradients are
wanted, gives the output Tensor a `Node` (the op, its context, its parents as the graph holds them:
leaves, and for the tensors ops made their GraphTensors, which hold no values) so that the reverse
pass (tinynet.tensor) can later call `backward`.

The contract is PyTorch's `autograd.Function`: forward keeps the inputs and the output that
backward needs with `ctx.save_for_backward(a, b)`, and backward reads them back as
`a, b = ctx.saved_tensors`; anything else backward needs (shapes, settings, masks) is an attribute
of ctx.

Double backward (`backward(create_graph=True)`, `tn.grad(..., create_graph=True)`) calls the same
`backward` once more, with grad_out a Tensor and with `ctx.saved_tensors` holding the Tensors of
the saved inputs and output as the graph holds them (leaves, and GraphTensors, whose values are the saved
arrays), which the graph core finds by the identity of their arrays (so it never needs a name, and
saving anything else raises then). The VJP's arithmetic then records a graph, which can itself be
differentiated: a VJP written with operators that arrays and Tensors share (+, *, @, reshape,
transpose, indexing, .sum) is differentiable as it stands; where it needs another function, it
calls that op through `run`. Attributes of ctx stay constants, which is right for piecewise constant
ones (ReLU's mask, Max's share): their derivative is 0 almost everywhere. A backward that uses
attributes that are smooth functions of the inputs (GELU's cdf, LRN's denominator) would give wrong
second derivatives that way: it is marked `@once_differentiable`, and create_graph through it
raises an error naming the op.

Forward mode (tinynet.func.jvp, jacfwd) asks each op for the other product, a Jacobian-vector
product: the static method `jvp(ctx, *tangents)` gets one tangent per array input of forward (of the
input's shape, or None for zero) and returns the output's tangent, d out along the inputs' tangents,
in the output's dtype and shape (or a shape that broadcasts to it; anything else raises, naming the
op, as a wrong VJP does). While a jvp runs, Tensors carry tangents, and `apply` calls the rule right
after forward with the same ctx: forward has kept what the rule reads for each input with a tangent,
as for an input that wants a gradient, and `ctx.params` holds forward's settings. Where reverse mode
will differentiate the tangent (jacrev(jacfwd(f))) and the op records a graph, the rule runs as a
double backward does, on the saved Tensors. Most rules need no new derivative: an elementwise
op's Jacobian is diagonal, so its JVP is its VJP with the tangent as grad_out (Elementwise); a linear
op's JVP is the op itself applied to the tangents (LinearOp); a bilinear op's is the product rule,
made of the op itself (Bilinear). The base class's jvp raises, naming the op.

Inside tinynet.func.vmap, an op given one example's batched tensors is handed to its batch rule instead
(tinynet.batching), which runs it for every example at once with ordinary ops.
"""
import contextlib

import numpy as np

from .grad_mode import is_grad_enabled
from .observers import forward_observers
from .saved_hooks import active_hooks
from .tensor import GraphTensor, Tensor, as_tensors, broadcast_axes, differentiable_context, graph_vertex
from .versions import Version


class Context:
    """Scratch space an op's forward fills for its backward.

    `save_for_backward(*arrays)` keeps inputs of forward and its output (None allowed) for backward,
    which reads them as `ctx.saved_tensors`; other things backward needs are attributes.
    `needs_input_grad[i]` says whether input i wants a gradient, so backward may skip work (and a
    forward keep less: under tn.no_grad no input wants one), or carries a tangent (forward mode).
    Under forward mode `apply` also sets `ctx.params`, forward's keyword settings, for the JVP.
    Inside tn.saved_tensors_hooks(pack, unpack) the arrays are kept packed and unpacked at each read
    (tinynet.saved_hooks).
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

    __slots__ = ("op", "ctx", "parents", "call_site", "writes_seen")

    def __init__(self, op, ctx, parents, writes_seen):
        self.op, self.ctx, self.parents, self.call_site = op, ctx, parents, None
        self.writes_seen = writes_seen  # Version.writes when op ran: later writes may have changed what it saved


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
    and, for forward mode, jvp(ctx, *tangents) -> array (see the module docstring); if the op has
    kinks, `branch(ctx)` (see below). `MyOp.apply(x, y, axis=1)` runs it on Tensors.
    Beside backward, `vjp_formulas` may say in words what it sends each input, g being grad_out
    (Mul: {"a": "g · b", "b": "g · a"}); tn.tracing shows them at each step. They restate the class
    docstring's derivative: the assignment mode strips backward's body, not these.
    The gradient backward returns for an input may have the broadcast shape of the output:
    the graph core sums it back to the input's shape (see `unbroadcast`); any other shape, or a dtype
    other than the input's or the output's, raises (see `checked_gradients`).
    """

    vjp_formulas = None  # {name of each array input of forward: what backward sends it}, or None: not written

    @staticmethod
    def forward(ctx, *arrays, **params):
        raise NotImplementedError

    @staticmethod
    def backward(ctx, grad_out):
        raise NotImplementedError

    @classmethod
    def jvp(cls, ctx, *tangents):
        raise NotImplementedError(f"forward mode: {cls.__name__} has no JVP rule: define {cls.__name__}.jvp(ctx, "
                                  "*tangents) beside its backward (see tinynet.function), or use reverse mode")

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
        if _vmap is not None and _vmap.takes(inputs, params):  # one example's inputs: all B at once (batching)
            return _vmap.apply(cls, inputs, params)
        tensors = as_tensors(*inputs)
        needs_grad = [t.requires_grad for t in tensors]
        record = is_grad_enabled() and any(needs_grad)
        wanted = [needs and record for needs in needs_grad]  # where no graph is recorded, no input wants one
        tangents = _level is not None and tangents_of(tensors)
        if tangents:  # an input with a tangent wants forward to keep what its JVP needs, as for a gradient
            wanted = [want or tangent is not None for want, tangent in zip(wanted, tangents)]
        ctx = Context(wanted)
        out = Tensor.__new__(Tensor)
        out._data = cls.forward(ctx, *(t._data for t in tensors), **params)
        out.grad = None
        out.requires_grad = record
        if out._data.base is not None:  # a view of an input's memory, or a fresh result that does not own it
            share_version_if_a_view(out, tensors)
        out.node = None
        if record:
            out.node = Node(cls, ctx, [t if t.in_graph is None else t.in_graph for t in tensors], Version.writes)
            out.in_graph = GraphTensor(out)
        if tangents:
            ctx.params = params
            set_tangent(out, checked_tangent(cls, out, jacobian_vector_product(cls, ctx, out, tangents)))
        for observer in forward_observers:
            observer(cls, ctx, tensors, params, out)
        return out


def share_version_if_a_view(out, tensors):
    """Give out the Version of the input whose memory it views (a reshape, a transpose, a slice), so that a write
    into either one is seen by both (see tinynet.versions)."""
    for t in tensors:
        if np.may_share_memory(out._data, t._data):
            out._version = t.version
            return


class Elementwise(Function):
    """An op applied element by element (after broadcasting): its Jacobian is diagonal, so it is its own transpose,
    and the JVP is the VJP with each tangent as grad_out: the derivative is written once, in backward
    (tanh: grad_out * (1 - out**2) there, tangent * (1 - out**2) here)."""

    @classmethod
    def jvp(cls, ctx, *tangents):
        return total(cls.backward(ctx, tangent)[k] for k, tangent in enumerate(tangents) if tangent is not None)


class LinearOp(Function):
    """An op linear in its array inputs (reshape, transpose, indexing, sum, padding, average pooling, a cast):
    its Jacobian is the op itself, so its JVP is the op applied to the tangents, with forward's settings."""

    @classmethod
    def jvp(cls, ctx, tangent):
        return run(cls, tangent, **ctx.params)


class Bilinear(Function):
    """An op linear in each of its two inputs a, b, saved in this order (matmul, convolution and its gradients):
    its JVP is the product rule, op(da, b) + op(a, db), made of the op itself."""

    @classmethod
    def jvp(cls, ctx, tangent_a, tangent_b):
        a, b = ctx.saved_tensors
        return total([run(cls, tangent_a, b, **ctx.params) if tangent_a is not None else None,
                      run(cls, a, tangent_b, **ctx.params) if tangent_b is not None else None])


def total(terms):
    """The sum of the terms that are not None (None, zero, if all are)."""
    result = None
    for term in terms:
        if term is not None:
            result = term if result is None else result + term
    return result


_vmap = None  # the running tinynet.func.vmap (a tinynet.batching.Vmap), or None: then apply spends one comparison


# ---- forward mode: tangents ride on Tensors while a tinynet.func.jvp runs ------------------------
_level = None  # the running jvp's Level, or None: then apply spends one comparison on forward mode


class Level:
    """One jvp. differentiable: reverse mode will differentiate its tangents (a reverse transform encloses it)."""

    def __init__(self, differentiable):
        self.differentiable = differentiable


@contextlib.contextmanager
def forward_level(differentiable=False):
    """A block in which Tensors may carry tangents (tinynet.func.jvp opens one); yields its Level.

    A tangent is set with the level it belongs to, so one left on a Tensor after its jvp ended is
    never read again. Levels do not nest: an inner jvp could not tell its tangents from the outer's.
    """
    global _level
    if _level is not None:
        raise RuntimeError("nested jvp is not supported: forward mode inside forward mode (jvp of jvp, jacfwd of "
                           "jacfwd) would mix the two directions' tangents; use jacfwd(jacrev(f)) or reverse mode for "
                           "the inner derivative")
    _level = Level(differentiable)
    try:
        yield _level
    finally:
        _level = None


def is_forward_mode_active() -> bool:
    """True inside a jvp (forward_level)."""
    return _level is not None


def tangent_of(tensor):
    """tensor's tangent in the running jvp, or None (zero)."""
    return tensor.tangent if tensor.tangent_level is _level and _level is not None else None


def set_tangent(tensor, tangent):
    """Give tensor a tangent (None: zero) in the running jvp; its GraphTensor too, where a double backward's VJP,
    pushing tangents forward, finds it among the saved tensors."""
    for holder in (tensor, graph_vertex(tensor)):
        holder.tangent, holder.tangent_level = tangent, _level


def tangents_of(tensors):
    """The inputs' tangents (None for those without), or None when no input carries one."""
    tangents = [tangent_of(t) for t in tensors]
    return tangents if any(tangent is not None for tangent in tangents) else None


def jacobian_vector_product(op, ctx, out, tangents):
    """op's JVP for the tangents of its inputs. When reverse mode will differentiate the tangents (the level is
    differentiable: jacrev(jacfwd(f)), grad of a jvp) and op recorded a graph, the rule runs on the saved inputs'
    and output's Tensors, as a double backward does, so that the tangent is a Tensor with a graph. Meanwhile no
    tangent is read: the rule's own ops are not pushed forward themselves."""
    global _level
    level, _level = _level, None
    try:
        return op.jvp(differentiable_context(out) if level.differentiable and out.node is not None else ctx,
                      *tangents)
    finally:
        _level = level


def checked_tangent(op, out, tangent):
    """tangent, what op's jvp returned, once it is known to fit out: out's dtype and out's shape (a shape that
    broadcasts to it is broadcast). Anything else raises a RuntimeError naming the op (as checked_gradients does
    for VJPs)."""
    if tangent is None:
        return None
    if not isinstance(tangent, Tensor):
        tangent = np.asarray(tangent)
    if tangent.dtype != out.dtype:
        raise RuntimeError(f"forward mode: {op.__name__}.jvp returned a tangent of dtype {tangent.dtype} for an output "
                           f"of dtype {out.dtype}: a JVP returns the output's tangent in the output's dtype")
    if tangent.shape != out.shape:
        try:
            broadcast_axes(out.shape, tangent.shape)  # out's shape is tangent's broadcast
        except ValueError:
            raise RuntimeError(f"forward mode: {op.__name__}.jvp returned a tangent of shape {tangent.shape} for an "
                               f"output of shape {out.shape}: a JVP returns the output's shape (or one that "
                               "broadcasts to it)") from None
        tangent = tangent + np.zeros(out.shape, out.dtype)
    return tangent


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
