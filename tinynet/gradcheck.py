"""Check analytic gradients against central finite differences, in float64.

For fn mapping tensors to a tensor, gradcheck draws a fixed random weighting u of fn's output
(u = 1 when the output is a scalar), takes the gradient of f = sum(u * fn(x)) from one backward pass, and
compares it, element by element, with the central difference of f (tinynet.finite_differences
says how, and what a step can resolve). Fast mode compares one random directional derivative
per input instead (cheap for big convolutions).

Each element gets a verdict: "ok", "kink" (the step crossed a non-differentiable point of a
ReLU, max or max-pool: reported with the op, not judged) or "FAIL". When an element fails,
gradcheck re-checks the VJP of every op the computation ran, as it ran (on the inputs it saw, laid out in
memory as they were, by the implementation that ran, e.g. the conv algorithm), and names the first op that
disagrees with where it was called. When backward itself fails (a VJP raises, or
returns a gradient that does not fit its input), that is the check's verdict, naming the op.

`gradgradcheck` checks second derivatives the same way: the function it differences is the first-order
gradient, taken by backward with create_graph=True, which must first agree with the plain backward's. Its op
locator checks each op's VJP as a function of the op's inputs and of a random grad_out.
`check_op` checks one op's VJP alone, calling its backward directly (no graph, no Tensor.backward).
`step_sweep` measures the error against the step size h: the "V" of truncation (large h) and
round-off (small h).
"""
import contextlib
import functools
import traceback
from dataclasses import dataclass, field

import numpy as np

from .finite_differences import ProjectedFunction
from .func import jvp
from .function import Context
from .functional import concatenate
from .grad_mode import enable_grad
from .recorder import record_ops
from .tensor import Tensor, grad, op_description, values_of, vector_jacobian_product

SWEEP_STEPS = tuple(10.0 ** -k for k in range(1, 11))
# The create_graph backward runs the same arithmetic as the plain one, as ops: only summation order may differ.
CREATE_GRAPH_RTOL = 1e-10
# Forward and reverse mode sum the same products in other orders: <u, J e> and <J^T u, e> agree to round-off.
ADJOINT_RTOL = 1e-8


class GradcheckError(AssertionError):
    """An analytic gradient disagrees with its finite-difference estimate, or backward itself failed."""


class BackwardError(GradcheckError):
    """Backward itself failed, so there is no analytic gradient to check: the message names the op."""


@dataclass
class ElementCheck:
    """One checked element (or, in fast mode, one direction): both derivatives and the verdict."""

    index: tuple
    analytic: float
    numeric: float
    noise_floor: float
    tolerance: float
    verdict: str
    crossed_kinks: list = field(default_factory=list)
    note: str = ""

    @property
    def error(self) -> float:
        return abs(self.analytic - self.numeric)

    @property
    def label(self) -> str:
        """The verdict, with the ops whose kinks the step crossed ('kink (MaxPool2d)') and any note."""
        return (self.verdict + (f" ({', '.join(self.crossed_kinks)})" if self.crossed_kinks else "")
                + (f": {self.note}" if self.note else ""))

    def excess(self) -> float:
        """error / tolerance: above 1 fails (or, at a kink, would have)."""
        return self.error / max(self.tolerance, np.finfo(np.float64).tiny)


