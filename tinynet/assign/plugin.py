"""The pytest plugin of a student copy: each test carries its task's marker (`pytest -m task2_1`).

tests/conftest.py of the copy imports the two hooks below. The tests are the student's own
check; grading never runs them (see tinynet.assign.grade).
"""
from pathlib import Path

from .student import TASK_LIST
from .tasks import read_task_list


def tasks_of(config) -> list:
    """The tasks of the student copy pytest runs in (none outside a student copy)."""
    path = Path(config.rootpath) / TASK_LIST
    return read_task_list(path) if path.exists() else []


def pytest_configure(config):
    for task in tasks_of(config):
        config.addinivalue_line("markers", f"{task.marker}: task {task.id}, {task.title}")


def pytest_collection_modifyitems(config, items):
    tasks = tasks_of(config)
    for item in items:
        for task in tasks:
            if task.has_test(item.nodeid):
                item.add_marker(task.marker)
