"""Engine arguments (issue 18): every invalid convolution or pooling argument gets a clear error naming it,
before any kernel runs; empty batches work; integer tensors are refused rather than truncated."""
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinynet as tn
from tinynet import functional as F
from tinynet import nn

not_a_size = st.one_of(st.integers(-3, 0), st.floats(allow_nan=True), st.sampled_from(["2", None, True, np.float64(2)]),
                       st.tuples(st.integers(1, 2), st.integers(-2, 0)), st.tuples(st.integers(1, 2)),
                       st.tuples(st.integers(1, 2), st.integers(1, 2), st.integers(1, 2)),
                       st.tuples(st.integers(1, 2), st.floats(1, 2)))
not_a_padding = st.one_of(st.integers(-3, -1), st.floats(allow_nan=True), st.sampled_from(["full", None, (1, 2, 3)]),
                          st.tuples(st.integers(0, 1), st.integers(-2, -1)),
                          st.tuples(st.tuples(st.integers(0, 1), st.integers(-2, -1)), st.tuples(st.integers(0, 1))),
                          st.tuples(st.tuples(st.just(0.5), st.just(0)), st.tuples(st.just(0), st.just(0))))
image = np.zeros((1, 2, 5, 5))


@given(name=st.sampled_from(["stride", "dilation", "groups"]), value=not_a_size)
def test_conv2d_refuses_an_invalid_argument_by_name(name, value):
    arguments = {"stride": 1, "dilation": 1, "groups": 1, name: value}
    with pytest.raises((TypeError, ValueError), match=name):
        F.conv2d(image, np.ones((2, 2, 3, 3)), **arguments)


@given(padding=not_a_padding)
def test_conv2d_and_pooling_refuse_an_invalid_padding(padding):
    with pytest.raises((TypeError, ValueError), match="padding"):
        F.conv2d(image, np.ones((2, 2, 3, 3)), padding=padding)
    with pytest.raises((TypeError, ValueError), match="padding"):
        F.max_pool2d(image, 3, padding=padding)


@pytest.mark.parametrize("pool", [F.max_pool2d, F.avg_pool2d], ids=["max", "avg"])
@given(name=st.sampled_from(["kernel_size", "stride"]), value=not_a_size)
def test_pooling_refuses_an_invalid_argument_by_name(pool, name, value):
    arguments = {"kernel_size": 2, "stride": 2, name: value}
    if name == "stride" and value is None:
        return  # stride None means the kernel size
    with pytest.raises((TypeError, ValueError), match=name):
        pool(image, **arguments)


def test_a_window_that_does_not_fit_is_refused_by_conv_and_pooling_alike():
    with pytest.raises(ValueError, match=r"weight's kernel size \(6, 6\) .* does not fit input \(5, 5\)"):
        F.conv2d(image, np.ones((2, 2, 6, 6)))
    with pytest.raises(ValueError, match=r"weight's kernel size \(3, 3\) \(dilation \(3, 3\)\) does not fit"):
        F.conv2d(image, np.ones((2, 2, 3, 3)), dilation=3)
    with pytest.raises(ValueError, match=r"kernel_size \(6, 6\) .* does not fit input \(5, 5\)"):
        F.max_pool2d(image, 6)
    with pytest.raises(ValueError, match="smaller than the pooling window"):
        F.avg_pool2d(image, 2, padding=2)
    with pytest.raises(ValueError, match="weight's kernel size must be >= 1"):
        F.conv2d(image, np.ones((2, 2, 0, 3)), padding=1)
    with pytest.raises(ValueError, match=r"height and width must be at least 1, got \(0, 5\)"):
        F.max_pool2d(np.zeros((1, 1, 0, 5)), 1, padding=0)
    with pytest.raises(ValueError, match="groups must be >= 1"):
        nn.Conv2d(2, 2, 3, groups=0)
    with pytest.raises(ValueError, match="depth_radius must be >= 0"):
        F.local_response_norm(image, depth_radius=-1)


