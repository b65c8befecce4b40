"""Which convolution algorithm runs for a shape, and why: a cost model, or timings; visible and forcible.

Each algorithm is a module of tinynet.kernels with the same three functions, all on plain arrays:
conv2d_forward(x, weight, stride, pads, dilation, groups) -> out, conv2d_input_grad(grad_out,
x_shape, weight, ...) -> grad_x and conv2d_weight_grad(grad_out, x, weight_shape, ...) -> grad_weight.

  im2col  tinynet.kernels.conv: any stride, dilation and groups; one BLAS product per group.
  fft     tinynet.kernels.conv_fft: stride 1 and dilation 1; real FFTs, for large kernels.
  winograd  tinynet.kernels.conv_winograd: 3x3 kernels, stride 1 and dilation 1; 2.25-4x fewer multiplies.

By default the model estimates each algorithm's seconds for the forward pass from its arithmetic and copies
at throughputs measured on the course's 2-core machine (the constants below; the backward
passes cost about the same again for each algorithm, so one choice serves all three) and picks
the cheapest, FFT only by a margin: the same shapes give the same algorithm, hence the same numbers,
on every machine. `conv_benchmark(True)` (or TINYNET_CONV_BENCHMARK=1) instead times every algorithm
that can run, forward and both gradients, once per setting, and keeps the fastest (cuDNN's benchmark
mode), in memory and in a JSON file. `conv_algorithm(...)` says what runs and why; `force_conv_algorithm(name)` makes
every convolution in a `with` block use that algorithm (the tests use it to exercise each one), and
`recorded_conv_choices()` lists the choices made in a block (the benchmarks print them).
"""
import contextlib
import contextvars
import functools
import json
import math
import os
import platform
import tempfile
import time
import warnings
from pathlib import Path
from typing import NamedTuple

import numpy as np

from . import conv, conv_fft, conv_winograd
from .windows import checked_int, output_shape, sliding_window

ALGORITHMS = {"im2col": conv, "fft": conv_fft, "winograd": conv_winograd}

# Throughputs (operations per second) on the course's 2-core machine, two threads, by dtype itemsize:
# BLAS matrix products as im2col makes them (2 flops per multiply-add), the im2col copy in elements, a
# real 2-D FFT in 2.5 * F * log2(F) flops, the batched small complex products (of spectra, and the
# kernels' DFT products) in 8 flops per complex multiply-add. Fitted to the forward times of the
# algorithms on the course's stride-1 shapes: what matters is the ratio of two algorithms' times.
# How and when they were measured: benchmarks/README.md, "Measurements behind the kernels' constants".
GEMM_RATE = {4: 150e9, 8: 75e9}
COPY_RATE = 0.5e9
FFT_RATE = {4: 5e9, 8: 3.5e9}
SPECTRAL_PRODUCT_RATE = {4: 25e9, 8: 12e9}

# Winograd's calls cost about this many seconds more than im2col's on small convolutions (its channels-last copies
# and weight transform; benchmarks/README.md says where the figure comes from).
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

    def plan(self, x_needs_grad, weight_needs_grad):
        """The three functions for one layer's forward and gradients (see algorithm_plan)."""
        return algorithm_plan(self.algorithm, x_needs_grad, weight_needs_grad)


def algorithm_plan(algorithm, x_needs_grad, weight_needs_grad):
    """A fresh Plan of the algorithm's module where it has one (it keeps what the gradients wanted will
    reuse, e.g. FFT spectra), else the module itself: conv2d_forward, conv2d_input_grad, conv2d_weight_grad."""
    make_plan = getattr(ALGORITHMS[algorithm], "Plan", None)
    return make_plan(x_needs_grad, weight_needs_grad) if make_plan else ALGORITHMS[algorithm]


def im2col_seconds(x_shape, weight_shape, out_hw, itemsize):
    """Estimated forward seconds by im2col + BLAS: the copy into columns and the matrix products."""
    out_channels, group_channels, kernel_h, kernel_w = weight_shape
    windows = x_shape[0] * out_hw[0] * out_hw[1]
    column_elements = x_shape[1] * kernel_h * kernel_w * windows
    flops = 2.0 * out_channels * group_channels * kernel_h * kernel_w * windows
    return column_elements / COPY_RATE + flops / GEMM_RATE[itemsize]


