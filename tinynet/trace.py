"""See backprop happen: record every step of a backward pass, print it, or step through it in a browser.

    with tn.tracing() as trace:        # records where each op was called, then every backward step
        loss = model(x)
        loss.backward()
    print(trace)                       # one block per step, in the order backward took them
    trace.save_html("backward.html")   # the graph, with next / previous through the steps

`tn.trace(loss)` runs loss.backward() and returns its trace (without the forward's call sites).
Each node shows what its op saved for backward and its bytes, and what its op's backward sends each input as a
formula (the op's vjp_formulas, g = grad_out); each step, the bytes that the steps still to come need
(tinynet.memory: each byte counted once), falling to 0 as backward finishes. A tensor whose value is
image-shaped (a feature map, a batch of images, a matrix) carries a small heatmap of its value, and its step one of
grad_out (tinynet.heatmap). The graph does not keep the values of the tensors ops made
(tinynet.tensor.GraphTensor): `tn.tracing()` keeps them from the forward it watches; `tn.trace(loss)`, which
watches no forward, shows the values still alive (saved by an op, or held by the caller).
Where a tensor is an input several times (of several ops, or twice of one: a + a), its step writes its gradient
as the chain rule's sum of what each use sent.
A trace only observes the graph core (tinynet.observers.observe_forward / observe_backward): the
backward that runs is the ordinary one, and the leaf gradients it records are the `.grad` it fills.
"""
import contextlib
from dataclasses import dataclass, field

import numpy as np

from .function import Function
from .heatmap import heatmap
from .memory import SavedMemory, megabytes, saved_arrays, saved_bytes
from .observers import observe_backward, observe_forward
from .recorder import remember_call_site
from .tensor import broadcast_axes, unbroadcast, values_if_alive, values_of
from .trace_html import render

SHOWN_WHOLE = 16  # arrays with at most this many elements are shown whole; larger ones summarized


def summarize(array) -> dict:
    """A JSON-ready description of an array: shape, dtype, norm, and its values (all, or the first few)."""
    array = np.asarray(array)
    shown = array if array.size <= SHOWN_WHOLE else array.ravel()[:4]
    norm = float(np.linalg.norm(array.ravel().astype(np.float64))) if array.size else 0.0
    return {"shape": list(array.shape), "dtype": str(array.dtype), "size": int(array.size),
            "norm": _json_number(norm), "values": [_json_number(v) for v in shown.astype(np.float64).ravel()],
            "whole": bool(array.size <= SHOWN_WHOLE)}


def _json_number(value):
    """value as a float JSON can hold, or the strings 'nan', 'inf', '-inf' (JSON has no such numbers)."""
    return float(value) if np.isfinite(value) else str(float(value))


def describe(summary) -> str:
    """One line for a summarize() result: the values, or shape + norm + the first values."""
    values = np.array(summary["values"], dtype=np.float64)
    if summary["whole"]:
        return np.array2string(values.reshape(summary["shape"]), precision=4, separator=", ").replace("\n", "")
    first = ", ".join(f"{v:.4g}" for v in values)
    return f"shape {tuple(summary['shape'])}, norm {float(summary['norm']):.4g}, first values [{first}, ...]"


def vjp_formulas(op) -> list:
    """[[input name, what op's backward sends that input]] from op.vjp_formulas, or None when op has none."""
    return [[name, formula] for name, formula in op.vjp_formulas.items()] if op.vjp_formulas else None


def formula_catalogue() -> list:
    """Every formula of every op class defined so far (Function's subclasses, recursively), sorted, each once."""
    found, classes = set(), [Function]
    while classes:
        op = classes.pop()
        classes.extend(op.__subclasses__())
        found.update((op.vjp_formulas or {}).values())
    return sorted(found)


def formula_for(node, position) -> str:
    """'x: g @ weight', what node's op sends its input number `position`; 'see Op.backward' where it has none."""
    formulas = node["formulas"]
    if formulas is None or position >= len(formulas):
        return f"see {node['op']}.backward"
    return ": ".join(formulas[position])


def counted_steps(indices) -> str:
    """'step 3 (2 times), step 5' for the steps [3, 3, 5] that sent a tensor contributions."""
    counts = {}
    for index in indices:
        counts[index] = counts.get(index, 0) + 1
    return ", ".join(f"step {index}" + (f" ({count} times)" if count > 1 else "") for index, count in counts.items())


