"""Hostile submissions: a student copy with one hostile edit each, graded by the trusted grader.

Each case proves that the grader gives the score the honest part of the submission earns and no
more: files outside the stripped functions are never read or run, a function that forges an
outcome, exits, kills, reads, writes, connects, loops, hogs memory or forks gets nothing for its
task, costs no other task anything, and leaves nothing behind for a later grading or the grader.

Most cases graft code into MatMul.backward (task 3.1, one function) of an otherwise empty copy and
grade task 3.1 alone, or with task 4.1 done correctly beside it as a tripwire: whatever the hostile
code does must leave 4.1 complete. They grade the public cases only (one grading child per task: the child of
the hidden cases would run the same hostile code again, on other inputs), unless the attack is on the hidden
cases.
"""
import ast
import functools
import inspect
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import pytest

from conftest import require_or_skip
from submissions import TASK_IDS, TASKS, grader, student_copy
from tinynet.assign.grade import INSTRUCTOR_PACKAGE, Grader
from tinynet.assign.sandbox import child_environment, landlock_abi, namespaces_available
from tinynet.assign.stubs import function_nodes
from tinynet.assign.tasks import DEFAULT_TASKS, hidden_cases_path, load_hidden_cases
from tinynet.ops.elementwise import Mul

LINEAR = "tinynet/ops/linear.py"
MATMUL = f"{LINEAR}:MatMul.backward"  # task 3.1
LOG_SOFTMAX = "tinynet/ops/loss.py:LogSoftmax.backward"  # task 4.1
ENDED = "the task's process ended (exit code 0) without returning values"
STUB_DIAGNOSIS = "NotImplementedError: Task 3.1 is not done (its stub still raises)"


# ---- the grader, and what it gave ------------------------------------------------------------
@functools.cache
def graded_by(task_ids: tuple, seconds=60.0, memory_gib=1.0, hidden=False) -> Grader:
    """submissions.grader for these default tasks (their public cases only, unless hidden), made once per
    setting."""
    return grader(task_ids, hidden=hidden, seconds=seconds, memory_gib=memory_gib)


def scores_of(scores) -> dict:
    """{task id: (cases passed, cases run)}."""
    return {s.task.id: (s.passed, s.total) for s in scores}


def expected(grader, zero=(), full=()) -> dict:
    """The scores_of a submission that passes no case of the tasks in zero and every case of those in full."""
    return {task.id: (len(grader.cases[task.id]) if task.id in full else 0, len(grader.cases[task.id]))
            for task in grader.tasks if task.id in zero + full}


def diagnosis(scores, task_id="3.1") -> str:
    return next(s.diagnosis for s in scores if s.task.id == task_id)


def require_landlock(abi=1):
    require_or_skip(landlock_abi() >= abi, f"this case needs Landlock ABI {abi} (the kernel has {landlock_abi()})")


# ---- hostile edits of a student copy ---------------------------------------------------------
def _function(copy: Path, target: str):
    """(path, source lines, FunctionDef) of target ("tinynet/ops/linear.py:MatMul.backward") in copy."""
    file, _, name = target.partition(":")
    path = copy / file
    source = path.read_text()
    return path, source.splitlines(keepends=True), function_nodes(ast.parse(source))[name]


def fill(code: str, **values) -> str:
    """code with each $NAME replaced by the Python literal of values[NAME]."""
    for name in sorted(values, key=len, reverse=True):  # $KNOWN_BYTES before $KNOWN
        code = code.replace(f"${name}", repr(values[name]))
    assert "$" not in code, code
    return code


def write_body(copy: Path, target: str, body: str) -> int:
    """Replace the stub line of target's function in copy by body (dedented, then indented like the
    stub). Returns the line number of body's first line."""
    path, lines, node = _function(copy, target)
    stub = node.body[-1]
    assert lines[stub.lineno - 1].lstrip().startswith("raise NotImplementedError('Task "), f"{target} is no stub"
    lines[stub.lineno - 1:stub.end_lineno] = [textwrap.indent(textwrap.dedent(body).strip("\n") + "\n",
                                                              " " * stub.col_offset)]
    path.write_text("".join(lines))
    return stub.lineno


def run_at_import(copy: Path, target: str, where: str, expression: str):
    """Make target's definition evaluate expression when its module is imported: as the default value
    of an extra parameter (where="default") or as a decorator above the others (where="decorator")."""
    path, lines, node = _function(copy, target)
    if where == "default":
        line = lines[node.lineno - 1].rstrip()
        assert line.endswith("):"), line
        lines[node.lineno - 1] = f"{line[:-2]}, _hostile={expression}):\n"
    else:
        first = min([node.lineno] + [d.lineno for d in node.decorator_list])
        lines.insert(first - 1, f"{' ' * node.col_offset}@{expression}\n")
    path.write_text("".join(lines))


