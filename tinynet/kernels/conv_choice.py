"""Which convolution algorithm runs for a shape, and why: a cost model, or timings; visible and forcible.

Each algorithm is one module of tinynet.kernels; beside its functions on plain arrays it declares
what the chooser reads, with settings = (x_shape, weight_shape, stride, pads, dilation, groups) as
the op gets them (checked by tinynet.kernels.windows):

  NAME                the name conv_algorithm reports and force_conv_algorithm takes
  unsupported(*settings) -> why it cannot run these settings, or None
  forward_seconds(*settings, itemsize) -> its forward's seconds on the course's 2-core machine, as its
                      cost model estimates them (the backward passes cost about the same again for each
                      algorithm, so one choice serves all three)
  MARGIN              how many times faster than the default the model must expect it to be to run
  Plan(x_needs_grad, weight_needs_grad) -> one layer's conv2d_forward(x, weight, *settings[2:]) -> out,
                      conv2d_input_grad(grad_out, x_shape, weight, ...) -> grad_x and
                      conv2d_weight_grad(grad_out, x, weight_shape, ...) -> grad_weight; a plan may keep
                      work the three share for the gradients wanted (FFT's spectra)

ALGORITHMS lists them, one line each: adding an algorithm is its module and its line there. By
default the cost models choose, the same way on every machine, so the same shapes give the same
algorithm, hence the same numbers. `conv_benchmark(True)` (or TINYNET_CONV_BENCHMARK=1) instead times
every algorithm that can run, forward and both gradients, once per setting, and keeps the fastest
(cuDNN's benchmark mode), in memory and in a JSON file. `conv_algorithm(...)` says what runs and why;
`force_conv_algorithm(name)` makes every convolution in a `with` block use that algorithm (the tests
use it to exercise each one), and `recorded_conv_choices()` lists the choices made in a block (the
benchmarks print them).
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
from .windows import checked_int, sliding_window

REQUIRED = ("NAME", "unsupported", "forward_seconds", "MARGIN", "Plan")  # what every algorithm module declares


def registry(*modules):
    """{NAME: module} of algorithm modules, in the order given; TypeError naming what a module lacks."""
    for module in modules:
        missing = [name for name in REQUIRED if not hasattr(module, name)]
        if missing:
            raise TypeError(f"{module.__name__} is not a conv algorithm module: it has no {', '.join(missing)}")
    return {module.NAME: module for module in modules}


# The first is the default: it runs every setting, and the cost model measures the others against it.
ALGORITHMS = registry(
    conv,  # im2col: any stride, dilation and groups; one BLAS product per group
    conv_fft,  # stride 1 and dilation 1; real FFTs, for large kernels
    conv_winograd,  # 3x3 kernels, stride 1 and dilation 1; 2.25-4x fewer multiplies
)
DEFAULT = next(iter(ALGORITHMS))

_forced = contextvars.ContextVar("forced_conv_algorithm", default=None)
_records = contextvars.ContextVar("recorded_conv_choices", default=None)


class Choice(NamedTuple):
    """The algorithm that runs (a name of ALGORITHMS), why, and the model's estimate of each one's forward seconds."""
    algorithm: str
    reason: str
    estimates: dict

    @property
    def module(self):
        """The algorithm's module (see the module docstring for what it declares)."""
        return ALGORITHMS[self.algorithm]

    def plan(self, x_needs_grad, weight_needs_grad):
        """A fresh Plan of the algorithm for one layer: its conv2d_forward, conv2d_input_grad and conv2d_weight_grad."""
        return self.module.Plan(x_needs_grad, weight_needs_grad)


def why_not(settings):
    """{name: why it cannot run settings (x_shape, weight_shape, stride, pads, dilation, groups), or None}."""
    return {name: algorithm.unsupported(*settings) for name, algorithm in ALGORITHMS.items()}


@functools.lru_cache(maxsize=1024)
def modelled_choice(x_shape, weight_shape, stride, pads, dilation, groups, itemsize):
    """The cost model's Choice for checked settings (cached: layers see the same shapes every step).

    Each algorithm that can run, in the registry's order, takes over from the best so far where the model
    expects it at least as fast, and at least its MARGIN times faster than the default.
    """
    settings = (x_shape, weight_shape, stride, pads, dilation, groups)
    reasons = why_not(settings)
    estimates = {name: ALGORITHMS[name].forward_seconds(*settings, itemsize)
                 for name, reason in reasons.items() if reason is None}
    if len(estimates) == 1:
        return Choice(DEFAULT, f"{DEFAULT}: " + "; ".join(reason for reason in reasons.values() if reason), estimates)
    best = DEFAULT
    for name, seconds in estimates.items():
        if seconds * ALGORITHMS[name].MARGIN <= estimates[DEFAULT] and seconds <= estimates[best]:
            best = name
    listed = ", ".join(f"{name} {seconds * 1e3:.3g} ms" for name, seconds in estimates.items())
    margins = ", ".join(f"{name} runs when at least {ALGORITHMS[name].MARGIN:g}x faster"
                        for name in estimates if ALGORITHMS[name].MARGIN != 1)
    return Choice(best, f"{best}: estimated forward {listed}" + (f" ({margins})" if margins else ""), estimates)


def choose(x_shape, weight_shape, stride, pads, dilation, groups, dtype, arrays=None):
    """The Choice for checked settings (as the op gets them): the forced algorithm if any, else the timed one
    in benchmark mode (timed on arrays = (x, weight) if given, else on random arrays of these shapes), else
    the model's."""
    settings = (tuple(x_shape), tuple(weight_shape), stride, pads, dilation, groups)
    choice = modelled_choice(*settings, np.dtype(dtype).itemsize)
    forced = _forced.get()
    if forced is not None:
        reason = ALGORITHMS[forced].unsupported(*settings)
        if reason:
            raise ValueError(f"force_conv_algorithm({forced!r}) cannot run this convolution: {reason}")
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
    """Within the block, every conv2d runs algorithm `name` (a NAME in ALGORITHMS); ValueError where it cannot."""
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


# Benchmark mode: conv_benchmark's setting (None: not yet read from TINYNET_CONV_BENCHMARK) and the timed choices.
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
    """Whether convolutions are chosen by timing: conv_benchmark's setting, else TINYNET_CONV_BENCHMARK == '1'
    (read at the first convolution, not at every one)."""
    if _benchmark["enabled"] is None:
        _benchmark["enabled"] = os.environ.get("TINYNET_CONV_BENCHMARK") == "1"
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


def as_tuples(value):
    """value with every list in it a tuple: JSON's settings as the op gives them."""
    return tuple(as_tuples(item) for item in value) if isinstance(value, list) else value


def check_times(settings, times):
    """ValueError unless times is {algorithm: seconds} of algorithms that can run settings (a cache entry)."""
    reasons = why_not(as_tuples(settings)[:6])
    for name, seconds in times.items():
        if name not in reasons or reasons[name] is not None:
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
            runnable = [name for name, reason in why_not(settings[:6]).items() if reason is None]
            self.seconds[key] = {name: min(seconds_of(ALGORITHMS[name].Plan(True, True), *arrays, conv_settings)
                                           for _ in range(BENCHMARK_RUNS)) for name in runnable}
            self.write()
        times = self.seconds[key]
        best = min(times, key=times.get)
        measured = ", ".join(f"{name} {seconds * 1e3:.3g} ms" for name, seconds in times.items())
        return Choice(best, f"{best}: timed: forward and both gradients {measured} (the fastest runs)", estimates)
