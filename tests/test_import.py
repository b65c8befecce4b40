"""Importing tinynet: the engine stands alone (no course package, no course dependency) and changes
no process-wide setting."""
import ast
import subprocess
import sys
from pathlib import Path

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


def module_name(path: Path, root: Path) -> str:
    """tinynet/nn/conv.py -> 'tinynet.nn.conv'; a package's __init__.py is the package."""
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, root: Path, known: set) -> set:
    """The modules of `known` that the file imports, by every import statement in it: at the top, in a
    function, under `if` (a deferred import makes a circle as much as a top-level one)."""
    this = module_name(path, root)
    package = this if path.name == "__init__.py" else this.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[:len(package.split(".")) - node.level + 1] if node.level else []
            base = ".".join(base + ([node.module] if node.module else []))
            candidates = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for name in candidates:  # 'from a import b' imports the module a.b if there is one, else a
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name and name != this:
                found.add(name)
                if isinstance(node, ast.ImportFrom):
                    break
    return found


def import_circles(root: Path, package: str) -> list:
    """Every circle of imports among the package's modules (as lists of module names), by depth-first search."""
    files = {module_name(path, root): path for path in (root / package).rglob("*.py")}
    graph = {name: imported_modules(path, root, set(files)) for name, path in files.items()}
    circles, finished, path = [], set(), []

    def visit(module):
        if module in path:
            circles.append(path[path.index(module):] + [module])
            return
        if module in finished:
            return
        path.append(module)
        for imported in sorted(graph[module]):
            visit(imported)
        path.pop()
        finished.add(module)

    for module in sorted(graph):
        visit(module)
    return circles


def test_tinynet_has_no_import_circle():
    """The engine's modules import in one direction (tensor <- function <- ops <- functional <- tensor_methods)."""
    circles = import_circles(PROJECT_ROOT, "tinynet")
    assert not circles, "import circles:\n" + "\n".join(" -> ".join(circle) for circle in circles)


def test_the_circle_finder_sees_deferred_and_relative_imports(tmp_path):
    (tmp_path / "pkg" / "sub").mkdir(parents=True)
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "sub" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "a.py").write_text("from .sub import b\n")
    (tmp_path / "pkg" / "sub" / "b.py").write_text("def f():\n    from .. import a\n")
    (tmp_path / "pkg" / "c.py").write_text("import pkg.a\n")
    assert import_circles(tmp_path, "pkg") == [["pkg.a", "pkg.sub.b", "pkg.a"]]
    (tmp_path / "pkg" / "sub" / "b.py").write_text("def f():\n    import numpy\n")
    assert import_circles(tmp_path, "pkg") == []


def test_numba_is_loaded_at_the_first_kernel_not_with_tinynet():
    """Importing tinynet and running small ops (a product, a sum, tanh, their backward) loads no Numba: its import
    costs ~0.25 CPU-s, which each of the assignment grader's children of a task without kernels saves."""
    loaded = run_python("""
import sys
import numpy as np
import tinynet
x = tinynet.Tensor(np.ones((2, 3)), requires_grad=True)
(x @ x.T).tanh().sum().backward()
before = "numba" in sys.modules
tinynet.functional.max_pool2d(tinynet.Tensor(np.ones((1, 1, 4, 4))), 2)
print(before, "numba" in sys.modules)
""")
    assert loaded == "False True\n"
