"""Which convolution algorithm runs for a shape, and why: a cost model, visible and forcible.

Each algorithm is a module of tinynet.kernels with the same three functions, all on plain arrays:
conv2d_forward(x, weight, stride, pads, dilation, groups) -> out, conv2d_input_grad(grad_out,
x_shape, weight, ...) -> grad_x and conv2d_weight_grad(grad_out, x, weight_shape, ...) -> grad_weight.

  im2col  tinynet.kernels.conv: any stride, dilation and groups; one BLAS product per group.
  fft     tinynet.kernels.conv_fft: stride 1 and dilation 1; real FFTs, for large kernels.
  winograd  tinynet.kernels.conv_winograd: 3x3 kernels, stride 1 and dilation 1; 2.25-4x fewer multiplies.

The model estimates each algorithm's seconds for the forward pass from its arithmetic and copies
at throughputs measured on the course's 2-core machine (the constants below; the backward
passes cost about the same again for each algorithm, so one choice serves all three) and picks
the cheapest, FFT only by a margin. `conv_algorithm(...)` says what runs and why; `force_conv_algorithm(name)` makes
every convolution in a `with` block use that algorithm (the tests use it to exercise each one), and
`recorded_conv_choices()` lists the choices made in a block (the benchmarks print them).
"""
import contextlib
import contextvars
import functools
import math
from typing import NamedTuple

import numpy as np

from . import conv, conv_fft, conv_winograd
from .windows import checked_int, output_shape, sliding_window

ALGORITHMS = {"im2col": conv, "fft": conv_fft, "winograd": conv_winograd}

# Throughputs (operations per second) measured on the course's 2-core machine, two threads:
# BLAS matrix products (2 flops per multiply-add) by dtype itemsize, the im2col copy in elements,
# a real 2-D FFT in 2.5 * F * log2(F) flops, and the batched complex products of spectra.
GEMM_RATE = {4: 80e9, 8: 40e9}
COPY_RATE = 0.5e9
FFT_RATE = {4: 3e9, 8: 2e9}
SPECTRAL_PRODUCT_RATE = {4: 15e9, 8: 8e9}

# Winograd's calls cost about this many seconds more than im2col's on small convolutions (its channels-last copies
# and weight transform: measured 0-60 us more at 1-2 images of 6x6 to 20x20 with 2 to 32 channels).
WINOGRAD_OVERHEAD = 50e-6

# FFT rounds differently from the direct sum and the model's rates are rough: it runs only where the
# model expects it at least this many times faster than im2col.
FFT_MARGIN = 2.0

_forced = contextvars.ContextVar("forced_conv_algorithm", default=None)
_records = contextvars.ContextVar("recorded_conv_choices", default=None)


class Choice(NamedTuple):
    """The algorithm that runs (a name of ALGORITHMS), why, and the model's estimate of each one's forward seconds."""
    algorithm: str
    reason: str
    estimates: dict

    @property
    def kernels(self):
        """The module with this algorithm's conv2d_forward, conv2d_input_grad and conv2d_weight_grad."""
        return ALGORITHMS[self.algorithm]


def im2col_seconds(x_shape, weight_shape, out_hw, itemsize):
    """Estimated forward seconds by im2col + BLAS: the copy into columns and the matrix products."""
    out_channels, group_channels, kernel_h, kernel_w = weight_shape
    windows = x_shape[0] * out_hw[0] * out_hw[1]
    column_elements = x_shape[1] * kernel_h * kernel_w * windows
    flops = 2.0 * out_channels * group_channels * kernel_h * kernel_w * windows
    return column_elements / COPY_RATE + flops / GEMM_RATE[itemsize]


