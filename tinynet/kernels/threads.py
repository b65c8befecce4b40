"""The cores: a convolution's batch split into chunks that run side by side, each on one core.

A convolution over a batch is independent work per image. Left to them, BLAS and Numba would each split
every call over the cores (OpenBLAS a product's rows, a prange kernel its planes) and meet at a barrier
after it: dozens of barriers per layer, and at each one every thread waits for the slowest, which on a
machine running anything else is a thread waiting for a core. Here the batch is cut once instead, into
chunks that Python threads run side by side, each chunk's kernels serial and its products on one BLAS
thread (both release the GIL): one barrier per layer. Measured on the course's 2-core machine, quiet
(benchmarks/README.md, "Threads"): the face ResNet's forward at batch 32 took 185 ms against 311-359 ms
with two BLAS threads per product.

A product too large for one core (2^24 multiply-adds and more: a fully-connected layer at batch 500) is split the
same way, by rows or columns of its result (`matmul`). So at its first product tinynet sets NumPy's BLAS to one thread
(threadpoolctl; not when imported, which changes no setting): OpenBLAS's own threads spin on a core for
~0.1 s after every call they share (measured: 105 ms of CPU time while the caller slept), which on two cores
took one away from the next layer's chunks.

`workers()` is Numba's thread count (NUMBA_NUM_THREADS, default the number of cores), so
NUMBA_NUM_THREADS=1 runs everything in the calling thread.
"""
import functools
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from threadpoolctl import ThreadpoolController

from .allocator import keep_freed_memory

# Below this many multiply-adds (~0.3 ms on one core) a product runs in the calling thread: waking a sleeping
# thread on the course's VM took longer than the half it saved (part 8's input gradient at batch 1 ran 38 ms
# splitting nothing, 41-42 ms splitting from 2^22 or 2^20 on; benchmarks/README.md). Not on BLAS's own threads
# either, though they start in microseconds: they spin ~0.1 s after each call, beside the next kernels (part 8 at
# batch 1, two threads, the machine quiet: 30.6 ms median with products from 2^21 on BLAS's threads, 28.0 without;
# with other jobs running, 239 ms against 31; issue 30). The im2col forward cuts a single image over the cores from
# the same size on (kernels.conv.forward_pieces).
SPLIT_MULTIPLY_ADDS = 1 << 24
# The same for an elementwise op: below this many elements of its result it runs in the calling thread. Such an op
# is bound by memory, which the two cores share: a bias added to (32, 32, 35, 35) took 0.17 ms split, 0.21 not;
# to (32, 64, 17, 17), 0.10 split, 0.09 not; to (32, 32, 72, 72), 0.82 split, 0.72 not (quiet, issue 30). The
# face ResNet's forward at batch 32, two threads, alternating: 109-117 ms median splitting from 2^21-2^22 on,
# 114-128 from 2^18.
SPLIT_ELEMENTS = 1 << 22

_worker = threading.local()  # .active: this thread is one of the pool's (its kernels run serial)


def workers() -> int:
    """How many chunks run at once: Numba's thread count (NUMBA_NUM_THREADS; the number of cores by default).
    Numba is imported here, not with tinynet (kernels.compile): the ops ask only about work large enough to split."""
    from numba import config
    return config.NUMBA_NUM_THREADS


def in_worker() -> bool:
    """Whether the calling thread runs a chunk: then its kernels run serial and nothing splits further."""
    return getattr(_worker, "active", False)


def _mark_worker():
    _worker.active = True


@functools.cache
def _pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(workers() - 1, thread_name_prefix="tinynet-chunk", initializer=_mark_worker)


os.register_at_fork(after_in_child=_pool.cache_clear)  # a forked child has none of the pool's threads: a new one


