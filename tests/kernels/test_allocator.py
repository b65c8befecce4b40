"""kernels.allocator: after tinynet's first product, arrays freed and allocated again do not fault their pages in
again (glibc)."""
import json
import platform
import subprocess
import sys

from coursedata.paths import PROJECT_ROOT
from tinynet.kernels.allocator import keep_freed_memory

# Faults per round of a forward-like pattern (21 MB and 5 MB arrays made and freed), before and after tinynet's
# first product, in a fresh interpreter (malloc's thresholds move with what a process has freed before).
SCRIPT = """
import json, resource
import numpy as np

def faults_per_round(rounds=10):
    def one_round():
        a = np.ones(5_300_000, np.float32)
        b = a + 1
        del a
        c = np.ones(1_250_000, np.float32)
        del b, c
    for _ in range(3):
        one_round()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(rounds):
        one_round()
    return (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / rounds

import tinynet as tn
untouched = faults_per_round()
tn.Tensor(np.ones((3, 4))) @ tn.Tensor(np.ones((4, 2)))
print(json.dumps([untouched, faults_per_round()]))
"""


def test_after_the_first_product_freed_arrays_are_not_faulted_in_again():
    if platform.libc_ver()[0] != "glibc":  # (musl, macOS: their malloc is left as it is, and says so)
        assert keep_freed_memory() is False
        return
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True,
                            cwd=PROJECT_ROOT)
    untouched, kept = json.loads(result.stdout)
    assert untouched > 500  # (5 MB is 1,280 pages: the pattern does fault under glibc's own thresholds)
    assert kept < 10