def delete_function(copy: Path, target: str):
    path, lines, node = _function(copy, target)
    first = min([node.lineno] + [d.lineno for d in node.decorator_list])
    del lines[first - 1:node.end_lineno]
    path.write_text("".join(lines))


def write_files(copy: Path, files: dict):
    """Write each {relative path: text, or a function of the old text} into copy."""
    for relative, text in files.items():
        path = copy / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text(path.read_text()) if callable(text) else text)


# ---- files outside the stripped functions ------------------------------------------------------
# Imported by anything (the grader, a grading child), this ends that process at once: a child
# ending so returns no values, and task 4.1 (done) would lose its cases.
TRIPWIRE = "\nimport os\nos._exit(0)  # a hostile file: whatever imports it ends here, 'successfully'\n"
FORGED_REPORTS = '''
import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    outcome.get_result().outcome = "passed"
'''
VJP_TESTS = sorted({test.partition("::")[2] for task in TASKS for test in task.tests
                    if test.startswith("tests/ops/test_vjps.py::")})
PASSING_TEST = "tests/test_import.py"


def _toml_stripping_nothing(text):
    text = re.sub(r"^strip = \[[^\]]*\]", "strip = []", text, flags=re.M)
    return re.sub(r"^tests = \[[^\]]*\]", f'tests = ["{PASSING_TEST}"]', text, flags=re.M)


OUTSIDE_FILES = {
    "edited tests": {"tests/ops/test_vjps.py": "".join(f"def {name}():\n    assert True\n\n\n" for name in VJP_TESTS)},
    "conftest.py at the root": {"conftest.py": FORGED_REPORTS + TRIPWIRE},
    "conftest.py in tests": {"tests/conftest.py": FORGED_REPORTS + TRIPWIRE},
    "pytest.ini loading a plugin": {"pytest.ini": "[pytest]\naddopts = -p hostile_plugin\n",
                                    "hostile_plugin.py": FORGED_REPORTS + TRIPWIRE},
    "sitecustomize.py": {"sitecustomize.py": TRIPWIRE},
    "usercustomize.py": {"usercustomize.py": TRIPWIRE},
    "pytest.py": {"pytest.py": "def main(*args):\n    return 0\n" + TRIPWIRE},
    "numpy.py": {"numpy.py": TRIPWIRE},
    "the copy's own grader": {"tinynet/assign/probes.py": "def judge(*args):\n    return None\n" + TRIPWIRE,
                              "tinynet/assign/harness.py": TRIPWIRE, "tinynet/assign/sandbox.py": TRIPWIRE},
    "tinynet/__init__.py": {"tinynet/__init__.py": TRIPWIRE},
    "module-level code beside a spliced function": {"tinynet/ops/loss.py": lambda text: text + TRIPWIRE,
                                                    LINEAR: lambda text: text + TRIPWIRE},
    "task list pointing at a passing test": {"tests/assignment_tasks.json": json.dumps(
        [{**vars(t), "strip": [], "tests": [PASSING_TEST]} for t in TASKS])},
    "task list without tasks": {"tests/assignment_tasks.json": "[]"},
    "default_tasks.toml stripping nothing": {"tinynet/assign/default_tasks.toml": _toml_stripping_nothing},
    "default_tasks.toml without tasks": {"tinynet/assign/default_tasks.toml": "",
                                         "tinynet/assign/default_tasks.hidden.toml": ""},
}


@pytest.mark.parametrize("files", OUTSIDE_FILES.values(), ids=OUTSIDE_FILES.keys())
def test_files_outside_the_stripped_functions_change_nothing(files, tmp_path):
    """Edited tests, conftest.py, a pytest plugin, sitecustomize/usercustomize, modules shadowing
    pytest or numpy, the copy's own grader, task list or package, and module-level code in a stripped
    file are never read or run: the empty task 3.1 scores 0 of all its cases, the done task 4.1 all."""
    copy = student_copy(tmp_path / "copy", done=("4.1",))
    write_files(copy, files)
    grader = graded_by(("3.1", "4.1"), hidden=any(name.endswith(".hidden.toml") for name in files))
    scores = grader.grade(copy)
    assert scores_of(scores) == expected(grader, zero=("3.1",), full=("4.1",))
    assert diagnosis(scores).endswith(STUB_DIAGNOSIS)


# ---- forged outcomes -----------------------------------------------------------------------------
def code(*fragments) -> str:
    """Fragments of Python source, each dedented, joined."""
    return "".join(textwrap.dedent(fragment).strip("\n") + "\n" for fragment in fragments)