@dataclass
class Step:
    """One step of backward: the tensor whose gradient is complete, and what its op sent to each parent."""

    index: int
    tensor: int
    op: str
    call_site: str
    grad_out: dict
    contributions: list
    to_parents: list = field(default_factory=list)
    leaf_grad: dict = None
    heatmap: dict = None  # of grad_out, when it is image-shaped (tinynet.heatmap)
    saved_bytes_needed: int = 0  # saved by the nodes whose steps are still to come, each byte once


class Trace:
    """The graph of one backward pass and its steps, numbered in the order backward took them.

    nodes: {number: {"label", "op", "shape", "dtype", "parents", "call_site", "saved", "saved_bytes", "leaf",
    "requires_grad", "formulas": [[input name, formula]] or None, "heatmap": of its value, when image-shaped}}.
    steps: [Step], each parent's entry of
    to_parents naming which input of the op it was ("input": its position, so a + a shows both).
    names: optional {tensor: name} for leaves (e.g. dict(model.named_parameters())).
    saved_bytes: what the graph's nodes saved for backward when it began (each byte once).
    """

    def __init__(self, names=None):
        self.nodes, self.steps, self.saved_bytes = {}, [], 0
        self._memory = SavedMemory()
        self._numbers, self._tensors, self._contributions = {}, [], {}
        self._values = {}  # id(GraphTensor) -> (it, the values of its tensor), kept from the forward (_keep_value)
        self._names = {id(tensor): name for name, tensor in (names or {}).items()}

    # ---- recording (called by the graph core's observers) ----------------------------
    def _number(self, tensor) -> int:
        """The tensor's node number, adding it and its unseen ancestors (parents first) on first sight."""
        stack = [tensor]
        while stack:
            top = stack[-1]
            unseen = [p for p in (top.node.parents if top.node else []) if id(p) not in self._numbers]
            if unseen:
                stack.extend(reversed(unseen))  # so the first parent is numbered first
                continue
            stack.pop()
            if id(top) not in self._numbers:
                self._add_node(top)
        return self._numbers[id(tensor)]

    def _add_node(self, tensor):
        number = self._numbers[id(tensor)] = len(self.nodes)
        self._tensors.append(tensor)  # keeps ids unique while the trace lives
        node = tensor.node
        if node is not None:
            self._memory.hold(node)
        label = node.op.__name__ if node else "leaf" if tensor.requires_grad else "const"
        self.nodes[number] = {
            "label": self._names.get(id(tensor), label), "op": node.op.__name__ if node else None,
            "shape": list(tensor.shape), "dtype": str(tensor.dtype),
            "parents": [self._numbers[id(p)] for p in node.parents] if node else [],
            "call_site": (node.call_site if node else None) or "",
            "saved": {name: summarize(array) for name, array in saved_arrays(node.ctx).items()} if node else {},
            "saved_bytes": saved_bytes(node) if node else 0,
            "leaf": node is None, "requires_grad": tensor.requires_grad,
            "formulas": vjp_formulas(node.op) if node else None, "heatmap": heatmap(self._value_of(tensor))}

    def _keep_value(self, op, ctx, inputs, params, out):
        """A forward observer: keep the values of out, which the graph does not, for its node's heatmap."""
        if out.in_graph is not None:
            self._values[id(out.in_graph)] = (out.in_graph, out._data)

    def _value_of(self, tensor):
        """tensor's values, kept from the forward or still alive; None when they are gone."""
        kept = self._values.get(id(tensor))
        return kept[1] if kept is not None else values_if_alive(tensor)

    def _record_step(self, tensor, grad_out, parent_grads):
        number = self._number(tensor)
        if not self.steps:
            self.saved_bytes = self._memory.total
        if tensor.node is not None:
            self._memory.release(tensor.node)
        step = Step(len(self.steps) + 1, number, self.nodes[number]["label"], self.nodes[number]["call_site"],
                    summarize(grad_out), self._contributions.pop(number, []), heatmap=heatmap(grad_out))
        if parent_grads is None:
            if tensor.grad is not None:  # tn.grad leaves .grad alone; a create_graph backward makes it a Tensor
                step.leaf_grad = summarize(values_of(tensor.grad))
        else:
            for position, (parent, raw) in enumerate(zip(tensor.node.parents, parent_grads)):
                if raw is None or not parent.requires_grad:
                    continue
                parent_number = self._number(parent)
                step.to_parents.append({"parent": parent_number, "input": position,
                                        "grad": summarize(unbroadcast(raw, parent.shape)),
                                        "summed_axes": list(broadcast_axes(np.shape(raw), parent.shape)),
                                        "from_shape": list(np.shape(raw))})
                self._contributions.setdefault(parent_number, []).append(step.index)
        step.saved_bytes_needed = self._memory.total
        self.steps.append(step)

    # ---- reading ------------------------------------------------------------------------
    @property
    def leaf_grads(self) -> dict:
        """{node number: the leaf's .grad summary} as the last step that reached each leaf left it."""
        return {step.tensor: step.leaf_grad for step in self.steps if step.leaf_grad is not None}

    def __str__(self):
        lines = [f"backward through {len(self.steps)} steps ({len(self.nodes)} tensors in the graph, "
                 f"{megabytes(self.saved_bytes)} saved for backward)"]
        for step in self.steps:
            node = self.nodes[step.tensor]
            inputs = ", ".join(f"t{p} {tuple(self.nodes[p]['shape'])} {self.nodes[p]['dtype']}"
                               for p in node["parents"])
            made = f"t{step.tensor} = {node['op']}({inputs})" if node["op"] else f"t{step.tensor} ({node['label']})"
            lines.append(f"step {step.index}: {made}  {tuple(node['shape'])} {node['dtype']}"
                         + (f"  at {step.call_site}" if step.call_site else ""))
            if len(step.contributions) > 1:
                lines.append(f"    grad_out is the sum of {len(step.contributions)} contributions (accumulation), "
                             f"sent at {counted_steps(step.contributions)}")
                lines.append(f"    chain rule: {self.chain_rule_sum(step)}")
            lines.append(f"    grad_out: {describe(step.grad_out)}")
            for name, saved in node["saved"].items():
                lines.append(f"    saved {name}: {describe(saved)}")
            if node["saved"]:
                lines.append(f"    saved {megabytes(node['saved_bytes'])}; the steps still to come need "
                             f"{megabytes(step.saved_bytes_needed)} of what was saved")
            for sent in step.to_parents:
                summed = (f"  (summed over axes {tuple(sent['summed_axes'])} of {tuple(sent['from_shape'])})"
                          if sent["summed_axes"] else "")
                lines.append(f"    -> t{sent['parent']} ({formula_for(node, sent['input'])}): "
                             f"{describe(sent['grad'])}{summed}")
            if step.leaf_grad is not None:
                lines.append(f"    .grad is now {describe(step.leaf_grad)}")
        return "\n".join(lines)

    def chain_rule_sum(self, step) -> str:
        """'grad t0 = g from t1 (Add, input a) + g from t1 (Add, input b)': the terms step's gradient adds up."""
        terms = []
        for index in dict.fromkeys(step.contributions):  # each sending step once, in order
            child = self.steps[index - 1]
            names = self.nodes[child.tensor]["formulas"] or []
            for sent in child.to_parents:
                if sent["parent"] == step.tensor:
                    named = f", input {names[sent['input']][0]}" if sent["input"] < len(names) else ""
                    terms.append(f"g from t{child.tensor} ({self.nodes[child.tensor]['op']}{named})")
        return f"grad t{step.tensor} = " + " + ".join(terms)

    def to_json(self) -> dict:
        """The whole trace as plain data (what the HTML page draws), with every op's formula (for predict mode)."""
        return {"nodes": self.nodes, "steps": [vars(step) for step in self.steps], "saved_bytes": self.saved_bytes,
                "formula_catalogue": formula_catalogue()}

    def to_html(self, title="backward, step by step") -> str:
        """A self-contained page (inline SVG and script, nothing fetched) to step through this backward."""
        return render(self.to_json(), title)

    def save_html(self, path, title="backward, step by step"):
        """Write to_html(title) to path."""
        with open(path, "w", encoding="utf-8") as file:
            file.write(self.to_html(title))


@contextlib.contextmanager
def tracing(names=None):
    """Inside this block, record each op's call site and every backward step; yields the Trace.

    names: optional {name: tensor} for the leaves, e.g. dict(model.named_parameters()).
    """
    recorded = Trace(names)
    with observe_forward(remember_call_site), observe_forward(recorded._keep_value), \
            observe_backward(recorded._record_step):
        yield recorded


def trace(loss, grad=None, names=None) -> Trace:
    """Run loss.backward(grad) and return the Trace of its steps."""
    recorded = Trace(names)
    with observe_backward(recorded._record_step):
        loss.backward(grad)
    return recorded
