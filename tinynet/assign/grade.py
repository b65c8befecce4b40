"""Grade submissions: each task in its own confined process, judged by value on the grader's side.

For each task: copy the instructor's tinynet, splice in the submission's functions for that task
only (tinynet.assign.splice), run its cases in a child (harness.py, confined by sandbox.py), and
compare the arrays the child returns with the instructor's functions' on the same inputs
(probes.judge). The submission's own tests, task list, conftest and other modules are never
read; a crash, hang or missing function costs its task only.
"""
import json
import os
import secrets
import signal
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import io
from .probes import expected_values, judge, make_case
from .sandbox import Limits, landlock_abi, run_confined
from .splice import SubmissionProblem, grading_tree
from .stubs import parsing

INSTRUCTOR_PACKAGE = Path(__file__).resolve().parents[1]


@dataclass
class TaskScore:
    """How one task did: cases passed of those run (hidden ones included, and counted apart), whether
    the hidden cases were available, and the one-line diagnosis of its first failure."""

    task: object
    passed: int
    total: int
    diagnosis: str
    hidden_run: bool = True
    hidden_passed: int = 0
    hidden_total: int = 0

    @property
    def complete(self) -> bool:
        return self.total > 0 and self.passed == self.total

    @property
    def status(self) -> str:
        if self.complete:
            return "done" if self.hidden_run else "public tests passed"
        return "todo" if self.passed == 0 else "partial"


def task_cases(tasks, hidden, seed) -> dict:
    """{task id: [Case]}: each task's public cases, then its hidden ones (hidden: {task id: [spec]} or
    None), with arrays drawn from one generator seeded by seed."""
    rng = np.random.default_rng(seed)
    return {task.id: [make_case(task.probe, spec, rng) for spec in task.cases]
            + [make_case(task.probe, spec, rng, hidden=True) for spec in (hidden or {}).get(task.id, [])]
            for task in tasks}


def references(cases_by_task) -> dict:
    """{task id: [the instructor's arrays for each case]}, computed in this process."""
    found = {}
    for task_id, cases in cases_by_task.items():
        found[task_id] = []
        for case in cases:
            try:
                found[task_id].append(expected_values(case))
            except Exception as error:
                raise ValueError(f"task {task_id}, case {case.name!r}: the instructor's code fails on it: "
                                 f"{type(error).__name__}: {error}") from error
    return found


class Grader:
    """Grades submissions against one task list; the cases and their reference arrays are made once.

    hidden: {task id: [case spec]} of cases kept out of the student copy, or None when they are not
    available (a student checking their own copy): complete tasks then say "public tests passed".
    only: the ids of the tasks to grade (default: all); the others' functions are still stubbed out
    of every grading tree.
    """

    def __init__(self, tasks, hidden=None, limits=None, seed=None, jobs=None, only=None):
        unknown = set(only or ()) - {task.id for task in tasks}
        if unknown:
            raise ValueError(f"no task {', '.join(sorted(unknown))} in the task list")
        self.all_tasks, self.limits, self.hidden_run = list(tasks), limits or Limits(), hidden is not None
        self.tasks = [task for task in self.all_tasks if only is None or task.id in only]
        self.seed = secrets.randbits(63) if seed is None else seed
        self.cases = task_cases(self.tasks, hidden, self.seed)
        self.expected = references(self.cases)
        self.jobs = jobs or os.cpu_count() or 1

    def grade(self, submission) -> list:
        """One TaskScore per task for the submission folder."""
        return self.grade_many([submission])[0]

    def grade_many(self, submissions, progress=None) -> list:
        """[[TaskScore per task] per submission], the tasks of all submissions run `jobs` at a time;
        progress(done, total) is called after each task."""
        jobs = [(s, task) for s in submissions for task in self.tasks]
        done = 0

        def one(job):
            nonlocal done
            score = self.grade_task(Path(job[0]), job[1])
            done += 1
            if progress:
                progress(done, len(jobs))
            return score

        with ThreadPoolExecutor(self.jobs) as pool:
            scores = list(pool.map(one, jobs))
        n = len(self.tasks)
        return [scores[k * n:(k + 1) * n] for k in range(len(submissions))]

    def grade_task(self, submission: Path, task) -> TaskScore:
        """The task's public and hidden cases, each group in a child of its own: nothing a public case's
        diagnosis says can come from a hidden case's inputs (hidden failures are not described)."""
        cases = list(zip(self.cases[task.id], self.expected[task.id]))
        public = self._failures(submission, task, [(c, want) for c, want in cases if not c.hidden])
        hidden_total = sum(c.hidden for c, _ in cases)
        hidden = self._failures(submission, task, [(c, want) for c, want in cases if c.hidden]) if hidden_total else []
        failures = public + ["a hidden case failed"] * len(hidden)
        return TaskScore(task, len(cases) - len(failures), len(cases), failures[0] if failures else "",
                         self.hidden_run, hidden_total - len(hidden), hidden_total)

    def _failures(self, submission: Path, task, cases) -> list:
        """One line for each of cases ((Case, reference arrays) pairs) that the submission fails."""
        stubs = [(target, other.stub_message()) for other in self.all_tasks if other is not task
                 for target in other.strip]
        with tempfile.TemporaryDirectory(prefix="tinynet-grade-") as folder:
            task_dir = Path(folder)
            try:
                grading_tree(INSTRUCTOR_PACKAGE, submission.resolve(), task.strip, task_dir / "tree", stubs)
            except SubmissionProblem as problem:
                return [str(problem)] * len(cases)
            _write_inputs(task_dir, [case for case, _ in cases], self.limits)
            harness = task_dir / "tree" / INSTRUCTOR_PACKAGE.name / "assign" / "harness.py"
            outcome = run_confined([sys.executable, "-I", "-B", str(harness), str(task_dir)], task_dir / "scratch",
                                   self.limits)
            if outcome.timed_out:
                return [f"timed out after {self.limits.seconds:g} s"] * len(cases)
            got, errors = _read_outputs(outcome.output, task_dir, self.limits)
        if got is None:
            return [_ended_without_values(outcome.returncode, self.limits)] * len(cases)
        failures = []
        for k, (case, want) in enumerate(cases):
            mine = {name.partition("/")[2]: a for name, a in got.items() if name.partition("/")[0] == str(k)}
            problem = _case_problem(task, errors.get(str(k)), self.limits) or judge(case, mine, want)
            if problem:
                failures.append(f"{case.name}: {problem}")
        return failures


