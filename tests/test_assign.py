"""Assignment mode: stubs keep signature and docstring; a student copy fails exactly its stripped tasks."""
import subprocess
import sys
from dataclasses import replace

import pytest

from tinynet.assign.grade import diagnosis, grade, score_table
from tinynet.assign.stubs import strip_functions
from tinynet.assign.student import make_student_copy
from tinynet.assign.tasks import load_tasks

SOURCE = '''class Mul:
    @staticmethod
    def backward(ctx, grad_out):
        """d(a*b)/da = b."""
        grad = grad_out * ctx.b
        return (grad,)


def helper(x):
    return x + 1
'''


def test_a_stub_keeps_signature_and_docstring_and_raises_the_task_text():
    stripped = strip_functions(SOURCE, ["Mul.backward", "helper"], "Task 2.1: write it")
    namespace = {}
    exec(stripped, namespace)
    assert namespace["Mul"].backward.__doc__ == "d(a*b)/da = b."
    with pytest.raises(NotImplementedError, match="Task 2.1: write it"):
        namespace["Mul"].backward(None, 1.0)
    with pytest.raises(NotImplementedError):
        namespace["helper"](1)
    with pytest.raises(KeyError, match="no function Mul.forward"):
        strip_functions(SOURCE, ["Mul.forward"], "x")


def test_the_diagnosis_of_a_wrong_vjp_is_gradchecks_located_op():
    message = ("GradcheckError: the gradient of input 0 is wrong at 3 of 3 checked elements, ...\n"
               "first op that disagrees: Mul (called at net.py:3 in f), input 0: backward is 2x the finite difference")
    assert diagnosis(message).startswith("first op that disagrees: Mul")
    assert diagnosis("NotImplementedError: Task 2.1 (x): y\nmore") == "NotImplementedError: Task 2.1 (x): y"


def test_every_default_task_names_functions_and_tests_that_exist():
    tasks = load_tasks()
    assert [t.id for t in tasks] == ["1.1", "2.1", "2.2", "3.1", "3.2", "4.1", "5.1", "5.2"]
    assert all(t.strip and t.tests for t in tasks)


@pytest.mark.slow
@pytest.mark.parametrize("stripped", [("1.1", "2.2", "3.2", "5.1"), ("2.1", "3.1", "4.1", "5.2")],
                         ids=["odd", "even"])
def test_a_student_copy_fails_exactly_its_stripped_tasks(stripped, tmp_path):
    """Two copies, each stripping half of the default tasks: together every task fails when stripped
    and passes when not (the solution passes it), and no task's tests depend on another task."""
    tasks = load_tasks()
    student = make_student_copy([t if t.id in stripped else replace(t, strip=()) for t in tasks], tmp_path / "s")
    scores = grade(student, tasks)
    print(score_table(scores))
    assert {s.task.id for s in scores if s.total and s.passed == 0} == set(stripped)
    assert {s.task.id for s in scores if s.complete} == {t.id for t in tasks} - set(stripped)
    assert all(s.diagnosis.startswith(f"NotImplementedError: Task {s.task.id}") for s in scores if not s.complete)


def test_the_command_line_refuses_an_existing_folder_and_a_non_student_folder(tmp_path):
    run = subprocess.run([sys.executable, "-m", "tinynet.assign", "make", "--out", str(tmp_path)],
                         capture_output=True, text=True)
    assert run.returncode == 1 and "exists: choose a new folder" in run.stderr
    run = subprocess.run([sys.executable, "-m", "tinynet.assign", "check", str(tmp_path)], capture_output=True,
                         text=True)
    assert run.returncode == 2 and "is not a student copy" in run.stderr