@dataclass
class InputReport:
    """The checks of one input. `str(report)` is a table, worst elements first.

    backward_failure: why backward itself failed (then elements is empty), or None.
    diagnosis: for a failed check, the op locator's finding (see first_disagreeing_op), else "".
    forward: with check_forward, the same elements checked by forward mode (analytic: the jvp's derivative).
    """

    input_index: int
    elements: list
    backward_failure: str | None = None
    diagnosis: str = ""
    forward: list = field(default_factory=list)

    @property
    def failures(self) -> list:
        return [e for e in self.elements if e.verdict == "FAIL"]

    @property
    def forward_failures(self) -> list:
        return [e for e in self.forward if e.verdict == "FAIL"]

    @property
    def kinks(self) -> list:
        return [e for e in self.elements if e.verdict == "kink"]

    @property
    def passed(self) -> bool:
        return not self.failures and not self.forward_failures and self.backward_failure is None

    @property
    def worst(self) -> ElementCheck:
        """The judged element whose error is largest against its tolerance (kinks are not judged)."""
        judged = [e for e in self.elements if e.verdict != "kink"] or self.elements
        return max(judged, key=ElementCheck.excess)

    @property
    def max_abs_error(self) -> float:
        return max((e.error for e in self.elements if e.verdict != "kink"), default=0.0)

    def ranked(self) -> list:
        """The elements, failures first, then kinks, then the rest; each group by error / tolerance, largest first."""
        return _ranked(self.elements)

    def __str__(self):
        if self.backward_failure is not None:
            return "\n".join(filter(None, [f"input {self.input_index}: not checked: {self.backward_failure}",
                                           self.diagnosis]))
        lines = [f"input {self.input_index}: {len(self.elements)} checked, {len(self.failures)} failed, "
                 f"{len(self.kinks)} at kinks"] + _table("backward", self.ranked())
        if self.forward:
            lines += [f"forward mode: {len(self.forward_failures)} failed"] + _table("forward", _ranked(self.forward))
        return "\n".join(lines + [self.diagnosis] if self.diagnosis else lines)


def _table(mode, elements) -> list:
    """The lines of a table of ElementChecks, mode ('backward', 'forward') naming the analytic column."""
    return ([f"{'index':>16} {mode:>14} {'finite diff.':>14} {'noise floor':>11} {'error':>9}  verdict"]
            + [f"{str(e.index):>16} {e.analytic:14.6e} {e.numeric:14.6e} {e.noise_floor:11.2e} {e.error:9.2e}  "
               f"{e.label}" for e in elements])


def _ranked(elements) -> list:
    """ElementChecks, failures first, then kinks, then the rest; each group by error / tolerance, largest first."""
    order = {"FAIL": 0, "kink": 1, "ok": 2}
    return sorted(elements, key=lambda e: (order[e.verdict], -e.excess()))


def gradcheck(fn, inputs, eps=1e-6, atol=0.0, rtol=1e-3, fast=False, seed=0, elements=None,
              raise_on_failure=True, check_forward=False):
    """Compare d sum(u * fn(*inputs)) / d input (backward) with central differences of step eps.

    fn: maps Tensors to one Tensor. inputs: Tensors (float64); those with requires_grad are
    checked. elements: which elements to check, as {input index: [index tuple, ...]}, or a
    list of index tuples when one input is checked; default all (or, with fast=True, one
    random direction per input). An element passes when |analytic - numeric| <= noise floor
    + atol + rtol |numeric| (see tinynet.finite_differences). Returns one InputReport per
    checked input; raises GradcheckError on a failure, naming the input, the element, both
    values and the first op whose own VJP disagrees (with raise_on_failure=False, the failed reports'
    diagnosis names it). When backward itself fails, raises BackwardError naming the op (or returns
    reports whose backward_failure says so); an exception in fn's forward propagates unchanged.

    check_forward: also check forward mode (tinynet.func.jvp) on the same elements or directions: the
    derivative along each, <u, J e>, against the same central difference and noise floor, and against
    backward's <J^T u, e> (the two must agree to round-off: the adjoint identity). A failure names the first
    op whose own JVP disagrees.
    """
    inputs, checked = _checked_inputs(inputs)
    try:
        reports = _first_order_reports(fn, inputs, checked, eps, atol, rtol, fast, seed, elements, check_forward)
    except BackwardError as failure:
        return _backward_failed(str(failure), checked, raise_on_failure)
    forward_only = all(not r.failures for r in reports)
    return _verdict(reports, lambda: first_disagreeing_op(fn, inputs, seed=seed,
                                                          mode="forward" if forward_only else "reverse"),
                    "", eps, atol, rtol, raise_on_failure)


