"""Assignment tasks: what to strip from the engine, the cases that grade it, and the student's tests.

A task list is a TOML file with one [[task]] table per task. Cases kept out of the student copy
live beside it in <name>.hidden.toml, one [[case]] table each with the task's id (`task = "2.1"`)
and the same fields as the task's own cases; `make` never copies that file.
"""
import json
import sys
from dataclasses import dataclass
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

DEFAULT_TASKS = Path(__file__).with_name("default_tasks.toml")
FIELDS = ("id", "title", "text", "strip", "tests", "probe", "cases")


@dataclass(frozen=True)
class Task:
    """One task: id "2.1", a title, the text a student reads, functions to strip, how it is graded.

    strip: ["tinynet/ops/elementwise.py:Mul.backward", ...] (file, then the qualified name).
    tests: pytest node ids or node-id prefixes ("tests/ops/test_vjps.py::test_matmul_vjp") that the
    student runs in the copy (`pytest -m task3_1`); grading does not run them.
    probe, cases: the probe kind that grades it and its public cases (see tinynet.assign.probes).
    """

    id: str
    title: str
    text: str
    strip: tuple
    tests: tuple
    probe: str
    cases: tuple

    @property
    def marker(self) -> str:
        """The pytest marker of the task's tests: task2_1 for task 2.1."""
        return "task" + self.id.replace(".", "_")

    def stub_message(self) -> str:
        return f"Task {self.id} ({self.title}): {self.text}"

    def has_test(self, nodeid: str) -> bool:
        """True when the test with this node id is one of the tests the student runs for this task."""
        return any(nodeid == test or nodeid.startswith((test + "[", test + "::")) for test in self.tests)


def load_tasks(path=DEFAULT_TASKS) -> list:
    """The tasks of a TOML file with one [[task]] table per task (id, title, text, strip, tests, probe, cases)."""
    with open(path, "rb") as file:
        tables = tomllib.load(file).get("task", [])
    tasks = []
    for k, table in enumerate(tables):
        missing = set(FIELDS) - set(table)
        if missing:
            raise ValueError(f"{path}: task {k + 1} has no {', '.join(sorted(missing))}")
        tasks.append(Task(str(table["id"]), table["title"], " ".join(table["text"].split()),
                          tuple(table["strip"]), tuple(table["tests"]), table["probe"], tuple(table["cases"])))
    ids = [task.id for task in tasks]
    if len(set(ids)) != len(ids):
        raise ValueError(f"{path}: task ids repeat: {ids}")
    return tasks


def hidden_cases_path(tasks_path) -> Path:
    """Where the hidden cases of a task list live: default_tasks.toml -> default_tasks.hidden.toml."""
    tasks_path = Path(tasks_path)
    return tasks_path.with_name(tasks_path.stem + ".hidden.toml")


def load_hidden_cases(path, tasks) -> dict:
    """{task id: [case spec]} from a file of [[case]] tables, each naming its task (`task = "2.1"`)."""
    with open(path, "rb") as file:
        tables = tomllib.load(file).get("case", [])
    ids = {task.id for task in tasks}
    hidden = {task_id: [] for task_id in ids}
    for k, table in enumerate(tables):
        task_id = str(table.pop("task", ""))
        if task_id not in ids:
            raise ValueError(f"{path}: case {k + 1} names task {task_id!r}, which the task list does not have")
        hidden[task_id].append(table)
    return hidden


def write_task_list(tasks, path):
    """Record tasks as JSON (in a student copy, for its pytest plugin and for grading)."""
    Path(path).write_text(json.dumps([vars(task) for task in tasks], indent=1) + "\n")


def read_task_list(path) -> list:
    """The tasks write_task_list recorded."""
    return [Task(**{**t, "strip": tuple(t["strip"]), "tests": tuple(t["tests"]), "cases": tuple(t["cases"])})
            for t in json.loads(Path(path).read_text())]
