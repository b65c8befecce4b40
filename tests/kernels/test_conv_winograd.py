"""Winograd convolution (tinynet.kernels.conv_winograd): its Numba kernels against their NumPy references, both
transforms against the loop reference, gradients by gradcheck, its memory budget, and the chooser's use of it."""
import contextlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ops.test_conv_algorithm_gradients import gradcheck_conv

import tinynet as tn
from kernels.test_kernels import (  # noqa: F401 (kernel_mode: serial and parallel runs)
    assert_close_relative,
    check_against_reference,
    kernel_mode,
    paddings,
)
from tinynet import functional as F
from tinynet.kernels import conv, conv_winograd
from tinynet.kernels.compile import Helper
from tinynet.kernels.conv_winograd import sandwich
from tinynet.kernels.windows import resolve_padding

each_transform = pytest.mark.parametrize("m", sorted(conv_winograd.TRANSFORMS))


@contextlib.contextmanager
def only_transform(m):
    """Within the block, F(m x m, 3x3) on every shape (tile_size would pick one per shape)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(conv_winograd, "TRANSFORMS", {m: conv_winograd.TRANSFORMS[m]})
        yield


@st.composite
def winograd_cases(draw, max_size=11):
    """A random 3x3, stride-1 convolution (N, C, H, W odd and even, some smaller than a tile) whose output is not
    empty: x, weight, settings, rng."""
    groups = draw(st.integers(1, 3))
    channels, out_channels = groups * draw(st.integers(1, 3)), groups * draw(st.integers(1, 3))
    size = (draw(st.integers(1, max_size)), draw(st.integers(1, max_size)))
    pads = resolve_padding(draw(paddings), size, (3, 3), (1, 1), (1, 1))
    pads = tuple((top, max(bottom, 3 - s - top)) for s, (top, bottom) in zip(size, pads))  # make the window fit
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    x = rng.standard_normal((draw(st.integers(1, 3)), channels) + size).astype(dtype)
    weight = rng.standard_normal((out_channels, channels // groups, 3, 3)).astype(dtype)
    return x, weight, ((1, 1), pads, (1, 1), groups), rng


@contextlib.contextmanager
def correlation_path(path):
    """Within the block, the correlation's path: convolve_tiles (weights that fit the cache, as FUSED_WEIGHT_BYTES
    has it), or the whole chunk's tiles, products and inverse transform (larger weights: here every weight)."""
    with pytest.MonkeyPatch.context() as patch:
        if path == "whole chunks":
            patch.setattr(conv_winograd, "FUSED_WEIGHT_BYTES", -1)
        yield


each_path = pytest.mark.parametrize("path", ["in the cache", "whole chunks"])


@each_transform
@each_path
@given(case=winograd_cases())
def test_winograd_matches_the_loop_reference(m, path, case):
    """Forward, input and weight gradient within 1e-10 (float64) and 1e-4 (float32) of the loops, relative."""
    x, weight, settings_, rng = case
    with only_transform(m), correlation_path(path):
        check_against_reference(conv_winograd, x, weight, settings_, rng)


@each_transform
@each_path
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_winograd_on_alexnet_conv4_channels_matches_the_loop_reference(m, path, dtype):
    """Many channels (the sums the transforms' rounding accumulates over), groups 2, a 13x13 image as AlexNet's."""
    rng = np.random.default_rng(3)
    x, weight = rng.standard_normal((1, 96, 13, 13)).astype(dtype), rng.standard_normal((8, 48, 3, 3)).astype(dtype)
    with only_transform(m), correlation_path(path):
        check_against_reference(conv_winograd, x, weight, ((1, 1), ((1, 1), (1, 1)), (1, 1), 2), rng)


@each_transform
@each_path
@pytest.mark.parametrize("x_shape, padding", [((2, 2, 1, 1), 1), ((1, 1, 1, 5), ((1, 1), (0, 0))),
                                              ((3, 2, 3, 3), 0), ((0, 2, 6, 6), "same")])
def test_winograd_on_tiny_images_and_an_empty_batch(m, path, x_shape, padding):
    rng = np.random.default_rng(0)
    x, weight = rng.standard_normal(x_shape), rng.standard_normal((2, x_shape[1], 3, 3))
    pads = resolve_padding(padding, x_shape[2:], (3, 3), (1, 1), (1, 1))
    with only_transform(m), correlation_path(path):
        check_against_reference(conv_winograd, x, weight, ((1, 1), pads, (1, 1), 1), rng)


