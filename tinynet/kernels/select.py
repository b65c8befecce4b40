"""np.where(condition, a, b) where one side is a single number: a ReLU's (or Where's) VJP, grad_out where x > 0, else 0.

NumPy's where branches on every element; with a condition that holds for about half of them at random (a
ReLU's), it mispredicts half the time: 15 ms for the seed-004 CNN's first feature map (4.2M float32 values, one
core), where this kernel's compare-and-select (vectorised by LLVM) takes 1 ms. Any other broadcast goes to
np.where, which is also the reference the tests compare with.
"""
import numpy as np

from .compile import Kernel, prange


def select_or_number(out, condition, values, number, where_true):
    """out[i] = values[i] where condition[i] == where_true, else number; out, values (n,), condition (n,) bool."""
    for i in prange(out.size):
        out[i] = values[i] if condition[i] == where_true else number


select_or_number_kernel = Kernel(select_or_number)


def where(condition, a, b):
    """np.where(condition, a, b) for arrays: condition (bool) and a, b broadcast together; by the kernel when one of
    a, b has condition's shape and the other is a single number (0-d) of its dtype."""
    if not all(type(array) is np.ndarray for array in (condition, a, b)):  # (subclasses: NumPy's rules)
        return np.where(condition, a, b)
    for values, number, where_true in ((a, b, True), (b, a, False)):
        if (condition.dtype == bool and values.shape == condition.shape and number.ndim == 0
                and values.dtype == number.dtype and values.dtype.kind == "f"):
            out = np.empty(condition.shape, values.dtype)
            select_or_number_kernel(out.reshape(-1), np.ascontiguousarray(condition).reshape(-1),
                                    np.ascontiguousarray(values).reshape(-1), number[()], where_true, work=out.size)
            return out
    return np.where(condition, a, b)