def _case_problem(task, error, limits):
    """What the exception a case raised in the child says, in one line (None when it raised none)."""
    if error is None:
        return None
    if error.startswith(f"NotImplementedError: Task {task.id} "):
        return f"NotImplementedError: Task {task.id} is not done (its stub still raises)"
    return _child_message(error, limits)


def _write_inputs(task_dir, cases, limits):
    """cases.json and inputs.npz for the harness, and its scratch folder; all readable by an unprivileged child."""
    (task_dir / "cases.json").write_text(json.dumps({
        "limits": vars(limits), "cases": [{"kind": c.kind, "name": c.name, "spec": c.spec} for c in cases]}))
    np.savez(task_dir / "inputs.npz", **{f"{k}/{name}": a for k, c in enumerate(cases) for name, a in c.arrays.items()})
    (task_dir / "scratch").mkdir()
    for folder, _, files in os.walk(task_dir):
        os.chmod(folder, 0o755)
        for name in files:
            os.chmod(os.path.join(folder, name), 0o644)


def _read_outputs(output, task_dir, limits):
    """(arrays by "case/name", {case: error message}) from the .npz the child wrote to stdout, or
    (None, None) when there is none, or it is not plain arrays (read with tinynet.io's hardened
    loader, from a file the child cannot reach) and a JSON object of strings."""
    if not output:
        return None, None
    received = task_dir / "received.npz"
    received.write_bytes(output)
    try:
        with parsing:  # NumPy reads each array's header with ast.literal_eval
            arrays = io.load(received, max_bytes=limits.output_bytes)
        errors = json.loads(arrays.pop("errors.json").tobytes())
    except (ValueError, KeyError, RecursionError, UnicodeDecodeError):
        return None, None
    if not isinstance(errors, dict) or not all(isinstance(v, str) for v in errors.values()):
        return None, None
    return arrays, errors


def _ended_without_values(returncode, limits) -> str:
    if returncode < 0 or returncode >= 128:
        number = -returncode if returncode < 0 else returncode - 128
        name = signal.Signals(number).name if number in set(signal.Signals) else f"signal {number}"
        if number in (signal.SIGXCPU, signal.SIGKILL):
            return f"killed ({name}): more than {limits.seconds:g} s of CPU time, or out of memory"
        return f"crashed ({name}) before returning values"
    return f"the task's process ended (exit code {returncode}) without returning values"


def _child_message(message: str, limits) -> str:
    """The exception a case raised in the child, as the child described it. Without Landlock the child
    could have read the grader's files into it, so then only the exception's type is kept."""
    if message.startswith("MemoryError"):
        return f"{message} (the memory limit is {limits.memory_bytes / 2**30:g} GiB)"
    if not landlock_abi():
        return message.partition(":")[0] + " (message withheld: no file confinement on this machine)"
    return message[:300]