# The child's scratch folder, the one it may write (where the previous grader read its outcome): HOME's.
SCRATCH = """
    import os
    scratch = os.path.dirname(os.environ["HOME"])
    """
# Zero gradients for every case's inputs (grad_out_after as it should be), and no errors.
FORGED_NPZ = """
    import io, os, stat
    import numpy as np
    with np.load(os.path.join(os.path.dirname(os.environ["HOME"]), os.pardir, "inputs.npz")) as inputs:
        arrays = {name: inputs[name] for name in inputs.files}
    forged = {"errors.json": np.frombuffer(b"{}", np.uint8)}
    for name, array in arrays.items():
        case, _, what = name.partition("/")
        if what == "grad_out":
            forged[case + "/grad_out_after"] = array
        elif what.startswith("x"):
            forged[case + "/grad" + what[1:]] = np.zeros_like(array)
    """
# The forged arrays as an .npz into every pipe the process holds (the harness's way to the grader).
DOWN_EVERY_PIPE = """
    buffer = io.BytesIO()
    np.savez(buffer, **forged)
    for fd in range(3, 256):
        try:
            if stat.S_ISFIFO(os.fstat(fd).st_mode):
                os.write(fd, buffer.getvalue())
        except OSError:
            pass
    os._exit(0)
    """
PRINT_A_PASS = """
    import os, sys
    print("8 of 8 tasks complete\\npassed", flush=True)
    print("8 of 8 tasks complete\\npassed", file=sys.stderr, flush=True)
    """
FORGERIES = {
    "old grader's outcome file": (code(SCRATCH, """
        import json
        tasks = {task: {"passed": 99, "failed": 0, "complete": True} for task in $TASK_IDS}
        with open(os.environ.get("TINYNET_ASSIGN_RESULTS", scratch + "/assignment_results.json"), "w") as file:
            json.dump(tasks, file)
        os._exit(0)"""), ENDED),
    "outputs.npz and errors.json in its scratch folder": (code(SCRATCH, FORGED_NPZ, """
        np.savez(scratch + "/outputs.npz", **{name: a for name, a in forged.items() if name != "errors.json"})
        with open(scratch + "/errors.json", "w") as file:
            file.write("{}")
        os._exit(0)"""), ENDED),
    "zero gradients down every pipe": (code(FORGED_NPZ, DOWN_EVERY_PIPE), "grad0 is wrong at"),
    "a pickle down every pipe": (code(FORGED_NPZ, """
        class Payload:
            def __reduce__(self):
                return exec, ("open($MARKER, 'w').close()",)
        forged["0/grad0"] = np.array([Payload()], dtype=object)""", DOWN_EVERY_PIPE), ENDED),
    "prints a pass, sys.exit(0)": (code(PRINT_A_PASS, "sys.exit(0)"), "SystemExit: 0"),
    "prints a pass, os._exit(0)": (code(PRINT_A_PASS, "os._exit(0)"), ENDED),
}


@pytest.mark.parametrize("body, says", FORGERIES.values(), ids=FORGERIES.keys())
def test_a_forged_outcome_scores_nothing(body, says, tmp_path):
    """A function that writes the old grader's outcome file, or scratch outputs, or sends forged arrays
    (zeros, or a pickle that would run code in the grader) to the grader's pipe, or prints a pass,
    and exits 0: the grader judges only arrays, by value, so task 3.1 scores 0, and nothing is unpickled."""
    marker = tmp_path / "unpickled"
    copy = student_copy(tmp_path / "copy")
    write_body(copy, MATMUL, fill(body, TASK_IDS=TASK_IDS, MARKER=str(marker)))
    grader = graded_by(("3.1",))
    scores = grader.grade(copy)
    assert scores_of(scores) == expected(grader, zero=("3.1",))
    assert says in diagnosis(scores)
    assert not marker.exists()


@pytest.mark.parametrize("where, expression", [("default", "__import__('os')._exit(0)"),
                                               ("decorator", "(lambda function: __import__('os')._exit(0))")],
                         ids=["default value", "decorator"])
def test_an_exit_at_import_costs_only_its_task(where, expression, tmp_path):
    """os._exit(0) in a default value or a decorator of a stripped function ends the grading child when
    it imports the module: task 3.1 gets no values and scores 0; task 4.1, done, keeps every case."""
    copy = student_copy(tmp_path / "copy", done=("4.1",))
    run_at_import(copy, MATMUL, where, expression)
    grader = graded_by(("3.1", "4.1"))
    scores = grader.grade(copy)
    assert scores_of(scores) == expected(grader, zero=("3.1",), full=("4.1",))
    assert diagnosis(scores) == ENDED


