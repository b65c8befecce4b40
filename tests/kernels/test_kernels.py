"""Each Numba kernel against its plain NumPy loop reference, forward and backward."""
import threading
import tracemalloc
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinynet.kernels.compile
from tinynet.kernels import conv
from tinynet.kernels.adam import adam_step, adam_step_reference
from tinynet.kernels.compile import Kernel
from tinynet.kernels.conv import (
    columns_bytes_per_image,
    columns_reference,
    conv2d_backward_reference,
    conv2d_forward,
    conv2d_reference,
    im2col_kernel,
    im2col_phases_kernel,
    im2col_same_width_kernel,
    phases_shape,
    release_scratch,
    split_phases_kernel,
    split_phases_reference,
)
from tinynet.kernels.lrn import lrn_backward, lrn_backward_reference, lrn_forward, lrn_reference
from tinynet.kernels.pool import (
    avg_pool2d,
    avg_pool2d_transpose,
    avg_pool_reference,
    max_pool2d,
    max_pool2d_values,
    max_pool_reference,
    max_unpool2d,
)
from tinynet.kernels.select import where
from tinynet.kernels.windows import resolve_padding


@pytest.fixture(autouse=True, params=["serial", "parallel"])
def kernel_mode(request, monkeypatch):
    """Run every test here twice: with the serial and with the parallel (prange) compilation.

    The parallel runs are double precision's: there a kernel given a float32 (or complex64) array runs its serial
    compilation, as in the serial runs. The parallel compilation is the serial one's code with its outer loop split
    over threads, so what only it can get wrong (a race, a plane written twice or not at all) shows in either
    precision, and what a precision gets wrong shows in the serial runs. Each kernel's parallel compilation for
    single precision too cost 0.5-7 CPU-s more in a fresh clone's suite (Winograd's three kernels 14; issue 30).
    """
    if request.param == "parallel":
        monkeypatch.setattr(tinynet.kernels.compile, "PARALLEL_THRESHOLD", 0)
        monkeypatch.setattr(Kernel, "__call__", parallel_in_double_precision(Kernel.__call__))
    return request.param


def parallel_in_double_precision(call):
    """Kernel.__call__ (call) for a kernel given only double-precision arrays; the serial compilation otherwise."""
    def __call__(kernel, *arguments, work):
        if any(getattr(a, "dtype", None) in (np.float32, np.complex64) for a in arguments):
            return kernel.serial(*arguments)
        return call(kernel, *arguments, work=work)
    return __call__


paddings = st.one_of(st.integers(0, 2), st.tuples(st.integers(0, 2), st.integers(0, 2)),
                     st.tuples(st.tuples(st.integers(0, 2), st.integers(0, 2)),
                               st.tuples(st.integers(0, 2), st.integers(0, 2))),
                     st.sampled_from(["valid", "same"]))


