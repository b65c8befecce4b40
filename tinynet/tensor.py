"""The graph core: Tensor and the reverse pass (backward, grad).

Nothing here knows any particular op. A Tensor made by an op remembers a `Node`
(`Function.apply` in tinynet.function makes it): the op class, the context its forward filled,
and the parent tensors. `backward` visits the graph once in reverse topological order and, for
each node, asks its op for the vector-Jacobian product and ADDS it into the parents' gradients.
With create_graph=True the gradients are Tensors and the VJPs run on Tensors, so the reverse pass
records a graph of its own (tinynet.function says how an op takes part).

The graph holds only what backward needs. A node's parents are leaves (parameters, inputs: alive anyway) and
the GraphTensors of the tensors ops made: each such tensor's place in the graph (node, shape, dtype, version,
hooks) without its values, which stay alive only while the user holds the tensor or an op saved them for
its backward (ctx). So an intermediate value nobody saved is freed as soon as the user drops it.

This is the bottom of the engine: it imports none of tinynet's other modules except the
observers. Tensor's operators (`+`, `@`, `.sum()`, ...) call the ops, which build on this module,
so they are attached in tinynet.tensor_methods.
"""
import contextlib
import copy
import math
import sys
import weakref

import numpy as np

from .observers import backward_observers
from .versions import TrackedArray, Version, plain, tracked


def as_array(data, dtype=None) -> np.ndarray:
    """A C-ordered float array: float32 unless dtype says otherwise or data is a float64 array.

    Integer dtypes are refused rather than promoted: `int_tensor * 0.5` would otherwise truncate.
    """
    if dtype is None:
        is_float64_array = isinstance(data, (np.ndarray, np.generic)) and data.dtype == np.float64
        dtype = np.float64 if is_float64_array else np.float32
    if not np.issubdtype(dtype, np.floating):
        raise TypeError(f"a Tensor holds floating-point numbers, got dtype={np.dtype(dtype)}: use np.float32 or "
                        "np.float64 (integer labels and indices stay NumPy arrays)")
    return np.asarray(data, dtype=dtype, order="C")


def broadcast_axes(grad_shape, shape) -> tuple:
    """The axes of a gradient of grad_shape that un-broadcasting to shape sums over: the leading axes that
    broadcasting added, and those where shape has size 1 and the gradient another size. ValueError when
    grad_shape is not shape broadcast (shape (3, 1) broadcasts to (2, 3, 4): the axes are (0, 2))."""
    extra = len(grad_shape) - len(shape)
    if extra < 0 or any(size not in (1, grad_size) for size, grad_size in zip(shape, grad_shape[extra:])):
        raise ValueError(f"a gradient of shape {tuple(grad_shape)} cannot be summed to shape {tuple(shape)}: "
                         "it is not that shape broadcast")
    return tuple(range(extra)) + tuple(extra + axis for axis, size in enumerate(shape)
                                       if size == 1 and grad_shape[extra + axis] != 1)


def unbroadcast(grad: np.ndarray, shape: tuple) -> np.ndarray:
    """Sum `grad` over the axes that broadcasting added or stretched (broadcast_axes), so it has `shape`."""
    if grad.shape == tuple(shape):  # the common case: nothing was broadcast
        return grad
    return grad.sum(axis=broadcast_axes(grad.shape, shape), keepdims=True).reshape(shape)


