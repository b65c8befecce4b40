"""Numba kernels on plain NumPy arrays (NCHW), each with a plain NumPy reference for tests.

Nothing here knows about Tensor. Every kernel is written as a Python function and then
compiled by `Kernel`, so NUMBA_DISABLE_JIT=1 runs the same code as Python for debugging.
"""
import os
import types

from numba import config, njit

# Below this many elements of work, starting threads costs more than it saves (on a loaded
# 2-core machine a parallel launch can wait a whole scheduler time slice for a thread).
PARALLEL_THRESHOLD = 1 << 16

# The kernels run between BLAS calls, which have their own threads. Numba's default OpenMP
# threads keep spinning on the cores after each kernel and slow the next matrix product (by
# 2-10x for AlexNet's convolutions at batch 1, see benchmarks/README.md); the workqueue
# threads sleep at once. (It allows no parallel kernel in two Python threads at the same
# time; set NUMBA_THREADING_LAYER to choose another layer.)
if "NUMBA_THREADING_LAYER" not in os.environ:
    config.THREADING_LAYER = "workqueue"


def renamed(function, suffix):
    """A copy of function whose qualified name ends in suffix.

    Numba names a function's disk cache after its qualified name and line, not after the
    compile options, so the serial and the parallel compilation of one function would
    overwrite and load each other's machine code (a "serial" call would start threads).
    """
    copy = types.FunctionType(function.__code__, function.__globals__, function.__name__ + suffix,
                              function.__defaults__, function.__closure__)
    copy.__qualname__ = function.__qualname__ + suffix
    copy.__doc__ = function.__doc__
    return copy


class Kernel:
    """A Python function compiled twice by Numba: serial, and parallel over its prange loop.

    kernel(*arguments, work=n) runs the parallel version when n >= PARALLEL_THRESHOLD.
    Both versions are cached on disk (separately), so only the first run on a machine compiles.
    """

    def __init__(self, function):
        self.function = function
        self.serial = njit(cache=True)(renamed(function, "_serial"))
        self.parallel = njit(cache=True, parallel=True)(renamed(function, "_parallel"))

    def __call__(self, *arguments, work):
        return (self.parallel if work >= PARALLEL_THRESHOLD else self.serial)(*arguments)
