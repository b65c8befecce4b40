"""What a grading child computes for a task, and how the grader judges it.

A task names a probe kind ("vjp", "graph", "kernel", "network") and lists cases as small TOML tables
(`{op = "elementwise.Mul", shapes = [[3, 1], [4]]}`). For each case the grader (never running
student code) draws the input arrays (`make_case`), the child calls the student's functions on
them (`run_case`: the same code runs on the grader's side with the instructor's functions to
give the reference; for a "network" case the reference is tinynet's own backward, `expected_values`),
and the grader compares the two sets of arrays (`judge`). The child's values are data to the grader:
a child that prints "passed" or writes no values scores 0.
"""
import importlib
from dataclasses import dataclass, field

import numpy as np

from ..kernels.windows import output_shape

KINDS = ("vjp", "graph", "kernel", "network")


@dataclass
class Case:
    """One graded call: its probe kind, its settings (plain JSON values) and input arrays."""

    kind: str
    name: str
    spec: dict
    arrays: dict = field(default_factory=dict)
    hidden: bool = False


# ---- drawing inputs (grader side) -----------------------------------------------------------
def _values(shape, how, rng, dtype):
    """Random inputs that keep an op smooth where its test needs it.

    how: "any" (normal), "positive" (0.5..2: logs, divisors, powers), "away_from_zero" (|x| >= 0.1:
    off ReLU's kink), "distinct" (a permutation of spaced values: no ties for max).
    """
    size = int(np.prod(shape))
    if how == "positive":
        values = rng.uniform(0.5, 2.0, size)
    elif how == "away_from_zero":
        values = rng.choice([-1.0, 1.0], size) * rng.uniform(0.1, 2.0, size)
    elif how == "distinct":
        values = rng.permutation(size) * 0.37 - size * 0.15
    elif how == "any":
        values = rng.standard_normal(size)
    else:
        raise ValueError(f"values = {how!r}: use any, positive, away_from_zero or distinct")
    return values.reshape(shape).astype(dtype)


def make_case(kind, spec, rng, hidden=False) -> Case:
    """The Case a task's TOML table describes, with its arrays drawn from rng."""
    if kind not in KINDS:
        raise ValueError(f"probe = {kind!r}: the probes are {', '.join(KINDS)}")
    return {"vjp": _vjp_case, "graph": _graph_case, "kernel": _kernel_case,
            "network": _network_case}[kind](dict(spec), rng, hidden)


def _vjp_case(spec, rng, hidden):
    dtype = np.dtype(spec.get("dtype", "float64"))
    how = spec.get("values", "any")
    hows = how if isinstance(how, list) else [how] * len(spec["shapes"])
    arrays = {f"x{i}": _values(tuple(shape), h, rng, dtype) for i, (shape, h) in enumerate(zip(spec["shapes"], hows))}
    out = _op(spec["op"]).forward(_context(len(arrays)), *arrays.values(), **spec.get("params", {}))
    arrays["grad_out"] = _values(np.shape(out), "any", rng, dtype)
    shapes = " ".join(str(tuple(s)) for s in spec["shapes"])
    settings = ", ".join(f"{k}={v}" for k, v in spec.get("params", {}).items())
    name = spec.get("name") or f"{spec['op'].rpartition('.')[2]} {shapes}" + (f" {settings}" if settings else "") \
        + ("" if dtype == np.float64 else f" {dtype}")
    return Case("vjp", name, spec, arrays, hidden)


def _graph_case(spec, rng, hidden):
    test = spec["test"]
    if test == "unbroadcast":
        arrays = {"grad": _values(tuple(spec["grad"]), "any", rng, np.float64)}
        return Case("graph", spec.get("name") or f"unbroadcast {tuple(spec['grad'])} to {tuple(spec['shape'])}",
                    spec, arrays, hidden)
    if test == "chain":
        spec["parents"] = [[]] + [[i] for i in range(spec["depth"] - 1)]
        spec["requires_grad"] = [True]
        return Case("graph", spec.get("name") or f"order of a chain of {spec['depth']} ops", spec, {}, hidden)
    if test == "dag":
        leaves, nodes = spec["leaves"], spec["nodes"]
        parents = [[] for _ in range(leaves)]
        for k in range(leaves, nodes):
            parents.append(sorted({int(p) for p in rng.integers(0, k, size=int(rng.integers(1, 3)))}))
        spec["parents"] = parents
        spec["requires_grad"] = [bool(flag) for flag in rng.random(leaves) < 0.7] if spec.get("mixed") \
            else [True] * leaves
        return Case("graph", spec.get("name") or f"order of a random graph of {nodes} tensors", spec, {}, hidden)
    raise ValueError(f"test = {test!r}: graph cases are unbroadcast, chain or dag")