class Tensor:
    """An n-dimensional float array that can remember how it was computed.

    `Tensor(data, requires_grad=False, dtype=None)`: float32 unless `data` is float64 or
    `dtype` is given. After `loss.backward()`, every leaf tensor with `requires_grad` holds
    d loss / d tensor in `.grad` (same shape as `.data`), accumulated over backward calls.

    A NumPy array that already has the tensor's dtype is used as it is, not copied (like
    torch.from_numpy): writing into `tensor.data` writes into that array. nn.Parameter
    copies its values, so an optimizer step never changes the caller's array. Writes through
    `tensor.data` are counted (see tinynet.versions), so that backward never uses an array an op
    saved after it was changed.
    """

    __array_priority__ = 100  # so `ndarray * Tensor` calls Tensor.__rmul__
    retains_grad = False  # a non-leaf keeps .grad only after retain_grad()
    _hooks = ()
    _version = None  # a Version once something writes (or views) this tensor's memory; until then at count 0
    tangent = tangent_level = None  # forward mode: d self along a jvp's direction, and that jvp (tinynet.function)
    in_graph = None  # for a tensor an op made, its GraphTensor: what the graph holds in its place (see below)

    def __init__(self, data, requires_grad=False, dtype=None):
        self._data = as_array(data, dtype)
        self.requires_grad = bool(requires_grad)
        self.grad = None
        self.node = None

    @property
    def data(self) -> np.ndarray:
        """The values, as an array that shares the tensor's memory: writing into it writes into the tensor, and is
        counted in its version (a TrackedArray), so that backward never reads an array an op saved after it changed.
        Assigning `tensor.data = array` gives the tensor that array instead (no copy)."""
        return tracked(self)

    @data.setter
    def data(self, array):
        if isinstance(array, TrackedArray) and array.viewed is self._data:
            return  # `x.data += 1` assigns back the very array it wrote into (its write is counted)
        self._data = plain(array)

    @property
    def version(self) -> Version:
        """The Version of this tensor's memory (shared with the tensors that view it, and with its GraphTensor)."""
        if self._version is None:
            vertex = graph_vertex(self)
            if vertex._version is None:
                vertex._version = Version()
            self._version = vertex._version
        return self._version

    def written_in_place(self, where=None):
        """Count a write into this tensor's memory made without going through `.data` (an optimizer's step), at
        where ('file:line in function'; default: the user's code running now)."""
        self.version.bump(where)

    # ---- basic properties -------------------------------------------------------------
    @property
    def shape(self):
        return self._data.shape

    @property
    def ndim(self):
        return self._data.ndim

    @property
    def size(self):
        return self._data.size

    @property
    def dtype(self):
        return self._data.dtype

    @property
    def is_leaf(self):
        return self.node is None

    def __len__(self):
        return len(self._data)

    def numel(self): return self.size
    def dim(self): return self.ndim
    def tolist(self): return self._data.tolist()

    def __repr__(self):
        grad = ", requires_grad=True" if self.requires_grad else ""
        return f"Tensor({np.array2string(self._data, precision=4, threshold=20)}{grad})"

    def numpy(self) -> np.ndarray:
        """The values, sharing the tensor's memory (no copy): `.data`."""
        return self.data

    def item(self) -> float:
        """The value of a one-element tensor as a Python float."""
        return self._data.item()

    def detach(self) -> "Tensor":
        """The same values, cut from the graph (shares memory, and so its version, with self)."""
        detached = Tensor.__new__(Tensor)
        detached._data, detached.requires_grad, detached.grad, detached.node = self._data, False, None, None
        detached._version = self.version
        return detached

    # ---- reverse mode -----------------------------------------------------------------
    def retain_grad(self):
        """Keep this tensor's gradient in `.grad` after backward, although an op made it."""
        if not self.requires_grad:
            raise RuntimeError("retain_grad() on a tensor that does not require grad")
        vertex = graph_vertex(self)
        self.retains_grad = vertex.retains_grad = True
        if vertex is not self:
            vertex.tensor = weakref.ref(self)  # where backward puts the gradient, while self lives

    def register_hook(self, hook) -> "HookHandle":
        """Call hook(grad) when backward has this tensor's whole gradient; a returned array replaces it.

        The replacement flows on to the tensor's parents (and into `.grad` for a leaf). Returns a
        handle whose remove() unregisters the hook. In a create_graph backward, grad is a Tensor.
        """
        if not self.requires_grad:
            raise RuntimeError("register_hook() on a tensor that does not require grad")
        return HookHandle.added(graph_vertex(self), hook)  # in the graph: it runs even after the user drops self

    def backward(self, grad=None, retain_graph=None, create_graph=False):
        """Accumulate d self / d leaf into every leaf's `.grad`.

        grad: d loss / d self, same shape as self; may be omitted when self has one element.
        create_graph: record the reverse pass as a graph, so that gradients can be differentiated
        again; `.grad` then holds Tensors (optimizers want arrays: for a gradient penalty, take it
        with `tn.grad(..., create_graph=True)`). retain_graph: PyTorch's argument, accepted; tinynet
        never frees a graph, so backward may always run again.
        """
        backpropagate([self], [grad], create_graph)

    def zero_(self):
        """Set every value to 0, in place; returns self."""
        self._data[...] = 0
        self.written_in_place()
        return self

    def requires_grad_(self, requires_grad=True):
        """Set requires_grad in place; returns self."""
        self.requires_grad = bool(requires_grad)
        return self