def fft_seconds(x_shape, weight_shape, pads, groups, itemsize):
    """Estimated forward seconds by FFT (tinynet.kernels.conv_fft): the transforms of every image and output
    plane, the kernels' DFT products, the products of spectra, and the spectra written and read (a
    complex number as two elements copied)."""
    n_images, channels = x_shape[:2]
    out_channels, group_channels, kernel_h, kernel_w = weight_shape
    size_h, size_w = conv_fft.transform_size(conv_fft.padded_hw(x_shape, pads))
    half = size_w // 2 + 1
    planes = n_images * (channels + out_channels)
    transform_flops = 2.5 * size_h * size_w * math.log2(max(size_h * size_w, 2)) * planes
    kernel_flops = 8.0 * out_channels * group_channels * half * kernel_h * (kernel_w + size_h)
    product_flops = 8.0 * size_h * half * n_images * group_channels * out_channels
    spectra_elements = size_h * half * (planes + out_channels * group_channels)
    return (transform_flops / FFT_RATE[itemsize] + (kernel_flops + product_flops) / SPECTRAL_PRODUCT_RATE[itemsize]
            + 2 * spectra_elements / COPY_RATE)


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


def choose(x_shape, weight_shape, stride, pads, dilation, groups, dtype, arrays=None):
    """The Choice for checked settings (as the op gets them): the forced algorithm if any, else the timed one
    in benchmark mode (timed on arrays = (x, weight) if given, else on random arrays of these shapes), else
    the model's."""
    settings = (tuple(x_shape), tuple(weight_shape), stride, pads, dilation, groups)
    choice = modelled_choice(*settings, np.dtype(dtype).itemsize)
    forced = _forced.get()
    if forced is not None:
        why_not = unsupported(forced, stride, dilation, weight_shape[2:])
        if why_not:
            raise ValueError(f"force_conv_algorithm({forced!r}) cannot run this convolution: {why_not}")
        choice = Choice(forced, f"{forced}: forced by force_conv_algorithm({forced!r})", choice.estimates)
    elif benchmark_enabled():
        choice = timed_choices().choice(settings + (np.dtype(dtype).name,), arrays, choice.estimates)
    records = _records.get()
    if records is not None:
        records.append((tuple(x_shape), tuple(weight_shape), choice))
    return choice


def conv_algorithm(x_shape, weight_shape, stride=1, padding=0, *, groups=1, dilation=1, dtype=np.float32):
    """The Choice (algorithm, reason, estimates) functional.conv2d makes for these arguments (as conv2d takes them).

    x_shape: (N, C, H, W), weight_shape: (O, C/groups, kh, kw). In benchmark mode, a setting not timed before
    is timed here, on random arrays.
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


# Benchmark mode: conv_benchmark's setting (None: TINYNET_CONV_BENCHMARK decides) and the timed choices.
_benchmark = {"enabled": None, "cache_path": None, "choices": None}
BENCHMARK_RUNS = 2  # each algorithm timed this many times, the fastest run kept (the first may compile)
CACHE_FORMAT = "tinynet conv choices 1"
clock = time.perf_counter  # the tests put a fake clock here


def conv_benchmark(enabled=True, cache_path=None):
    """Choose every convolution's algorithm by timing, not by the model (cuDNN's benchmark mode), or not.

    Each algorithm that can run is timed (forward and both gradients, on the layer's arrays,
    BENCHMARK_RUNS times) the first time a setting (shapes, stride, pads, dilation, groups, dtype) is
    seen, and the fastest runs from then on. The choices are kept in cache_path, a JSON file
    (default: $TINYNET_CACHE/conv_choices.json, else ~/.cache/tinynet/conv_choices.json), so a later
    run on this machine times nothing. Off by default: timings differ among machines and runs, and so
    would the algorithm chosen and the rounding of the results. TINYNET_CONV_BENCHMARK=1 turns it on
    when this function was not called.
    """
    _benchmark.update(enabled=bool(enabled), cache_path=cache_path, choices=None)


def benchmark_enabled():
    """Whether convolutions are chosen by timing: conv_benchmark's setting, else TINYNET_CONV_BENCHMARK == '1'."""
    if _benchmark["enabled"] is None:
        return os.environ.get("TINYNET_CONV_BENCHMARK") == "1"
    return _benchmark["enabled"]


def default_cache_path():
    """$TINYNET_CACHE/conv_choices.json, else ~/.cache/tinynet/conv_choices.json (the course's cache folder)."""
    return Path(os.environ.get("TINYNET_CACHE", Path.home() / ".cache" / "tinynet")) / "conv_choices.json"


