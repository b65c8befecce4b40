"""Compare gradients written by hand with the ones backward computed, tensor by tensor.

The "Backprop Ninja" exercise: write every gradient of a network by hand, then check each against
tinynet's. `compare_gradients(manual, framework)` gives one row per tensor, with a verdict:

- exact: the two arrays are equal, bit for bit (the same arithmetic in the same order);
- approx: they differ by no more than round-off, so both are right;
- WRONG: they differ by more. The row says by how much (the largest |difference|) and, when the hand-written
  gradient is the framework's times a constant, which constant ("2.0x the framework's": a factor of 2 too many);
- WRONG SHAPE, MISSING: the hand-written gradient has another shape, or was not given.

Round-off is judged as tinynet.finite_differences judges it: a float computation of terms of total size S
carries up to ROUNDOFF_ULPS ε S (`roundoff`). A gradient written in another order (softmax - one_hot instead
of the log-softmax VJP, sums taken in another order) is a different computation of the same vector g from the
same forward values, each accurate to a few ulps of its size (the Euclidean norm |g|, which bounds every
element). So the two agree when

    |manual - framework| <= roundoff(|manual|, manual's dtype) + roundoff(|framework|, framework's dtype)

A bug (a missing 1/N, a transposed weight, a forgotten tanh') misses by far more: a factor of 2 is off by
|g|, about 10^7 ulps in float32. This judges the backward's arithmetic, not the forward's: recompute the forward
in float64 where the framework ran float32, and its values differ by the forward's own round-off, which the
gradients carry on (a sum of 784 products is off by many ulps of its result), so some rows may say WRONG. Write
the backward in the framework's dtype, from the values its forward computed.
"""
from dataclasses import dataclass

import numpy as np

from .finite_differences import roundoff
from .tensor import Tensor, plural, values_of

PASSING = ("exact", "approx")


@dataclass(frozen=True)
class TensorComparison:
    """One tensor's row: its name, the framework's shape, the verdict and what backs it.

    max_abs_difference: the largest |manual - framework| (nan when the shapes differ or a value is missing).
    tolerance: the round-off the two may differ by, in the Euclidean norm (see the module docstring).
    note: for WRONG, the constant factor or what else is wrong; for WRONG SHAPE, the shapes.
    """

    name: str
    shape: tuple
    verdict: str
    max_abs_difference: float = float("nan")
    tolerance: float = float("nan")
    note: str = ""

    @property
    def passed(self) -> bool:
        """True for exact and approx."""
        return self.verdict in PASSING

    def line(self, name_width: int) -> str:
        """The row in the table, its name padded to name_width."""
        difference = "" if np.isnan(self.max_abs_difference) else f"{self.max_abs_difference:.2e}"
        return (f"{self.name:<{name_width}}  {str(self.shape):<14} {self.verdict:<11} {difference:>10}  "
                f"{self.note}").rstrip()


@dataclass(frozen=True)
class GradientComparison:
    """The rows of compare_gradients, in the framework's order. str() is the table."""

    rows: tuple

    @property
    def passed(self) -> bool:
        """True when every gradient is exact or approx."""
        return all(row.passed for row in self.rows)

    @property
    def wrong(self) -> list:
        """The rows that did not pass (WRONG, WRONG SHAPE, MISSING)."""
        return [row for row in self.rows if not row.passed]

    def __getitem__(self, name) -> TensorComparison:
        for row in self.rows:
            if row.name == name:
                return row
        raise KeyError(f"no gradient named {name!r} was compared; the names are {[r.name for r in self.rows]}")

    def __str__(self):
        """The table: a header, one line per tensor, then which gradients are wrong (or that none is)."""
        width = max([len("tensor")] + [len(row.name) for row in self.rows])
        header = f"{'tensor':<{width}}  {'shape':<14} {'verdict':<11} {'max |diff|':>10}  note".rstrip()
        summary = (f"{plural(len(self.rows), 'gradient')} compared, all match" if self.passed
                   else f"{len(self.wrong)} of {plural(len(self.rows), 'gradient')} wrong: "
                        + ", ".join(row.name for row in self.wrong))
        return "\n".join([header] + [row.line(width) for row in self.rows] + [summary])


