"""What backward keeps alive: the bytes each op saved for its backward, and two ways to keep fewer.

    print(tn.memory_report(loss))                       # the largest savers, by op and call site
    print(tn.memory_report(lambda: loss_fn(model(x))))  # the same, with call sites: the forward runs here

What a node saved is everything its ctx holds for backward: `ctx.saved_tensors`, array attributes
(ReLU's mask, max pool's argmax) and arrays inside objects ctx keeps (Conv2d's ctx.plan may keep FFT
spectra). `saved_bytes(node)` counts them. An array often shares memory with another (Add saves
nothing, Tanh saves its output, which the next op saves again as its input; Flatten's output is a
view): sums here count each byte of memory once, by the address range of each array (byte_bounds;
a strided view counts its whole extent). So the rows of a report may add up to more than its total.

What the graph keeps alive is what was saved and the leaves (parameters, inputs), which the user holds
anyway: a node holds the tensors ops made only as GraphTensors (tinynet.tensor), without their values. So an
intermediate value that no op saved is freed once the user drops it, and saving in float16
(`saved_in_float16`) or on disk lowers what the graph holds; `tn.checkpoint`, which records no graph inside,
saves only its block's inputs.

Two saved_tensors_hooks (tinynet.saved_hooks) ship here: `saved_in_float16()` and
`saved_on_disk(directory)`.
"""
import contextlib
import os
import tempfile
from dataclasses import dataclass

import numpy as np
from numpy.lib.array_utils import byte_bounds

from .observers import observe_forward
from .recorder import remember_call_site
from .saved_hooks import saved_tensors_hooks
from .tensor import Tensor, topological_order

LOOKS_INTO = 3  # how deep saved_arrays looks into containers and objects that ctx holds


def saved_arrays(ctx) -> dict:
    """{name: array} of everything an op's forward kept for backward, as kept (packed, if it was).

    Names: 'saved_tensors[k]' (or 'saved_tensors[k][...]' inside a packed save), ctx attributes ('positive'),
    and paths into what ctx holds ('plan.kept[x][1]'). needs_input_grad and callables are left out.
    """
    found = {}
    for k, value in enumerate(ctx.saved_for_backward):
        found.update(_arrays_in(value, f"saved_tensors[{k}]", LOOKS_INTO))
    for name, value in vars(ctx).items():
        if name not in ("saved_for_backward", "needs_input_grad"):
            found.update(_arrays_in(value, name, LOOKS_INTO))
    return found


def _arrays_in(value, name, depth) -> dict:
    """{path: array} of the arrays in value: itself, a Tensor's values, or inside containers and plain objects."""
    if isinstance(value, np.ndarray):
        return {name: value}
    if isinstance(value, Tensor):
        return {name: value._data}
    if depth == 0 or callable(value):
        return {}
    if isinstance(value, (tuple, list, dict)):
        items = [(f"{name}[{key}]", item) for key, item in (value.items() if isinstance(value, dict)
                                                             else enumerate(value))]
    elif hasattr(value, "__dict__"):
        items = [(f"{name}.{key}", item) for key, item in vars(value).items()]
    else:
        return {}
    found = {}
    for path, item in items:
        found.update(_arrays_in(item, path, depth - 1))
    return found


def extent(array) -> tuple:
    """(first, last + 1) byte address of array's memory."""
    return byte_bounds(array)


def distinct_bytes(extents) -> int:
    """How many bytes the (first, end) address ranges cover, each byte once."""
    total, reached = 0, None
    for first, end in sorted(extents):
        if reached is None or first >= reached:
            total += end - first
            reached = end
        elif end > reached:
            total += end - reached
            reached = end
    return total


def saved_bytes(node) -> int:
    """Bytes of memory that node's op saved for backward (each byte once; see saved_arrays)."""
    return distinct_bytes(map(extent, saved_arrays(node.ctx).values()))


class SavedMemory:
    """The memory saved by a set of nodes, each byte counted once, while nodes are added and released.

    A trace adds every node of the graph, then releases each one after its backward step: `total` is then
    what the rest of backward still needs (PyTorch frees each node's saved tensors at that point; tinynet
    keeps the whole graph until it is dropped).
    """

    def __init__(self):
        self.held = set()  # ids of the nodes held
        self.holders = {}  # extent -> how many held nodes saved it
        self.total = 0

    def hold(self, node):
        """Count node's saved arrays in (once, however often it is held)."""
        if id(node) not in self.held:
            self.held.add(id(node))
            self._count(node, +1)

    def release(self, node):
        """Count node's saved arrays out, if it was held."""
        if id(node) in self.held:
            self.held.remove(id(node))
            self._count(node, -1)

    def _count(self, node, change):
        for span in {extent(array) for array in saved_arrays(node.ctx).values()}:
            self.holders[span] = self.holders.get(span, 0) + change
            if self.holders[span] == 0:
                del self.holders[span]
        self.total = distinct_bytes(self.holders)


@dataclass
class Row:
    """The nodes of one op called from one place: how many, and the bytes they saved (each byte once)."""
    op: str
    call_site: str
    count: int
    bytes: int
    share: float


