"""The Gradescope autograder: the zip as Gradescope unpacks it, and the results.json its run_autograder writes.

Each run lays out a root as Gradescope does (<root>/source: the zip's contents, <root>/submission,
<root>/results) and runs <root>/source/run_autograder with AUTOGRADER_ROOT=<root>. setup.sh is not run:
instead `python3` on PATH is this test's Python (which has tinynet's dependencies, as setup.sh's pip
install gives Gradescope's), and PYTHONPATH=<root>/source makes the bundled tinynet the one imported and
copied into the grading trees, as the one setup.sh installs would be.
"""
import json
import os
import shutil
import stat
import subprocess
import sys
import zipfile

import pytest

from submissions import TASK_IDS, TASKS, student_copy
from tinynet.assign.grade import TaskScore
from tinynet.assign.gradescope import export_autograder, gradescope_results, unwrapped
from tinynet.assign.tasks import DEFAULT_TASKS, hidden_cases_path, load_hidden_cases

HALF_DONE = ("1.1", "2.2", "3.2", "5.1")
HIDDEN_CASES = load_hidden_cases(hidden_cases_path(DEFAULT_TASKS), TASKS)


@pytest.fixture(scope="module")
def autograder(tmp_path_factory):
    """The autograder zip of the default tasks (and their hidden cases)."""
    return export_autograder(DEFAULT_TASKS, tmp_path_factory.mktemp("export") / "autograder.zip")


@pytest.fixture(scope="module")
def unpacked(autograder, tmp_path_factory):
    """A Gradescope root with the zip unpacked into source/ with its files' modes, made once for the module: the
    grader's own reference values call the Numba kernels, which the module's first run compiles into source/'s
    caches and the later runs load (each run otherwise compiled them again: about 5 s of CPU)."""
    root = tmp_path_factory.mktemp("gradescope") / "autograder"
    with zipfile.ZipFile(autograder) as archive:
        archive.extractall(root / "source")
        for entry in archive.infolist():
            os.chmod(root / "source" / entry.filename, stat.S_IMODE(entry.external_attr >> 16))
    return root


@pytest.fixture
def root(unpacked):
    """The Gradescope root (unpacked) with no submission/ and an empty results/ folder."""
    for folder in ("submission", "results"):
        shutil.rmtree(unpacked / folder, ignore_errors=True)
    (unpacked / "results").mkdir()
    return unpacked


def gradescope_environment(root):
    """The environment run_autograder gets here: AUTOGRADER_ROOT, this Python as python3, the bundled tinynet."""
    shim = root / "bin"
    shim.mkdir(exist_ok=True)
    (shim / "python3").write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    (shim / "python3").chmod(0o755)
    return {**os.environ, "AUTOGRADER_ROOT": str(root), "PATH": f"{shim}{os.pathsep}{os.environ['PATH']}",
            "PYTHONPATH": str(root / "source")}


def run_autograder(root):
    """Run root/source/run_autograder as Gradescope would; (the process, results.json's contents or None)."""
    run = subprocess.run([str(root / "source" / "run_autograder")], cwd=root, env=gradescope_environment(root),
                         capture_output=True, text=True, timeout=300)
    results = root / "results" / "results.json"
    return run, json.loads(results.read_text()) if results.exists() else None


def scores_by_name(results) -> dict:
    """{test name: (score, max_score, visibility)} of a results.json."""
    return {test["name"]: (test["score"], test["max_score"], test["visibility"]) for test in results["tests"]}


def outputs(results) -> dict:
    """{test name: its output} of a results.json."""
    return {test["name"]: test["output"] for test in results["tests"]}


def expected_scores(done) -> dict:
    """scores_by_name of a copy with the tasks in done complete: half a point each for public and hidden cases."""
    expected = {}
    for task in TASKS:
        points = 0.5 if task.id in done else 0.0
        expected[f"Task {task.id}: {task.title}"] = (points, 0.5, "visible")
        expected[f"Task {task.id}: {task.title} (hidden cases)"] = (points, 0.5, "after_published")
    return expected


def assert_cases_pass_exactly_in_done_tasks(results, done):
    """Each task in done passes every public and hidden case; every other task fails them all, the first one
    naming its stub (what results.json's outputs say)."""
    said = outputs(results)
    for task in TASKS:
        public, hidden = len(task.cases), len(HIDDEN_CASES[task.id])
        name = f"Task {task.id}: {task.title}"
        stub = f"NotImplementedError: Task {task.id} is not done (its stub still raises)"
        assert hidden > 0, task.id
        if task.id in done:
            assert said[name] == f"{public} of {public} public cases pass", said[name]
            assert said[f"{name} (hidden cases)"] == f"{hidden} of {hidden} hidden cases pass"
        else:
            counted, _, diagnosis = said[name].partition("\n")
            assert counted == f"0 of {public} public cases pass" and diagnosis.endswith(stub), said[name]
            assert said[f"{name} (hidden cases)"] == f"0 of {hidden} hidden cases pass"


def test_the_zip_holds_executable_scripts_the_package_and_the_cases_but_no_hidden_cases_in_the_package(autograder):
    with zipfile.ZipFile(autograder) as archive:
        modes = {entry.filename: entry.external_attr >> 16 for entry in archive.infolist()}
        scripts = {name: archive.read(name).decode() for name in ("setup.sh", "run_autograder")}
    for name, script in scripts.items():
        assert stat.S_ISREG(modes[name]) and stat.S_IMODE(modes[name]) == 0o755, name
        assert script.startswith("#!/usr/bin/env bash\n")
    assert {"pyproject.toml", "tasks.toml", "tasks.hidden.toml", "tinynet/assign/harness.py",
            "tinynet/assign/default_tasks.toml"} <= set(modes)
    package = [name for name in modes if name.startswith("tinynet/")]
    assert not [name for name in package if name.endswith((".hidden.toml", ".pyc")) or "__pycache__" in name]
    assert all(stat.S_IMODE(modes[name]) == 0o644 for name in package)


