"""Compiling a kernel: one Python function, a serial and a parallel Numba compilation, both cached on disk.

Write the kernel as a plain Python function with `prange` (this module's) over its outermost independent axis,
then wrap it: `max_pool_kernel = Kernel(max_pool)`; a function that kernels call is wrapped by `Helper`.
NUMBA_DISABLE_JIT=1 runs the Python code.

Copy one array into another with a loop, not a slice assignment from an array (`a[:] = b`, `a[:, i:j] = b`): for
that, Numba compiles the error message of a shape mismatch, string formatting included, 2.3-3.5 CPU-s in each process
that compiles such a kernel (once per number of dimensions), for no gain in speed (issue 30).

Numba is imported when the first kernel runs, not with tinynet: the import costs ~0.25 CPU-s, which a process
that runs no kernel does not pay (the assignment grader's children of most tasks; issue 30). Until then `prange`
is Python's range: the copy of a function that Numba compiles sees numba.prange in its place, and each Helper's
compilation in place of the Helper (`for_numba`).
"""
import functools
import os
import threading
import types

from .threads import in_worker, workers

prange = range
_compiled = {}  # {(function, name suffix): its Numba dispatcher}
_compiling = threading.RLock()  # chunks' threads may call a kernel for the first time at once

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
    from numba import config
    if "NUMBA_THREADING_LAYER" not in os.environ and config.THREADING_LAYER == "default":
        config.THREADING_LAYER = "workqueue"


def for_numba(function, suffix):
    """A copy of function whose qualified name ends in suffix, and whose globals have numba.prange for `prange`
    and each Helper's compilation for the Helper: what Numba must see when it compiles.

    Numba names a function's disk cache after its qualified name and line, not after the compile options, so the
    serial and the parallel compilation of one function would overwrite and load each other's machine code (a
    "serial" call would start threads).
    """
    import numba
    names = dict(function.__globals__)
    for name in _global_names(function.__code__) & names.keys():
        if names[name] is prange:
            names[name] = numba.prange
        elif isinstance(names[name], Helper):
            names[name] = names[name].compiled
    copy = types.FunctionType(function.__code__, names, function.__name__ + suffix, function.__defaults__,
                              function.__closure__)
    copy.__qualname__ = function.__qualname__ + suffix
    copy.__doc__ = function.__doc__
    return copy


def _global_names(code) -> set:
    """The names code (and the code of the functions defined in it) looks up outside itself."""
    names = set(code.co_names)
    for constant in code.co_consts:
        if isinstance(constant, types.CodeType):
            names |= _global_names(constant)
    return names


def compiled(function, suffix="", **options):
    """Numba's njit(cache=True, nogil=True, **options) of for_numba(function, suffix), made once."""
    with _compiling:
        if (function, suffix) not in _compiled:
            from numba import njit
            _compiled[function, suffix] = njit(cache=True, nogil=True, **options)(for_numba(function, suffix))
        return _compiled[function, suffix]


class Helper:
    """A function that kernels call: compiled (serial, cached on disk) when the first kernel calling it is; a call
    from Python runs that compilation too."""

    def __init__(self, function):
        self.function = function
        self.__doc__ = function.__doc__

    @property
    def compiled(self):
        return compiled(self.function)

    def __call__(self, *arguments):
        return self.compiled(*arguments)


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
        self.function, self.options = function, options

    # Numba's disk cache ignores the options, so each compilation's name says them: a cache written by an
    # older tinynet without nogil must not be loaded (its kernels would hold the GIL, and chunks queue).
    @functools.cached_property
    def serial(self):
        return compiled(self.function, "_serial_nogil", **self.options)

    @functools.cached_property
    def parallel(self):
        return compiled(self.function, "_parallel_nogil", parallel=True, **self.options)

    def __call__(self, *arguments, work):
        if work < PARALLEL_THRESHOLD or in_worker() or workers() < 2:  # a chunk's thread already has its core
            return self.serial(*arguments)  # (kernels.threads); with one worker, Numba's thread would wait for one
        choose_threading_layer()
        return self.parallel(*arguments)
