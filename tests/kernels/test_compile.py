"""Kernel: serial and parallel compilations cached apart on disk; the threading layer chosen only when needed."""
import os
import subprocess
import sys

import pytest

from coursedata.paths import PROJECT_ROOT
from tinynet.kernels.compile import PARALLEL_THRESHOLD, Kernel

# A kernel in a file of its own (Numba caches only functions defined in files), run in a fresh
# interpreter: it prints whether both compilations agree, then the threading layer's setting and the one used.
SCRIPT = """
import numba
import numpy as np
from numba import prange

from tinynet.kernels.compile import Kernel


def double(out, x):
    for i in prange(x.shape[0]):
        out[i] = 2 * x[i]


kernel = Kernel(double)
serial, parallel = np.empty(4), np.empty(4)
kernel(serial, np.arange(4.0), work=0)
kernel(parallel, np.arange(4.0), work=1 << 30)
print(serial.tolist() == parallel.tolist() == [0, 2, 4, 6], numba.config.THREADING_LAYER, numba.threading_layer())
"""


@pytest.fixture
def run_kernel(tmp_path):
    """Run SCRIPT with its Numba cache in tmp_path/cache and the given environment; return its output words."""
    script = tmp_path / "double_kernel.py"
    script.write_text(SCRIPT)

    def run(**environment):
        env = {key: value for key, value in os.environ.items() if key != "NUMBA_THREADING_LAYER"}
        env.update(PYTHONPATH=str(PROJECT_ROOT), NUMBA_CACHE_DIR=str(tmp_path / "cache"), **environment)
        return subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True,
                              check=True).stdout.split()
    return run


def cache_files(folder):
    """{file name: (size, modification time in ns)} of every file below folder."""
    return {path.name: (path.stat().st_size, path.stat().st_mtime_ns) for path in folder.rglob("*") if path.is_file()}


@pytest.mark.slow
def test_serial_and_parallel_are_cached_apart_and_loaded_without_compiling(run_kernel, tmp_path):
    """Numba names a cache after the function, not its options: one shared index would make the serial
    version load the parallel machine code (or the reverse)."""
    assert run_kernel()[0] == "True"
    first = cache_files(tmp_path / "cache")
    indexes = sorted(name.split("-")[0] for name in first if name.endswith(".nbi"))
    assert indexes == ["double_kernel.double_parallel_nogil", "double_kernel.double_serial_nogil"]
    assert run_kernel()[0] == "True"
    assert cache_files(tmp_path / "cache") == first  # nothing compiled again, nothing rewritten


@pytest.mark.slow
def test_the_workqueue_is_chosen_at_the_first_parallel_kernel_unless_the_user_chose(run_kernel):
    assert run_kernel() == ["True", "workqueue", "workqueue"]
    agrees, setting, _ = run_kernel(NUMBA_THREADING_LAYER="default")  # Numba's own choice: tbb, omp, workqueue
    assert (agrees, setting) == ("True", "default")


@pytest.mark.parametrize("work, version", [(PARALLEL_THRESHOLD - 1, "serial"), (PARALLEL_THRESHOLD, "parallel")])
def test_the_parallel_version_runs_from_the_threshold_on(work, version):
    kernel = Kernel(lambda: None)
    kernel.serial, kernel.parallel = (lambda: "serial"), (lambda: "parallel")  # the versions as they would run
    assert kernel(work=work) == version