def gradgradcheck(fn, inputs, eps=1e-4, atol=0.0, rtol=1e-3, fast=False, seed=0, raise_on_failure=True):
    """gradcheck of the gradient: the second derivatives of fn by double backward against finite differences.

    g(inputs) = d sum(u * fn(*inputs)) / d checked inputs (u fixed and random, 1 for a scalar fn), taken
    with create_graph=True and flattened into one vector, is checked by gradcheck: backward through g's
    graph against central differences of g, with the same noise floor. So an element of input i is
    sum_k w_k d g_k / d x_i for gradcheck's random w. On a failure the error names the first op whose
    own double backward disagrees. Arguments and result as gradcheck's, except the step eps: g is itself a
    backward pass, whose round-off follows the terms it sums (often larger than g, which is all the noise
    floor sees), so a larger step keeps that round-off small; truncation is measured, as in gradcheck.
    Before that, g must agree with the plain backward's gradient to round-off (a failed check that names the
    op when it does not); a failure of backward itself (in either pass) fails the check as in gradcheck.
    """
    inputs, checked = _checked_inputs(inputs)
    gradient = first_order_gradient(fn, inputs, checked, np.random.default_rng(seed + 1))
    try:
        reports = _second_order_reports(gradient, inputs, checked, eps, atol, rtol, fast, seed)
    except BackwardError as failure:
        return _backward_failed(str(failure), checked, raise_on_failure)
    return _verdict(reports, lambda: first_disagreeing_op(fn, inputs, seed=seed, order=2), "second derivatives: ",
                    eps, atol, rtol, raise_on_failure)


def first_order_gradient(fn, inputs, checked, rng):
    """The function x -> d sum(u * fn(x)) / d x[checked], flattened and joined: one Tensor with a graph.

    u is drawn once here, so every evaluation (backward's and the finite differences') uses the same one.
    gradient(*xs, create_graph=False) takes the plain backward's gradient instead (no graph).
    A failure of backward raises BackwardError.
    """
    output = fn(*inputs)
    weights = _weighting(output.shape, rng).astype(output.dtype)
    product = vector_jacobian_function(fn, checked)
    return lambda *xs, create_graph=True: product(*xs, weights, create_graph=create_graph)


def vector_jacobian_function(fn, checked):
    """The function (*xs, u) -> d sum(u * fn(*xs)) / d xs[checked], flattened and joined: one Tensor.

    u: fn's output shape, an array or a Tensor. With create_graph (the default) the result has a graph, through
    xs and, where u requires grad, through u as well: so a second-order check sees how a VJP depends on its
    grad_out too. The finite differences call it on constant inputs inside no_grad: it records a graph anyway.
    A failure of backward raises BackwardError.
    """
    def product(*xs_and_u, create_graph=True):
        *xs, u = xs_and_u
        xs = [x.detach().requires_grad_() if i in checked and not x.requires_grad else x for i, x in enumerate(xs)]
        with enable_grad():
            wanted = [xs[i] for i in checked]
            output = fn(*xs)
            with _naming_the_failing_op():
                grads = grad(output, wanted, grad_outputs=u, create_graph=create_graph, allow_unused=True)
            return concatenate([Tensor(np.zeros(x.size, x.dtype)) if g is None else g.reshape(-1)
                                for g, x in zip(grads, wanted)])
    return product


def check_op(op, inputs, params=None, eps=1e-6, atol=0.0, rtol=1e-3, fast=False, seed=0, raise_on_failure=True):
    """gradcheck of one op's VJP alone: op.backward(ctx, u) is called directly, without Tensor.backward.

    op: a Function subclass; inputs: Tensors (float64 where requires_grad); params: op's keyword
    settings (axis, stride, ...). So a VJP can be checked before the graph core works (the
    assignment tasks do this). Returns one InputReport per checked input, like gradcheck; a backward
    that raises, or returns gradients that do not fit the inputs, fails the check naming the op.
    """
    inputs, checked = _checked_inputs(inputs)
    rng = np.random.default_rng(seed)
    params = params or {}
    ctx, output, weights = _run_alone(op, inputs, params, [x.requires_grad for x in inputs], rng)
    try:
        grads = op.backward(ctx, weights.astype(np.result_type(output)))
    except Exception as error:
        return _backward_failed(f"backward itself failed in {op.__name__}: {type(error).__name__}: {error}", checked,
                                raise_on_failure)
    reports = check_op_gradients(op, inputs, params, weights, grads, eps, atol, rtol, fast, rng)
    failed = [r for r in reports if not r.passed]
    if failed and raise_on_failure:
        first = failed[0]
        raise GradcheckError(f"{op.__name__}: " + (first.backward_failure or _failure_message(first, eps, atol, rtol)))
    return reports