# ---- killing the grader ------------------------------------------------------------------------
KILLS = {
    "its parent": "os.kill(os.getppid(), signal.SIGKILL)",
    "its process group": "os.killpg(0, signal.SIGKILL)",
    "every pid it finds": '''
        pids = {os.getppid(), $TEST_PID}
        try:
            pids |= {int(name) for name in os.listdir("/proc") if name.isdigit()}
        except OSError:
            pass
        for pid in pids - {0, os.getpid()}:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass''',
}


def _task_list(path: Path, task_ids) -> Path:
    """A TOML task list of the default tasks with these ids (their [[task]] tables, verbatim)."""
    tables = DEFAULT_TASKS.read_text().split("[[task]]")[1:]
    path.write_text("".join("[[task]]" + t for t in tables if re.search(rf'^id = "({"|".join(task_ids)})"', t, re.M)))
    return path


@pytest.mark.parametrize("kill", KILLS.values(), ids=KILLS.keys())
def test_killing_the_grader_fails_only_its_task(kill, tmp_path):
    """A function that SIGKILLs its parent, its process group, or every process it can name (the test's
    own pid included): `check` still finishes and prints a score for every task, 3.1 at 0, 4.1 complete."""
    require_or_skip(namespaces_available() or landlock_abi() >= 6,
                    "a child could kill the grader here: no PID namespace and no Landlock signal scope")
    copy = student_copy(tmp_path / "copy", done=("4.1",))
    write_body(copy, MATMUL, code("import os, signal", fill(kill, TEST_PID=os.getpid()), "return None, None"))
    run = subprocess.run([sys.executable, "-m", "tinynet.assign", "check", str(copy), "--public-only",
                          "--tasks", str(_task_list(tmp_path / "tasks.toml", ["3.1", "4.1"])), "--timeout", "30"],
                         capture_output=True, text=True, timeout=120)
    rows = re.findall(r"^(\d\.\d) .*? (\d+)/(\d+) ", run.stdout, re.M)
    public = {t.id: len(t.cases) for t in TASKS}
    assert (run.returncode, rows) == (1, [("3.1", "0", str(public["3.1"])),
                                          ("4.1", str(public["4.1"]), str(public["4.1"]))]), run.stdout + run.stderr
    assert "1 of 2 tasks complete" in run.stdout


# ---- reading the solution ------------------------------------------------------------------------
# Each sets `path` to a file holding the instructor's MatMul.backward, or raises LookupError.
SOLUTION_FINDERS = {
    "hard-coded instructor path": "path = $INSTRUCTOR + '/ops/linear.py'",
    "filesystem search": """
        import os
        path, skip = None, {"proc", "sys", "dev", "usr", "lib", "lib64", "bin", "sbin", "etc", "var", ".git", ".venv"}
        for folder, subfolders, files in os.walk("/"):  # the instructor's package: the one with hidden cases
            subfolders[:] = [s for s in subfolders if folder.count("/") < $DEPTH and s not in skip]
            candidate = os.path.join(folder, "ops/linear.py")
            hidden = os.path.join(folder, "assign/default_tasks.hidden.toml")
            if folder.endswith("/tinynet") and os.path.isfile(hidden) and os.path.isfile(candidate):
                with open(candidate) as file:
                    if "NotImplementedError('Task 3.1" not in file.read():
                        path = candidate
                        break
        if path is None:
            raise LookupError("found no solution")""",
    "importlib: the editable install's finder": '''
        import sys
        mappings = [getattr(m, "MAPPING", None) for m in list(sys.modules.values())]
        found = [m["tinynet"] for m in mappings if isinstance(m, dict) and "tinynet" in m]
        if not found:
            raise LookupError("found no solution")
        path = found[0] + "/ops/linear.py"''',
    "a sibling submission": "path = $SIBLING + '/tinynet/ops/linear.py'",
}
LOAD_SOLUTION = '''
import importlib.util
spec = importlib.util.spec_from_file_location("tinynet.ops.solution", path)
solution = importlib.util.module_from_spec(spec)
spec.loader.exec_module(solution)
'''