def compare_gradients(manual, framework) -> GradientComparison:
    """Check hand-written gradients against the framework's, one row per tensor (see the module docstring).

    manual: {name: array} of d loss / d tensor written by hand (a Tensor counts by its values).
    framework: {name: Tensor or array}: a Tensor counts by its .grad, filled by loss.backward() (call
    retain_grad() on an intermediate tensor before backward to keep its gradient); an array counts as it is.
    The rows follow framework's order; a name in manual that framework lacks is an error (a misspelling).
    print() the result for the table; `.passed`, `.wrong` and `result["W1"].verdict` are for code.
    """
    unknown = [name for name in manual if name not in framework]
    if unknown:
        raise KeyError(f"manual gradients {unknown} have no framework gradient to compare with; the framework's "
                       f"names are {list(framework)}")
    rows = []
    for name, reference in framework.items():
        expected = _framework_gradient(name, reference)
        got = manual.get(name)
        rows.append(TensorComparison(name, expected.shape, "MISSING", note="no manual gradient given")
                    if got is None else compare_tensor(name, np.asarray(values_of(got)), expected))
    return GradientComparison(tuple(rows))


def compare_tensor(name, manual: np.ndarray, framework: np.ndarray) -> TensorComparison:
    """The row of one tensor: manual and framework are d loss / d tensor, arrays of the tensor's shape."""
    if manual.shape != framework.shape:
        hint = ": transposed?" if manual.shape == framework.shape[::-1] else ""
        return TensorComparison(name, framework.shape, "WRONG SHAPE",
                                note=f"manual has shape {manual.shape}, the framework's {framework.shape}{hint}")
    manual64, framework64 = manual.astype(np.float64), framework.astype(np.float64)
    difference = float(np.max(np.abs(manual64 - framework64), initial=0.0))
    tolerance = _tolerance(manual, framework)
    if np.array_equal(manual, framework):
        verdict, note = "exact", ""
    elif not np.all(np.isfinite(manual64)):
        verdict, note = "WRONG", "has nan or inf"
    elif _scaled_norm(manual64 - framework64) <= tolerance:
        verdict, note = "approx", ""
    else:
        verdict, note = "WRONG", _what_is_wrong(manual64, framework64, manual, framework)
    return TensorComparison(name, framework.shape, verdict, difference, tolerance, note)


def _scaled_norm(array) -> float:
    """The Euclidean norm of a float64 array, computed on the array scaled by its largest |element|, so that
    elements of 1e200 do not overflow their squares to inf (which would make any tolerance pass)."""
    largest = float(np.max(np.abs(array), initial=0.0))
    return 0.0 if largest == 0 or not np.isfinite(largest) else largest * float(np.linalg.norm(array / largest))


def _framework_gradient(name, reference) -> np.ndarray:
    """The framework's gradient of one tensor: a Tensor's .grad, or an array as it is."""
    if not isinstance(reference, Tensor):
        return np.asarray(reference)
    if reference.grad is None:
        raise ValueError(f"the framework's {name} has no .grad: call loss.backward() first, and {name}.retain_grad() "
                         "before it when an op made it (only leaf tensors keep their gradient by default)")
    return np.asarray(values_of(reference.grad))


def _tolerance(manual, framework) -> float:
    """The round-off each computation of the gradient may carry, added: a few ulps of each one's norm."""
    return (roundoff(_scaled_norm(manual.astype(np.float64)), _float_type(manual))
            + roundoff(_scaled_norm(framework.astype(np.float64)), _float_type(framework)))


def _float_type(array):
    """The float type an array's values were computed in (float64 for integers)."""
    return array.dtype if np.issubdtype(array.dtype, np.floating) else np.float64


def _what_is_wrong(manual64, framework64, manual, framework) -> str:
    """For a WRONG gradient of finite values: 'all zeros', '2.0x the framework's' (a constant factor), or ''."""
    if not np.any(manual64):
        return "all zeros"
    if not np.any(framework64):
        return "the framework's is all zeros"
    scale = float(np.max(np.abs(framework64)))
    factor = float(np.vdot(manual64 / scale, framework64 / scale) / np.vdot(framework64 / scale, framework64 / scale))
    if _scaled_norm(manual64 - factor * framework64) <= _tolerance(manual, factor * framework):
        return f"{_as_factor(factor)}x the framework's"
    return ""


def _as_factor(factor) -> str:
    """'2.0', '-1.0', '0.3333', '1e+200': four significant digits, a whole number marked as a float."""
    text = f"{factor:.4g}"
    return text + ".0" if text.lstrip("-").isdigit() else text