@st.composite
def conv_cases(draw, unit_stride=False, max_kernel=3, max_size=8):
    """A random small convolution whose output is not empty (unit_stride: stride and dilation 1)."""
    groups = draw(st.integers(1, 3))
    channels, out_channels = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    kernel = (draw(st.integers(1, max_kernel)), draw(st.integers(1, max_kernel)))
    stride = (1, 1) if unit_stride else (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (1, 1) if unit_stride else (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    size = (draw(st.integers(1, max_size)), draw(st.integers(1, max_size)))
    pads = resolve_padding(draw(paddings), size, kernel, stride, dilation)
    spans = [(k - 1) * d + 1 for k, d in zip(kernel, dilation)]
    if any(s + sum(p) < span for s, p, span in zip(size, pads, spans)):
        pads = tuple((span, span) for span in spans)  # make the window fit
    seed = draw(st.integers(0, 2**32 - 1))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((draw(st.integers(1, 2)), channels) + size).astype(dtype)
    weight = rng.standard_normal((out_channels, channels // groups) + kernel).astype(dtype)
    return x, weight, (stride, pads, dilation, groups), rng


def tolerance(dtype):
    return {"rtol": 1e-4, "atol": 1e-4} if dtype == np.float32 else {"rtol": 1e-10, "atol": 1e-10}


# float64 within 1e-10, float32 within 1e-4, relative to the largest value of the reference
RELATIVE_TOLERANCE = {np.dtype(np.float64): 1e-10, np.dtype(np.float32): 1e-4}


def assert_close_relative(result, expected, tolerances=RELATIVE_TOLERANCE):
    """|result - expected| <= tolerance * (|expected| + max |expected|), and the same dtype."""
    tolerance = tolerances[expected.dtype]
    scale = np.max(np.abs(expected), initial=0.0)
    np.testing.assert_allclose(result, expected, rtol=tolerance, atol=tolerance * scale)
    assert result.dtype == expected.dtype and result.shape == expected.shape


def check_against_reference(kernels, x, weight, settings_, rng):
    """kernels' forward, input gradient and weight gradient against the loop references."""
    out = kernels.conv2d_forward(x, weight, *settings_)
    assert_close_relative(out, conv2d_reference(x, weight, *settings_))
    grad_out = rng.standard_normal(out.shape).astype(x.dtype)
    expected_x, expected_weight = conv2d_backward_reference(grad_out, x, weight, *settings_)
    assert_close_relative(kernels.conv2d_input_grad(grad_out, x.shape, weight, *settings_), expected_x)
    assert_close_relative(kernels.conv2d_weight_grad(grad_out, x, weight.shape, *settings_), expected_weight)


@given(case=conv_cases())
def test_conv2d_forward_and_backward_match_the_loop_reference(case):
    """im2col (tinynet.kernels.conv) against the loops; every other algorithm is in test_conv_algorithms.py."""
    x, weight, settings_, rng = case
    check_against_reference(conv, x, weight, settings_, rng)


@st.composite
def columns_cases(draw, same_width=False):
    """x (N, C, H, W) and the columns of a window over it: kernel, stride, dilation, (top, left) (negative: rows and
    columns of x left out, as conv2d_forward's pieces of rows see them) and output size (same_width: stride 1 and
    Wo = W, im2col_same_width's case)."""
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    shape = (draw(st.integers(0, 2)), draw(st.integers(0, 3)), draw(st.integers(1, 8)), draw(st.integers(1, 8)))
    x = np.random.default_rng(draw(st.integers(0, 2**32 - 1))).standard_normal(shape).astype(dtype)
    kernel, dilation = (draw(st.integers(1, 4)), draw(st.integers(1, 4))), (draw(st.integers(1, 3)), draw(
        st.integers(1, 3)))
    stride = (1, 1) if same_width else (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    top_left = (draw(st.integers(-4, 6)), draw(st.integers(-4, 6)))
    out_hw = (draw(st.integers(1, 7)), shape[3] if same_width else draw(st.integers(1, 7)))
    return x, kernel, stride, dilation, top_left, out_hw


def test_columns_reference_is_im2col_of_the_padded_image():
    """The forward's kernels are checked against columns_reference, and it against the assignment's im2col."""
    x = np.random.default_rng(3).standard_normal((2, 3, 7, 6))
    columns = np.zeros((3 * 2 * 3, 2, 3, 2))
    im2col_kernel(columns, np.pad(x, ((0, 0), (0, 0), (2, 1), (1, 0))), 2, 3, 3, 2, 2, 1, work=columns.size)
    np.testing.assert_array_equal(columns_reference(x, (2, 3), (3, 2), (2, 1), (2, 1), (3, 2)), columns)


@given(case=columns_cases())
def test_split_phases_and_im2col_phases_make_the_reference_columns(case):
    """Exactly: they copy numbers. Every element is written (the arrays start as NaN)."""
    x, kernel, stride, dilation, top_left, out_hw = case
    phases = np.full(phases_shape(x.shape, kernel, stride, dilation, out_hw), np.nan, x.dtype)
    split_phases_kernel(phases, x, *top_left, work=phases.size)
    np.testing.assert_array_equal(phases, split_phases_reference(x, stride, top_left, phases.shape[4:]))
    expected = columns_reference(x, kernel, stride, dilation, top_left, out_hw)
    columns = np.full(expected.shape, np.nan, x.dtype)
    im2col_phases_kernel(columns, phases, *kernel, *dilation, work=columns.size)
    np.testing.assert_array_equal(columns, expected)


@given(case=columns_cases(same_width=True))
def test_im2col_same_width_makes_the_reference_columns(case):
    x, kernel, stride, dilation, top_left, out_hw = case
    expected = columns_reference(x, kernel, stride, dilation, top_left, out_hw)
    columns = np.full(expected.shape, np.nan, x.dtype)
    im2col_same_width_kernel(columns, x, *kernel, *dilation, *top_left, work=columns.size)
    np.testing.assert_array_equal(columns, expected)


@st.composite
def pool_cases(draw):
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    size = (draw(st.integers(3, 8)), draw(st.integers(3, 8)))
    pads = tuple((draw(st.integers(0, k - 1)), draw(st.integers(0, k - 1))) for k in kernel)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 3))) + size
    x = rng.permutation(np.prod(shape)).reshape(shape).astype(np.float64)  # distinct: no ties
    return x, kernel, stride, pads, rng


def max_pool_forward_backward(x, kernel, stride, pads):
    """(out, grad_out, grad_x): max_pool2d of x, a random grad_out, and its VJP max_unpool2d (the kernels').
    max_pool2d_values (the maxima without their argmax) must give the same out, NaNs included."""
    out, argmax = max_pool2d(x, kernel, stride, pads)
    np.testing.assert_array_equal(max_pool2d_values(x, kernel, stride, pads), out)
    grad_out = np.random.default_rng(0).standard_normal(out.shape)
    return out, grad_out, max_unpool2d(grad_out, argmax, x.shape)


@given(case=pool_cases())
def test_max_pool_matches_reference_and_routes_gradient_to_the_maximum(case):
    x, kernel, stride, pads, _ = case
    out, grad_out, grad_x = max_pool_forward_backward(x, kernel, stride, pads)
    np.testing.assert_array_equal(out, max_pool_reference(x, kernel, stride, pads))
    expected = np.zeros_like(x)
    for n, c, y, x_ in np.ndindex(*out.shape):
        expected[n, c][np.unravel_index(np.argmax(x[n, c] == out[n, c, y, x_]), x.shape[2:])] += grad_out[n, c, y, x_]
    np.testing.assert_allclose(grad_x, expected, rtol=1e-12)


@given(case=pool_cases())
def test_max_pool_propagates_nan_as_its_reference_does_and_still_routes_every_gradient(case):
    x, kernel, stride, pads, rng = case
    x[rng.random(x.shape) < 0.3] = np.nan
    out, grad_out, grad_x = max_pool_forward_backward(x, kernel, stride, pads)
    np.testing.assert_array_equal(out, max_pool_reference(x, kernel, stride, pads))
    np.testing.assert_allclose(grad_x.sum(), grad_out.sum(), rtol=1e-12)


@given(case=pool_cases())
def test_max_pool_routes_each_gradient_to_the_first_nan_else_the_first_maximum_of_its_window(case):
    x, kernel, stride, pads, rng = case
    x = rng.integers(0, 3, x.shape).astype(np.float64)  # many ties
    x[rng.random(x.shape) < 0.1] = np.nan
    out, grad_out, grad_x = max_pool_forward_backward(x, kernel, stride, pads)
    padded = np.pad(x, ((0, 0), (0, 0)) + pads, constant_values=-np.inf)
    expected = np.zeros_like(padded)
    for n, c, y, x_ in np.ndindex(*out.shape):
        window = padded[n, c, y * stride[0]:y * stride[0] + kernel[0], x_ * stride[1]:x_ * stride[1] + kernel[1]]
        nans = np.isnan(window)
        winner = np.argmax(nans) if nans.any() else np.argmax(window)  # np.argmax: the first, row by row
        row, column = divmod(winner, kernel[1])
        expected[n, c, y * stride[0] + row, x_ * stride[1] + column] += grad_out[n, c, y, x_]
    (top, bottom), (left, right) = pads
    np.testing.assert_array_equal(grad_x, expected[:, :, top:top + x.shape[2], left:left + x.shape[3]])


@given(case=pool_cases())
def test_avg_pool_matches_reference_and_its_backward_is_the_adjoint(case):
    x, kernel, stride, pads, rng = case
    out = avg_pool2d(x, kernel, stride, pads)
    grad_out = rng.standard_normal(out.shape)
    grad_x = avg_pool2d_transpose(grad_out, x.shape, kernel, stride, pads)
    np.testing.assert_allclose(out, avg_pool_reference(x, kernel, stride, pads), rtol=1e-12)
    probe = rng.standard_normal(x.shape)  # <grad_out, A probe> == <A^T grad_out, probe>
    np.testing.assert_allclose(np.sum(grad_out * avg_pool_reference(probe, kernel, stride, pads)),
                               np.sum(grad_x * probe), rtol=1e-9)


@given(shape=st.lists(st.integers(0, 5), max_size=4).map(tuple), seed=st.integers(0, 2**32 - 1),
       dtype=st.sampled_from([np.float32, np.float64]), number_first=st.booleans())
def test_where_with_a_number_matches_numpy_and_drops_the_infinities_and_nans_not_chosen(shape, seed, dtype,
                                                                                          number_first):
    rng = np.random.default_rng(seed)
    values = rng.standard_normal(shape).astype(dtype)
    values[rng.random(shape) < 0.2] = rng.choice([np.nan, np.inf, -np.inf])
    condition, number = rng.random(shape) < 0.5, np.asarray(rng.standard_normal(), dtype)
    a, b = (number, values) if number_first else (values, number)
    result = where(condition, a, b)
    np.testing.assert_array_equal(result, np.where(condition, a, b))
    assert result.dtype == dtype and result.shape == shape


def test_where_of_other_broadcasts_and_dtypes_is_numpys():
    condition = np.array([[True, False, True]])
    for a, b in [(np.arange(3.0), np.arange(6.0).reshape(2, 3)), (np.arange(3, dtype=np.float32), np.zeros(())),
                 (np.arange(3), np.zeros((), int)), (np.arange(3.0)[::-1], np.ones(()))]:
        result = where(condition, a, b)
        np.testing.assert_array_equal(result, np.where(condition, a, b))
        assert result.dtype == np.where(condition, a, b).dtype
    transposed = np.eye(3, dtype=bool)[:, ::-1].T  # a condition that is not contiguous
    np.testing.assert_array_equal(where(transposed, np.arange(9.0).reshape(3, 3), np.zeros(())),
                                  np.where(transposed, np.arange(9.0).reshape(3, 3), 0.0))


@given(shape=st.sampled_from([(1,), (7,), (3, 5), (2, 3, 4)]), seed=st.integers(0, 2**32 - 1),
       dtype=st.sampled_from([np.float32, np.float64]), lr=st.sampled_from([1e-4, 1e-3, 0.1]),
       betas=st.sampled_from([(0.9, 0.999), (0.5, 0.9)]), eps=st.sampled_from([1e-8, 1e-3]),
       transposed_grad=st.booleans())
def test_adam_step_matches_the_reference_to_the_bit(shape, seed, dtype, lr, betas, eps, transposed_grad):
    """Three steps from zero moments, the gradient's zeros and large values included; a transposed gradient goes
    through the kernel too (copied), a transposed parameter through the reference."""
    rng = np.random.default_rng(seed)
    value = rng.standard_normal(shape).astype(dtype)
    ours, theirs = [value.copy(), np.zeros_like(value), np.zeros_like(value)], [value, *np.zeros((2,) + shape, dtype)]
    for step in (1, 2, 3):
        grad = (rng.standard_normal(shape[::-1]) * rng.choice([0.0, 1.0, 1e3], shape[::-1])).astype(dtype)
        grad = grad.T if transposed_grad else grad.reshape(shape)
        adam_step(*ours, grad, lr, betas, eps, step)
        adam_step_reference(*theirs, grad, lr, betas, eps, step)
        for result, expected in zip(ours, theirs):
            np.testing.assert_array_equal(result, expected)
            assert result.dtype == dtype


def test_adam_step_of_a_transposed_parameter_updates_it_in_place():
    value = np.arange(6.0).reshape(2, 3).T
    expected = value.copy()
    adam_step_reference(expected, np.zeros((3, 2)), np.zeros((3, 2)), np.ones((3, 2)), 0.1, (0.9, 0.999), 1e-8, 1)
    adam_step(value, np.zeros((3, 2)), np.zeros((3, 2)), np.ones((3, 2)), 0.1, (0.9, 0.999), 1e-8, 1)
    np.testing.assert_array_equal(value, expected)
    np.testing.assert_allclose(value, np.arange(6.0).reshape(2, 3).T - 0.1)  # Adam's first step: lr * sign(grad)


@given(channels=st.integers(1, 7), radius=st.integers(0, 4), seed=st.integers(0, 2**32 - 1),
       alpha=st.sampled_from([2e-5, 0.1]), beta=st.sampled_from([0.5, 0.6, 0.75]),
       dtype=st.sampled_from([np.float32, np.float64]))
def test_lrn_forward_and_backward_match_the_reference(channels, radius, seed, alpha, beta, dtype):
    rng = np.random.default_rng(seed)
    x, grad_out = (rng.standard_normal((2, channels, 3, 2)).astype(dtype) for _ in range(2))
    out, saved = lrn_forward(x, radius, 2.0, alpha, beta)
    np.testing.assert_allclose(out, lrn_reference(x, radius, 2.0, alpha, beta), **tolerance(dtype))
    grad_x = lrn_backward(grad_out, x, saved, radius, alpha, beta)
    expected = lrn_backward_reference(grad_out, x, radius, 2.0, alpha, beta)
    np.testing.assert_allclose(grad_x, expected, **tolerance(dtype))
    assert out.dtype == grad_x.dtype == dtype


def test_lrn_known_answer():
    x = np.array([1.0, 2.0, 3.0]).reshape(1, 3, 1, 1)
    out, _ = lrn_forward(x, 1, 1.0, 0.5, 0.5)
    sums = np.array([1 + 4, 1 + 4 + 9, 4 + 9])
    np.testing.assert_allclose(out.ravel(), np.array([1.0, 2.0, 3.0]) / np.sqrt(1 + 0.5 * sums))


@pytest.mark.parametrize("size, kernel, stride, expected", [
    (227, 11, 4, ((4, 4), 57)),  # AlexNet conv1: (57 - 1) * 4 + 11 - 227 = 8 pixels of padding
    (6, 3, 2, ((0, 1), 3)),  # total pad 1: the odd pixel goes to the bottom
    (150, 3, 1, ((1, 1), 150)),
    (35, 3, 2, ((1, 1), 18)),
    (8, 2, 2, ((0, 0), 4)),
])
def test_same_padding_known_answers(size, kernel, stride, expected):
    (pads,) = resolve_padding("same", (size,), (kernel,), (stride,), (1,))[:1]
    out = (size + sum(pads) - kernel) // stride + 1
    assert (pads, out) == expected


def test_same_padding_convolution_known_answers():
    """Convolving ones with ones counts the real pixels under each window: it shows where the padding went."""
    pads = resolve_padding("same", (227, 227), (11, 11), (4, 4), (1, 1))
    out = conv2d_forward(np.ones((1, 1, 227, 227)), np.ones((1, 1, 11, 11)), (4, 4), pads, (1, 1), 1)
    assert out.shape == (1, 1, 57, 57)
    assert (out[0, 0, 0, 0], out[0, 0, 28, 28], out[0, 0, 56, 56]) == (49, 121, 49)  # 4 pixels of padding each side
    pads = resolve_padding("same", (6, 6), (3, 3), (2, 2), (1, 1))
    out = conv2d_forward(np.ones((1, 1, 6, 6)), np.ones((1, 1, 3, 3)), (2, 2), pads, (1, 1), 1)
    np.testing.assert_array_equal(out[0, 0], [[9, 9, 6], [9, 9, 6], [6, 6, 4]])  # the one padded row/column: last


def test_padding_errors_are_clear():
    with pytest.raises(ValueError, match="'valid' or 'same'"):
        resolve_padding("full", (5, 5), (3, 3), (1, 1), (1, 1))
    with pytest.raises(ValueError, match="must be >= 0"):
        resolve_padding(-1, (5, 5), (3, 3), (1, 1), (1, 1))


def test_release_scratch_lets_go_of_every_threads_reused_buffers():
    """Issue 30: each thread keeps the im2col columns (and products) it made for its next call: AlexNet's batch of
    32 left ~170 MB in two threads' buffers through every later benchmark case. release_scratch frees them all,
    also those of a thread that lives on, idle."""
    x, weight = np.ones((2, 2, 16, 16), np.float32), np.ones((4, 2, 3, 3), np.float32)
    settings = ((1, 1), ((1, 1), (1, 1)), (1, 1), 1)
    columns = 2 * columns_bytes_per_image(x.shape, (3, 3), (16, 16), x.dtype)
    release_scratch()  # the buffers that earlier tests left, so that this test's are made (and traced) here
    tracemalloc.start()
    try:
        with ThreadPoolExecutor(1) as idle_thread:
            idle_thread.submit(conv2d_forward, x, weight, *settings).result()
            conv2d_forward(x, weight, *settings)
            held = tracemalloc.get_traced_memory()[0]
            release_scratch()
            freed = held - tracemalloc.get_traced_memory()[0]
            assert threading.active_count() >= 2  # the pool's thread was alive throughout
    finally:
        tracemalloc.stop()
    assert freed >= 2 * columns