def test_a_pytorch_style_lrn_call_raises_saying_how_to_translate_it():
    """PyTorch's local_response_norm(x, size=5) is depth_radius=2 here: a size read as a radius would be silently
    another normalization, so only keywords are taken."""
    image = np.ones((1, 3, 4, 4))
    for call in (lambda: F.local_response_norm(image, 5), lambda: F.local_response_norm(image, size=5),
                 lambda: nn.LocalResponseNorm(5), lambda: nn.LocalResponseNorm(size=5, k=2.0)):
        with pytest.raises(TypeError, match=r"depth_radius=\(size - 1\) // 2 .* bias=k, alpha=alpha / size"):
            call()
    assert F.local_response_norm(image, depth_radius=2).shape == image.shape


def test_numpy_integers_are_valid_sizes_and_give_the_same_result():
    x = np.random.default_rng(0).standard_normal((1, 2, 7, 7))
    weight = np.ones((2, 1, 3, 3))
    two = np.int64(2)
    np.testing.assert_array_equal(F.conv2d(x, weight, None, two, np.int32(1), groups=two, dilation=two).data,
                                  F.conv2d(x, weight, None, 2, 1, groups=2, dilation=2).data)
    np.testing.assert_array_equal(F.max_pool2d(x, (two, 3), two, padding=((np.int8(1), 0), (1, 1))).data,
                                  F.max_pool2d(x, (2, 3), 2, padding=((1, 0), (1, 1))).data)


def test_conv2d_groups_and_dilation_are_keyword_only():
    with pytest.raises(TypeError):
        F.conv2d(image, np.ones((2, 2, 3, 3)), None, 1, 0, 1)
    with pytest.raises(TypeError):
        nn.Conv2d(2, 2, 3, 1, 0, 1)


# ---- empty batches ------------------------------------------------------------------------
def test_an_empty_batch_gives_an_empty_output_and_zero_parameter_gradients():
    rng = np.random.default_rng(0)
    layers = [(nn.Linear(3, 2, rng=rng, dtype=np.float64), (0, 3), (0, 2)),
              (nn.Conv2d(4, 6, 3, stride=2, padding=1, groups=2, rng=rng, dtype=np.float64), (0, 4, 5, 5),
               (0, 6, 3, 3))]
    for layer, in_shape, out_shape in layers:
        x = tn.Tensor(np.zeros(in_shape), requires_grad=True)
        out = layer(x)
        assert out.shape == out_shape
        out.sum().backward()
        assert x.grad.shape == in_shape
        for parameter in layer.parameters():
            np.testing.assert_array_equal(parameter.grad, np.zeros(parameter.shape))
    for pool in (F.max_pool2d, F.avg_pool2d):
        x = tn.Tensor(np.zeros((0, 3, 5, 5)), requires_grad=True)
        out = pool(x, 2, padding=1)
        assert out.shape == (0, 3, 3, 3)
        out.sum().backward()
        assert x.grad.shape == (0, 3, 5, 5)


# ---- integer tensors ----------------------------------------------------------------------
def test_integer_tensors_are_refused_and_integer_data_becomes_float():
    with pytest.raises(TypeError, match="floating-point.*int64"):
        tn.Tensor([1, 2], dtype=np.int64)
    t = tn.Tensor(np.arange(3), requires_grad=True)
    np.testing.assert_array_equal((t * 0.5).data, [0.0, 0.5, 1.0])
    (t * 1.5).sum().backward()
    np.testing.assert_array_equal(t.grad, [1.5, 1.5, 1.5])


# ---- NaN ----------------------------------------------------------------------------------
@pytest.mark.parametrize("position", list(np.ndindex(2, 2)))
def test_nan_propagates_through_max_pool_wherever_it_is_in_the_window_as_through_max(position):
    x = tn.Tensor(np.arange(16.0).reshape(1, 1, 4, 4), requires_grad=True)
    x.data[(0, 0) + position] = np.nan
    out = F.max_pool2d(x, 2)
    assert np.isnan(out.data[0, 0, 0, 0]) and np.isnan(F.max(x[:, :, :2, :2]).item())
    assert not np.any(np.isnan(out.data.ravel()[1:]))
    out.sum().backward()
    assert x.grad[(0, 0) + position] == 1 and x.grad[0, 0, :2, :2].sum() == 1