@pytest.mark.parametrize("finder", SOLUTION_FINDERS.values(), ids=SOLUTION_FINDERS.keys())
def test_reading_the_instructors_or_a_siblings_solution_fails(finder, tmp_path):
    """A function that finds the instructor's linear.py (hard-coded path, a search of the filesystem as
    deep as the instructor's folder, the editable install's import finder) or a done sibling
    submission's, execs it and calls the real MatMul.backward: the same code works in the grader's
    process, but the child may read none of those files, so task 3.1 scores 0."""
    require_landlock()
    copy = student_copy(tmp_path / "copy")
    sibling = student_copy(tmp_path / "sibling", done=("3.1",))
    cheat = code(fill(finder, INSTRUCTOR=str(INSTRUCTOR_PACKAGE), SIBLING=str(sibling),
                      DEPTH=len(INSTRUCTOR_PACKAGE.parts)), LOAD_SOLUTION)
    control = {"__file__": str(copy / LINEAR)}
    exec(cheat, control)  # the cheat works where nothing confines it
    assert "NotImplementedError" not in inspect.getsource(control["solution"].MatMul.backward)
    write_body(copy, MATMUL, cheat + "return solution.MatMul.backward(ctx, grad_out)")
    grader = graded_by(("3.1",))
    scores = grader.grade(copy)
    assert scores_of(scores) == expected(grader, zero=("3.1",))
    assert re.search(r": (PermissionError: \[Errno 13\]|LookupError: found no solution)", diagnosis(scores))


def _leak(path_in_tree, after, mark, lines):
    """A body raising an exception whose message is `lines` lines of a file of its grading tree, from
    the first line holding mark after the first one holding after, joined into one line."""
    return fill("""
        import os
        tree = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
        with open(os.path.join(tree, $PATH)) as file:
            text = file.read().splitlines()
        start = next(k for k, line in enumerate(text) if $AFTER in line)
        first = next(k for k in range(start, len(text)) if $MARK in text[k])
        raise RuntimeError(" | ".join(line.strip() for line in text[first:first + $LINES]))""",
                PATH=path_in_tree, AFTER=after, MARK=mark, LINES=lines)


LEAKS = {
    "another task's solution": (_leak("tinynet/ops/elementwise.py", "class Mul", "def backward", 2),
                                inspect.getsource(Mul.backward).strip().splitlines()[-1].strip()),
    "the hidden cases": (_leak("tinynet/assign/default_tasks.hidden.toml", '"3.1"', '"3.1"', 3),
                         f"shapes = {load_hidden_cases(hidden_cases_path(DEFAULT_TASKS), TASKS)['3.1'][0]['shapes']}"),
}


@pytest.mark.parametrize("body, secret", LEAKS.values(), ids=LEAKS.keys())
def test_the_grading_tree_leaks_nothing_into_the_diagnosis(body, secret, tmp_path):
    """The grading tree holds the instructor's solutions of the other tasks (task 2.1's Mul.backward
    while 3.1 is graded) and the hidden cases: a function that raises them as its message must not
    hand them to the student in the diagnosis."""
    copy = student_copy(tmp_path / "copy")
    write_body(copy, MATMUL, body)
    grader = graded_by(("3.1",), hidden=True)
    scores = grader.grade(copy)
    assert scores_of(scores) == expected(grader, zero=("3.1",))
    assert secret not in diagnosis(scores)


NOT_PLAIN_FILES = {  # what replaces a path of the copy
    "linear.py a symlink to the instructor's": (LINEAR, "symlink"),
    "tinynet/ops a symlink to the instructor's": ("tinynet/ops", "symlink"),
    "tinynet a symlink to the instructor's": ("tinynet", "symlink"),
    "linear.py a FIFO": (LINEAR, "fifo"),
}


@pytest.mark.parametrize("relative, kind", NOT_PLAIN_FILES.values(), ids=NOT_PLAIN_FILES.keys())
def test_a_stripped_file_that_is_not_a_plain_file_is_refused(relative, kind, tmp_path):
    """linear.py, or a folder above it, as a symlink to the instructor's (which would hand over the
    solution), or linear.py as a FIFO (which blocks whoever opens it to read): the grader refuses the
    file within seconds and task 3.1 scores 0."""
    copy = student_copy(tmp_path / "copy")
    path = copy / relative
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink()
    if kind == "fifo":
        os.mkfifo(path)
    else:
        path.symlink_to(INSTRUCTOR_PACKAGE.parent / relative)
    grader, done = graded_by(("3.1",)), []
    worker = threading.Thread(target=lambda: done.append(grader.grade(copy)), daemon=True)
    worker.start()
    worker.join(10)
    if worker.is_alive():  # release a grader blocked opening the FIFO, then fail
        os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
        worker.join(10)
        pytest.fail("grading did not end within 10 s: the grader blocked opening the submission's FIFO")
    assert scores_of(done[0]) == expected(grader, zero=("3.1",))
    assert diagnosis(done[0]) == (f"{LINEAR} is not a regular file" if kind == "fifo"
                                  else f"{LINEAR} is not a plain file of the submission (a symlink?)")


