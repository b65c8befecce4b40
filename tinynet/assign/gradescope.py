"""The assignment as a Gradescope autograder: the zip to upload, and the run Gradescope starts per submission.

    python -m tinynet.assign gradescope --out autograder.zip       # upload it as the assignment's autograder
    python -m tinynet.assign gradescope-run --submission DIR --results FILE   # what run_autograder runs

The zip holds, at its root (Gradescope unpacks it into /autograder/source):
- setup.sh, run once as root when Gradescope builds its image: installs python3 and pip (and util-linux,
  whose `unshare` cuts a grading child's network) when missing, pip-installs the bundled tinynet with its
  dependencies, then makes the source folder and the installed package readable by root only, so that a
  grading child, which runs as nobody, can read neither the hidden cases nor the instructor's functions
  even where the kernel has no Landlock;
- run_autograder, run per submission: grades <root>/submission and writes <root>/results/results.json,
  where <root> is $AUTOGRADER_ROOT, /autograder by default;
- tinynet/ (the instructor's package, without any *.hidden.toml) and a pyproject.toml that installs just it;
- tasks.toml, the task list, and tasks.hidden.toml, its hidden cases, when it has some.

Grading is `check`'s: the grader, not the student's code, writes results.json.
"""
import importlib.metadata
import json
import zipfile
from pathlib import Path

from .grade import INSTRUCTOR_PACKAGE
from .report import score_table, write_atomically
from .tasks import hidden_cases_path, load_hidden_cases, load_tasks

TASKS_NAME = "tasks.toml"
# Gradescope's containers may get a single CPU and under 1 GB of memory, while os.cpu_count() counts the
# host's cores: two grading children at a time fit a small container.
JOBS = 2

SETUP_SH = """#!/usr/bin/env bash
# Run once by Gradescope, as root, when it builds the autograder's image.
set -euo pipefail
cd "$(dirname "$0")"
missing=()
if ! command -v python3 >/dev/null || ! python3 -m pip --version >/dev/null 2>&1; then
    missing+=(python3 python3-pip)
fi
command -v unshare >/dev/null || missing+=(util-linux)
if [ ${#missing[@]} -gt 0 ]; then
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
fi
# Ubuntu 24.04 marks its Python as externally managed (PEP 668); this image holds nothing else to protect.
PIP_BREAK_SYSTEM_PACKAGES=1 python3 -m pip install --no-cache-dir .
# A grading child runs as nobody: keep the hidden cases and the instructor's functions out of its reach.
chmod -R go-rwx . "$(cd / && python3 -I -c 'import os, tinynet; print(os.path.dirname(tinynet.__file__))')"
"""

RUN_AUTOGRADER = f"""#!/usr/bin/env bash
# Run by Gradescope for each submission. AUTOGRADER_ROOT moves the root (Gradescope's is /autograder):
# <root>/source holds this zip's contents, <root>/submission the student's files, <root>/results the results.
set -euo pipefail
root="${{AUTOGRADER_ROOT:-/autograder}}"
exec python3 -m tinynet.assign gradescope-run --submission "$root/submission" \\
    --results "$root/results/results.json" --tasks "$root/source/{TASKS_NAME}" --jobs {JOBS}
"""

PYPROJECT = """# Written by python -m tinynet.assign gradescope: installs the tinynet package alone, for grading.
[build-system]
requires = ["setuptools>=64", "wheel"]
build-backend = "setuptools.build_meta"

[project]
name = "tinynet"
version = "{version}"
requires-python = ">=3.10"
dependencies = {dependencies}

[tool.setuptools.packages.find]
include = ["tinynet*"]

[tool.setuptools.package-data]
"*" = ["*.toml"]
"""


def engine_requirements() -> tuple:
    """(version, [requirement]) of the installed tinynet: what the engine itself needs, no extras."""
    try:
        requirements = importlib.metadata.requires("tinynet") or []
        version = importlib.metadata.version("tinynet")
    except importlib.metadata.PackageNotFoundError:
        raise ValueError("tinynet is not installed (pip install -e .): the autograder installs the dependencies "
                         "it is installed with") from None
    return version, [r for r in requirements if "extra ==" not in r]


def package_files(package: Path = INSTRUCTOR_PACKAGE) -> list:
    """The files of the package that the autograder ships: no caches, no hidden cases."""
    return sorted(p for p in package.rglob("*") if p.is_file() and "__pycache__" not in p.parts
                  and not p.name.endswith((".pyc", ".hidden.toml")))


def _add(archive: zipfile.ZipFile, name: str, data, executable=False):
    """Add data (str or bytes) to archive as name, mode 755 or 644 (Gradescope runs the scripts as they are)."""
    entry = zipfile.ZipInfo(name)
    entry.external_attr = (0o100755 if executable else 0o100644) << 16
    entry.compress_type = zipfile.ZIP_DEFLATED
    archive.writestr(entry, data)