class GraphTensor(Tensor):
    """What the graph holds in place of a tensor an op made: its node, shape, dtype, version and hooks, not its values.

    Children's nodes list it among their parents, and backward runs on it; the tensor the user holds points to it
    (`in_graph`), it only weakly back, so the values go when the user drops the tensor, unless an op saved them for
    its backward (then they are still reachable here, as a double backward needs: see differentiable_context).
    `.grad` is the user's tensor's, reached by a weak reference that retain_grad() sets (`tensor`), while it lives.
    The Version is made at the first write or view, as a Tensor's, and shared (Tensor.version).
    """

    tensor = None  # a weak reference to the user's tensor, set by its retain_grad()

    def __init__(self, tensor):
        values = tensor._data  # an array, or a NumPy scalar that some forwards give: too small to matter, kept
        self.node, self.requires_grad, self._version = tensor.node, True, tensor._version
        self._shape, self._dtype = values.shape, values.dtype
        self._values = weakref.ref(values) if isinstance(values, np.ndarray) else lambda: values

    @property
    def _data(self):
        values = self._values()
        if values is None:
            raise RuntimeError(f"the values of this {self.node.op.__name__} output (shape {self._shape}) were not "
                               "kept: no op saved them for backward, and the tensor that held them is gone; keep a "
                               "reference to the tensor to read them")
        return values

    @property
    def shape(self):
        return self._shape

    @property
    def ndim(self):
        return len(self._shape)

    @property
    def size(self):
        return math.prod(self._shape)  # np.prod would cost ~5 us a call, and backward's seed asks for it

    @property
    def dtype(self):
        return self._dtype

    def __len__(self):
        return self._shape[0]

    def __repr__(self):
        return f"GraphTensor({self.node.op.__name__} output, shape={self._shape}, dtype={self._dtype})"

    @property
    def grad(self):
        tensor = self.tensor and self.tensor()
        return None if tensor is None else tensor.grad

    @grad.setter
    def grad(self, value):
        tensor = self.tensor and self.tensor()
        if tensor is not None:  # nobody can read the gradient of a tensor that is gone
            tensor.grad = value


def graph_vertex(tensor):
    """What the graph holds for tensor: its GraphTensor if an op made it and recorded a graph, else tensor itself."""
    return tensor if tensor.in_graph is None else tensor.in_graph


def values_if_alive(tensor):
    """tensor's values, or None for a GraphTensor whose values nothing keeps alive any more."""
    return tensor._values() if isinstance(tensor, GraphTensor) else tensor._data


def backpropagate(outputs, grads, create_graph=False, captured=None):
    """The reverse pass, shared by backward and grad: d loss / d output for each of outputs, sent back.

    grads: one per output (None: ones, for a one-element output). Tensors are visited in reverse
    topological order, so each one's gradient is complete when its turn comes; its op's VJP then
    sends a gradient to each parent (checked to fit it), where it is ADDED. Around that loop, each a named step: hooks
    may replace a gradient, `.grad` receives it (leaves, and tensors that retain_grad) unless
    captured, {id(tensor): None}, asks for it instead (tn.grad), and observers watch each step.
    create_graph: gradients are Tensors and the VJPs record a graph (see tinynet.function).
    """
    pending = {}
    outputs = [graph_vertex(output) for output in outputs]  # backward runs on what the graph holds
    for output, grad in zip(outputs, grads):
        add_gradient(pending, output, seed_gradient(output, grad, create_graph))
    for tensor in reversed(topological_order(outputs)):
        if id(tensor) in pending:
            step_back(tensor, pending.pop(id(tensor)), pending, create_graph, captured)


