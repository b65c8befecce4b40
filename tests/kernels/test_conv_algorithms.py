"""Every convolution algorithm against the plain loop reference; im2col's memory bound and pieces; the chooser's
every branch."""
import contextlib
import itertools
from collections import Counter

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import tinynet as tn
from kernels.test_kernels import (  # noqa: F401 (kernel_mode: serial and parallel runs)
    assert_close_relative,
    check_against_reference,
    conv_cases,
    kernel_mode,
)
from tinynet import functional as F
from tinynet.kernels import conv, conv_choice, conv_fft, threads
from tinynet.kernels.conv import conv2d_reference
from tinynet.kernels.windows import resolve_padding


@given(case=conv_cases(unit_stride=True, max_kernel=6, max_size=12))
def test_fft_matches_the_loop_reference(case):
    x, weight, settings_, rng = case
    check_against_reference(conv_fft, x, weight, settings_, rng)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_fft_on_the_seed_004_kernel_matches_the_loop_reference(dtype):
    """A 10x10 'same' kernel (the seed-004 CNN's) on a 23x23 image with several channels."""
    rng = np.random.default_rng(4)
    x, weight = rng.standard_normal((2, 3, 23, 23)).astype(dtype), rng.standard_normal((4, 3, 10, 10)).astype(dtype)
    pads = resolve_padding("same", (23, 23), (10, 10), (1, 1), (1, 1))
    check_against_reference(conv_fft, x, weight, ((1, 1), pads, (1, 1), 1), rng)


def test_fast_length_is_the_next_product_of_2_3_and_5():
    assert [conv_fft.fast_length(n) for n in (1, 7, 55, 100, 101, 121)] == [1, 8, 60, 100, 108, 125]


def run_all(x, weight, grad_out, settings_):
    """im2col's (forward, input gradient, weight gradient)."""
    return [conv.conv2d_forward(x, weight, *settings_), conv.conv2d_input_grad(grad_out, x.shape, weight, *settings_),
            conv.conv2d_weight_grad(grad_out, x, weight.shape, *settings_)]


@given(case=conv_cases(), budget_images=st.floats(0.3, 2.5))
@settings(max_examples=30)
def test_im2col_in_chunks_stays_within_the_budget_and_gives_the_unchunked_numbers(case, budget_images):
    """With a budget from a fraction of one image's columns to two and a half images', every columns array made is
    at most the budget (or one image's), and forward and both gradients are the one-chunk results (float64
    within 1e-13, float32 within 1e-6 relative)."""
    x, weight, settings_, rng = case
    x = np.concatenate([x, x[::-1] * 0.5, x])  # a batch of several images
    grad_out = rng.standard_normal(conv.conv2d_forward(x, weight, *settings_).shape).astype(x.dtype)
    whole = run_all(x, weight, grad_out, settings_)
    per_image = conv.columns_bytes_per_image(x.shape, weight.shape[2:], grad_out.shape[2:], x.dtype)
    budget, made = max(int(per_image * budget_images), 1), []

    def recording(kernel, columns_position):
        return lambda *args, work: (made.append(args[columns_position].nbytes), kernel(*args, work=work))

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(conv, "COLUMNS_BUDGET_BYTES", budget)
        for name, columns_position in [("im2col_kernel", 0), ("col2im_kernel", 1), ("im2col_same_width_kernel", 0),
                                       ("im2col_phases_kernel", 0)]:
            patch.setattr(conv, name, recording(getattr(conv, name), columns_position))
        chunked = run_all(x, weight, grad_out, settings_)
    assert max(made) <= max(budget, per_image)
    for result, expected in zip(chunked, whole):  # BLAS may round the last bit differently for other widths
        assert_close_relative(result, expected, {np.dtype(np.float64): 1e-13, np.dtype(np.float32): 1e-6})


