"""Importing tinynet: the engine stands alone (no course package, no course dependency) and changes
no process-wide setting."""
import subprocess
import sys

from coursedata.paths import PROJECT_ROOT

COURSE_MODULES = {"coursedata", "facescrub", "experiments", "benchmarks", "matplotlib", "PIL", "requests", "urllib3",
                  "tqdm"}


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


def test_importing_changes_no_process_wide_setting():
    """Numba's config (its threading layer is chosen at the first parallel kernel), the umask (not even
    set and put back), NumPy's error handling, warning filters, the environment."""
    changed = run_python("""
import importlib, os, pkgutil, sys, warnings
import numba, numpy as np
def settings():
    config = {name: value for name, value in vars(numba.config).items() if name.isupper()}
    return config, np.geterr(), list(warnings.filters), dict(os.environ), sys.getrecursionlimit()
before, umask_calls, real_umask = settings(), [], os.umask
os.umask = lambda mask: umask_calls.append(mask) or real_umask(mask)
import tinynet, coursedata
for package in (tinynet, coursedata):
    for module in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        importlib.import_module(module.name)
print([what for what, old, new in zip(["numba.config", "np.geterr", "warnings", "environ", "recursion"], before,
                                      settings()) if old != new] + (["umask"] if umask_calls else []))
""")
    assert changed == "[]\n"


def test_the_course_packages_import_nothing_from_experiments():
    """The arrows point down: experiments use coursedata and facescrub; facescrub and benchmarks, whose
    command lines share coursedata.cli, import nothing of experiments."""
    loaded = run_python("""
import importlib, pkgutil, sys
import coursedata, facescrub
for package in (coursedata, facescrub):
    for module in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        importlib.import_module(module.name)
import benchmarks.__main__  # all of benchmarks but torch_reference, which needs the optional torch
print(sorted(name for name in sys.modules if name.split(".")[0] == "experiments"))
""")
    assert loaded == "[]\n"