# ---- writing outside, network ------------------------------------------------------------------
WRITE_TARGETS = {
    "/tmp": lambda tmp_path: Path("/tmp"),
    "the grader's working folder": lambda tmp_path: Path.cwd(),
    "the grader's HOME": lambda tmp_path: Path.home(),
    "the instructor's package": lambda tmp_path: INSTRUCTOR_PACKAGE,
    "its own submission": lambda tmp_path: tmp_path / "copy",
    "another submission": lambda tmp_path: tmp_path / "sibling" / "tinynet",
}


@pytest.mark.parametrize("target", WRITE_TARGETS.values(), ids=WRITE_TARGETS.keys())
def test_writing_outside_the_scratch_folder_is_refused(target, tmp_path):
    """A function that creates a file in /tmp, the grader's folders, the instructor's package, its own
    submission or a sibling's: the file never appears (Landlock lets the child write its scratch
    folder only), and task 3.1 scores 0."""
    require_landlock()
    copy = student_copy(tmp_path / "copy")
    student_copy(tmp_path / "sibling")
    path = target(tmp_path) / f"hostile_{secrets.token_hex(6)}.py"
    write_body(copy, MATMUL, fill('''
        try:
            with open($PATH, "x") as file:
                file.write("written by a graded function")
            outcome = "created"
        except OSError as error:
            outcome = type(error).__name__
        raise RuntimeError("writing outside: " + outcome)''', PATH=str(path)))
    grader = graded_by(("3.1",))
    try:
        scores = grader.grade(copy)
        assert not path.exists()
    finally:
        path.unlink(missing_ok=True)
    assert scores_of(scores) == expected(grader, zero=("3.1",))
    assert "writing outside: PermissionError" in diagnosis(scores)


def test_a_connection_to_a_local_server_is_refused(tmp_path):
    """A function that connects to a TCP server on 127.0.0.1 (one the test process can reach): the
    server sees no connection from the grading child, and task 3.1 scores 0."""
    require_or_skip(namespaces_available() or landlock_abi() >= 4,
                    "no network namespace and no Landlock TCP rules: a child could connect out")
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port), timeout=5):  # the server works
            server.accept()[0].close()
        copy = student_copy(tmp_path / "copy")
        write_body(copy, MATMUL, fill('''
            import socket
            try:
                with socket.create_connection(("127.0.0.1", $PORT), timeout=5) as connection:
                    connection.sendall(b"the grader's secrets")
                outcome = "connected"
            except OSError as error:
                outcome = type(error).__name__
            raise RuntimeError("connect: " + outcome)''', PORT=port))
        grader = graded_by(("3.1",))
        scores = grader.grade(copy)
        server.setblocking(False)
        with pytest.raises(BlockingIOError):
            server.accept()[0].close()
    assert scores_of(scores) == expected(grader, zero=("3.1",))
    assert re.search(r"RuntimeError: connect: (ConnectionRefusedError|PermissionError|OSError)", diagnosis(scores))


# ---- resources -----------------------------------------------------------------------------------
@pytest.mark.parametrize("body, seconds, says", [
    pytest.param("while True:\n    pass", 2.0, "timed out after 2 s", id="infinite loop", marks=pytest.mark.slow),
    pytest.param("return np.ones(int(5e8)), None", 60.0, "MemoryError", id="memory hog"),
])
def test_a_runaway_function_is_stopped_and_scores_nothing(body, seconds, says, tmp_path):
    """An infinite loop is killed at the wall-clock limit (2 s here: the child reaches the loop after ~0.7 s of
    imports, and spins on a core until it is killed); 4 GB of ones under a 1 GiB limit raise MemoryError, and the
    diagnosis names the limit. Task 3.1 scores 0."""
    copy = student_copy(tmp_path / "copy")
    write_body(copy, MATMUL, body)
    grader = graded_by(("3.1",), seconds=seconds)
    scores = grader.grade(copy)
    assert scores_of(scores) == expected(grader, zero=("3.1",))
    assert says in diagnosis(scores)
    if says == "MemoryError":
        assert "(the memory limit is 1 GiB)" in diagnosis(scores)


def _processes_named(name: str) -> set:
    found = set()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if Path(f"/proc/{pid}/comm").read_text().strip() == name:
                found.add(int(pid))
        except OSError:
            pass
    return found