@contextlib.contextmanager
def workers_and_pieces(workers, product_columns, own_product_columns=1 << 30):
    """conv2d_forward with this many workers, every layer split over them (SPLIT_BYTES 0), and images multiplied
    together up to product_columns output pixels (or as many multiply-adds), each image of own_product_columns
    pixels or more by a product of its own."""
    with pytest.MonkeyPatch.context() as patch:
        for module in (conv, threads):
            patch.setattr(module, "workers", lambda: workers)
        patch.setattr(conv, "SPLIT_BYTES", 0)
        patch.setattr(conv, "SPLIT_MULTIPLY_ADDS", 0)
        patch.setattr(conv, "PRODUCT_COLUMNS", product_columns)
        patch.setattr(conv, "PRODUCT_MULTIPLY_ADDS", product_columns)
        patch.setattr(conv, "OWN_PRODUCT_COLUMNS", own_product_columns)
        yield


@given(n_images=st.integers(0, 9), groups=st.integers(1, 4), group_channels=st.integers(1, 5),
       out_h=st.integers(1, 6), workers=st.integers(1, 3), product_columns=st.sampled_from([1, 12, 1 << 30]),
       multiply_adds=st.sampled_from([1, 100, 1 << 30]))
@example(n_images=1, groups=4, group_channels=1, out_h=1, workers=3, product_columns=1, multiply_adds=1)
def test_forward_pieces_cover_the_output_once_and_share_a_single_image_out(n_images, groups, group_channels, out_h,
                                                                           workers, product_columns, multiply_adds):
    """At most one list of pieces per worker; each (image, group, output row, channel of the group) in exactly one
    piece; a piece of several images has every group, row and channel; a single image goes to the workers by groups
    where there are as many, else by rows where its output has PRODUCT_COLUMNS pixels, else by output channels."""
    with workers_and_pieces(workers, product_columns):
        lists = conv.forward_pieces(n_images, groups, group_channels, (out_h, 2), 1 << 20, multiply_adds)
        shares = {name: len(threads.one_per_worker(count))  # how many parts the workers share: 4 groups on 3, 2+2
                  for name, count in [("groups", groups), ("rows", out_h), ("channels", group_channels)]}
    assert 1 <= len(lists) <= workers
    pieces = [piece for part in lists for piece in part]
    covered = Counter((n, g, y, o) for piece in pieces for n in range(piece.images.start, piece.images.stop)
                      for g in range(piece.groups.start, piece.groups.stop)
                      for y in range(piece.rows.start, piece.rows.stop)
                      for o in range(piece.channels.start, piece.channels.stop))
    assert covered == Counter(itertools.product(range(n_images), range(groups), range(out_h), range(group_channels)))
    for piece in pieces:
        if piece.images.stop - piece.images.start > 1:
            assert piece[1:] == (slice(0, groups), slice(0, out_h), slice(0, group_channels))
    if n_images == 1:
        split_by = "groups" if groups >= workers else "rows" if 2 * out_h >= product_columns else "channels"
        assert len(pieces) == shares[split_by]


@given(groups=st.integers(1, 4), group_channels=st.integers(1, 5), out_h=st.integers(1, 6), workers=st.integers(2, 3))
def test_a_single_image_of_few_multiply_adds_is_not_cut(groups, group_channels, out_h, workers):
    """Below SPLIT_MULTIPLY_ADDS (here 1000) a single image is one piece on the calling thread; from it on, cut
    over the workers."""
    with workers_and_pieces(workers, 1), pytest.MonkeyPatch.context() as patch:
        patch.setattr(conv, "SPLIT_MULTIPLY_ADDS", 1000)
        few, many = (conv.forward_pieces(1, groups, group_channels, (out_h, 2), 1 << 20, multiply_adds)
                     for multiply_adds in (999, 1000))
        cut = groups if groups >= workers else out_h  # by groups, else by rows (PRODUCT_COLUMNS is 1 pixel here)
        shares = len(threads.one_per_worker(cut))
    assert few == [[conv.Piece(slice(0, 1), slice(0, groups), slice(0, out_h), slice(0, group_channels))]]
    assert sum(len(part) for part in many) == shares