def check_op_gradients(op, inputs, params, grad_out, grads, eps=1e-6, atol=0.0, rtol=1e-3, fast=False, rng=None):
    """grads, what some backward gave for op at inputs (float64 Tensors) and grad_out, against central
    differences of <op(inputs), grad_out>: one InputReport per input with requires_grad.

    check_op's comparison alone, for gradients computed elsewhere (the assignment grader's come
    from a student's backward run in another process). Gradients that do not fit the inputs (not one per
    input, or of a shape that is not the input's, broadcast or not) give reports whose backward_failure says so.
    """
    inputs, checked = _checked_inputs(inputs)
    rng = np.random.default_rng(0) if rng is None else rng
    try:
        analytic = {i: _op_gradient(op, grads, inputs, i) for i in checked}
    except ValueError as misfit:
        return [InputReport(i, [], f"backward itself failed: {misfit}") for i in checked]
    f = ProjectedFunction(lambda *xs: op.apply(*xs, **params), inputs, grad_out)
    return _compare(f, analytic, inputs, checked, rng, fast, None, eps, atol, rtol)


def step_sweep(fn, inputs, elements, steps=SWEEP_STEPS, seed=0):
    """Central differences of the elements of the one checked input at every step in steps.

    Returns (analytic (k,), numeric (len(steps), k), roundoff (len(steps), k)): plot
    |numeric - analytic| against the step to see truncation (large h) and round-off (small h).
    """
    inputs, checked = _checked_inputs(inputs)
    if len(checked) != 1:
        raise ValueError(f"step_sweep moves one input; {len(checked)} inputs have requires_grad")
    (i,) = checked
    f, analytic = _projection_and_gradients(fn, inputs, checked, np.random.default_rng(seed))
    flat = [int(np.ravel_multi_index(index, inputs[i].shape)) for index in elements]
    differences = [[f.central_difference(i, k, h) for k in flat] for h in steps]
    return (np.array([analytic[i][tuple(index)] for index in elements]),
            np.array([[d.value for d in row] for row in differences]),
            np.array([[d.roundoff for d in row] for row in differences]))


def first_disagreeing_op(fn, inputs, seed=0, order=1, mode="reverse") -> str:
    """Re-check the VJP (or, with mode="forward", the JVP) of each op fn runs, as it ran; describe the first that
    disagrees.

    Each op is re-run on the inputs it saw (in float64, laid out in memory as they were) by the implementation
    that ran (Conv2d's algorithm), and checked alone by a fast check (one random direction per input): check_op
    of its VJP (order 1), or, at order 2, the second-order check of its VJP as a function of both the inputs and
    a random grad_out (so the rules for a grad_out that depends on the inputs are checked too); in forward mode,
    its JVP along a random tangent of each input against the central difference along it.
    """
    with record_ops(call_sites=True) as calls:
        fn(*inputs)
    for call in calls:
        local_inputs = [_float64_like(x, x.requires_grad) for x in call.inputs]
        checked = [i for i, x in enumerate(local_inputs) if x.requires_grad]
        if not checked:
            continue
        with call.op.implemented_as(call.implementation):
            if mode == "forward":
                reports = _op_forward_reports(call, local_inputs, checked, seed)
            elif order == 1:
                reports = check_op(call.op, local_inputs, call.params, fast=True, seed=seed, raise_on_failure=False)
            else:
                reports = _op_second_order_reports(call, local_inputs, checked, seed)
        for report in reports:
            if not report.passed:
                found = report.backward_failure or _compared(report.failures[0].analytic, report.failures[0].numeric,
                                                             "its JVP" if mode == "forward" else "backward")
                ran = f"ran {call.implementation}; " if call.implementation else ""
                return (f"first op that disagrees: {call.name} ({ran}called at {call.call_site}), input "
                        f"{report.input_index}: {found}")
    rule = "JVP" if mode == "forward" else "VJP"
    return (f"every op's own {rule} agrees with finite differences on the inputs it saw: look at how they are "
            "combined (the graph core sums gradients back to broadcast inputs' shapes and adds those of a tensor "
            "used twice), or at fn: it must be deterministic (dropout needs a fixed mask)")


