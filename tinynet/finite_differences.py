"""Central finite differences, and what they can resolve.

gradcheck reduces fn's output to a scalar with a fixed random weighting u,
f(x) = sum(u * fn(x)), and moves one input x along a direction d (a unit vector e_i for one
partial derivative). The central difference

    D(h) = (f(x + h d) - f(x - h d)) / (2 h)

misses the directional derivative f'(x; d) by two errors with opposite habits:

- truncation: D(h) = f'(x; d) + h² f'''(x; d) / 6 + O(h⁴), so large steps are inaccurate;
- round-off: f is a float64 sum of terms of total size S = sum|u * fn(x)| >= |f|, computed with
  an error of a few machine epsilons ε times S; the difference of two such values, divided by
  2h, carries about ε S / h: small steps are noisy.

The error is smallest in between: `step_sweep` in tinynet.gradcheck draws that "V". An analytic
gradient a passes when it agrees with D(h) within what the step can resolve (the noise floor):

    |a - D(h)| <= roundoff + truncation + atol + rtol |D(h)|
    roundoff   = ROUNDOFF_ULPS ε S / h
    truncation = 4/3 |D(h) - D(h/2)|   (measured only when the other terms do not already suffice)

The truncation estimate follows from D(h) - D(h/2) = 3/4 h² f'''/6 + O(h⁴). Being measured, it
also holds the actual round-off at both steps, so a function noisier than ROUNDOFF_ULPS ulps
widens its own floor. An exact zero gradient (a pixel the network never reads) meets D(h) = 0
or round-off noise and passes; a wrong gradient disagrees with D(h) by more than the floor,
whatever its size.

Kinks: when an op with a non-differentiable point (ReLU, max, max-pool) takes a different
branch at x + h than at x - h, D(h) averages two slopes and need not equal either one-sided
derivative. Such an element is reported as a kink crossing, with the ops that crossed.
"""
from dataclasses import dataclass

import numpy as np

from .grad_mode import no_grad
from .recorder import ops_whose_branch_differs, record_ops
from .tensor import Tensor

ROUNDOFF_ULPS = 4


def roundoff(scale, dtype=np.float64) -> float:
    """The round-off a float computation of terms of total size `scale` may carry: ROUNDOFF_ULPS ε scale,
    ε the machine epsilon of dtype (float64 here; tinynet.gradient_comparison asks for float32 too)."""
    return ROUNDOFF_ULPS * float(np.finfo(dtype).eps) * scale


@dataclass
class Evaluation:
    """f at one moved point: its value, the size S of the terms it sums, the ops that ran, the step taken."""

    value: float
    scale: float
    calls: list
    step: float


@dataclass
class CentralDifference:
    """D(h) for one direction, the round-off it may carry, and the ops whose kinks the step crossed."""

    value: float
    roundoff: float
    crossed_kinks: list


class ProjectedFunction:
    """f(x) = sum(weights * fn(*inputs)) as a function of one input moved along a direction.

    fn: Tensors -> Tensor; inputs: Tensors; weights: array of fn's output shape (the u above).
    """

    def __init__(self, fn, inputs, weights):
        self.fn, self.inputs, self.weights = fn, inputs, weights

    def moved(self, input_index, direction, step) -> Evaluation:
        """f with input input_index at x + step * direction (no graph is recorded).

        direction: an int (the flat index of a unit vector e_i) or an array of the input's shape.
        The step reported is the one actually taken: for e_i, (x_i + step) - x_i in float64.
        """
        x = self.inputs[input_index]._data
        moved = x.copy()
        if isinstance(direction, (int, np.integer)):
            moved.flat[direction] += step
            step = float(moved.flat[direction] - x.flat[direction])
        else:
            moved += step * direction
        values = list(self.inputs)
        values[input_index] = Tensor(moved)
        with no_grad(), record_ops() as calls:
            terms = self.weights * self.fn(*values)._data
        return Evaluation(float(terms.sum()), float(np.abs(terms).sum()), calls, step)

    def central_difference(self, input_index, direction, h) -> CentralDifference:
        """D(h) along direction (see the module docstring), with its round-off estimate."""
        plus, minus = self.moved(input_index, direction, h), self.moved(input_index, direction, -h)
        step = plus.step - minus.step
        return CentralDifference((plus.value - minus.value) / step,
                                 2 * roundoff(max(plus.scale, minus.scale)) / step,
                                 ops_whose_branch_differs(plus.calls, minus.calls))