def _kernel_case(spec, rng, hidden):
    kernel = spec["kernel"]
    dtype = np.dtype(spec.get("dtype", "float64"))
    x = _values(tuple(spec["x"]), "distinct" if kernel.startswith("max_pool") else "any", rng, dtype)
    if kernel == "im2col":
        arrays = {"x_padded": x}
    elif kernel == "col2im":
        arrays = {"columns": _values(_columns_shape(spec), "any", rng, dtype)}
    elif kernel == "max_pool":
        arrays = {"x": x}
    elif kernel == "max_pool_backward":
        _, argmax = _max_pool(_reference_kernels("pool"), x, spec)
        arrays = {"grad_out": _values(argmax.shape, "any", rng, dtype), "argmax": argmax}
    else:
        raise ValueError(f"kernel = {kernel!r}: im2col, col2im, max_pool or max_pool_backward")
    settings = ", ".join(f"{k}={v}" for k, v in spec.items() if k not in ("kernel", "x", "name", "dtype"))
    return Case("kernel", spec.get("name") or f"{kernel} of {tuple(spec['x'])} {settings}", spec, arrays, hidden)


def _network_case(spec, rng, hidden):
    """Part 1's network (tinynet.backprop_ninja) of sizes [D, H, C] on a batch: weights scaled by 1/sqrt(fan-in)
    as a trained network's are, images in [0, 1), random labels."""
    from tinynet.backprop_ninja import check_activation
    dtype = np.dtype(spec.get("dtype", "float64"))
    inputs, units, classes = spec["sizes"]
    batch, activation = spec["batch"], spec.get("activation", "tanh")
    check_activation(activation)
    arrays = {"W0": rng.standard_normal((inputs, units)) / np.sqrt(inputs), "b0": 0.1 * rng.standard_normal(units),
              "W1": rng.standard_normal((units, classes)) / np.sqrt(units), "b1": 0.1 * rng.standard_normal(classes),
              "x": rng.random((batch, inputs))}
    arrays = {name: a.astype(dtype) for name, a in arrays.items()}
    arrays["labels"] = rng.integers(0, classes, batch)
    name = spec.get("name") or (f"manual backward of {inputs}-{units}-{classes} {activation}, batch of {batch}"
                                + ("" if dtype == np.float64 else f" {dtype}"))
    return Case("network", name, spec, arrays, hidden)


# ---- running a case (both sides: the student's functions in the child, the instructor's here) --
def _op(name):
    """The op class "elementwise.Mul" of tinynet.ops."""
    module, _, cls = name.rpartition(".")
    return getattr(importlib.import_module(f"tinynet.ops.{module}"), cls)


def _context(n_inputs):
    from tinynet.function import Context
    return Context([True] * n_inputs)


def _reference_kernels(family):
    return importlib.import_module(f"tinynet.kernels.{family}")


def run_case(case: Case) -> dict:
    """The arrays the functions under test give on case's inputs (with the tinynet this process imports)."""
    return {"vjp": _run_vjp, "graph": _run_graph, "kernel": _run_kernel,
            "network": _run_network}[case.kind](case.spec, case.arrays)


def expected_values(case: Case) -> dict:
    """The reference arrays for case (grader side): run_case's, but for a "network" case tinynet's backward."""
    if case.kind != "network":
        return run_case(case)
    from tinynet.backprop_ninja import PARAMETERS, framework_gradients
    return framework_gradients({name: case.arrays[name] for name in PARAMETERS}, case.arrays["x"],
                               case.arrays["labels"], case.spec.get("activation", "tanh"))


def _run_vjp(spec, arrays):
    inputs = [arrays[f"x{i}"] for i in range(len(spec["shapes"]))]
    grad_out = arrays["grad_out"].copy()
    ctx = _context(len(inputs))
    _op(spec["op"]).forward(ctx, *inputs, **spec.get("params", {}))
    grads = _op(spec["op"]).backward(ctx, grad_out)
    if not isinstance(grads, tuple | list) or len(grads) != len(inputs):
        raise TypeError(f"backward must return a tuple of {len(inputs)} gradients, got {type(grads).__name__}"
                        + (f" of {len(grads)}" if isinstance(grads, tuple | list) else ""))
    outputs = {f"grad{i}": np.asarray(g) for i, g in enumerate(grads) if g is not None}
    outputs["grad_out_after"] = grad_out
    return outputs