def _op_forward_reports(call, inputs, checked, seed):
    """call's op's JVP alone, called directly as check_op calls backward: along a random tangent of each checked
    input in turn, <u, JVP> against the central difference of <u, op> along it (u random)."""
    rng = np.random.default_rng(seed)
    ctx, _, weights = _run_alone(call.op, inputs, call.params, [i in checked for i in range(len(inputs))], rng)
    ctx.params = call.params
    f = ProjectedFunction(lambda *xs: call.op.apply(*xs, **call.params), inputs, weights)
    reports = []
    for i in checked:
        tangent = rng.standard_normal(inputs[i].shape)
        try:
            along = call.op.jvp(ctx, *(tangent if k == i else None for k in range(len(inputs))))
        except Exception as error:
            reports.append(InputReport(i, [], f"forward mode failed in {call.name}: {type(error).__name__}: {error}"))
            continue
        derivative = 0.0 if along is None else float(np.sum(weights * values_of(along)))
        reports.append(InputReport(i, [_check_element(f, i, (), tangent, derivative, 1e-6, 0.0, 1e-3)]))
    return reports


def _run_alone(op, inputs, params, needs_input_grad, rng):
    """op's forward called directly on the inputs' arrays, as check_op and the forward-mode locator call its rules:
    (its ctx, its output, a random weighting u of the output, 1 for one element)."""
    ctx = Context(needs_input_grad)
    output = op.forward(ctx, *(x._data for x in inputs), **params)
    return ctx, output, _weighting(np.shape(output), rng)


def _float64_like(x, requires_grad):
    """A float64 leaf with x's values, laid out in memory as x is (an op may branch on its inputs' layout)."""
    leaf = Tensor(x._data, dtype=np.float64, requires_grad=requires_grad)
    leaf._data = x._data.astype(np.float64)  # astype keeps an F-ordered or transposed layout; Tensor() would not
    return leaf


def _op_second_order_reports(call, inputs, checked, seed):
    """The second-order check of call's op alone: of (*inputs, u) -> its VJP of grad_out u, u random, at the
    inputs (and u) it saw; its double backward against finite differences, after create_graph against plain."""
    with enable_grad():
        shape = call.op.apply(*inputs, **call.params).shape
    u = Tensor(np.random.default_rng(seed).standard_normal(shape), requires_grad=True)
    product = vector_jacobian_function(functools.partial(call.op.apply, **call.params), checked)
    try:
        return _second_order_reports(product, inputs + [u], checked + [len(inputs)], 1e-4, 0.0, 1e-3, True, seed)
    except BackwardError as failure:
        return [InputReport(i, [], str(failure)) for i in checked]


def _first_order_reports(fn, inputs, checked, eps, atol, rtol, fast, seed, elements=None, check_forward=False):
    """gradcheck's reports, with no diagnosis and nothing raised for a failed element; BackwardError when backward
    itself fails."""
    rng = np.random.default_rng(seed)
    f, analytic = _projection_and_gradients(fn, inputs, checked, rng)
    forward = _forward_derivative(fn, inputs, f.weights) if check_forward else None
    return _compare(f, analytic, inputs, checked, rng, fast, elements, eps, atol, rtol, forward)


