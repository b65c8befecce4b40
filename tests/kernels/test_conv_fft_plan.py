"""The FFT convolution's pieces against scipy's whole transforms; its Plan: spectra shared, kept only for a graph."""
import gc
import weakref

import numpy as np
import pytest
import scipy.fft
from hypothesis import given, settings
from hypothesis import strategies as st

import tinynet as tn
from kernels.test_kernels import assert_close_relative, check_against_reference, conv_cases
from tinynet import functional as F
from tinynet.kernels import conv, conv_fft
from tinynet.kernels.conv import conv2d_backward_reference, conv2d_reference

dtypes = st.sampled_from([np.float32, np.float64])


@st.composite
def kernels_and_sizes(draw):
    """weight (O, C/G, kh, kw), groups and a transform size (Fh, Fw) at least the kernel's."""
    groups = draw(st.integers(1, 3))
    kernel = (draw(st.integers(1, 6)), draw(st.integers(1, 6)))
    size = tuple(k + draw(st.integers(0, 9)) for k in kernel)
    shape = (groups * draw(st.integers(1, 3)), draw(st.integers(1, 3))) + kernel
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    return rng.standard_normal(shape).astype(draw(dtypes)), groups, size


def grouped_spectrum(spectrum, groups):
    """scipy's (O, C/G, Fh, Fw//2 + 1) -> (F, G, O/G, C/G), the layout kernel_of takes."""
    out_channels, group_channels = spectrum.shape[:2]
    return spectrum.reshape(groups, out_channels // groups, group_channels, -1).transpose(3, 0, 1, 2)


@given(case=kernels_and_sizes())
def test_kernel_spectra_is_the_conjugate_rfft2_of_the_zero_padded_kernel(case):
    weight, groups, size = case
    expected = grouped_spectrum(scipy.fft.rfft2(weight, s=size).conj(), groups).swapaxes(2, 3)  # (F, G, C/G, O/G)
    result = conv_fft.kernel_spectra(weight, size, groups)
    assert result.dtype == conv_fft.complex_dtype(weight.dtype)
    assert_close_relative(result, expected.astype(result.dtype), {np.dtype(np.complex64): 1e-5,
                                                                  np.dtype(np.complex128): 1e-12})


@given(case=kernels_and_sizes())
def test_kernel_of_is_irfft2_cropped_to_the_kernel(case):
    weight, groups, size = case
    rng = np.random.default_rng(0)
    spectrum = scipy.fft.rfft2(rng.standard_normal(weight.shape[:2] + size), s=size)
    spectrum = spectrum.astype(conv_fft.complex_dtype(weight.dtype))
    expected = scipy.fft.irfft2(spectrum, s=size)[..., :weight.shape[2], :weight.shape[3]]
    result = conv_fft.kernel_of(np.ascontiguousarray(grouped_spectrum(spectrum, groups)), size, weight.shape[2:])
    assert result.flags.c_contiguous
    assert_close_relative(result, expected.astype(weight.dtype), {np.dtype(np.float32): 1e-5,
                                                                  np.dtype(np.float64): 1e-12})


@given(shape=st.tuples(st.integers(0, 3), st.integers(0, 3), st.integers(1, 7), st.integers(1, 7)),
       extra=st.tuples(st.integers(0, 4), st.integers(0, 4)), offset=st.tuples(st.integers(0, 2), st.integers(0, 2)),
       dtype=dtypes)
def test_image_spectra_and_images_of_are_rfft2_and_its_inverse_frequencies_first(shape, extra, offset, dtype):
    images = np.random.default_rng(1).standard_normal(shape).astype(dtype)
    size = tuple(s + o + e for s, o, e in zip(shape[2:], offset, extra))
    padded = np.zeros(shape[:2] + size, dtype)
    padded[:, :, offset[0]:offset[0] + shape[2], offset[1]:offset[1] + shape[3]] = images
    spectrum = conv_fft.image_spectra(images, size, offset)
    assert spectrum.shape == (size[0], size[1] // 2 + 1) + shape[:2]
    np.testing.assert_allclose(spectrum, scipy.fft.rfft2(padded).transpose(2, 3, 0, 1), rtol=1e-5, atol=1e-5)
    result = conv_fft.images_of(spectrum, size, shape[2:], offset)
    np.testing.assert_allclose(result, images, rtol=1e-5, atol=1e-5)
    assert result.dtype == dtype and result.flags.c_contiguous


@pytest.mark.parametrize("parallel", [False, True])
@given(shape=st.tuples(st.integers(0, 3 * conv_fft.TILE + 1), st.integers(0, 3 * conv_fft.TILE + 1)),
       dtype=st.sampled_from([np.complex64, np.complex128]))
def test_the_tiled_transpose_is_numpys_whatever_the_tiles_left_over(parallel, shape, dtype):
    """The spectra's dtypes, the only ones images_of transposes (a float32 copy would be a compilation of its own
    that the engine never runs)."""
    matrix = np.random.default_rng(2).standard_normal(shape + (2,)).view(np.complex128)[..., 0].astype(dtype)
    out = np.full(shape[::-1], np.nan, dtype)
    getattr(conv_fft.transpose_kernel, "parallel" if parallel else "serial")(out, matrix)
    np.testing.assert_array_equal(out, matrix.T)


def counting_spectra(monkeypatch):
    """A list that gets 'image' or 'kernel' whenever conv_fft transforms images or kernels."""
    made = []
    for name, what in (("image_spectra", "image"), ("kernel_spectra", "kernel")):
        original = getattr(conv_fft, name)
        monkeypatch.setattr(conv_fft, name, lambda *args, _what=what, _f=original: (made.append(_what), _f(*args))[1])
    return made


@pytest.mark.parametrize("x_needs_grad, weight_needs_grad, transforms", [
    (True, True, ["kernel", "image", "image"]),  # weight, x, grad_out: each once
    (False, True, ["kernel", "image", "image"]),  # x's spectra kept for the weight gradient
    (True, False, ["kernel", "image", "image"]),  # the weight's spectra kept for the input gradient
    (False, False, ["kernel", "image", "image", "kernel", "image", "image"])])  # nothing kept: made again
def test_a_plan_transforms_each_array_once_for_the_gradients_wanted(x_needs_grad, weight_needs_grad, transforms,
                                                                    monkeypatch):
    """A Plan's forward and the gradients wanted (both where none is) give the reference's numbers, and each
    array shared among them is transformed once."""
    rng = np.random.default_rng(2)
    x, weight = rng.standard_normal((2, 4, 9, 8)), rng.standard_normal((6, 2, 4, 3))
    settings_ = ((1, 1), ((1, 2), (2, 0)), (1, 1), 2)
    grad_out = rng.standard_normal(conv_fft.conv2d_forward(x, weight, *settings_).shape)
    expected_x, expected_weight = conv2d_backward_reference(grad_out, x, weight, *settings_)
    made = counting_spectra(monkeypatch)
    plan = conv_fft.Plan(x_needs_grad, weight_needs_grad)
    assert_close_relative(plan.conv2d_forward(x, weight, *settings_), conv2d_reference(x, weight, *settings_))
    if x_needs_grad or not weight_needs_grad:
        assert_close_relative(plan.conv2d_input_grad(grad_out, x.shape, weight, *settings_), expected_x)
    if weight_needs_grad or not x_needs_grad:
        assert_close_relative(plan.conv2d_weight_grad(grad_out, x, weight.shape, *settings_), expected_weight)
    assert made == transforms


def test_a_plan_recomputes_for_another_array_of_the_same_shape():
    rng = np.random.default_rng(3)
    x, weight = rng.standard_normal((1, 2, 6, 6)), rng.standard_normal((3, 2, 3, 3))
    settings_ = ((1, 1), ((1, 1), (1, 1)), (1, 1), 1)
    plan = conv_fft.Plan(True, True)
    plan.conv2d_forward(x, weight, *settings_)
    other = weight[::-1].copy()
    grad_out = rng.standard_normal((1, 3, 6, 6))
    assert_close_relative(plan.conv2d_input_grad(grad_out, x.shape, other, *settings_),
                          conv2d_backward_reference(grad_out, x, other, *settings_)[0])


def plans_made(monkeypatch):
    """A list of weak references to every conv_fft.Plan made from now on."""
    plans, init = [], conv_fft.Plan.__init__

    def recording_init(self, *args):
        plans.append(weakref.ref(self))
        init(self, *args)

    monkeypatch.setattr(conv_fft.Plan, "__init__", recording_init)
    return plans


def test_nothing_is_kept_for_a_convolution_under_no_grad(monkeypatch):
    plans = plans_made(monkeypatch)
    x, weight = (tn.Tensor(np.ones(shape), requires_grad=True) for shape in [(1, 2, 6, 6), (3, 2, 3, 3)])
    with tn.force_conv_algorithm("fft"):
        with tn.no_grad():
            out = F.conv2d(x, weight, padding="same")
        gc.collect()
        assert len(plans) == 1 and plans[0]() is None and out.node is None
        out = F.conv2d(x, weight, padding="same")
    assert plans[1]() is not None and set(plans[1]().kept) == {"x", "weight"}


@pytest.mark.parametrize("needs", [(True, False), (False, True), (True, True)])
def test_conv2d_gradients_by_fft_for_the_inputs_that_want_them(needs):
    """float64 gradcheck through functional.conv2d with fft forced, whichever inputs want gradients."""
    rng = np.random.default_rng(4)
    x, weight = (tn.Tensor(rng.standard_normal(shape), requires_grad=need)
                 for shape, need in zip([(2, 4, 7, 6), (4, 2, 5, 4)], needs))

    def convolve(x, weight):
        with tn.force_conv_algorithm("fft"):
            return F.conv2d(x, weight, padding=((2, 1), (0, 3)), groups=2)

    tn.gradcheck(convolve, [x, weight])


@given(case=conv_cases(unit_stride=True, max_kernel=6, max_size=12))
@settings(max_examples=30)
def test_a_plan_that_keeps_everything_matches_the_loop_reference(case):
    x, weight, settings_, rng = case
    check_against_reference(conv_fft.Plan(True, True), x, weight, settings_, rng)


def test_double_backward_through_an_fft_convolution():
    rng = np.random.default_rng(5)
    inputs = [tn.Tensor(rng.standard_normal(shape), requires_grad=True) for shape in [(2, 2, 6, 5), (3, 2, 4, 3)]]

    def convolve(x, weight):
        with tn.force_conv_algorithm("fft"):
            return F.tanh(F.conv2d(x, weight, padding="same"))

    tn.gradgradcheck(convolve, inputs)


@given(case=conv_cases(unit_stride=True), budget_images=st.floats(0.3, 2.5))
@settings(max_examples=15)
def test_a_forward_without_kept_spectra_goes_in_chunks_within_the_budget(case, budget_images):
    """Where x's spectra are not kept, the forward transforms at most a worker's share of the budget in images
    at a time (at least one) and gives the one-chunk numbers; where they are kept (a weight gradient wanted), the
    batch at once."""
    x, weight, settings_, _ = case
    x = np.concatenate([x, x[::-1] * 0.5, x])
    whole = conv_fft.Plan(weight_needs_grad=True).conv2d_forward(x, weight, *settings_)
    size = conv_fft.transform_size(conv_fft.padded_hw(x.shape, settings_[1]))
    per_image = conv_fft.spectra_bytes_per_image(x.shape[1], weight.shape[0], size, x.dtype)
    budget = max(int(per_image * budget_images), 1)
    batches, image_spectra = [], conv_fft.image_spectra
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(conv, "COLUMNS_BUDGET_BYTES", budget)
        patch.setattr(conv_fft, "image_spectra", lambda images, *args: (batches.append(len(images)),
                                                                        image_spectra(images, *args))[1])
        chunked = conv_fft.Plan().conv2d_forward(x, weight, *settings_)
        assert sum(batches) == len(x) and max(batches) <= max(1, budget // conv.workers() // per_image)
        batches.clear()
        conv_fft.Plan(weight_needs_grad=True).conv2d_forward(x, weight, *settings_)
        assert batches == [len(x)]
    assert_close_relative(chunked, whole)


def test_an_fft_convolution_under_no_grad_goes_in_chunks(monkeypatch):
    """Under tn.no_grad no input wants a gradient, so the plan keeps nothing and the batch goes in chunks
    (an evaluation batch of 1000 images held 1.4 GB of spectra at once)."""
    rng = np.random.default_rng(0)
    x = tn.Tensor(rng.standard_normal((6, 2, 9, 9)), requires_grad=True)
    weight = tn.Tensor(rng.standard_normal((3, 2, 5, 5)), requires_grad=True)
    size = conv_fft.transform_size((9, 9))
    monkeypatch.setattr(conv, "COLUMNS_BUDGET_BYTES",  # two images per worker
                        2 * conv.workers() * conv_fft.spectra_bytes_per_image(2, 3, size, np.float64))
    batches, image_spectra = [], conv_fft.image_spectra
    monkeypatch.setattr(conv_fft, "image_spectra", lambda images, *args: (batches.append(len(images)),
                                                                          image_spectra(images, *args))[1])
    with tn.force_conv_algorithm("fft"):
        with tn.no_grad():
            F.conv2d(x, weight)
        assert batches == [2, 2, 2]
        batches.clear()
        F.conv2d(x, weight)
        assert batches == [6]
