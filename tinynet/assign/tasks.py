"""Assignment tasks: what to strip from the engine and which tests grade it, read from a TOML file."""
import json
import sys
from dataclasses import dataclass
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

DEFAULT_TASKS = Path(__file__).with_name("default_tasks.toml")


@dataclass(frozen=True)
class Task:
    """One task: id "2.1", a title, the text a student reads, functions to strip, tests that grade it.

    strip: ["tinynet/ops/elementwise.py:Mul.backward", ...] (file, then the qualified name).
    tests: pytest node ids or node-id prefixes ("tests/ops/test_vjps.py::test_matmul_vjp").
    """

    id: str
    title: str
    text: str
    strip: tuple
    tests: tuple

    @property
    def marker(self) -> str:
        """The pytest marker of the task's tests: task2_1 for task 2.1."""
        return "task" + self.id.replace(".", "_")

    def stub_message(self) -> str:
        return f"Task {self.id} ({self.title}): {self.text}"

    def grades(self, nodeid: str) -> bool:
        """True when the test with this node id is one of the task's tests."""
        return any(nodeid == test or nodeid.startswith((test + "[", test + "::")) for test in self.tests)


def load_tasks(path=DEFAULT_TASKS) -> list:
    """The tasks of a TOML file with one [[task]] table per task (id, title, text, strip, tests)."""
    with open(path, "rb") as file:
        tables = tomllib.load(file).get("task", [])
    tasks = []
    for k, table in enumerate(tables):
        missing = {"id", "title", "text", "strip", "tests"} - set(table)
        if missing:
            raise ValueError(f"{path}: task {k + 1} has no {', '.join(sorted(missing))}")
        tasks.append(Task(str(table["id"]), table["title"], " ".join(table["text"].split()),
                          tuple(table["strip"]), tuple(table["tests"])))
    ids = [task.id for task in tasks]
    if len(set(ids)) != len(ids):
        raise ValueError(f"{path}: task ids repeat: {ids}")
    return tasks


def write_task_list(tasks, path):
    """Record tasks as JSON (in a student copy, for its pytest plugin and for grading)."""
    Path(path).write_text(json.dumps([vars(task) for task in tasks], indent=1) + "\n")


def read_task_list(path) -> list:
    """The tasks write_task_list recorded."""
    return [Task(**{**t, "strip": tuple(t["strip"]), "tests": tuple(t["tests"])})
            for t in json.loads(Path(path).read_text())]