def export_autograder(tasks_path, out_zip) -> Path:
    """Write the Gradescope autograder of the task list at tasks_path (and of its hidden cases, when
    <tasks>.hidden.toml exists) to out_zip. Returns out_zip. Both files are loaded first, so that a
    mistake in them shows here rather than on Gradescope."""
    tasks_path, out_zip = Path(tasks_path), Path(out_zip)
    tasks = load_tasks(tasks_path)
    hidden_path = hidden_cases_path(tasks_path)
    if hidden_path.exists():
        load_hidden_cases(hidden_path, tasks)
    version, requirements = engine_requirements()
    out_zip.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out_zip, "w") as archive:
        _add(archive, "setup.sh", SETUP_SH, executable=True)
        _add(archive, "run_autograder", RUN_AUTOGRADER, executable=True)
        _add(archive, "pyproject.toml", PYPROJECT.format(version=version, dependencies=json.dumps(requirements)))
        _add(archive, TASKS_NAME, tasks_path.read_bytes())
        if hidden_path.exists():
            _add(archive, hidden_cases_path(TASKS_NAME).name, hidden_path.read_bytes())
        for path in package_files():
            _add(archive, (Path(INSTRUCTOR_PACKAGE.name) / path.relative_to(INSTRUCTOR_PACKAGE)).as_posix(),
                 path.read_bytes())
    return out_zip


def gradescope_tests(score) -> list:
    """The Gradescope tests of one task's TaskScore: one for its public cases, shown at once, and one
    for its hidden cases (when it has some), shown when the instructor publishes the grades. The
    task's point is split evenly between them, and a test earns its share when all its cases pass.
    The diagnosis (of the first failing case, public ones coming first) goes to the first test with
    a failure, so a hidden case's never shows before publication."""
    parts = [(False, score.passed - score.hidden_passed, score.total - score.hidden_total),
             (True, score.hidden_passed, score.hidden_total)]
    parts = [part for part in parts if part[2]]
    points = 1 / len(parts)
    tests, explained = [], False
    for hidden, passed, total in parts:
        output = f"{passed} of {total} {'hidden' if hidden else 'public'} cases pass"
        if passed < total and not explained:
            output, explained = f"{output}\n{score.diagnosis}", True
        tests.append({"name": f"Task {score.task.id}: {score.task.title}" + (" (hidden cases)" if hidden else ""),
                      "score": points if passed == total else 0.0, "max_score": points, "output": output,
                      "visibility": "after_published" if hidden else "visible"})
    return tests


def gradescope_results(scores, seed, isolation: str) -> dict:
    """The results.json of one submission from its TaskScores, with the seed of the cases and the
    isolation in force (kept in extra_data, for the instructor).

    Each task is worth one point, earned only when every case passes: a task is one function (or a few
    that work together), and a VJP that passes the easy cases but not a broadcasting one is not done,
    so points per case would reward half-written code. A task with hidden cases splits its point
    between a test of its public cases and one of its hidden cases (gradescope_tests); Gradescope hides
    the total from students until the grades are published. A complete assignment scores the number of tasks.
    """
    tests = [test for score in scores for test in gradescope_tests(score)]
    public_done = sum(test["score"] == test["max_score"] for test in tests if test["visibility"] == "visible")
    summary = f"{public_done} of {len(scores)} tasks pass their public cases."
    if any(score.hidden_total for score in scores):
        summary += " Hidden cases are graded too: their results show once the grades are published."
    return {"score": sum(test["score"] for test in tests), "output": summary, "tests": tests,
            "extra_data": {"seed": seed, "isolation": isolation}}


def unwrapped(submission: Path) -> Path:
    """The folder of the student's copy in an upload: the upload itself, or its one sub-folder when the
    student zipped the copy's folder (Gradescope unpacks a zip as it is)."""
    entries = [p for p in submission.iterdir() if not p.name.startswith(".") and p.name != "__MACOSX"]
    if len(entries) == 1 and entries[0].is_dir() and not entries[0].is_symlink() \
            and not (submission / INSTRUCTOR_PACKAGE.name).exists():
        return entries[0]
    return submission


def run_for_gradescope(grader, submission: Path, results_path: Path, isolation: str) -> str:
    """Grade the submission folder (unwrapped), write its results.json to results_path (atomically:
    Gradescope never reads half a file) and return the score table, for the instructor's log."""
    scores = grader.grade(unwrapped(submission))
    results = gradescope_results(scores, grader.seed, isolation)
    write_atomically(results_path, json.dumps(results, indent=1) + "\n")
    return score_table(scores)