class MemoryReport:
    """What a graph saved for backward, by op and call site, largest first.

    rows: [Row]; saved_bytes: all of it, each byte once; of which leaf_bytes are the values of leaves (parameters,
    inputs: alive anyway); held_bytes: what the graph keeps alive besides the leaves' values: the saved arrays
    (the graph holds the tensors ops made without their values, tinynet.tensor.GraphTensor).
    """

    def __init__(self, output):
        tensors = topological_order([output])
        nodes = [t.node for t in tensors if t.node is not None]
        spans = {id(node): [extent(a) for a in saved_arrays(node.ctx).values()] for node in nodes}
        saved = [span for node_spans in spans.values() for span in node_spans]
        leaves = [extent(t._data) for t in _leaves(nodes)]
        self.nodes = len(nodes)
        self.saved_bytes = distinct_bytes(saved)
        self.leaf_bytes = self.saved_bytes + distinct_bytes(leaves) - distinct_bytes(saved + leaves)
        self.held_bytes = distinct_bytes(saved + leaves) - distinct_bytes(leaves)
        groups = {}
        for node in nodes:
            groups.setdefault((node.op.__name__, node.call_site or ""), []).append(node)
        self.rows = []
        for (op, call_site), group in groups.items():
            size = distinct_bytes(span for node in group for span in spans[id(node)])
            self.rows.append(Row(op, call_site, len(group), size, size / max(self.saved_bytes, 1)))
        self.rows.sort(key=lambda row: (-row.bytes, row.op, row.call_site))

    def __str__(self):
        lines = [f"saved for backward: {megabytes(self.saved_bytes)} by {self.nodes} nodes (each byte counted once; "
                 f"{megabytes(self.leaf_bytes)} of it the values of leaves: parameters, inputs)",
                 f"held by the graph besides the leaves' values (the saved arrays): "
                 f"{megabytes(self.held_bytes)}",
                 "", f"{'op':<18} {'count':>5} {'saved':>10} {'share':>6}  call site"]
        lines += [f"{row.op:<18} {row.count:>5} {megabytes(row.bytes):>10} {row.share:>6.1%}  {row.call_site}"
                  for row in self.rows]
        return "\n".join(lines)

    def to_json(self) -> dict:
        return {"nodes": self.nodes, "saved_bytes": self.saved_bytes, "leaf_bytes": self.leaf_bytes,
                "held_bytes": self.held_bytes, "rows": [vars(row) for row in self.rows]}


def _leaves(nodes):
    """The leaf Tensors among nodes' parents."""
    return {id(p): p for node in nodes for p in node.parents if p is not None and p.node is None}.values()


def megabytes(count) -> str:
    """'512 B', '12.3 kB', '4.56 MB', '1.2 GB' (powers of 1000)."""
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if count >= size:
            return f"{count / size:.3g} {unit}"
    return f"{count} B"


def memory_report(output, *args) -> MemoryReport:
    """What the graph behind output saved for backward, by op and call site (see MemoryReport).

    output: a Tensor (call sites shown when its forward ran under tn.tracing or detect_anomaly), or a function,
    called here as output(*args) with each op's call site recorded, whose result is reported.
    """
    if callable(output):
        with observe_forward(remember_call_site):
            output = output(*args)
    return MemoryReport(output)


@contextlib.contextmanager
def saved_in_float16(skip=()):
    """Inside this block, floating-point arrays saved for backward are kept in float16 (4x smaller than float64),
    read back in their own dtype; others (integer labels) as they are. skip: Tensors (parameters) whose values
    are kept as they are: they stay alive anyway, and rounding them only adds error."""
    skipped = {id(t._data) for t in skip}

    def pack(array):
        if id(array) in skipped or not np.issubdtype(array.dtype, np.floating):
            return array
        return HalfPrecision(array.astype(np.float16), array.dtype)

    def unpack(packed):
        return packed.half.astype(packed.dtype) if isinstance(packed, HalfPrecision) else packed

    with saved_tensors_hooks(pack, unpack):
        yield


@dataclass
class HalfPrecision:
    """A saved array rounded to float16, and the dtype to give it back in."""
    half: np.ndarray
    dtype: np.dtype


@contextlib.contextmanager
def saved_on_disk(directory=None):
    """Inside this block, arrays saved for backward go to .npy files in directory (default: the system's temporary
    directory), read back at each use; a file is deleted when the graph that saved it is dropped."""
    def pack(array):
        file = SavedFile(directory)
        np.save(file.path, array, allow_pickle=False)
        return file

    with saved_tensors_hooks(pack, lambda file: np.load(file.path, allow_pickle=False)):
        yield


class SavedFile:
    """A temporary .npy file that is deleted with this object."""

    def __init__(self, directory):
        handle, self.path = tempfile.mkstemp(suffix=".npy", dir=directory)
        os.close(handle)

    def __del__(self):
        with contextlib.suppress(FileNotFoundError):
            os.remove(self.path)
