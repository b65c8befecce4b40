"""Compiling a kernel: one Python function, a serial and a parallel Numba compilation, both cached on disk.

Write the kernel as a plain Python function with `prange` over its outermost independent axis,
then wrap it: `max_pool_kernel = Kernel(max_pool)`. NUMBA_DISABLE_JIT=1 runs the Python code.
"""
import os
import types

from numba import config, njit

from .threads import in_worker, workers

# Below this many elements of work, starting threads costs more than it saves (on a loaded
# 2-core machine a parallel launch can wait a whole scheduler time slice for a thread). Measured on the course's
# machine, quiet, two threads (issue 30): part 8's input gradient at batch 1 (im2col's columns of 0.35M elements)
# 24.2 ms median from 2^20 on, 28.0 from 2^16; ReLU's VJP (select) on 150,000 elements 10 us serial, 50 parallel.
PARALLEL_THRESHOLD = 1 << 20


def choose_threading_layer():
    """Make Numba's threads the workqueue's, unless the user chose a layer (NUMBA_THREADING_LAYER or config).

    The kernels run between BLAS calls, which have their own threads. Numba's default OpenMP
    threads keep spinning on the cores after each kernel and slow the next matrix product (by
    2-10x for AlexNet's convolutions at batch 1, see benchmarks/README.md); the workqueue
    threads sleep at once. (It allows no parallel kernel in two Python threads at the same
    time.) Numba reads the setting when it first starts its threads, so calling this before
    each parallel kernel is enough, and importing tinynet changes nothing.
    """
    if "NUMBA_THREADING_LAYER" not in os.environ and config.THREADING_LAYER == "default":
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

    kernel(*arguments, work=n) runs the parallel version when n >= PARALLEL_THRESHOLD and there are two workers or
    more (kernels.threads): with NUMBA_NUM_THREADS=1 the parallel loop is handed to a thread of Numba's, which on a
    loaded machine waited for a core (AlexNet's batch-1 convolutions 2-4x slower, median; benchmarks/README.md).
    Both versions are compiled at their first call and cached on disk (separately), so only
    the first run on a machine compiles. Both release the GIL, so that chunks of a batch run side by
    side in Python threads (tinynet.kernels.threads), where the serial version runs.
    """

    def __init__(self, function, **options):
        """options: more of njit's (error_model="numpy": a division by zero gives inf or nan as in NumPy instead of
        raising, which lets LLVM vectorize the division)."""
        self.function = function
        # Numba's disk cache ignores the options, so each compilation's name says them: a cache written by an
        # older tinynet without nogil must not be loaded (its kernels would hold the GIL, and chunks queue).
        self.serial = njit(cache=True, nogil=True, **options)(renamed(function, "_serial_nogil"))
        self.parallel = njit(cache=True, parallel=True, nogil=True, **options)(renamed(function, "_parallel_nogil"))

    def __call__(self, *arguments, work):
        if work < PARALLEL_THRESHOLD or in_worker() or workers() < 2:  # a chunk's thread already has its core
            return self.serial(*arguments)  # (kernels.threads); with one worker, Numba's thread would wait for one
        choose_threading_layer()
        return self.parallel(*arguments)