def timed_choices():
    """The TimedChoices of the cache file in use (read at the first use)."""
    path = Path(_benchmark["cache_path"] or default_cache_path())
    if _benchmark["choices"] is None or _benchmark["choices"].path != path:
        _benchmark["choices"] = TimedChoices(path)
    return _benchmark["choices"]


def this_machine():
    """What timings are valid for: the host, its processor type and cores, NumPy's version."""
    return f"{platform.node()} {platform.machine()} {os.cpu_count()} cores, numpy {np.__version__}"


def settings_key(settings):
    """A string for (x_shape, weight_shape, stride, pads, dilation, groups, dtype name): the cache file's key."""
    return json.dumps(settings)


def check_times(settings, times):
    """ValueError unless times is {algorithm: seconds} of algorithms that can run settings (a cache entry)."""
    stride, dilation, kernel_hw = tuple(settings[2]), tuple(settings[4]), tuple(settings[1][2:])
    for name, seconds in times.items():
        if name not in ALGORITHMS or unsupported(name, stride, dilation, kernel_hw) is not None:
            raise ValueError(f"{name!r} cannot run {settings}")
        if not isinstance(seconds, float) or not 0 <= seconds < math.inf:
            raise ValueError(f"{seconds!r} is not a time in seconds")
    if not times:
        raise ValueError(f"no times for {settings}")


def seconds_of(plan, x, weight, settings):
    """Seconds (by clock) that plan takes for the forward pass and both gradients of x (N, C, H, W), weight."""
    start = clock()
    out = plan.conv2d_forward(x, weight, *settings)
    plan.conv2d_input_grad(out, x.shape, weight, *settings)
    plan.conv2d_weight_grad(out, x, weight.shape, *settings)
    return clock() - start


class TimedChoices:
    """Benchmark mode's choices, by setting: timed once, kept in memory and in a JSON file at path.

    The file is read once, and trusted only if it is this format, from this machine (this_machine),
    and names for each setting an algorithm that can run it; else it is ignored with a warning
    (and replaced at the next write). It is written whole to a temporary file that replaces it in
    one step, so a reader never sees part of it.
    """

    def __init__(self, path):
        self.path = path
        self.seconds = self.read()  # settings key -> {algorithm: seconds}

    def read(self):
        if not self.path.exists():
            return {}
        try:
            content = json.loads(self.path.read_text())
            if content.get("format") != CACHE_FORMAT or content.get("machine") != this_machine():
                raise ValueError(f"not written by this version on this machine ({this_machine()})")
            for key, times in content["seconds"].items():
                check_times(json.loads(key), times)
            return content["seconds"]
        except (OSError, ValueError, TypeError, KeyError, IndexError, AttributeError) as error:
            warnings.warn(f"ignoring the conv choices cache {self.path}: {error}", stacklevel=3)
            return {}

    def write(self):
        """The file replaced by one with every choice (a warning, not an error, where it cannot be written;
        a write that fails midway removes its temporary file)."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp")
            try:
                with os.fdopen(handle, "w") as file:
                    json.dump({"format": CACHE_FORMAT, "machine": this_machine(), "seconds": self.seconds}, file)
                os.replace(temporary, self.path)
            except BaseException:
                os.unlink(temporary)
                raise
        except OSError as error:
            warnings.warn(f"could not write the conv choices cache {self.path}: {error}", stacklevel=3)

    def choice(self, settings, arrays, estimates):
        """The Choice for settings (x_shape, weight_shape, stride, pads, dilation, groups, dtype name), timed on
        arrays (x, weight) or on random ones of those shapes where this setting was not timed before."""
        key = settings_key(settings)
        if key not in self.seconds:
            x_shape, weight_shape, stride, pads, dilation, groups, dtype = settings
            if arrays is None:
                rng = np.random.default_rng(0)
                arrays = (rng.standard_normal(x_shape).astype(dtype), rng.standard_normal(weight_shape).astype(dtype))
            conv_settings = (stride, pads, dilation, groups)
            runnable = [name for name in ALGORITHMS if unsupported(name, stride, dilation, weight_shape[2:]) is None]
            self.seconds[key] = {name: min(seconds_of(algorithm_plan(name, True, True), *arrays, conv_settings)
                                           for _ in range(BENCHMARK_RUNS)) for name in runnable}
            self.write()
        times = self.seconds[key]
        best = min(times, key=times.get)
        measured = ", ".join(f"{name} {seconds * 1e3:.3g} ms" for name, seconds in times.items())
        return Choice(best, f"{best}: timed: forward and both gradients {measured} (the fastest runs)", estimates)