def step_back(tensor, grad_out, pending, create_graph, captured):
    """tensor's turn in the reverse pass, its gradient grad_out complete: hooks, .grad, its op's VJP, observers, and
    each parent's share added to pending. (A function of its own: when it returns, nothing of the reverse pass
    refers to the arrays it handled, which is what lets keep_gradient tell a fresh gradient from a shared one.)"""
    grad_out = run_hooks(tensor, grad_out, create_graph)
    keep_gradient(tensor, grad_out, captured)
    parent_grads = vector_jacobian_product(tensor, grad_out, create_graph)
    notify_backward_observers(tensor, grad_out, parent_grads, create_graph)
    for parent, parent_grad in zip(tensor.node.parents if tensor.node else (), parent_grads or ()):
        if parent_grad is not None and parent.requires_grad:
            add_gradient(pending, parent, unbroadcast(parent_grad, parent.shape))


def add_gradient(pending, tensor, grad):
    """pending[id(tensor)] += grad (a new sum, never in place: the same array may go to several parents)."""
    key = id(tensor)
    pending[key] = grad if key not in pending else pending[key] + grad


def run_hooks(tensor, grad_out, create_graph):
    """grad_out after tensor's hooks (register_hook), each of which may return a replacement."""
    for hook in tensor._hooks:
        replaced = hook(grad_out)
        grad_out = grad_out if replaced is None else as_gradient(replaced, tensor.dtype, create_graph)
    return grad_out


def keep_gradient(tensor, grad_out, captured):
    """Give tensor its complete gradient: into captured for tn.grad, else added into .grad of a leaf or
    of a tensor that retains its gradient.

    A first .grad is a copy: one gradient array may reach several tensors (Add hands grad_out to both its
    parents, and backward(grad) starts from the caller's array), and writing into one tensor's .grad must not
    change another's (PyTorch copies too), unless nothing else can reach it (see unshared). Under create_graph,
    gradients are Tensors, which no op writes into.
    """
    if captured is not None:
        if id(tensor) in captured:
            captured[id(tensor)] = grad_out
    elif tensor.node is None or tensor.retains_grad:
        if tensor.grad is not None:
            tensor.grad = tensor.grad + grad_out
        elif isinstance(grad_out, Tensor) or (sys.getrefcount(grad_out) <= FRESH_REFERENCES and unshared(tensor,
                                                                                                         grad_out)):
            tensor.grad = grad_out
        else:
            tensor.grad = grad_out.copy()


def _references_of_a_fresh_argument():
    """sys.getrefcount of an object that only the calls step_back -> keep_gradient refer to, measured on this
    interpreter (whether a call adds a reference to its arguments depends on the Python version)."""
    def keep(argument):
        return sys.getrefcount(argument)

    def step(argument):
        return keep(argument)

    return step(object())


FRESH_REFERENCES = _references_of_a_fresh_argument()


def unshared(tensor, array) -> bool:
    """Whether array, which only the reverse pass refers to, can become tensor's .grad without a copy: a writeable
    plain array owning its memory (no view of another gradient), with no hook or backward observer around that
    could have kept it. PyTorch takes such a gradient as it is too; seed 004's fc weight gradient is 139 MB."""
    return (type(array) is np.ndarray and array.base is None and array.flags.writeable and not tensor._hooks
            and not backward_observers)


