"""Grade a student copy: run each task's tests once, and tabulate passed tests and diagnoses per task."""
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path


@dataclass
class TaskScore:
    """How one task did: tests passed of those run, and the diagnosis of its first failure."""

    task: object
    passed: int
    total: int
    diagnosis: str

    @property
    def complete(self) -> bool:
        return self.total > 0 and self.passed == self.total


def grade(student, tasks) -> list:
    """Run every task's tests in the student copy (its own tinynet first on the path); one TaskScore per task."""
    student = Path(student).resolve()
    with tempfile.TemporaryDirectory() as scratch:
        results = Path(scratch) / "outcomes.json"
        env = {**os.environ, "TINYNET_ASSIGN_RESULTS": str(results), "PYTHONPATH": str(student)}
        tests = sorted({test for task in tasks for test in task.tests})
        subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests], cwd=student,
                       env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not results.exists():
            raise RuntimeError(f"pytest did not run in {student}: run `python -m pytest {tests[0]}` there to see why")
        outcomes = json.loads(results.read_text())
    scores = []
    for task in tasks:
        mine = {nodeid: outcome for nodeid, outcome in outcomes.items() if task.grades(nodeid)}
        failures = [message for outcome, message in mine.values() if outcome == "failed"]
        passed = sum(outcome == "passed" for outcome, _ in mine.values())
        scores.append(TaskScore(task, passed, len(mine), diagnosis(failures[0]) if failures else ""))
    return scores


def diagnosis(message: str) -> str:
    """The useful line of a failure: gradcheck's 'first op that disagrees', else the first line."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    located = [line for line in lines if line.startswith("first op that disagrees")]
    return (located or lines or [""])[0][:160]


def score_table(scores) -> str:
    """The table an autograder posts: one row per task, and the total."""
    rows = [f"{'task':<6} {'title':<34} {'tests':>9}  {'status':<8} diagnosis"]
    for s in scores:
        status = "done" if s.complete else "todo" if s.passed == 0 else "partial"
        rows.append(f"{s.task.id:<6} {s.task.title[:34]:<34} {s.passed:>4}/{s.total:<4}  {status:<8} {s.diagnosis}")
    done = sum(s.complete for s in scores)
    rows.append(f"{done} of {len(scores)} tasks complete")
    return "\n".join(rows)
