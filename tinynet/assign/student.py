"""Write a student copy of the project: the tasks' functions stripped, the tests marked per task."""
import shutil
from pathlib import Path

from .stubs import strip_tasks
from .tasks import write_task_list

PROJECT_ROOT = Path(__file__).resolve().parents[2]
NOT_COPIED = shutil.ignore_patterns(".git", ".venv", "results", "__pycache__", ".hypothesis", ".pytest_cache",
                                    "*.egg-info", ".ruff_cache", "*.hidden.toml",
                                    "05_backprop_ninja.py")  # the tutorial works task 6.1's answer out
TASK_LIST = Path("tests") / "assignment_tasks.json"
CONFTEST_LINES = ("\n\n# Added by python -m tinynet.assign make: every test carries its assignment task's marker.\n"
                  "from tinynet.assign.plugin import (pytest_collection_modifyitems,  # noqa: E402,F401\n"
                  "                                   pytest_configure)\n")


def make_student_copy(tasks, out, root=PROJECT_ROOT) -> Path:
    """Copy root to out (which must not exist), strip every task's functions, mark the tests.

    Returns out. The task list goes to out/tests/assignment_tasks.json for the pytest plugin.
    """
    out = Path(out)
    if out.exists():
        raise FileExistsError(f"{out} exists: choose a new folder for the student copy")
    shutil.copytree(root, out, ignore=NOT_COPIED)
    by_file = {}
    for task in tasks:
        for target in task.strip:
            file, _, name = target.partition(":")
            by_file.setdefault(file, []).append((name, task.stub_message()))
    for file, targets in by_file.items():
        path = out / file
        if not path.exists():
            raise FileNotFoundError(f"a task strips {file}, which is not in {root}")
        path.write_text(strip_tasks(path.read_text(), targets))
    write_task_list(tasks, out / TASK_LIST)
    with open(out / "tests" / "conftest.py", "a") as conftest:
        conftest.write(CONFTEST_LINES)
    return out