def _forward_derivative(fn, inputs, weights):
    """The function (i, direction) -> <weights, d fn / d input i along direction> by forward mode (one jvp).

    direction: a flat index (the unit vector e_k) or an array of input i's shape.
    """
    def derivative(i, direction):
        x = inputs[i]
        tangent = direction if isinstance(direction, np.ndarray) else np.zeros(x.shape, x.dtype)
        if not isinstance(direction, np.ndarray):
            tangent.flat[direction] = 1.0
        _, along = jvp(lambda xi: fn(*inputs[:i], xi, *inputs[i + 1:]), (x,), (tangent,))
        return float(np.sum(weights * along._data))
    return derivative


def _second_order_reports(gradient, inputs, checked, eps, atol, rtol, fast, seed):
    """gradgradcheck's reports for gradient (see first_order_gradient), with no diagnosis: a create_graph
    disagreement as reports whose backward_failure says so, then gradient's own check; BackwardError when
    backward itself fails, in either pass."""
    disagreement = _create_graph_disagreement(gradient, inputs)
    if disagreement:
        return [InputReport(i, [], disagreement) for i in checked]
    return _first_order_reports(gradient, inputs, checked, eps, atol, rtol, fast, seed)


def _verdict(reports, locate, prefix, eps, atol, rtol, raise_on_failure):
    """reports, with locate()'s diagnosis (the op to blame) in each failed one; or, when raise_on_failure,
    GradcheckError for the first failure (prefix + what failed, then the diagnosis)."""
    failed = [r for r in reports if not r.passed]
    if not failed:
        return reports
    diagnosis = locate()
    for report in failed:
        report.diagnosis = diagnosis
    if raise_on_failure:
        first = failed[0]
        raise GradcheckError((first.backward_failure or prefix + _failure_message(first, eps, atol, rtol))
                             + "\n" + diagnosis)
    return reports


def _checked_inputs(inputs):
    """(inputs as Tensors, indices of those with requires_grad), after checking they suit gradcheck."""
    inputs = [x if isinstance(x, Tensor) else Tensor(x) for x in inputs]
    checked = [i for i, x in enumerate(inputs) if x.requires_grad]
    if not checked:
        raise ValueError("gradcheck needs at least one input with requires_grad=True")
    for i in checked:
        if not inputs[i].is_leaf:
            raise ValueError(f"input {i} was computed by an op; gradcheck needs leaf tensors (e.g. x.detach())")
        if inputs[i].dtype != np.float64:
            raise ValueError(f"input {i} is {inputs[i].dtype}; gradcheck needs float64 for finite differences")
    return inputs, checked


def _projection_and_gradients(fn, inputs, checked, rng):
    """(f = sum(u * fn(...)) as a ProjectedFunction, {input index: df/d input by backward}).

    u is random, or 1 for a one-element output (so f is fn itself). The inputs' .grad is left as it was.
    A failure of backward raises BackwardError.
    """
    output = fn(*inputs)
    weights = _weighting(output.shape, rng)
    saved = [x.grad for x in inputs]
    for i in checked:
        inputs[i].grad = None
    try:
        if output.requires_grad:  # else fn does not depend on the inputs: the gradient is 0
            with _naming_the_failing_op():
                output.backward(weights.astype(output.dtype))
        analytic = {i: np.zeros(inputs[i].shape) if inputs[i].grad is None else inputs[i].grad for i in checked}
    finally:
        for x, saved_grad in zip(inputs, saved):
            x.grad = saved_grad
    return ProjectedFunction(fn, inputs, weights), analytic


@contextlib.contextmanager
def _naming_the_failing_op():
    """Turn any exception raised in this block's backward pass into a BackwardError naming the op whose VJP raised."""
    try:
        yield
    except Exception as error:
        raise BackwardError(f"backward itself failed in {_failing_op(error)}: {type(error).__name__}: {error}") \
            from error


def _failing_op(error) -> str:
    """The op whose VJP raised error: the innermost step of the reverse pass on error's traceback."""
    steps = [frame for frame, _ in traceback.walk_tb(error.__traceback__)
             if frame.f_code is vector_jacobian_product.__code__]
    return op_description(steps[-1].f_locals["tensor"].node) if steps else "the reverse pass"