def test_children_forked_to_sleep_forever_end_with_the_grading(tmp_path):
    """A function that forks three children which sleep forever (each names itself, then tells its
    parent it started): grading ends in seconds and leaves no process behind."""
    require_or_skip(namespaces_available(), "no PID namespace: forked children could outlive their task")
    name = f"hostile{secrets.token_hex(4)}"  # at most 15 characters: a process's comm
    copy = student_copy(tmp_path / "copy")
    write_body(copy, MATMUL, fill('''
        import ctypes, os, time
        started, tell = os.pipe()
        for _ in range(3):
            if os.fork() == 0:
                ctypes.CDLL(None).prctl(15, $NAME.encode(), 0, 0, 0)  # PR_SET_NAME
                os.write(tell, b"x")
                while True:
                    time.sleep(1000)
        heard = b""
        while len(heard) < 3:
            heard += os.read(started, 3)
        raise RuntimeError(f"forked {len(heard)} sleepers")''', NAME=name))
    grader = graded_by(("3.1",), seconds=30.0)
    before, start = _processes_named(name), time.monotonic()
    try:
        scores = grader.grade(copy)
        elapsed = time.monotonic() - start
        time.sleep(0.2)
        left = _processes_named(name) - before
    finally:
        for pid in _processes_named(name) - before:
            os.kill(pid, signal.SIGKILL)
    assert (left, elapsed < 15) == (set(), True)
    assert scores_of(scores) == expected(grader, zero=("3.1",))
    assert "RuntimeError: forked 3 sleepers" in diagnosis(scores)


# ---- poisoning a later grading -----------------------------------------------------------------
def poison_payload(token: str) -> str:
    """Python that, run at a child's start (as sitecustomize, usercustomize or a .pth line), gives the
    next graded tinynet.ops.linear a correct MatMul.backward: an empty submission would pass 3.1."""
    return f'''# {token}
import sys
from importlib.machinery import PathFinder


class _Solution:
    @staticmethod
    def find_spec(name, path=None, target=None):
        if name != "tinynet.ops.linear" or "tinynet-grade-" not in str(path):  # a grading child's only
            return None
        spec = PathFinder.find_spec(name, path)
        run = spec.loader.exec_module

        def exec_module(module):
            run(module)

            def backward(ctx, grad_out):
                swap, (a, b) = module.np.swapaxes, ctx.saved_tensors
                return grad_out @ swap(b, -1, -2), swap(a, -1, -2) @ grad_out
            module.MatMul.backward = staticmethod(backward)
        spec.loader.exec_module = exec_module
        return spec


sys.meta_path.insert(0, _Solution)
'''


POISON = '''
import os, sys, tempfile
here = os.getcwd()
folders = [os.environ.get(name) for name in ("HOME", "TMPDIR", "NUMBA_CACHE_DIR")]
folders += [here, os.path.dirname(here), os.path.dirname(os.path.dirname(here)), "/tmp", tempfile.gettempdir()]
folders += sys.path + $FOLDERS
for folder in filter(None, folders):
    for name, text in [("sitecustomize.py", $PAYLOAD), ("usercustomize.py", $PAYLOAD), ($PTH, $PTH_LINE)]:
        try:
            with open(os.path.join(folder, name), "x") as file:
                file.write(text)
        except OSError:
            pass
'''


def _grader_side_folders() -> list:
    """Where a poison would reach later gradings or the grader: temporary folders, the project, and
    this Python's library and site-packages folders."""
    paths = sysconfig.get_paths()
    return sorted({"/tmp", tempfile.gettempdir(), str(INSTRUCTOR_PACKAGE), str(INSTRUCTOR_PACKAGE.parent),
                   str(Path.home()), paths["stdlib"], paths["purelib"], paths["platlib"],
                   *(p for p in sys.path if p.endswith("site-packages"))})


def test_a_poisoning_submission_does_not_help_the_next_one(tmp_path):
    """Submission A does task 3.1 and, when its module is imported, writes a sitecustomize.py,
    usercustomize.py and a .pth file that would give any later grading a correct MatMul.backward,
    into every folder it can name (its HOME, TMPDIR, numba cache and cwd, the folders above,
    /tmp, sys.path, the project). A still scores all of 3.1; the honest empty B graded next by the
    same grader scores 0, and no poison is left anywhere on the grader's side."""
    token = secrets.token_hex(8)
    payload = poison_payload(token)
    pth = f"zz_hostile_{token}.pth"
    poisoner = student_copy(tmp_path / "a", done=("3.1",))
    poison = fill(POISON, FOLDERS=_grader_side_folders(), PAYLOAD=payload, PTH=pth,
                  PTH_LINE=f"import sys; exec({payload!r}, {{}})\n")
    run_at_import(poisoner, MATMUL, "default", f"exec({poison!r}, {{}})")
    honest = student_copy(tmp_path / "b")
    grader = graded_by(("3.1",))
    try:
        first, second = grader.grade(poisoner), grader.grade(honest)
        left = [str(Path(folder) / name) for folder in _grader_side_folders()
                for name in ("sitecustomize.py", "usercustomize.py", pth)
                if (Path(folder) / name).is_file() and token in (Path(folder) / name).read_text()]
    finally:
        for folder in _grader_side_folders():
            for name in ("sitecustomize.py", "usercustomize.py", pth):
                path = Path(folder) / name
                if path.is_file() and token in path.read_text():
                    path.unlink()
    assert left == []
    assert (scores_of(first), scores_of(second)) == (expected(grader, full=("3.1",)), expected(grader, zero=("3.1",)))
    assert diagnosis(second).endswith(STUB_DIAGNOSIS)


