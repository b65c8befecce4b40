"""kernels.threads: a batch cut into chunks that run side by side, and products split over the cores, give the
numbers of one call in the calling thread."""
import json
import multiprocessing
import subprocess
import sys
import threading

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from coursedata.paths import PROJECT_ROOT
from tinynet.kernels import conv, conv_winograd, threads


@pytest.fixture
def two_workers(monkeypatch):
    """Two workers, and every product large enough to split, whatever the machine."""
    monkeypatch.setattr(threads, "workers", lambda: 2)
    monkeypatch.setattr(threads, "SPLIT_MULTIPLY_ADDS", 0)
    monkeypatch.setattr(threads, "SPLIT_ELEMENTS", 0)
    threads._pool.cache_clear()
    yield
    threads._pool.cache_clear()


@given(n_items=st.integers(0, 40), per_chunk=st.integers(0, 50), parallel=st.booleans())
def test_split_covers_every_item_once_in_order_within_the_chunk_size(n_items, per_chunk, parallel):
    chunks = threads.split(n_items, per_chunk, parallel)
    assert [i for chunk in chunks for i in range(chunk.start, chunk.stop)] == list(range(n_items))
    assert max(chunk.stop - chunk.start for chunk in chunks) <= max(per_chunk, 1)
    if parallel and threads.workers() > 1:
        assert len(chunks) >= min(n_items, threads.workers())


@pytest.mark.parametrize("shapes", [((37, 20), (20, 9)),  # rows split
                                    ((5, 20), (20, 41)),  # columns split
                                    ((6, 1, 8, 7), (6, 3, 7, 5)),  # stacked, a broadcast
                                    ((8, 7), (4, 7, 5))])  # stacked, a without stack axes
def test_a_split_product_is_the_one_call_product(two_workers, shapes):
    """To rounding: BLAS may add a sum's terms in another order for a smaller product (its small-matrix kernels)."""
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal(shape) for shape in shapes)
    np.testing.assert_allclose(threads.matmul(a, b), np.matmul(a, b), rtol=1e-13, atol=1e-13)
    out = np.empty(np.matmul(a, b).shape)
    assert threads.matmul(a, b, out=out) is out
    np.testing.assert_allclose(out, np.matmul(a, b), rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("ufunc", [np.add, np.maximum])
@pytest.mark.parametrize("shapes", [((7, 3, 4), (7, 3, 4)), ((7, 3, 4), (1, 3, 1)), ((5, 2), ()), ((1, 4), (6, 4)),
                                    ((6, 4), (4,))])
def test_an_elementwise_op_split_over_the_cores_gives_the_same_numbers(two_workers, ufunc, shapes):
    rng = np.random.default_rng(2)
    a = rng.standard_normal(shapes[0]).astype(np.float32)
    b = np.asarray(rng.standard_normal(shapes[1]))  # float64: the result's dtype follows NumPy's rules
    result = threads.elementwise(ufunc, a, b)
    np.testing.assert_array_equal(result, ufunc(a, b))
    assert result.dtype == ufunc(a, b).dtype


def test_chunks_run_in_the_pool_in_order_and_their_kernels_run_serial(two_workers):
    seen = threads.map_chunks(lambda chunk: (chunk, threads.in_worker()), threads.split(10, 3, parallel=True))
    assert [chunk for chunk, _ in seen] == threads.split(10, 3, parallel=True)
    assert all(in_worker for _, in_worker in seen)
    assert not threads.in_worker()


@pytest.mark.parametrize("module", [conv, conv_winograd])
def test_a_batch_in_chunks_on_two_workers_gives_the_single_thread_numbers(two_workers, monkeypatch, module):
    """To rounding (BLAS may add in another order for a smaller product; the weight gradient is a sum over the
    chunks)."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((5, 4, 9, 9))
    weight = rng.standard_normal((6, 4, 3, 3))
    grad_out = rng.standard_normal((5, 6, 9, 9))
    settings = ((1, 1), ((1, 1), (1, 1)), (1, 1), 1)

    def run():
        return (module.conv2d_forward(x, weight, *settings), module.conv2d_input_grad(grad_out, x.shape, weight,
                                                                                      *settings),
                module.conv2d_weight_grad(grad_out, x, weight.shape, *settings))

    monkeypatch.setattr(conv, "SPLIT_BYTES", 0)
    split_run = run()
    monkeypatch.setattr(threads, "workers", lambda: 1)
    monkeypatch.setattr(conv, "SPLIT_BYTES", 1 << 60)
    one_thread = run()
    for split_result, one_thread_result in zip(split_run, one_thread):
        np.testing.assert_allclose(split_result, one_thread_result, rtol=1e-12, atol=1e-12)


def test_blas_gets_one_thread_at_the_first_product_not_at_import():
    """OpenBLAS's threads spin after each call they share: tinynet takes the cores over from them, but only once it
    computes something (importing it changes no setting)."""
    script = """
import json
import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits
threadpool_limits(2, user_api="blas")
def blas_threads():
    return [info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas"]
import tinynet as tn
before = blas_threads()
tn.Tensor(np.ones((3, 4))) @ tn.Tensor(np.ones((4, 2)))
print(json.dumps([before, blas_threads()]))
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                            cwd=PROJECT_ROOT)
    before, after = json.loads(result.stdout)
    assert set(before) == {2} and set(after) == {1}


def chunks_in_a_child():
    return threads.map_chunks(lambda chunk: chunk.stop - chunk.start, threads.split(10, 3, parallel=True))


def test_a_forked_child_runs_its_chunks_in_a_pool_of_its_own(two_workers):
    """Threads do not survive fork(): the parent's pool in the child would take the chunks and never run them."""
    chunks_in_a_child()  # the parent's pool is running
    with multiprocessing.get_context("fork").Pool(1) as child:
        assert sum(child.apply_async(chunks_in_a_child).get(timeout=30)) == 10


def test_a_product_below_the_split_runs_in_the_calling_thread_on_one_blas_thread(monkeypatch):
    """Below SPLIT_MULTIPLY_ADDS a product is one BLAS call on one thread: neither tinynet's threads nor BLAS's own
    (which would spin beside the next kernels) take part."""
    from threadpoolctl import threadpool_info

    monkeypatch.setattr(threads, "workers", lambda: 2)
    seen = []
    monkeypatch.setattr(threads.np, "matmul", lambda a, b, out=None: seen.append(
        ({info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas"},
         threading.current_thread() is threading.main_thread())) or a @ b)
    a, b = np.ones((64, 64)), np.ones((64, (threads.SPLIT_MULTIPLY_ADDS - 1) // (64 * 64)))
    np.testing.assert_array_equal(threads.matmul(a, b), np.full((64, b.shape[1]), 64.0))
    assert seen == [({1}, True)]