def _backward_failed(message, checked, raise_on_failure):
    """The verdict when backward itself failed: raise BackwardError(message), or one report per input saying so."""
    if raise_on_failure:
        raise BackwardError(message)
    return [InputReport(i, [], message) for i in checked]


def _create_graph_disagreement(gradient, inputs):
    """Why first_order_gradient's gradient with create_graph disagrees with the plain backward's, or "" if it agrees.

    The two passes call the same VJPs on the same values, so they may differ only by round-off (summation
    order, relative to the largest element); more means an op's double backward computes something else.
    """
    with_graph = gradient(*inputs)._data
    plain = gradient(*inputs, create_graph=False)._data
    scale = np.max(np.abs(plain), initial=0.0)
    if np.allclose(with_graph, plain, rtol=CREATE_GRAPH_RTOL, atol=CREATE_GRAPH_RTOL * scale):
        return ""
    k = int(np.argmax(np.abs(with_graph - plain)))
    return ("the create_graph backward disagrees with the plain backward: an op's double-backward path saves or "
            f"uses its inputs differently (element {k} of the joined gradient: {with_graph[k]:.8g} with "
            f"create_graph, {plain[k]:.8g} without)")


def _weighting(shape, rng):
    """u: random normal of the output's shape, or 1 for a one-element output."""
    return np.ones(shape) if int(np.prod(shape)) == 1 else rng.standard_normal(shape)


def _op_gradient(op, grads, inputs, i):
    """grads[i], what op's backward returned for input i, summed to that input's shape (zeros for None).

    ValueError when grads is not one gradient per input, or grads[i] is neither the input's shape nor that
    shape broadcast.
    """
    if not isinstance(grads, (tuple, list)) or len(grads) != len(inputs):
        found = f"{len(grads)} gradients" if isinstance(grads, (tuple, list)) else f"a {type(grads).__name__}"
        raise ValueError(f"{op.__name__}.backward returned {found} for {len(inputs)} inputs: a VJP returns a tuple "
                         "of one gradient (or None) per input")
    shape = inputs[i].shape
    if grads[i] is None:
        return np.zeros(shape)
    grad = np.asarray(grads[i])
    summed = _summed_to(grad, shape)
    if summed.shape != shape:
        raise ValueError(f"{op.__name__}.backward returned a gradient of shape {grad.shape} for its input {i} of "
                         f"shape {shape}")
    return summed


def _summed_to(grad, shape):
    """grad summed over the leading axes broadcasting added and the axes it stretched from size 1 in shape.

    The graph core's unbroadcast does this for backward; it is written again here, so that a bug there shows up
    as a disagreement rather than being repeated by the check. Leaves grad as it is where it does not fit.
    """
    while grad.ndim > len(shape):
        grad = grad.sum(axis=0)
    for axis, size in enumerate(shape[:grad.ndim]):
        if size == 1 and grad.shape[axis] != 1:
            grad = grad.sum(axis=axis, keepdims=True)
    return grad


def _compare(f, analytic, inputs, checked, rng, fast, elements, eps, atol, rtol, forward=None):
    """One InputReport per checked input: analytic gradients against central differences of f; with forward
    (see _forward_derivative), forward mode's derivatives too, against the same differences and the gradients."""
    wanted = None if fast else _elements_by_input(elements, checked, inputs)
    reports = []
    for i in checked:
        if fast:
            direction = rng.standard_normal(inputs[i].shape)
            probes = [((), direction, float(np.sum(analytic[i] * direction)))]
        else:
            probes = [(index, int(np.ravel_multi_index(index, inputs[i].shape)), float(analytic[i][index]))
                      for index in wanted[i]]
        checks = [_check_element(f, i, index, direction, value, eps, atol, rtol) for index, direction, value in probes]
        forward_checks = [] if forward is None else [_forward_check(check, forward(i, direction))
                                                      for check, (_, direction, _) in zip(checks, probes)]
        reports.append(InputReport(i, checks, forward=forward_checks))
    return reports