def vector_jacobian_product(tensor, grad_out, create_graph):
    """The gradients tensor's op sends to its parents (one per parent, or None), checked; None for a leaf."""
    if tensor.node is None:
        return None
    if tensor.node.writes_seen != Version.writes:  # something was written in place since the op ran
        check_saved_arrays_unchanged(tensor)
    ctx = differentiable_context(tensor) if create_graph else tensor.node.ctx
    grad_out = read_only_view(grad_out) if _grad_out_read_only else grad_out
    return checked_gradients(tensor, tensor.node.op.backward(ctx, grad_out))


def check_saved_arrays_unchanged(tensor):
    """Raise if an array tensor's op saved for backward (an input's or tensor's own) was written in place since the op
    ran: its VJP would compute the gradient of another computation. The error names the op, the array, and where
    the last write came from (see tinynet.versions)."""
    node = tensor.node
    for k, saved in enumerate((*node.parents, tensor)):
        version = saved._version
        if version is not None and version.last_number > node.writes_seen and was_saved(node.ctx, saved):
            which = f"input {k}" if k < len(node.parents) else "output"
            raise RuntimeError(f"{op_description(node)} saved its {which} (shape {saved.shape}) for backward, but it "
                               f"was changed in place afterwards (last written at {version.last_write}): its gradient "
                               "would use the changed values. Run the forward again after changing it, or change a "
                               "copy (x.data.copy())")


def was_saved(ctx, tensor) -> bool:
    """Whether ctx holds tensor's memory for backward: one of its saved arrays, or an array attribute, shares it.
    Saves are looked at as kept (ctx.saved_for_backward): a saved_tensors_hooks pack made a copy or a file, which
    no write into tensor changes, and unpacking them here would only read them back."""
    values = values_if_alive(tensor)
    if values is None:  # nothing holds them, so no ctx does
        return False
    held = [*ctx.saved_for_backward, *vars(ctx).values()]
    return any(isinstance(array, np.ndarray) and np.may_share_memory(array, values) for array in held)


def checked_gradients(tensor, parent_grads):
    """parent_grads, which tensor's op returned, once each is known to fit its parent: one gradient (or None) per
    input, of the input's shape or that shape broadcast, and of the input's dtype, or of the output's when the op
    promoted a mixed-dtype input (then cast back to the input's, as PyTorch does). Anything else raises a
    RuntimeError naming the op, its call site, the input and both shapes or dtypes (PyTorch's engine checks too)."""
    node = tensor.node
    if not isinstance(parent_grads, (tuple, list)):
        raise RuntimeError(f"{op_description(node)} returned an object of type {type(parent_grads).__name__}, not a "
                           "tuple: a VJP returns a tuple of one gradient (or None) per input, (grad,) for one")
    if len(parent_grads) != len(node.parents):
        raise RuntimeError(f"{op_description(node)} returned {plural(len(parent_grads), 'gradient')} for "
                           f"{plural(len(node.parents), 'input')}: a VJP returns one gradient (or None) per input")
    for k, (parent, grad) in enumerate(zip(node.parents, parent_grads)):
        if grad is None or not parent.requires_grad:
            continue
        if grad.shape != parent.shape:
            try:
                broadcast_axes(grad.shape, parent.shape)
            except ValueError:
                raise RuntimeError(f"{op_description(node)} returned a gradient of shape {grad.shape} for its input "
                                   f"{k} of shape {parent.shape}: a VJP returns one gradient per input, of the input's "
                                   "shape (or the output's broadcast shape, which backward sums back)") from None
        if grad.dtype != parent.dtype:
            if grad.dtype != tensor.dtype:
                raise RuntimeError(f"{op_description(node)} returned a gradient of dtype {grad.dtype} for its input "
                                   f"{k} of dtype {parent.dtype}: a VJP returns each gradient in its input's dtype "
                                   f"(or in the output's, {tensor.dtype}, which backward casts back)")
            parent_grads = (*parent_grads[:k], grad.to(parent.dtype) if isinstance(grad, Tensor)
                            else grad.astype(parent.dtype), *parent_grads[k + 1:])
    return parent_grads