@st.composite
def tile_cases(draw):
    """An image (N, H, W, C), a transform-sized matrix (t, s), a step, offsets (negative ones too) and tile counts."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    shape = (draw(st.integers(0, 2)), draw(st.integers(1, 7)), draw(st.integers(1, 7)), draw(st.integers(1, 4)))
    matrix = rng.standard_normal((draw(st.integers(1, 6)), draw(st.integers(1, 6))))
    offsets = (draw(st.integers(-2, 3)), draw(st.integers(-2, 3)))
    tiles_hw = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    return rng.standard_normal(shape), matrix, draw(st.integers(1, 4)), offsets, tiles_hw


@given(case=tile_cases())
def test_transform_tiles_kernel_matches_its_reference(case):
    image, matrix, step, offsets, tiles_hw = case
    tiles = np.full((matrix.shape[0] ** 2, image.shape[0] * tiles_hw[0] * tiles_hw[1], image.shape[3]), np.nan)
    conv_winograd.transform_tiles_kernel(tiles, image, matrix, step, *offsets, *tiles_hw, work=tiles.size)
    expected = conv_winograd.transform_tiles_reference(image, matrix, step, offsets, tiles_hw)
    np.testing.assert_allclose(tiles, expected, rtol=1e-12, atol=1e-12)


@given(seed=st.integers(0, 2**32 - 1), m=st.sampled_from(sorted(conv_winograd.TRANSFORMS)),
       n_images=st.integers(0, 3), groups=st.integers(1, 3), channels=st.integers(1, 3), per_group=st.integers(1, 3),
       image_hw=st.tuples(st.integers(1, 9), st.integers(1, 9)), out_hw=st.tuples(st.integers(1, 9), st.integers(1, 9)),
       offsets=st.tuples(st.integers(-1, 2), st.integers(-1, 2)), per_block=st.integers(1, 3),
       dtype=st.sampled_from([np.float32, np.float64]))
def test_convolve_tiles_kernel_matches_its_reference(seed, m, n_images, groups, channels, per_group, image_hw, out_hw,
                                                     offsets, per_block, dtype):
    """Any image and output size (the tiles cover the output; outside the image is zero), groups, several blocks."""
    rng, transform = np.random.default_rng(seed), conv_winograd.TRANSFORMS[m]
    image = rng.standard_normal((n_images, *image_hw, groups * channels)).astype(dtype)
    weight_tiles = rng.standard_normal(((m + 2) ** 2, groups, channels, per_group)).astype(dtype)
    tiles_hw = conv_winograd.tile_counts(out_hw, m)
    out = np.full((n_images, *out_hw, groups * per_group), np.nan, dtype)
    conv_winograd.convolve_tiles_kernel(out, image, np.ascontiguousarray(weight_tiles.transpose(0, 1, 3, 2)), m,
                                        *offsets, *tiles_hw, per_block, work=out.size)
    expected = conv_winograd.convolve_tiles_reference(image, weight_tiles, transform, offsets, out_hw)
    tolerance = 1e-4 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(out, expected, rtol=tolerance, atol=tolerance * max(1, np.abs(expected).max(initial=0)))


@given(seed=st.integers(0, 2**32 - 1), m=st.sampled_from(sorted(conv_winograd.TRANSFORMS)),
       n_images=st.integers(0, 2), out_hw=st.tuples(st.integers(1, 9), st.integers(1, 9)), groups=st.integers(1, 3),
       per_group=st.integers(1, 3))
def test_inverse_transform_tiles_kernel_matches_its_reference(seed, m, n_images, out_hw, groups, per_group):
    rng, matrix = np.random.default_rng(seed), conv_winograd.TRANSFORMS[m].output_t
    tiles_hw = conv_winograd.tile_counts(out_hw, m)
    products = rng.standard_normal(((m + 2) ** 2, groups, n_images * tiles_hw[0] * tiles_hw[1], per_group))
    out = np.full((n_images, *out_hw, groups * per_group), np.nan)
    conv_winograd.inverse_transform_tiles_kernel(out, products, matrix, *tiles_hw, work=products.size)
    expected = conv_winograd.inverse_transform_tiles_reference(products, matrix, out.shape, tiles_hw)
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)


@Helper
def sandwich_as_the_kernels_call_it(result, result_grid, patch, patch_grid, m, inverse, left_columns):
    """sandwich with inverse a constant, as transformed_row and write_output_row pass it: the compilations they run
    (Numba specializes on a literal bool), not one for a bool argument, which only a call from Python makes."""
    if inverse:
        sandwich(result, result_grid, patch, patch_grid, m, True, left_columns)
    else:
        sandwich(result, result_grid, patch, patch_grid, m, False, left_columns)


@each_transform
@pytest.mark.parametrize("inverse", [False, True])
@given(seed=st.integers(0, 2**32 - 1), lanes=st.integers(1, 40), dtype=st.sampled_from([np.float32, np.float64]))
def test_sandwich_formulas_compute_their_matrices(m, inverse, seed, lanes, dtype):
    """sandwich's M P M^T (transform_rows' formulas, on a patch at a grid of rows) against B^T or A^T of
    TRANSFORMS, lane by lane; rows outside the result's grid stay untouched."""
    transform, rng = conv_winograd.TRANSFORMS[m], np.random.default_rng(seed)
    matrix = transform.output_t if inverse else transform.input_t
    size_out, size_t = matrix.shape
    patch = rng.standard_normal((3 + size_t * size_t * 2, lanes)).astype(dtype)  # grid: row 3 + 2*(i*t + j)
    result = np.full((1 + size_out * size_out * 3, lanes), np.nan, dtype)  # grid: row 1 + i + j*3*out
    sandwich_as_the_kernels_call_it(result, conv_winograd.Grid(1, 1, size_out * 3), patch,
                                    conv_winograd.Grid(3, 2 * size_t, 2), m, inverse,
                                    np.empty((size_t * size_t, lanes), dtype))
    grid = patch[3:].reshape(size_t, size_t, 2, lanes)[:, :, 0]  # P[i, j] at row 3 + 2*(i*t + j)
    expected = np.einsum("ia,abl,jb->ijl", matrix, grid.astype(np.float64), matrix)
    written = result[1:].reshape(size_out, 3, size_out, lanes)  # result[i, j] at row 1 + i + j*out*3
    tolerance = 1e-5 if dtype == np.float32 else 1e-13
    np.testing.assert_allclose(written[:, 0].transpose(1, 0, 2), expected, rtol=tolerance, atol=tolerance * 50)
    assert np.isnan(written[:, 1:]).all() and np.isnan(result[0]).all()


