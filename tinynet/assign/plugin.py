"""The pytest plugin of a student copy: task markers on the tests, and each test's outcome for grading.

tests/conftest.py of the copy imports the two hooks below. TINYNET_ASSIGN_RESULTS, when set,
names a JSON file that receives {node id: [outcome, first line of the failure]} after the run.
"""
import json
import os
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
    if os.environ.get("TINYNET_ASSIGN_RESULTS"):
        config.pluginmanager.register(OutcomeRecorder(os.environ["TINYNET_ASSIGN_RESULTS"]), "tinynet-assign")


def pytest_collection_modifyitems(config, items):
    tasks = tasks_of(config)
    for item in items:
        for task in tasks:
            if task.grades(item.nodeid):
                item.add_marker(task.marker)


class OutcomeRecorder:
    """Collects each test's outcome and the message of its failure; writes them at the end."""

    def __init__(self, path):
        self.path, self.outcomes = path, {}

    def pytest_runtest_logreport(self, report):
        if report.failed or report.when == "call":
            message = ""
            if report.failed:
                crash = getattr(report.longrepr, "reprcrash", None)
                message = crash.message if crash is not None else str(report.longrepr)
            if report.nodeid not in self.outcomes or report.failed:
                self.outcomes[report.nodeid] = ["failed" if report.failed else report.outcome, message]

    def pytest_sessionfinish(self, session):
        with open(self.path, "w") as file:
            json.dump(self.outcomes, file)