# ---- the instructor's environment ----------------------------------------------------------------
ENVIRONMENT_READERS = {
    "os.environ": '''
        import os
        raise RuntimeError("environment beyond the grader's: "
                           + repr({name: value for name, value in os.environ.items() if name not in $KNOWN}))''',
    "/proc/<pid>/environ": '''
        import os
        found = {}
        for pid in (os.getppid(), $TEST_PID, 1, "self"):
            try:
                with open(f"/proc/{pid}/environ", "rb") as file:
                    found[pid] = [v.decode() for v in file.read().split(b"\\0") if v.split(b"=")[0] not in $KNOWN_BYTES]
            except OSError as error:
                found[pid] = type(error).__name__
        raise RuntimeError("environ of " + repr(found))''',
}


@pytest.mark.parametrize("body", ENVIRONMENT_READERS.values(), ids=ENVIRONMENT_READERS.keys())
def test_the_graders_environment_never_reaches_a_diagnosis(body, tmp_path, monkeypatch):
    """With a secret in the grader's environment, a function raising an exception that lists os.environ
    (less the child's own variables), or the environ files of its parent, the grader (by its pid),
    pid 1 and itself: the secret is in no diagnosis, and task 3.1 scores 0."""
    secret = secrets.token_hex(12)
    monkeypatch.setenv("TINYNET_GRADER_SECRET", secret)
    known = sorted(child_environment(tmp_path))
    copy = student_copy(tmp_path / "copy")
    write_body(copy, MATMUL, fill(body, KNOWN=known, KNOWN_BYTES=[k.encode() for k in known], TEST_PID=os.getpid()))
    grader = graded_by(("3.1",))
    scores = grader.grade(copy)
    assert scores_of(scores) == expected(grader, zero=("3.1",))
    assert re.search(r"RuntimeError: (environment beyond the grader's|environ of)", diagnosis(scores))
    assert all(secret not in s.diagnosis for s in scores)


# ---- careless mistakes -----------------------------------------------------------------------------
@pytest.mark.slow
def test_careless_mistakes_cost_only_their_own_tasks(tmp_path):
    """One copy with tasks 1.1 and 3.1 done and four careless mistakes: a syntax error in 2.1's file,
    a raise at import (a default value dividing by zero) in 2.2's, 3.2's Sum.backward deleted, and an
    infinite recursion in 4.1; plus a module-level raise after 3.1's done function, which is not
    spliced. Each mistake costs only its task, with a diagnosis naming it; 1.1 and 3.1 stay complete."""
    copy = student_copy(tmp_path / "copy", done=("1.1", "3.1"))
    line = write_body(copy, "tinynet/ops/elementwise.py:Add.backward", "return (grad_out,, grad_out)")
    run_at_import(copy, "tinynet/ops/activation.py:ReLU.backward", "default", "1 / 0")
    delete_function(copy, "tinynet/ops/reduce.py:Sum.backward")
    write_body(copy, LOG_SOFTMAX, "return LogSoftmax.backward(ctx, grad_out)")
    write_files(copy, {LINEAR: lambda text: text + "\nraise RuntimeError('a module-level raise')\n"})
    grader = graded_by(("1.1", "2.1", "2.2", "3.1", "3.2", "4.1"))
    scores = grader.grade(copy)
    assert scores_of(scores) == expected(grader, zero=("2.1", "2.2", "3.2", "4.1"), full=("1.1", "3.1"))
    assert diagnosis(scores, "2.1").startswith(f"SyntaxError at tinynet/ops/elementwise.py:{line}:")
    assert "ZeroDivisionError: division by zero (at tinynet/ops/activation.py:" in diagnosis(scores, "2.2")
    assert diagnosis(scores, "3.2") == "tinynet/ops/reduce.py has no function Sum.backward"
    assert "RecursionError: maximum recursion depth exceeded" in diagnosis(scores, "4.1")