def test_the_autograder_imports_the_bundled_tinynet(root):
    found = subprocess.run(["python3", "-c", "from tinynet.assign.grade import INSTRUCTOR_PACKAGE as p; print(p)"],
                           cwd=root, env=gradescope_environment(root), capture_output=True, text=True, check=True)
    assert found.stdout.strip() == str(root / "source" / "tinynet")


def test_a_missing_submission_folder_fails_clearly_and_writes_no_results(root):
    run, results = run_autograder(root)
    assert run.returncode != 0 and results is None
    assert f"{root / 'submission'} is not a folder" in run.stderr


@pytest.mark.parametrize("files", [{}, {"tinynet/ops/elementwise.py": "class Mul:\n    def backward(ctx, g:\n"}],
                         ids=["empty", "syntax-error"])
def test_an_empty_or_unparsable_submission_still_gets_results_scoring_nothing(root, files):
    (root / "submission").mkdir()
    for name, text in files.items():
        (root / "submission" / name).parent.mkdir(parents=True)
        (root / "submission" / name).write_text(text)
    run, results = run_autograder(root)
    assert run.returncode == 0, run.stderr
    assert scores_by_name(results) == expected_scores(done=())
    assert results["score"] == 0
    said = outputs(results)
    assert "tinynet/tensor.py is missing from the submission" in said["Task 1.1: the graph core: backward's order"]
    if files:
        assert "SyntaxError at tinynet/ops/elementwise.py:2" in said["Task 2.1: elementwise VJPs"]


def test_a_half_done_copy_scores_exactly_its_done_tasks_and_hidden_results_wait_for_publication(root):
    """Each task done passes every case (public and hidden), each left fails every case, its stub named; its
    hidden cases' test shows after publication. (With the next test, the baseline of
    tests/assign/test_hostile_submissions.py.)"""
    student_copy(root / "submission", done=HALF_DONE)
    run, results = run_autograder(root)
    assert run.returncode == 0, run.stderr
    assert scores_by_name(results) == expected_scores(HALF_DONE)
    assert_cases_pass_exactly_in_done_tasks(results, HALF_DONE)
    assert results["score"] == len(HALF_DONE)
    assert results["output"].startswith(f"{len(HALF_DONE)} of {len(TASKS)} tasks pass their public cases.")


@pytest.mark.slow
def test_the_other_half_done_copy_scores_exactly_its_done_tasks(root):
    """With the half-done copy above, each task scores nothing when left and full marks (public and hidden
    cases) when done, through the zip's own package and cases: what an untouched and a complete copy
    would show, in one grading fewer (a task's grading tree takes only that task's functions from the
    submission and stubs every other task's, so the other tasks' state cannot change its score)."""
    other_half = tuple(task_id for task_id in TASK_IDS if task_id not in HALF_DONE)
    student_copy(root / "submission", done=other_half)
    run, results = run_autograder(root)
    assert run.returncode == 0, run.stderr
    assert scores_by_name(results) == expected_scores(other_half)
    assert_cases_pass_exactly_in_done_tasks(results, other_half)
    assert results["score"] == len(other_half)


def test_without_hidden_cases_each_task_is_one_visible_test_worth_a_point():
    task = TASKS[1]
    results = gradescope_results([TaskScore(task, 3, 3, "", hidden_run=False)], seed=0, isolation="")
    assert results["tests"] == [{"name": f"Task {task.id}: {task.title}", "score": 1.0, "max_score": 1.0,
                                 "output": "3 of 3 public cases pass", "visibility": "visible"}]
    assert results["score"] == 1 and "Hidden" not in results["output"]


@pytest.mark.parametrize("passed, hidden_passed, diagnosis, said", [
    (5, 0, "a hidden case failed", ["5 of 5 public cases pass", "0 of 1 hidden cases pass\na hidden case failed"]),
    (2, 1, "Add (3,): wrong", ["1 of 5 public cases pass\nAdd (3,): wrong", "1 of 1 hidden cases pass"])],
    ids=["hidden-failed", "public-failed"])
def test_a_hidden_cases_failure_shows_only_in_the_test_shown_after_publication(passed, hidden_passed, diagnosis, said):
    score = TaskScore(TASKS[1], passed, 6, diagnosis, hidden_passed=hidden_passed, hidden_total=1)
    tests = gradescope_results([score], seed=0, isolation="")["tests"]
    assert [test["output"] for test in tests] == said
    assert [test["visibility"] for test in tests] == ["visible", "after_published"]


def test_an_upload_of_the_copys_folder_is_graded_inside_it(tmp_path):
    """Gradescope unpacks a zip as it is: a student who zipped the copy's folder uploads one folder."""
    (tmp_path / "upload" / "my-copy" / "tinynet").mkdir(parents=True)
    (tmp_path / "upload" / "__MACOSX").mkdir()
    assert unwrapped(tmp_path / "upload") == tmp_path / "upload" / "my-copy"
    assert unwrapped(tmp_path / "upload" / "my-copy") == tmp_path / "upload" / "my-copy"
    (tmp_path / "upload" / "notes.txt").write_text("and a file beside it")
    assert unwrapped(tmp_path / "upload") == tmp_path / "upload"
