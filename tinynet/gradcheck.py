"""Check analytic gradients against central finite differences, in float64.

For a function f of tensors, pick a fixed random direction u in output space and compare
the analytic gradient of the scalar <u, f(x)> (one backward pass) with
(<u, f(x + eps e_i)> - <u, f(x - eps e_i)>) / (2 eps) for every input element i.
Fast mode compares only the directional derivative along one random v per input.
"""
from dataclasses import dataclass

import numpy as np

from .tensor import Tensor


class GradcheckError(AssertionError):
    """An analytic gradient disagrees with its finite-difference estimate."""


@dataclass
class InputReport:
    """Worst disagreement found for one input."""

    input_index: int
    max_abs_error: float
    max_rel_error: float
    worst_index: tuple
    analytic: float
    numeric: float


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, fast=False, seed=0, raise_on_failure=True):
    """Compare d<u, fn(*inputs)>/d input (backward) with central differences.

    fn: maps Tensors to one Tensor. inputs: Tensors (float64 recommended); only those with
    requires_grad are checked. An element passes when |analytic - numeric| <= atol + rtol *
    |numeric|. Returns a list of InputReport, one per checked input; raises GradcheckError
    naming the input, the worst element and both values on failure.
    """
    rng = np.random.default_rng(seed)
    inputs = [x if isinstance(x, Tensor) else Tensor(x) for x in inputs]
    checked = [i for i, x in enumerate(inputs) if x.requires_grad]
    if not checked:
        raise ValueError("gradcheck needs at least one input with requires_grad=True")
    for i in checked:
        if not inputs[i].is_leaf:
            raise ValueError(f"input {i} was computed by an op; gradcheck needs leaf tensors (e.g. x.detach())")
        if inputs[i].dtype != np.float64:
            raise ValueError(f"input {i} is {inputs[i].dtype}; gradcheck needs float64 for finite differences")

    output = fn(*inputs)
    direction = rng.standard_normal(output.shape)

    def projected(values):
        return float(np.sum(fn(*values).data * direction))

    saved_grads = [x.grad for x in inputs]
    for i in checked:
        inputs[i].grad = None
    output.backward(direction.astype(output.dtype))
    analytic_grads = {i: np.zeros(inputs[i].shape) if inputs[i].grad is None else inputs[i].grad for i in checked}
    for x, grad in zip(inputs, saved_grads):
        x.grad = grad

    reports = []
    for i in checked:
        if fast:
            v = rng.standard_normal(inputs[i].shape)
            analytic = np.array([np.sum(analytic_grads[i] * v)])
            numeric = np.array([_central_difference(projected, inputs, i, v, eps)])
        else:
            analytic = analytic_grads[i].ravel()
            numeric = np.array([_central_difference(projected, inputs, i, _unit(inputs[i].shape, flat), eps)
                                for flat in range(inputs[i].size)])
        reports.append(_report(i, inputs[i].shape if not fast else (1,), analytic, numeric, atol, rtol,
                               raise_on_failure))
    return reports


def _unit(shape, flat_index):
    """The array of `shape` that is 1 at flat_index and 0 elsewhere."""
    e = np.zeros(int(np.prod(shape)))
    e[flat_index] = 1.0
    return e.reshape(shape)


def _central_difference(projected, inputs, index, direction, eps):
    """(f(x + eps d) - f(x - eps d)) / (2 eps) with only input `index` moved along d."""
    def moved(sign):
        values = list(inputs)
        values[index] = Tensor(inputs[index].data + sign * eps * direction)
        return projected(values)

    return (moved(+1) - moved(-1)) / (2 * eps)


def _report(input_index, shape, analytic, numeric, atol, rtol, raise_on_failure):
    """Summarize the element-wise comparison of one input; raise if any element fails."""
    abs_error = np.abs(analytic - numeric)
    rel_error = abs_error / np.maximum(np.abs(numeric), np.finfo(np.float64).tiny)
    worst = int(np.argmax(abs_error - rtol * np.abs(numeric)))
    report = InputReport(input_index, float(abs_error.max(initial=0)), float(rel_error.max(initial=0)),
                         tuple(int(i) for i in np.unravel_index(worst, shape)) if analytic.size else (),
                         float(analytic[worst]) if analytic.size else 0.0,
                         float(numeric[worst]) if analytic.size else 0.0)
    if raise_on_failure and np.any(abs_error > atol + rtol * np.abs(numeric)):
        raise GradcheckError(f"gradient of input {input_index} is wrong at index {report.worst_index}: "
                             f"analytic {report.analytic:.8g}, numeric {report.numeric:.8g} "
                             f"(abs error {abs_error[worst]:.3g}, tolerance atol={atol} rtol={rtol})")
    return report