def _forward_check(reverse, derivative) -> ElementCheck:
    """Forward mode's derivative of an element reverse has checked: judged against the same central difference and
    tolerance, and against reverse's analytic value, which it must equal to round-off (ADJOINT_RTOL, or the
    element's noise floor where the products cancel)."""
    gap = abs(derivative - reverse.analytic)
    agrees = gap <= max(ADJOINT_RTOL * max(abs(derivative), abs(reverse.analytic)), reverse.noise_floor)
    close = abs(derivative - reverse.numeric) <= reverse.tolerance
    verdict = "ok" if close and agrees else "kink" if agrees and reverse.crossed_kinks else "FAIL"
    note = "" if agrees else f"backward gives {reverse.analytic:.8g}"
    return ElementCheck(reverse.index, derivative, reverse.numeric, reverse.noise_floor, reverse.tolerance, verdict,
                        reverse.crossed_kinks, note)


def _elements_by_input(elements, checked, inputs):
    """{input index: [index tuple, ...]} from gradcheck's `elements` argument."""
    if elements is None:
        return {i: list(np.ndindex(inputs[i].shape)) for i in checked}
    if not isinstance(elements, dict):
        if len(checked) != 1:
            raise ValueError("with several inputs to check, give elements as {input index: [index, ...]}")
        elements = {checked[0]: elements}
    unknown = set(elements) - set(checked)
    if unknown:
        raise ValueError(f"elements names inputs {sorted(unknown)}, but only inputs {checked} have requires_grad")
    wanted = {i: [tuple(int(k) for k in np.atleast_1d(index)) for index in elements.get(i, [])] for i in checked}
    for i, indices in wanted.items():
        for index in indices:
            if len(index) != inputs[i].ndim or not all(0 <= k < n for k, n in zip(index, inputs[i].shape)):
                raise ValueError(f"element {index} is not an index of input {i}, whose shape is {inputs[i].shape}")
    return wanted


def _check_element(f, input_index, index, direction, analytic, eps, atol, rtol) -> ElementCheck:
    """Judge one element (or direction): stage 1 with the round-off floor, then with measured truncation."""
    difference = f.central_difference(input_index, direction, eps)
    numeric, floor, crossed = difference.value, difference.roundoff, difference.crossed_kinks
    error = abs(analytic - numeric)
    if error > floor + atol + rtol * abs(numeric):
        half = f.central_difference(input_index, direction, eps / 2)
        floor += 4 / 3 * abs(numeric - half.value)
        crossed = list(dict.fromkeys(crossed + half.crossed_kinks))
    tolerance = floor + atol + rtol * abs(numeric)
    verdict = "ok" if error <= tolerance else "kink" if crossed else "FAIL"
    return ElementCheck(index, analytic, numeric, floor, tolerance, verdict, crossed)


def _failure_message(report, eps, atol, rtol):
    """What failed for one input: backward's gradient, or else forward mode's derivatives, at its worst element."""
    mode, failures = ("backward", report.failures) if report.failures else ("forward", report.forward_failures)
    worst = max(failures, key=lambda e: (e.excess(), e.note != ""))
    what = "gradient" if mode == "backward" else "forward-mode derivative (jvp)"
    return (f"the {what} of input {report.input_index} is wrong at {len(failures)} of {len(report.elements)} checked "
            f"elements, worst at index {worst.index}: {mode} {worst.analytic:.8g}, finite difference "
            f"{worst.numeric:.8g} (error {worst.error:.3g}; noise floor {worst.noise_floor:.3g} at step {eps:g}, "
            f"atol={atol:g}, rtol={rtol:g})" + (f"; {worst.note}" if worst.note else ""))


def _compared(analytic, numeric, source="backward") -> str:
    """'backward is 2x the finite difference', or both values when their ratio means nothing."""
    if numeric != 0 and np.sign(analytic) == np.sign(numeric):
        return f"{source} is {analytic / numeric:.3g}x the finite difference"
    return f"{source} gives {analytic:.6g}, the finite difference {numeric:.6g}"