def plural(count, noun) -> str:
    """'1 gradient', '2 gradients'."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def op_description(node) -> str:
    """'Mul', or 'Mul (called at demo.py:3 in main)' when a tool (detect_anomaly, tracing) recorded the call site."""
    name = node.op.__name__
    return name if node.call_site is None else f"{name} (called at {node.call_site})"


_grad_out_read_only = False  # read_only_grad_out() turns it on


@contextlib.contextmanager
def read_only_grad_out():
    """Inside this block every VJP receives grad_out as a read-only view, so one that writes into it raises
    (grad_out may be the very array another parent received, e.g. from Add). tn.detect_anomaly turns it on,
    and the tests do throughout. It is off otherwise: the view costs about half a microsecond per op."""
    global _grad_out_read_only
    previous, _grad_out_read_only = _grad_out_read_only, True
    try:
        yield
    finally:
        _grad_out_read_only = previous


def read_only_view(grad_out):
    """grad_out as a view that refuses writes, if it is an array (a Tensor in a create_graph backward as it is)."""
    if not isinstance(grad_out, np.ndarray):
        return grad_out
    view = grad_out.view()
    view.flags.writeable = False
    return view


def notify_backward_observers(tensor, grad_out, parent_grads, create_graph):
    """Tell each observer (observe_backward) about this step, with arrays even in a create_graph backward."""
    for observer in backward_observers:
        if create_graph:
            observer(tensor, values_of(grad_out), parent_grads and tuple(map(values_of, parent_grads)))
        else:
            observer(tensor, grad_out, parent_grads)


def seed_gradient(output, grad, create_graph):
    """d loss / d output where backward starts: grad checked against output's shape, or ones for one element.

    An array, or a Tensor when create_graph (a Tensor grad given then keeps its own graph).
    """
    if not output.requires_grad:
        raise RuntimeError("backward() on a tensor that does not require grad: "
                           "no input of the computation had requires_grad=True")
    if grad is None:
        if output.size != 1:
            raise RuntimeError(f"backward() without a grad needs a one-element tensor, got shape {output.shape}; "
                               "pass grad= of the same shape")
        ones = np.ones(output.shape, output.dtype)  # of output's shape and dtype: nothing to check
        return Tensor(ones) if create_graph else ones
    grad = as_gradient(grad, output.dtype, create_graph)
    if grad.shape != output.shape:
        raise ValueError(f"grad has shape {grad.shape}, expected {output.shape}")
    return grad


def as_gradient(grad, dtype, create_graph):
    """grad (array, number or Tensor) as backward carries it: a Tensor when create_graph, else an array."""
    if create_graph:
        return grad if isinstance(grad, Tensor) else Tensor(as_array(grad, dtype))
    return as_array(values_of(grad), dtype)


def values_of(value):
    """A Tensor's array; anything else (an array, a scalar, a gradient backward passed as an array) as it is."""
    return value._data if isinstance(value, Tensor) else value


def differentiable_context(tensor):
    """The ctx of tensor's op with its saved inputs and output as their Tensors: backward on it records a graph."""
    node = tensor.node
    if getattr(node.op.backward, "once_differentiable", False):
        raise RuntimeError(f"{node.op.__name__} has no double backward: create_graph=True cannot differentiate "
                           "its gradient (first-order backward works; see tinynet.function)")
    if node.ctx.unpack is not None:
        raise RuntimeError(f"{node.op.__name__} saved its arrays through saved_tensors_hooks, so a double backward "
                           "cannot find the saved inputs to differentiate through: run the forward outside "
                           "saved_tensors_hooks for create_graph=True")
    ctx = copy.copy(node.ctx)
    ctx.saved_tensors = tuple(saved_tensor(node, tensor, array) for array in node.ctx.saved_tensors)
    return ctx