# ---- kernels never read or write out of bounds ---------------------------------------------
BOUNDS_CHECKED_SCRIPT = textwrap.dedent("""
    import functools
    import numpy as np
    from numba import config
    assert config.BOUNDSCHECK, "NUMBA_BOUNDSCHECK was not read"
    import tinynet as tn
    from tinynet import functional as F
    from tinynet.kernels.conv import conv2d_reference, im2col_kernel
    from tinynet.kernels.pool import avg_pool_reference, max_pool_reference
    from tinynet.kernels.windows import sliding_window

    rng = np.random.default_rng(0)
    cases = [((2, 2, 5, 7), (4, 1, 3, 2), 2, ((2, 1), (0, 2)), 2, 2), ((1, 1, 1, 1), (1, 1, 3, 3), 3, "same", 2, 1),
             ((0, 3, 4, 4), (3, 3, 1, 1), 1, 0, 1, 1), ((1, 2, 6, 5), (2, 2, 6, 5), 4, 0, 1, 1)]
    for x_shape, weight_shape, stride, padding, dilation, groups in cases:
        x = tn.Tensor(rng.standard_normal(x_shape), requires_grad=True)
        weight = tn.Tensor(rng.standard_normal(weight_shape), requires_grad=True)
        out = F.conv2d(x, weight, None, stride, padding, groups=groups, dilation=dilation)
        out.backward(np.ones(out.shape))
        _, strides, pads, dilations, _ = sliding_window(x_shape[2:], weight_shape[2:], stride, padding, dilation)
        np.testing.assert_allclose(out.data, conv2d_reference(x.data, weight.data, strides, pads, dilations, groups))
    real_pixel_avg_pool2d = functools.partial(F.avg_pool2d, count_include_pad=False)
    for pool, reference in [(F.max_pool2d, max_pool_reference), (real_pixel_avg_pool2d, avg_pool_reference)]:
        for kernel, stride, padding in [(3, 1, 2), ((3, 1), (5, 2), ((2, 0), (0, 0))), (2, 3, "same"), (4, 4, 0)]:
            x = tn.Tensor(rng.standard_normal((2, 3, 4, 5)), requires_grad=True)
            out = pool(x, kernel, stride, padding)
            out.backward(np.ones(out.shape))
            kernel, stride, pads, _, _ = sliding_window(x.shape[2:], kernel, stride, padding, 1)
            np.testing.assert_allclose(out.data, reference(x.data, kernel, stride, pads))
    x, weight = rng.standard_normal((1, 2, 6, 6)), rng.standard_normal((2, 2, 3, 3))
    for call in [lambda: F.conv2d(x, weight, stride=-1), lambda: F.conv2d(x, weight, dilation=-2),
                 lambda: F.conv2d(x, weight, dilation=0), lambda: F.max_pool2d(x, 2, -1),
                 lambda: F.avg_pool2d(x, 2, 0)]:
        try:  # the issue's cases: out-of-bounds reads, a corrupted heap, wrong numbers
            call()
            raise AssertionError("an invalid argument was accepted")
        except ValueError:
            pass
    try:  # the check itself works: a raw kernel asked to read past its input
        im2col_kernel(np.empty((1, 1, 3, 3)), np.zeros((1, 1, 2, 2)), 1, 1, 1, 1, 1, 1, work=0)
    except IndexError:
        print("bounds checked")
""")


@pytest.mark.slow
def test_conv_and_pool_kernels_stay_in_bounds_under_numba_boundscheck(tmp_path):
    """NUMBA_BOUNDSCHECK must be set before numba is imported, and the disk cache may hold code compiled
    without the checks: so a fresh process with its own cache folder."""
    env = dict(os.environ, NUMBA_BOUNDSCHECK="1", NUMBA_CACHE_DIR=str(tmp_path),
               PYTHONPATH=os.pathsep.join([str(Path(tn.__file__).parents[1]), os.environ.get("PYTHONPATH", "")]))
    result = subprocess.run([sys.executable, "-c", BOUNDS_CHECKED_SCRIPT], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "bounds checked"