def split(n_items, per_chunk, parallel):
    """Slices of range(n_items), at most per_chunk long; with parallel, at least workers() of them where there are
    as many items (so that every core gets one), as even as they can be."""
    count = -(-n_items // max(per_chunk, 1))
    if parallel and workers() > 1 and not in_worker():
        count = max(count, min(n_items, workers()))
    count = max(count, 1)
    bounds = [n_items * k // count for k in range(count + 1)]
    return [slice(start, stop) for start, stop in zip(bounds[:-1], bounds[1:])]


def one_per_worker(n_items):
    """range(n_items) cut into workers() slices (fewer if there are fewer items), as even as they can be."""
    return split(n_items, -(-n_items // workers()), parallel=False)


def map_chunks(function, chunks):
    """[function(chunk) for chunk in chunks], workers() at a time when there are several (each on one BLAS thread).

    function must write only its own chunk's part of any output; results come back in the chunks' order (so a
    sum of them is the same at every run).
    """
    if len(chunks) < 2 or workers() < 2 or in_worker():
        return [function(chunk) for chunk in chunks]
    take_the_cores()
    others = [_pool().submit(function, chunk) for chunk in chunks[1:]]
    _worker.active = True  # the calling thread runs the first chunk meanwhile: one thread less to wake
    try:
        first = function(chunks[0])
    finally:
        _worker.active = False
    return [first] + [other.result() for other in others]


def matmul(a, b, out=None):
    """np.matmul(a, b, out=out) for arrays a (..., n, k), b (..., k, m), split over the cores when it is large: by
    the stacked products where there are enough of them, else by the rows (or, when m > n, the columns) of the
    result. The splits never cut k: each element is the same sum as in one call, to the order BLAS adds in (its
    kernels for small products may differ), so a split changes results only by rounding, and the same way at every
    run with the same workers()."""
    take_the_cores()
    multiply_adds = max(a.size * b.shape[-1], b.size * a.shape[-2])
    if multiply_adds < SPLIT_MULTIPLY_ADDS or in_worker() or workers() < 2:
        return np.matmul(a, b, out=out)
    stack = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    n, m = a.shape[-2], b.shape[-1]
    if out is None:
        out = np.empty(stack + (n, m), np.result_type(a, b))
    a, b = np.broadcast_to(a, stack + a.shape[-2:]), np.broadcast_to(b, stack + b.shape[-2:])
    if stack and stack[0] >= workers():  # (index of a, of b, of out) for each part
        parts = [(part, part, part) for part in one_per_worker(stack[0])]
    elif n >= m:
        parts = [((..., rows, slice(None)), ..., (..., rows, slice(None))) for rows in one_per_worker(n)]
    else:
        parts = [(..., (..., columns), (..., columns)) for columns in one_per_worker(m)]
    map_chunks(lambda part: np.matmul(a[part[0]], b[part[1]], out=out[part[2]]), parts)
    return out


def elementwise(ufunc, *operands):
    """ufunc(*operands) for arrays (NumPy broadcasting), split over the cores along the result's first axis when an
    operand has at least SPLIT_ELEMENTS elements: the same numbers (each element is computed alone). Other inputs
    (array subclasses, a first axis of one) take the plain call."""
    if max(operand.size for operand in operands) < SPLIT_ELEMENTS or in_worker() or workers() < 2 or any(
            type(operand) is not np.ndarray for operand in operands):
        return ufunc(*operands)
    shape = np.broadcast_shapes(*(operand.shape for operand in operands))
    if not shape or shape[0] < 2:
        return ufunc(*operands)
    take_the_cores()
    out = np.empty(shape, np.result_type(*operands))

    def rows_of(operand, rows):
        return operand[rows] if operand.ndim == len(shape) and operand.shape[0] == shape[0] else operand

    map_chunks(lambda rows: ufunc(*(rows_of(operand, rows) for operand in operands), out=out[rows]),
               one_per_worker(shape[0]))
    return out


@functools.cache
def _blas_controller():
    """threadpoolctl's controller of the BLAS libraries, made once, or None where the process may not read its own
    memory map (threadpoolctl finds the libraries there; the assignment grader's sandbox forbids it, and sets one
    BLAS thread itself): then BLAS keeps its threads, and only speed differs. The libraries are NumPy's and SciPy's
    (a library of its own, which np.dot calls inside Numba kernels: loaded here first, so that it is among them).
    Whether the map can be read is tried first (1 ms), so that a grading child does not load SciPy for nothing
    (0.18 CPU-s of each child that runs a product)."""
    try:
        ThreadpoolController()
    except OSError:
        return None
    import scipy.linalg.cython_blas  # noqa: F401 (loads SciPy's BLAS)
    return ThreadpoolController().select(user_api="blas")


@functools.cache
def take_the_cores():
    """Set NumPy's and SciPy's BLAS to one thread, once: tinynet's threads share the cores out (see the module's
    docstring). At the same first product, malloc is told to keep the memory tinynet frees (kernels.allocator)."""
    keep_freed_memory()
    blas = _blas_controller()
    if blas:
        blas.limit(limits=1)  # a limit set now and kept: nothing restores it
