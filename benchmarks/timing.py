"""Median wall-clock timing in interleaved rounds, the machine's matmul speed and load, and a description of the
machine."""
import math
import os
import platform
import time
from statistics import median

import numba
import numpy as np

from tinynet.kernels.compile import choose_threading_layer

# A call shorter than this is timed in a loop of calls that lasts at least this long: microsecond calls (the per-op
# cases) then stand far above the clock's resolution and the timing loop's own cost.
MIN_SAMPLE_SECONDS = 1e-3


def median_seconds(run, budget=1.0, min_repeats=3, max_repeats=25):
    """Median time of one run() call over samples that fill about `budget` seconds, at least min_repeats of them.

    A sample is one call, or for a call shorter than MIN_SAMPLE_SECONDS, a loop of 2, 4, 8, ... calls that lasts
    that long, timed together and divided by its calls. One-call samples are at most max_repeats; short loops as
    many as the budget holds: hundreds of 1 ms samples, whose median leaves out those that another process or a
    scheduler tick interrupted. Call run() once before, to compile and warm caches: that call is not timed here.
    """
    calls, seconds = 1, seconds_per_call(run, 1)
    while seconds * calls < MIN_SAMPLE_SECONDS:  # too short a loop to be a sample: twice as many calls
        calls *= 2
        seconds = seconds_per_call(run, calls)
    most = max_repeats if calls == 1 else math.inf
    samples = [seconds]
    while len(samples) < min_repeats or (len(samples) < most and sum(samples) * calls < budget):
        samples.append(seconds_per_call(run, calls))
    return median(samples)


def interleaved_rounds(runners, rounds, time_round):
    """{name: [seconds in round 1, ..., round `rounds`]}: each round times every runner of {name: run} once, by
    time_round(run) -> seconds, in the runners' order rotated by one more each round (round r starts with the
    (r mod n)-th runner of n).

    On a shared machine the load changes while a benchmark runs: interleaved, such a change falls on every
    implementation instead of on the one that happened to be timed then; rotated, no implementation always runs
    first (after the others have filled the caches) or last.
    """
    names = list(runners)
    seconds = {name: [] for name in names}
    for r in range(rounds):
        start = r % len(names)
        for name in names[start:] + names[:start]:
            seconds[name].append(time_round(runners[name]))
    return seconds


def median_and_minimum(round_seconds):
    """({name: median}, {name: minimum}) over the rounds of interleaved_rounds' {name: [seconds per round]}: the
    median is the typical time on this machine as it was; the minimum, the time least disturbed by other jobs."""
    return ({name: median(seconds) for name, seconds in round_seconds.items()},
            {name: min(seconds) for name, seconds in round_seconds.items()})


def load_average():
    """The 1-minute load average: about how many processes were running or waiting for a core (os.getloadavg)."""
    return os.getloadavg()[0]


def seconds_per_call(run, calls):
    """Wall-clock seconds of `calls` calls of run() in a row, divided by calls."""
    start = time.perf_counter()
    for _ in range(calls):
        run()
    return (time.perf_counter() - start) / calls


def matmul_gflops(size=1024, budget=1.0):
    """Measured float32 (size x size) @ (size x size) speed of NumPy's BLAS, in GFLOP/s."""
    a, b = (np.random.default_rng(i).standard_normal((size, size), dtype=np.float32) for i in range(2))
    a @ b
    return 2 * size ** 3 / median_seconds(lambda: a @ b, budget) / 1e9


def blas_description():
    """'openblas 0.3.x (Haswell kernel, 2 threads)' from threadpoolctl, or why it is unknown."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "unknown (pip install threadpoolctl to see it)"
    pools = [p for p in threadpool_info() if p["user_api"] == "blas"]
    return "; ".join(f"{p['internal_api']} {p['version']} ({p.get('architecture', '?')} kernel, "
                     f"{p['num_threads']} threads)" for p in pools) or "none found"


def cpu_model():
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            return next(line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or "unknown"


def machine_lines(torch_version):
    """Lines describing what the numbers were measured on (the threading layer: the one the kernels will use)."""
    choose_threading_layer()
    coretype = {name: os.environ[name] for name in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if name in os.environ}
    return [f"CPU: {cpu_model()}, {os.cpu_count()} logical cores",
            f"numpy {np.__version__}, numba {numba.__version__} (threading layer: "
            f"{numba.config.THREADING_LAYER}, {numba.config.NUMBA_NUM_THREADS} threads), torch {torch_version}",
            f"BLAS: {blas_description()}; OpenBLAS overrides in the environment: {coretype or 'none'}"]


def exit_status(disagree, tolerance) -> int:
    """0, or 1 after saying which results (names in disagree) differ by more than tolerance from the reference."""
    if disagree:
        print(f"RESULTS DISAGREE (max diff > {tolerance}): {', '.join(disagree)}")
        return 1
    return 0