def fft_seconds(x_shape, weight_shape, pads, groups, itemsize):
    """Estimated forward seconds by FFT: transforms of every image, kernel and output plane, and their products."""
    n_images, channels = x_shape[:2]
    out_channels, group_channels = weight_shape[:2]
    size_h, size_w = conv_fft.transform_size(conv_fft.padded_hw(x_shape, pads))
    transforms = n_images * channels + out_channels * group_channels + n_images * out_channels
    transform_flops = 2.5 * size_h * size_w * math.log2(max(size_h * size_w, 2)) * transforms
    frequencies = size_h * (size_w // 2 + 1)
    product_flops = 8.0 * frequencies * n_images * group_channels * out_channels
    return transform_flops / FFT_RATE[itemsize] + product_flops / SPECTRAL_PRODUCT_RATE[itemsize]


def winograd_seconds(x_shape, weight_shape, out_hw, itemsize):
    """Estimated forward seconds by Winograd: the tile transforms (input, weight and output tiles, at im2col's copy
    rate: they measured within 20% of it), the products of the transformed tiles, and its overhead."""
    m = conv_winograd.tile_size(out_hw)
    tiles = x_shape[0] * math.prod(conv_winograd.tile_counts(out_hw, m))
    out_channels, group_channels = weight_shape[:2]
    transformed = (m + 2) ** 2 * (tiles * (x_shape[1] + out_channels) + out_channels * group_channels)
    flops = 2.0 * (m + 2) ** 2 * tiles * group_channels * out_channels
    return WINOGRAD_OVERHEAD + transformed / COPY_RATE + flops / GEMM_RATE[itemsize]


def unsupported(algorithm, stride, dilation, kernel_hw):
    """Why algorithm cannot run with these settings, or None."""
    if algorithm in ("fft", "winograd") and (stride != (1, 1) or dilation != (1, 1)):
        return f"{algorithm} needs stride 1 and dilation 1, got stride {stride}, dilation {dilation}"
    if algorithm == "winograd" and tuple(kernel_hw) != (3, 3):
        return f"winograd needs a 3x3 kernel, got {tuple(kernel_hw)}"
    return None


@functools.lru_cache(maxsize=1024)
def modelled_choice(x_shape, weight_shape, stride, pads, dilation, groups, itemsize):
    """The cost model's Choice for checked settings (cached: layers see the same shapes every step)."""
    out_hw = output_shape(x_shape[2:], weight_shape[2:], stride, dilation, pads)
    estimates = {"im2col": im2col_seconds(x_shape, weight_shape, out_hw, itemsize)}
    why_not_fft = unsupported("fft", stride, dilation, weight_shape[2:])
    if why_not_fft:
        return Choice("im2col", f"im2col: {why_not_fft}", estimates)
    estimates["fft"] = fft_seconds(x_shape, weight_shape, pads, groups, itemsize)
    best = "fft" if estimates["fft"] * FFT_MARGIN <= estimates["im2col"] else "im2col"
    if not unsupported("winograd", stride, dilation, weight_shape[2:]):
        estimates["winograd"] = winograd_seconds(x_shape, weight_shape, out_hw, itemsize)
        best = "winograd" if estimates["winograd"] < estimates[best] else best
    listed = ", ".join(f"{name} {seconds * 1e3:.3g} ms" for name, seconds in estimates.items())
    return Choice(best, f"{best}: estimated forward {listed} (fft runs when at least {FFT_MARGIN:g}x faster)",
                  estimates)


def choose(x_shape, weight_shape, stride, pads, dilation, groups, dtype):
    """The Choice for checked settings (as the op gets them): the forced algorithm if any, else the model's."""
    choice = modelled_choice(tuple(x_shape), tuple(weight_shape), stride, pads, dilation, groups,
                             np.dtype(dtype).itemsize)
    forced = _forced.get()
    if forced is not None:
        why_not = unsupported(forced, stride, dilation, weight_shape[2:])
        if why_not:
            raise ValueError(f"force_conv_algorithm({forced!r}) cannot run this convolution: {why_not}")
        choice = Choice(forced, f"{forced}: forced by force_conv_algorithm({forced!r})", choice.estimates)
    records = _records.get()
    if records is not None:
        records.append((tuple(x_shape), tuple(weight_shape), choice))
    return choice


def conv_algorithm(x_shape, weight_shape, stride=1, padding=0, *, groups=1, dilation=1, dtype=np.float32):
    """The Choice (algorithm, reason, estimates) functional.conv2d makes for these arguments (as conv2d takes them).

    x_shape: (N, C, H, W), weight_shape: (O, C/groups, kh, kw).
    """
    groups = checked_int(groups, "groups")
    _, stride, pads, dilation, _ = sliding_window(x_shape[2:], weight_shape[2:], stride, padding, dilation,
                                                  "weight's kernel size")
    return choose(x_shape, weight_shape, stride, pads, dilation, groups, dtype)


@contextlib.contextmanager
def force_conv_algorithm(name):
    """Within the block, every conv2d runs algorithm `name` (a key of ALGORITHMS); ValueError where it cannot."""
    if name not in ALGORITHMS:
        raise ValueError(f"unknown conv algorithm {name!r}: use one of {sorted(ALGORITHMS)}")
    token = _forced.set(name)
    try:
        yield
    finally:
        _forced.reset(token)


@contextlib.contextmanager
def recorded_conv_choices():
    """Yields a list to which every conv2d within the block appends (x_shape, weight_shape, Choice)."""
    records = []
    token = _records.set(records)
    try:
        yield records
    finally:
        _records.reset(token)