def _run_graph(spec, arrays):
    from tinynet.tensor import Tensor, graph_vertex, topological_order, unbroadcast
    if spec["test"] == "unbroadcast":
        return {"grad": np.asarray(unbroadcast(arrays["grad"], tuple(spec["shape"])))}
    from tinynet.ops.elementwise import Add, Neg
    tensors = []
    for k, parents in enumerate(spec["parents"]):
        if not parents:
            tensors.append(Tensor(np.ones(2), requires_grad=spec["requires_grad"][k]))
        elif len(parents) == 1:
            tensors.append(Neg.apply(tensors[parents[0]]))
        else:
            tensors.append(Add.apply(tensors[parents[0]], tensors[parents[1]]))
    index = {id(graph_vertex(t)): k for k, t in enumerate(tensors)}
    order = topological_order([graph_vertex(tensors[-1])])  # backward's order, on what the graph holds
    return {"order": np.array([index.get(id(t), -1) for t in order], dtype=np.int64)}


def _run_network(spec, arrays):
    """{gradient name: array} from manual_backward on the case's network (copies of its arrays, so that a
    manual_backward writing into its inputs changes nothing else)."""
    from tinynet.backprop_ninja import GRADIENT_NAMES, PARAMETERS, manual_backward
    grads = manual_backward({name: arrays[name].copy() for name in PARAMETERS}, arrays["x"].copy(),
                            arrays["labels"].copy(), spec.get("activation", "tanh"))
    if not isinstance(grads, dict):
        raise TypeError(f"manual_backward must return a dict of gradients by name, got {type(grads).__name__}")
    return {name: np.asarray(grads[name]) for name in GRADIENT_NAMES if name in grads}


def _columns_shape(spec):
    """im2col's columns (C*kh*kw, N, Ho, Wo) for a padded image of shape spec["x"] (N, C, Hp, Wp)."""
    n, c, height, width = spec["x"]
    (kh, kw), stride, dilation = spec["size"], spec.get("stride", [1, 1]), spec.get("dilation", [1, 1])
    return (c * kh * kw, n) + output_shape((height, width), (kh, kw), stride, dilation, ((0, 0), (0, 0)))


def _max_pool(pool, x, spec):
    (kh, kw), (sh, sw), (top, left) = spec["size"], spec.get("stride", spec["size"]), spec.get("pad", [0, 0])
    shape = (x.shape[0],) + output_shape(x.shape[1:], (kh, kw), (sh, sw), (1, 1), ((top, top), (left, left)))
    out, argmax = np.empty(shape, x.dtype), np.empty(shape, np.int64)
    pool.max_pool_kernel(out, argmax, x, kh, kw, sh, sw, top, left, work=x.size)
    return out, argmax


def _run_kernel(spec, arrays):
    kernel = spec["kernel"]
    size, stride, dilation = spec.get("size"), spec.get("stride", [1, 1]), spec.get("dilation", [1, 1])
    if kernel == "im2col":
        conv = _reference_kernels("conv")
        columns = np.zeros(_columns_shape(spec), arrays["x_padded"].dtype)
        conv.im2col_kernel(columns, arrays["x_padded"], *size, *stride, *dilation, work=columns.size)
        return {"columns": columns}
    if kernel == "col2im":
        conv = _reference_kernels("conv")
        grad_x = np.zeros(tuple(spec["x"]), arrays["columns"].dtype)
        conv.col2im_kernel(grad_x, arrays["columns"], *size, *stride, *dilation, work=grad_x.size)
        return {"grad_x_padded": grad_x}
    pool = _reference_kernels("pool")
    if kernel == "max_pool":
        out, argmax = _max_pool(pool, arrays["x"], spec)
        return {"out": out, "argmax": argmax}
    grad_x = np.zeros(tuple(spec["x"]), arrays["grad_out"].dtype)
    pool.max_pool_backward_kernel(grad_x, arrays["grad_out"], arrays["argmax"], work=grad_x.size)
    return {"grad_x": grad_x}


# ---- judging (grader side) ---------------------------------------------------------------------
def judge(case: Case, got: dict, expected: dict):
    """None when the child's arrays got match the reference arrays expected, else one line saying how not."""
    got, expected = dict(got), dict(expected)  # gradients are summed to their inputs' shapes below
    if case.kind == "graph" and case.spec["test"] != "unbroadcast":
        return _judge_order(case.spec, got.get("order"))
    if case.kind == "network":
        return _judge_gradients(got, expected)
    if case.kind == "vjp":
        if not np.array_equal(got.get("grad_out_after"), case.arrays["grad_out"]):
            return "backward wrote into grad_out (other inputs of the same node receive it too): compute a new array"
        for i in range(len(case.spec["shapes"])):
            if f"grad{i}" in expected and f"grad{i}" not in got:
                return f"backward returned None for input {i}, which wants a gradient"
            for arrays in (got, expected):
                if f"grad{i}" in arrays:
                    arrays[f"grad{i}"] = _summed_to(arrays[f"grad{i}"], case.arrays[f"x{i}"].shape)
        expected = {name: want for name, want in expected.items() if name != "grad_out_after"}
    for name, want in expected.items():
        problem = _compare(name, got.get(name), want)
        if problem:
            return problem + (_vjp_finite_difference_hint(case, got) if case.kind == "vjp" else "")
    return None