@given(n_images=st.integers(0, 100), tile_bytes=st.integers(1, 1 << 22))
def test_images_per_block_takes_the_fewest_blocks_within_the_budget_as_even_as_they_can_be(n_images, tile_bytes):
    per_block = conv_winograd.images_per_block(n_images, tile_bytes)
    most = max(1, conv_winograd.BLOCK_BYTES // tile_bytes)  # images within BLOCK_BYTES (one at least)
    blocks = -(-n_images // per_block)
    assert 1 <= per_block <= most
    assert blocks == -(-n_images // most)  # no more blocks than the budget needs
    if n_images:
        assert n_images - (blocks - 1) * per_block >= per_block - (blocks - 1)  # the last at most blocks - 1 short


def test_tile_size_takes_the_transform_with_fewer_products():
    assert conv_winograd.tile_size((13, 13)) == 4  # 36 * 16 tiles against 16 * 49
    assert conv_winograd.tile_size((35, 35)) == 4
    assert conv_winograd.tile_size((2, 2)) == 2  # one 4x4 tile against one 6x6
    assert conv_winograd.tile_size((1, 1)) == 2


@given(case=winograd_cases(), budget_images=st.floats(0.3, 2.5))
@settings(max_examples=15)
def test_winograd_in_chunks_stays_within_the_budget_and_gives_the_unchunked_numbers(case, budget_images):
    """With a budget from a fraction of one image's transformed tiles to two and a half images', every tiles
    array made is at most the budget (or one image's), and the results are the one-chunk ones (within the
    issue's bounds, as against the loops)."""
    x, weight, settings_, rng = case
    x = np.concatenate([x, x[::-1] * 0.5, x])
    grad_out = rng.standard_normal(conv_winograd.conv2d_forward(x, weight, *settings_).shape).astype(x.dtype)

    def run_all():
        return [conv_winograd.conv2d_forward(x, weight, *settings_),
                conv_winograd.conv2d_input_grad(grad_out, x.shape, weight, *settings_),
                conv_winograd.conv2d_weight_grad(grad_out, x, weight.shape, *settings_)]

    whole = run_all()
    per_image = max(conv_winograd.tiling(grad_out.shape[2:], x.shape[1], weight.shape[0], x.itemsize)[2],
                    conv_winograd.tiling(x.shape[2:], weight.shape[0], x.shape[1], x.itemsize)[2])
    budget, made = max(int(per_image * budget_images), 1), []
    kernel = conv_winograd.transform_tiles_kernel
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(conv, "COLUMNS_BUDGET_BYTES", budget)
        patch.setattr(conv_winograd, "transform_tiles_kernel",
                      lambda *args, work: (made.append(args[0].nbytes), kernel(*args, work=work)))
        chunked = run_all()
    assert max(made) <= max(budget, per_image)
    for result, expected in zip(chunked, whole):  # the weight gradient's sums over tiles are split differently
        assert_close_relative(result, expected)


@each_transform
@given(data=st.data(), with_bias=st.booleans())
@settings(max_examples=15)
def test_conv2d_gradients_with_winograd_forced(m, data, with_bias):
    """float64 gradcheck of conv2d's input and weight gradients (Winograd's conv2d_input_grad, conv2d_weight_grad).

    gradcheck's noise floor counts the rounding of a sum of terms as large as the output's; Winograd's
    transforms add and cancel larger ones (G w G^T mixes every weight into every product), so a weight
    that does not reach an output still moves its rounding: with x (1, 1, 1, 1), padding 1 and F(4x4),
    the central difference of a zero gradient was 9.7e-11 against a floor of 6.8e-11. atol = 1e-9 covers
    that, far below the gradients checked (each map is also held to 1e-10 of the loop reference above).
    """
    x, weight, (stride, pads, dilation, groups), rng = data.draw(winograd_cases(max_size=7))
    bias = rng.standard_normal(weight.shape[0]) if with_bias else None
    with only_transform(m):
        gradcheck_conv("winograd", x, weight, bias, stride, pads, dilation, groups, atol=1e-9)


@each_transform
def test_conv2d_second_derivatives_with_winograd_forced(m):
    """gradgradcheck: the VJPs of the two gradient maps run Winograd's forward and the other gradient map."""
    rng = np.random.default_rng(5)
    x, weight = (tn.Tensor(rng.standard_normal(shape), requires_grad=True) for shape in ((2, 4, 5, 6), (4, 2, 3, 3)))

    def convolve(x, weight):
        with tn.force_conv_algorithm("winograd"):
            return F.conv2d(x, weight, padding=((2, 0), (1, 1)), groups=2)

    with only_transform(m):
        tn.gradgradcheck(convolve, [x, weight])


@pytest.mark.parametrize("kernel, stride, dilation, message", [((3, 3), 2, 1, "stride 1"), ((3, 3), 1, 2, "dilation 1"),
                                                               ((5, 5), 1, 1, "3x3"), ((3, 1), 1, 1, "3x3")])
def test_forcing_winograd_where_it_cannot_run_is_an_error(kernel, stride, dilation, message):
    with tn.force_conv_algorithm("winograd"), pytest.raises(
            ValueError, match=rf"force_conv_algorithm\('winograd'\) cannot run .*{message}"):
        tn.conv_algorithm((1, 2, 9, 9), (2, 2, *kernel), stride=stride, dilation=dilation)


def test_chooser_picks_winograd_for_3x3_convolutions_of_many_images_and_im2col_for_one():
    choice = tn.conv_algorithm((32, 256, 13, 13), (384, 256, 3, 3), padding="same")  # AlexNet conv3
    assert choice.algorithm == "winograd" and choice.module is conv_winograd
    assert choice.estimates["winograd"] < min(choice.estimates["im2col"], choice.estimates["fft"])
    assert choice.reason.startswith("winograd: estimated forward im2col")
    assert tn.conv_algorithm((32, 32, 35, 35), (32, 32, 3, 3), padding="same").algorithm == "winograd"  # face ResNet
    choice = tn.conv_algorithm((1, 256, 13, 13), (384, 256, 3, 3), padding="same")
    assert choice.algorithm == "im2col" and choice.estimates["winograd"] > choice.estimates["im2col"]
    assert tn.conv_algorithm((32, 256, 1, 1), (256, 256, 3, 3), padding="same").algorithm == "im2col"  # 16 for 9
    choice = tn.conv_algorithm((32, 256, 13, 13), (384, 256, 5, 5), padding="same")
    assert "winograd" not in choice.estimates
