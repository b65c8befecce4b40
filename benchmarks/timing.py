"""Median wall-clock timing, the machine's matmul speed, and a description of the machine."""
import os
import platform
import time
from statistics import median

import numba
import numpy as np

from tinynet.kernels.compile import choose_threading_layer


def median_seconds(run, budget=1.0, min_repeats=3, max_repeats=25):
    """Median time of run() over as many calls as fit in about `budget` seconds (within the bounds).

    Call run() once before, to compile and warm caches: that call is not timed here.
    """
    times = []
    while len(times) < min_repeats or (len(times) < max_repeats and sum(times) < budget):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return median(times)


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
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    coretype = {name: os.environ[name] for name in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if name in os.environ}
    return [f"CPU: {cpu_model()}, {os.cpu_count()} logical cores; load average (1, 5, 15 min) before: {load}",
            f"numpy {np.__version__}, numba {numba.__version__} (threading layer: "
            f"{numba.config.THREADING_LAYER}, {numba.config.NUMBA_NUM_THREADS} threads), torch {torch_version}",
            f"BLAS: {blas_description()}; OpenBLAS overrides in the environment: {coretype or 'none'}"]
