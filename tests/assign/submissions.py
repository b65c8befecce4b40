"""Submissions to grade in the tests: student copies with chosen tasks done (by the instructor's own
functions) and the rest left as stubs, and a grader over a subset of the default tasks."""
from dataclasses import replace
from pathlib import Path

from tinynet.assign.grade import Grader
from tinynet.assign.sandbox import Limits
from tinynet.assign.student import make_student_copy
from tinynet.assign.tasks import DEFAULT_TASKS, hidden_cases_path, load_hidden_cases, load_tasks

TASKS = load_tasks()
TASK_IDS = [task.id for task in TASKS]


def student_copy(out: Path, done=()) -> Path:
    """A student copy at out in which the tasks whose ids are in done keep the instructor's functions."""
    return make_student_copy([replace(t, strip=()) if t.id in done else t for t in TASKS], out)


def grader(task_ids=TASK_IDS, hidden=True, seconds=60.0, memory_gib=1.0, jobs=None) -> Grader:
    """A Grader of the default tasks with these ids (hidden cases included unless hidden=False), seed 0."""
    hidden_cases = load_hidden_cases(hidden_cases_path(DEFAULT_TASKS), TASKS) if hidden else None
    return Grader(TASKS, hidden_cases, Limits(seconds=seconds, memory_bytes=int(memory_gib * 2**30)), seed=0,
                  jobs=jobs, only=task_ids)


def complete_tasks(scores) -> set:
    """The ids of the tasks a list of TaskScores has complete."""
    return {s.task.id for s in scores if s.complete}