@given(n_images=st.integers(2, 40), per_image=st.integers(1, 50), workers=st.integers(2, 3))
def test_forward_pieces_of_small_images_fill_a_product(n_images, per_image, workers):
    """Images of few multiply-adds go together up to PRODUCT_MULTIPLY_ADDS (here 100) a product, every worker
    given some."""
    with workers_and_pieces(workers, 1), pytest.MonkeyPatch.context() as patch:
        patch.setattr(conv, "PRODUCT_MULTIPLY_ADDS", 100)
        lists = conv.forward_pieces(n_images, 1, 1, (1, 1), 1 << 20, per_image)
    sizes = [piece.images.stop - piece.images.start for part in lists for piece in part]
    assert sum(sizes) == n_images and len(lists) == min(workers, n_images)
    assert max(sizes) <= max(1, 100 // per_image)


def test_forward_pieces_give_every_core_as_many():
    """64 images of which 26 fill a product: not 3 pieces (two on one core, one on the other) but 4 of 16."""
    with workers_and_pieces(2, 1), pytest.MonkeyPatch.context() as patch:
        patch.setattr(conv, "PRODUCT_MULTIPLY_ADDS", 26)
        lists = conv.forward_pieces(64, 1, 1, (1, 1), 1 << 20, 1)
    assert [[piece.images for piece in part] for part in lists] == [[slice(0, 16), slice(16, 32)],
                                                                    [slice(32, 48), slice(48, 64)]]


@given(case=conv_cases(), workers=st.integers(1, 3), product_columns=st.sampled_from([1, 12, 1 << 30]),
       own_product_columns=st.sampled_from([1, 1 << 30]))
@settings(max_examples=60)
def test_im2col_forward_in_pieces_matches_the_loop_reference(case, workers, product_columns, own_product_columns):
    """An image at a time (its product written into its rows of the output), several at a time (their product
    copied into place, or a product per image written into place), a single image cut over the workers by groups,
    by output rows (each piece making the columns of its own rows) or by output channels."""
    x, weight, settings_, _ = case
    with workers_and_pieces(workers, product_columns, own_product_columns):
        out = conv.conv2d_forward(x, weight, *settings_)
    assert_close_relative(out, conv2d_reference(x, weight, *settings_))


@given(case=conv_cases(), workers=st.integers(2, 3), product_columns=st.sampled_from([1, 1 << 30]),
       own_product_columns=st.sampled_from([1, 1 << 30]))
@settings(max_examples=15)
def test_conv2d_gradients_through_the_forward_in_pieces(case, workers, product_columns, own_product_columns):
    """gradcheck (float64) through the op with every layer cut into pieces over the workers."""
    x, weight, (stride, pads, dilation, groups), _ = case
    inputs = [tn.Tensor(array.astype(np.float64), requires_grad=True) for array in (x, weight)]
    with workers_and_pieces(workers, product_columns, own_product_columns), \
            conv_choice.force_conv_algorithm("im2col"):
        tn.gradcheck(lambda *ts: F.conv2d(*ts, None, stride, pads, groups=groups, dilation=dilation), inputs)


def test_chooser_picks_fft_for_the_seed_004_cnn_and_im2col_elsewhere_and_says_why():
    """As measured on the course's machine (conv_choice's constants): FFT about 4x faster than im2col on the
    CNN's second conv, slower on its first (1 input channel: the transforms of 32 output planes per image dominate)."""
    choice = tn.conv_algorithm((16, 32, 46, 46), (64, 32, 10, 10), padding="same")
    assert choice.algorithm == "fft" and choice.module is conv_fft
    assert choice.reason.startswith("fft: estimated forward im2col")
    assert choice.estimates["fft"] * conv_fft.MARGIN <= choice.estimates["im2col"]
    choice = tn.conv_algorithm((16, 1, 91, 91), (32, 1, 10, 10), padding="same")  # its conv1: one input channel
    assert choice.algorithm == "im2col" and choice.estimates["fft"] > choice.estimates["im2col"]
    choice = tn.conv_algorithm((1, 3, 227, 227), (96, 3, 11, 11), stride=4, padding="same")  # AlexNet conv1
    assert choice.algorithm == "im2col" and "fft" not in choice.estimates
    assert choice.reason == ("im2col: fft needs stride 1 and dilation 1, got stride (4, 4), dilation (1, 1); "
                             "winograd needs stride 1 and dilation 1, got stride (4, 4), dilation (1, 1)")
    choice = tn.conv_algorithm((1, 256, 13, 13), (384, 256, 3, 3), padding="same", dtype=np.float64)
    assert choice.algorithm == "im2col" and choice.reason.startswith("im2col: estimated")
    choice = tn.conv_algorithm((64, 96, 27, 27), (256, 48, 5, 5), padding="same", groups=2)  # AlexNet conv2
    assert choice.algorithm == "im2col" and choice.estimates["fft"] < choice.estimates["im2col"]  # not by the margin


def test_forcing_an_algorithm_is_visible_scoped_and_checked():
    shape = ((2, 2, 8, 8), (3, 2, 3, 3))
    assert tn.conv_algorithm(*shape).algorithm == "im2col"
    with tn.force_conv_algorithm("fft"):
        choice = tn.conv_algorithm(*shape)
        assert choice.algorithm == "fft" and "forced" in choice.reason
        with pytest.raises(ValueError, match=r"force_conv_algorithm\('fft'\) cannot run .* stride 1"):
            tn.conv_algorithm(*shape, stride=2)
    with pytest.raises(RuntimeError), tn.force_conv_algorithm("fft"):
        raise RuntimeError
    assert tn.conv_algorithm(*shape).algorithm == "im2col"
    with pytest.raises(ValueError, match="unknown conv algorithm 'direct'"), tn.force_conv_algorithm("direct"):
        pass


def recording_plans(monkeypatch, module, calls):
    """module's Plans made from now on append the name of each function called on them to calls."""
    make_plan = module.Plan

    class RecordingPlan:
        def __init__(self, *needs_grad):
            self.plan = make_plan(*needs_grad)

        def __getattr__(self, name):
            function = getattr(self.plan, name)
            return lambda *args: (calls.append(name), function(*args))[1]

    monkeypatch.setattr(module, "Plan", RecordingPlan)


@pytest.mark.parametrize("algorithm", sorted(conv_choice.ALGORITHMS))
def test_conv2d_runs_the_chosen_algorithm_forward_and_backward(algorithm, monkeypatch):
    calls = []
    recording_plans(monkeypatch, conv_choice.ALGORITHMS[algorithm], calls)
    rng = np.random.default_rng(0)
    x, weight = tn.Tensor(rng.standard_normal((2, 2, 7, 7)), requires_grad=True), tn.Tensor(
        rng.standard_normal((4, 1, 3, 3)), requires_grad=True)
    with tn.force_conv_algorithm(algorithm):
        out = F.conv2d(x, weight, padding="same", groups=2)
    out.backward(np.ones(out.shape))
    assert calls == ["conv2d_forward", "conv2d_input_grad", "conv2d_weight_grad"]
    expected = conv2d_reference(x.data, weight.data, (1, 1), ((1, 1), (1, 1)), (1, 1), 2)
    assert_close_relative(out.data, expected)


def test_recorded_conv_choices_lists_every_convolution_of_the_block():
    x, weight = np.ones((1, 2, 6, 6)), np.ones((2, 2, 3, 3))
    with conv_choice.recorded_conv_choices() as choices:
        F.conv2d(x, weight, padding="same")
        with tn.force_conv_algorithm("fft"):
            F.conv2d(x, weight)
    assert [(x_shape, choice.algorithm) for x_shape, _, choice in choices] == [((1, 2, 6, 6), "im2col"),
                                                                               ((1, 2, 6, 6), "fft")]
    F.conv2d(x, weight)
    assert len(choices) == 2


@pytest.mark.parametrize("algorithm", sorted(conv_choice.ALGORITHMS))
@pytest.mark.parametrize("x_shape, weight_shape", [((1, 0, 4, 4), (2, 0, 3, 3)), ((1, 2, 4, 4), (0, 2, 3, 3)),
                                                    ((0, 2, 4, 4), (3, 2, 3, 3))])
def test_every_algorithm_takes_layers_without_channels_or_images(algorithm, x_shape, weight_shape):
    x, weight = np.ones(x_shape), np.ones(weight_shape)
    settings_, plan = ((1, 1), ((0, 0), (0, 0)), (1, 1), 1), conv_choice.ALGORITHMS[algorithm].Plan(True, True)
    out = plan.conv2d_forward(x, weight, *settings_)
    np.testing.assert_array_equal(out, conv2d_reference(x, weight, *settings_))
    assert plan.conv2d_input_grad(out, x_shape, weight, *settings_).shape == x_shape
    np.testing.assert_array_equal(plan.conv2d_weight_grad(out, x, weight_shape, *settings_),
                                  np.zeros(weight_shape))