def _judge_gradients(got, expected):
    """None when every gradient in got is exact or approx against expected's (tinynet.compare_gradients), else
    the wrong ones named: "W1 WRONG (max |diff| 0.08, 2.0x the framework's); b0 MISSING (no manual gradient given)"."""
    from tinynet.gradient_comparison import compare_gradients
    result = compare_gradients({name: got[name] for name in expected if name in got}, expected)
    return "; ".join(f"{row.name} {row.verdict} ({_why(row)})" for row in result.wrong) or None


def _why(row) -> str:
    """What backs a wrong row's verdict: its note, and for WRONG the largest difference first."""
    if row.verdict != "WRONG":
        return row.note
    return ", ".join(filter(None, [f"max |diff| {row.max_abs_difference:.3g}", row.note]))


def _summed_to(grad, shape):
    """A VJP's gradient for an input of shape: an op may return the output's broadcast shape (the core
    un-broadcasts it), so sum it back like the core does; anything else is left for _compare to report."""
    from tinynet.tensor import unbroadcast
    try:
        return unbroadcast(grad, tuple(shape))
    except ValueError:
        return grad


def _compare(name, got, want):
    if got is None:
        return f"no {name} came back"
    if got.shape != want.shape:
        return f"{name} has shape {got.shape}, expected {want.shape}"
    if got.dtype != want.dtype:
        return f"{name} is {got.dtype}, expected {want.dtype} (the input's dtype)"
    if np.issubdtype(want.dtype, np.integer):
        wrong = np.flatnonzero(got != want)
    else:
        scale = max(float(np.max(np.abs(want), initial=0.0)), 1.0)
        tolerance = (1e-9 if want.dtype == np.float64 else 1e-4) * scale
        wrong = np.flatnonzero(~(np.abs(got - want) <= tolerance))
    if wrong.size == 0:
        return None
    index = np.unravel_index(wrong[0], want.shape)
    return (f"{name} is wrong at {wrong.size} of {want.size} elements, first at index {tuple(int(i) for i in index)}: "
            f"got {got[index]:.8g}, expected {want[index]:.8g}")


def _vjp_finite_difference_hint(case, got):
    """'; finite differences: backward is 2x the finite difference' for a float64 VJP case."""
    from tinynet.gradcheck import check_op_gradients
    from tinynet.tensor import Tensor
    if case.arrays["x0"].dtype != np.float64:
        return ""
    n = len(case.spec["shapes"])
    grads = [got.get(f"grad{i}") for i in range(n)]
    if any(g is None or g.shape != case.arrays[f"x{i}"].shape for i, g in enumerate(grads)):
        return ""
    inputs = [Tensor(case.arrays[f"x{i}"], requires_grad=True) for i in range(n)]
    reports = check_op_gradients(_op(case.spec["op"]), inputs, case.spec.get("params", {}),
                                 case.arrays["grad_out"], grads)
    failed = [r for r in reports if not r.passed]
    if not failed:
        return ""
    worst = failed[0].worst
    return (f"; finite differences of input {failed[0].input_index} at {worst.index}: backward {worst.analytic:.6g}, "
            f"finite difference {worst.numeric:.6g}")


def _judge_order(spec, order):
    """None when order lists each tensor the output depends on through tensors requiring grad once, after
    its parents; else what is wrong."""
    parents = spec["parents"]
    needs = []
    for k, ps in enumerate(parents):
        needs.append(spec["requires_grad"][k] if not ps else any(needs[p] for p in ps))
    wanted, stack = set(), [len(parents) - 1]  # the output itself, and what it reaches through tensors needing grad
    while stack:
        k = stack.pop()
        if k not in wanted:
            wanted.add(k)
            stack.extend(p for p in parents[k] if needs[p])
    if order is None or order.ndim != 1:
        return "no order came back"
    listed = [int(k) for k in order]
    if len(set(listed)) != len(listed):
        return "a tensor is listed twice"
    if set(listed) != wanted:
        missing, extra = wanted - set(listed), set(listed) - wanted
        return (f"{len(missing)} of the {len(wanted)} tensors the output depends on are missing" if missing
                else f"{len(extra)} tensors listed that the output does not depend on (or that need no gradient)")
    position = {k: i for i, k in enumerate(listed)}
    for k in listed:
        for p in parents[k]:
            if p in position and position[p] > position[k]:
                return f"tensor {k} is listed before its parent {p}"
    return None
