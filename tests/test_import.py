"""Importing tinynet: the engine stands alone (no course package, no course dependency)."""
import subprocess
import sys

from coursedata.paths import PROJECT_ROOT

COURSE_MODULES = {"coursedata", "facescrub", "experiments", "benchmarks", "matplotlib", "PIL", "requests", "urllib3",
                  "tqdm", "scipy"}


def run_python(code):
    """Run code in a fresh interpreter with the project on the path; return its stdout."""
    return subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True,
                          check=True).stdout


def test_every_engine_module_imports_without_the_course():
    loaded = run_python(f"""
import importlib, pkgutil, sys
import numba  # imports SciPy by itself when SciPy is installed
already_loaded = set(sys.modules)
import tinynet
for module in pkgutil.walk_packages(tinynet.__path__, "tinynet."):
    importlib.import_module(module.name)
print(sorted(name for name in set(sys.modules) - already_loaded if name.split(".")[0] in {sorted(COURSE_MODULES)}))
""")
    assert loaded == "[]\n"