def saved_tensor(node, output, array):
    """The Tensor among node's inputs and output whose array forward saved (None for None)."""
    if array is None:
        return None
    for candidate in (*node.parents, output):
        if candidate is not None and values_if_alive(candidate) is array:
            return candidate
    raise RuntimeError(f"{node.op.__name__}.forward saved an array that is neither one of its inputs nor its output "
                       "(or one changed since): save_for_backward keeps those, which a double backward differentiates "
                       "through; keep another array as a ctx attribute, a constant to a double backward, or mark the "
                       "backward @once_differentiable")


def topological_order(outputs):
    """The tensors that outputs (a list) depend on, requiring grad, each after all its parents.

    Iterative depth-first search, so deep graphs (long RNN-like chains) do not hit Python's
    recursion limit. The parents are as the graph holds them (a GraphTensor for a tensor an op made).
    """
    order, visited = [], set()
    stack = [(output, False) for output in reversed(outputs)]
    while stack:
        tensor, parents_done = stack.pop()
        if parents_done:
            order.append(tensor)
            continue
        if id(tensor) in visited:
            continue
        visited.add(id(tensor))
        stack.append((tensor, True))
        if tensor.node is not None:
            stack.extend((parent, False) for parent in tensor.node.parents
                         if parent.requires_grad and id(parent) not in visited)
    return order


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False, allow_unused=False):
    """d outputs / d inputs, one gradient per input, as torch.autograd.grad; no `.grad` is changed.

    outputs, inputs: a Tensor or a sequence of them. grad_outputs: d loss / d output for each output
    (None: ones, for one-element outputs), so the result is the VJP sum_k grad_outputs[k] d outputs[k] / d input.
    create_graph: the gradients are recorded as a graph, to be differentiated again (Hessian-vector
    products, gradient penalties). An input the outputs do not depend on raises, unless allow_unused
    (its gradient is then None). retain_graph: accepted (tinynet never frees a graph).
    """
    outputs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    inputs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    if grad_outputs is None or isinstance(grad_outputs, (Tensor, np.ndarray)):
        grad_outputs = [grad_outputs] * len(outputs) if grad_outputs is None else [grad_outputs]
    if len(grad_outputs) != len(outputs):
        raise ValueError(f"grad_outputs has {len(grad_outputs)} entries for {len(outputs)} outputs")
    received = {id(graph_vertex(x)): None for x in inputs}
    backpropagate(outputs, grad_outputs, create_graph, captured=received)
    grads = []
    for k, x in enumerate(inputs):
        found = received[id(graph_vertex(x))]
        if found is None and not allow_unused:
            raise RuntimeError(f"input {k} (shape {x.shape}) is not used to compute the outputs, or does not require "
                               "grad: pass allow_unused=True to get None for it")
        grads.append(found if found is None or isinstance(found, Tensor) else Tensor(found))
    return grads


class HookHandle:
    """What register_hook (and Module.register_forward_hook, Optimizer.register_step_pre_hook and
    register_step_post_hook) return: remove() takes the hook out of the owner's tuple of hooks, `attribute`."""

    def __init__(self, owner, hook, attribute="_hooks"):
        self.owner, self.hook, self.attribute = owner, hook, attribute

    @classmethod
    def added(cls, owner, hook, attribute="_hooks") -> "HookHandle":
        """hook appended to owner's tuple of hooks `attribute`, and the handle that takes it out again."""
        setattr(owner, attribute, getattr(owner, attribute) + (hook,))
        return cls(owner, hook, attribute)

    def remove(self):
        setattr(self.owner, self.attribute, tuple(h for h in getattr(self.owner, self.attribute) if h is not self.hook))


def as_tensors(*values) -> list:
    """values as Tensors: a Tensor (or None, an absent input) as it is, a constant (number or array)
    with the Tensors' dtype."""
    return [x if x is None or isinstance(x, Tensor) else Tensor(x, dtype=_constant_dtype(x, values)) for x in values]


def _constant_dtype(constant, inputs):
    """A Python number or array mixed with tensors takes the tensors' float dtype."""
    dtypes = [x.dtype for x in inputs if isinstance(x, Tensor)]
    return np.result_type(*dtypes) if dtypes else None

