"""Numba kernels on plain NumPy arrays (NCHW), each with a plain NumPy reference for tests.

Nothing here knows about Tensor. Every kernel is written as a Python function and then
compiled by `Kernel`, so NUMBA_DISABLE_JIT=1 runs the same code as Python for debugging.
"""
from numba import njit

# Below this many elements of work, starting threads costs more than it saves (on a loaded
# 2-core machine a parallel launch can wait a whole scheduler time slice for a thread).
PARALLEL_THRESHOLD = 1 << 16


class Kernel:
    """A Python function compiled twice by Numba: serial, and parallel over its prange loop.

    kernel(*arguments, work=n) runs the parallel version when n >= PARALLEL_THRESHOLD.
    Both versions are cached on disk, so only the first run on a machine compiles.
    """

    def __init__(self, function):
        self.function = function
        self.serial = njit(cache=True)(function)
        self.parallel = njit(cache=True, parallel=True)(function)

    def __call__(self, *arguments, work):
        return (self.parallel if work >= PARALLEL_THRESHOLD else self.serial)(*arguments)
