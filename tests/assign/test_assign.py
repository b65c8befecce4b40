"""Assignment mode: stubs, splicing a submission's functions, judging values, the score table and the
command line. (tests/assign/test_hostile_submissions.py tries to cheat and to break the grader.)"""
import ast
import importlib.util
import json
import os
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from submissions import TASK_IDS, TASKS, complete_tasks, grader, student_copy
from tinynet.assign.bytecode import bytecode_path
from tinynet.assign.probes import expected_values, judge, make_case, run_case
from tinynet.assign.splice import SubmissionProblem, grading_tree, splice, student_functions
from tinynet.assign.stubs import function_nodes, strip_functions
from tinynet.assign.student import PROJECT_ROOT
from tinynet.backprop_ninja import GRADIENT_NAMES

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


def test_every_default_task_names_functions_and_tests_that_exist_and_cases_the_solution_passes():
    assert TASK_IDS == ["1.1", "2.1", "2.2", "3.1", "3.2", "4.1", "5.1", "5.2", "6.1"]
    for task in TASKS:
        for target in task.strip:
            file, _, name = target.partition(":")
            assert name in function_nodes(ast.parse((PROJECT_ROOT / file).read_text())), target
        for test in task.tests:
            assert (PROJECT_ROOT / test.partition("::")[0]).exists(), test
        assert task.cases, task.id
    rng = np.random.default_rng(0)
    for task in TASKS:
        for spec in task.cases:
            case = make_case(task.probe, spec, rng)
            assert judge(case, run_case(case), run_case(case)) is None, case.name


def write_file(root, relative, text):
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_only_the_named_functions_are_taken_with_their_decorators_and_moved_to_the_right_indentation(tmp_path):
    write_file(tmp_path, "m.py", "import os\nos.system('x')\n\n\nclass Mul:\n  @staticmethod\n  def backward(ctx, g):\n"
                                 "    return (g * 2,)\n\n\ndef elsewhere():\n    pass\n")
    taken = student_functions(tmp_path, "m.py", ["Mul.backward"])
    assert taken == {"Mul.backward": ("  @staticmethod\n  def backward(ctx, g):\n    return (g * 2,)\n", 2)}
    spliced = splice(SOURCE, taken)
    namespace = {}
    exec(spliced, namespace)
    assert namespace["Mul"].backward(None, 3) == (6,) and namespace["helper"](1) == 2
    assert "os.system" not in spliced and "elsewhere" not in spliced


@pytest.mark.parametrize("setup, message", [
    (lambda root: None, "m.py is missing from the submission"),
    (lambda root: write_file(root, "m.py", "def f(:\n"), "SyntaxError at m.py:1"),
    (lambda root: write_file(root, "m.py", "class Mul:\n    pass\n"), "m.py has no function Mul.backward"),
    (lambda root: write_file(root, "m.py", "x = '\0'\n"), "m.py cannot be parsed"),
    (lambda root: write_file(root, "m.py", "x = " + "-" * 200_000 + "1\n"), "m.py cannot be parsed"),
    (lambda root: (root / "m.py").write_bytes(b"\xff\xfe"), "m.py is not UTF-8 text"),
    (lambda root: (root / "m.py").symlink_to(PROJECT_ROOT / "tinynet" / "ops" / "elementwise.py"),
     "m.py is not a plain file of the submission (a symlink?)"),
    (lambda root: (root / "m.py").mkdir(), "m.py is not a regular file"),
    (lambda root: write_file(root, "m.py", "#" * (1 << 21)),
     "m.py is 2097152 bytes, over the 1048576 a source may have"),
], ids=["missing", "syntax", "no-function", "null-byte", "deep-nesting", "not-utf8", "symlink", "folder", "huge"])
def test_a_submission_file_that_cannot_be_used_is_refused_in_one_line(tmp_path, setup, message):
    setup(tmp_path)
    with pytest.raises(SubmissionProblem, match="^" + re.escape(message)):
        student_functions(tmp_path, "m.py", ["Mul.backward"])


def test_a_folder_on_the_way_that_is_a_symlink_is_not_followed(tmp_path):
    write_file(tmp_path / "elsewhere", "m.py", SOURCE)
    (tmp_path / "submission").mkdir()
    (tmp_path / "submission" / "pkg").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(SubmissionProblem, match="a symlink"):
        student_functions(tmp_path / "submission", "pkg/m.py", ["Mul.backward"])


def test_the_grading_tree_is_the_instructors_package_with_the_submissions_functions(tmp_path):
    copy = student_copy(tmp_path / "copy")
    task = TASKS[TASK_IDS.index("3.1")]
    tree = grading_tree(PROJECT_ROOT / "tinynet", copy, task.strip, tmp_path / "tree")
    linear = (tree / "tinynet" / "ops" / "linear.py").read_text()
    assert "raise NotImplementedError('Task 3.1" in linear
    assert (tree / "tinynet" / "ops" / "elementwise.py").read_text() == \
        (PROJECT_ROOT / "tinynet" / "ops" / "elementwise.py").read_text()
    assert not (tree / "tests").exists()


def test_a_grading_tree_holds_bytecode_for_the_files_it_copies_unchanged_and_for_no_other(tmp_path):
    """A .pyc beside a file the grading rewrites (the task's functions spliced in, the other tasks' stubbed
    out) could run the instructor's functions instead of the student's, a free score: only the files copied as
    they are have one, each checked against its source's hash at import (not its mtime and size)."""
    task = TASKS[TASK_IDS.index("3.1")]
    stubs = [(target, other.stub_message()) for other in TASKS if other is not task for target in other.strip]
    tree = grading_tree(PROJECT_ROOT / "tinynet", student_copy(tmp_path / "copy"), task.strip, tmp_path / "tree",
                        stubs)
    sources = [path.relative_to(tree).as_posix() for path in tree.rglob("*.py")]
    unchanged = {name for name in sources if (tree / name).read_bytes() == (PROJECT_ROOT / name).read_bytes()}
    rewritten = {target.partition(":")[0] for target in [*task.strip, *(target for target, _ in stubs)]}
    assert rewritten and not rewritten & unchanged and "tinynet/functional.py" in unchanged
    assert set(tree.rglob("*.pyc")) == {bytecode_path(tree / name) for name in unchanged}
    for name in unchanged:
        pyc = bytecode_path(tree / name).read_bytes()
        assert pyc[4:8] == (0b11).to_bytes(4, "little"), name  # hash-based, checked
        assert pyc[8:16] == importlib.util.source_hash((tree / name).read_bytes()), name


def vjp_case(op="elementwise.Mul", shapes=((2, 3), (2, 3)), **spec):
    return make_case("vjp", {"op": op, "shapes": [list(s) for s in shapes], **spec}, np.random.default_rng(1))


@pytest.mark.parametrize("spoil, message", [
    (lambda got: got.update(grad0=got["grad0"] * 2), "grad0 is wrong at 6 of 6 elements"),
    (lambda got: got.update(grad0=got["grad0"].T), "grad0 has shape (3, 2), expected (2, 3)"),
    (lambda got: got.update(grad0=got["grad0"].astype(np.float32)), "grad0 is float32, expected float64"),
    (lambda got: got.pop("grad1"), "backward returned None for input 1"),
    (lambda got: got.update(grad_out_after=got["grad_out_after"] + 1), "backward wrote into grad_out"),
], ids=["factor", "shape", "dtype", "none", "wrote-grad-out"])
def test_the_judge_says_what_is_wrong_with_a_vjps_values(spoil, message):
    case = vjp_case()
    expected = run_case(case)
    got = {name: a.copy() for name, a in expected.items()}
    spoil(got)
    assert message in judge(case, got, expected)


def test_a_wrong_vjp_is_also_compared_with_finite_differences():
    case = vjp_case()
    expected = run_case(case)
    verdict = judge(case, {**expected, "grad1": -expected["grad1"]}, expected)
    assert "grad1 is wrong" in verdict and "finite differences of input 1" in verdict


def test_a_vjp_may_return_the_outputs_broadcast_shape_like_the_graph_core_allows():
    case = vjp_case("elementwise.Add", ((2, 3), (3,)))
    expected = run_case(case)
    assert expected["grad1"].shape == (2, 3) and judge(case, dict(expected), expected) is None
    assert "wrong" in judge(case, {**expected, "grad1": np.ones((2, 3))}, expected)


@pytest.mark.parametrize("order, message", [
    (lambda good: good, None),
    (lambda good: good[::-1], "listed before its parent"),
    (lambda good: np.concatenate([good, good[:1]]), "listed twice"),
    (lambda good: good[1:], "missing"),
    (lambda good: np.array([], dtype=np.int64), "missing"),
])
def test_the_judge_of_backwards_order_accepts_any_topological_order_and_nothing_else(order, message):
    case = make_case("graph", {"test": "dag", "leaves": 3, "nodes": 15}, np.random.default_rng(0))
    good = run_case(case)["order"]
    verdict = judge(case, {"order": order(good)}, {})
    assert verdict is None if message is None else message in verdict


def test_the_judge_of_a_kernel_compares_integers_exactly():
    case = make_case("kernel", {"kernel": "max_pool", "x": [2, 4, 4], "size": [2, 2]}, np.random.default_rng(0))
    expected = run_case(case)
    argmax = expected["argmax"].copy()
    argmax[0, 0, 0] += 1
    assert "argmax is wrong at 1 of 8" in judge(case, {**expected, "argmax": argmax}, expected)


def test_a_case_spec_with_unknown_settings_is_refused_naming_them():
    with pytest.raises(ValueError, match="probe = 'pytest'"):
        make_case("pytest", {}, np.random.default_rng(0))
    with pytest.raises(ValueError, match="values = 'huge'"):
        vjp_case(values="huge")
    with pytest.raises(ValueError, match="activation='sigmoid': use one of tanh, relu"):
        make_case("network", {"batch": 2, "sizes": [3, 2, 2], "activation": "sigmoid"}, np.random.default_rng(0))


def test_without_hidden_cases_a_complete_task_says_public_tests_passed(tmp_path):
    scores = grader(["3.1"], hidden=False).grade(student_copy(tmp_path / "s", done=["3.1"]))
    assert [(s.status, s.hidden_total) for s in scores] == [("public tests passed", 0)]


def run_assign(*arguments, cwd=None):
    return subprocess.run([sys.executable, "-m", "tinynet.assign", *map(str, arguments)], capture_output=True,
                          text=True, cwd=cwd)


def test_the_command_line_refuses_an_existing_folder_and_a_missing_submission(tmp_path):
    run = run_assign("make", "--out", tmp_path)
    assert run.returncode == 1 and "exists: choose a new folder" in run.stderr
    run = run_assign("check", tmp_path / "nothing")
    assert run.returncode == 2 and "is not a folder" in run.stderr


@pytest.mark.slow
def test_check_prints_the_table_and_fails_unless_every_task_is_complete(tmp_path):
    run_assign("make", "--out", tmp_path / "student")
    # Two tasks show the table and the exit code (every task's grading: tests/assign/test_gradescope.py).
    run = run_assign("check", tmp_path / "student", "--seed", 3, "--task", "1.1", "--task", "3.1")
    lines = run.stdout.strip().splitlines()
    assert run.returncode == 1 and lines[-1] == "0 of 2 tasks complete" and len(lines) == 4
    assert [line.split()[0] for line in lines[1:3]] == ["1.1", "3.1"]
    assert "isolation:" in run.stderr


@pytest.mark.slow
def test_check_class_writes_scores_and_feedback_for_every_student(tmp_path):
    student_copy(tmp_path / "class" / "ada", done=["3.1"])
    student_copy(tmp_path / "class" / "bob")
    (tmp_path / "class" / "notes.txt").write_text("not a submission")
    run = run_assign("check-class", tmp_path / "class", "--out", tmp_path / "grades", "--seed", 5,
                     "--task", "1.1", "--task", "3.1")
    assert run.returncode == 0, run.stderr
    rows = (tmp_path / "grades" / "scores.csv").read_text().splitlines()
    assert rows == ["student,task 1.1,task 3.1,tasks complete,tasks", "ada,0/8,7/7,1,2", "bob,0/8,0/7,0,2"]
    scores = json.loads((tmp_path / "grades" / "scores.json").read_text())
    assert scores["seed"] == 5 and set(scores["students"]) == {"ada", "bob"}
    assert "1 of 2 tasks complete" in (tmp_path / "grades" / "feedback" / "ada.txt").read_text()


@pytest.mark.slow
def test_in_a_student_copy_each_test_carries_its_tasks_marker(tmp_path):
    copy = student_copy(tmp_path / "s")
    run = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-m", "task3_1", "-p",
                          "no:cacheprovider", "tests/ops/test_vjps.py"], cwd=copy, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(copy)})
    assert run.returncode == 0, run.stdout + run.stderr
    assert [line for line in run.stdout.splitlines() if "::" in line] == ["tests/ops/test_vjps.py::test_matmul_vjp",
                                                                          "tests/ops/test_vjps.py::test_linear_vjp"]
    assert not (copy / "tutorials" / "05_backprop_ninja.py").exists()  # it works task 6.1's answer out



def network_case(**spec):
    """A case of task 6.1's probe: a 10-5-3 network on 6 images, with spec's settings."""
    return make_case("network", {"batch": 6, "sizes": [10, 5, 3], **spec}, np.random.default_rng(2))


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_the_reference_manual_backward_passes_against_tinynets_backward(activation):
    case = network_case(activation=activation)
    assert judge(case, run_case(case), expected_values(case)) is None
    assert set(expected_values(case)) == set(GRADIENT_NAMES)


@pytest.mark.parametrize("spoil, message", [
    (lambda got: got.update(W1=got["W1"] * 2), "W1 WRONG (max |diff| "),
    (lambda got: got.update(b0=got["b0"] * 2), "2.0x the framework's)"),
    (lambda got: got.update(W0=got["W0"].T), "W0 WRONG SHAPE (manual has shape (5, 10), the framework's (10, 5)"),
    (lambda got: got.pop("logits"), "logits MISSING (no manual gradient given)"),
], ids=["factor", "factor-named", "transposed", "missing"])
def test_the_judge_of_a_manual_backward_names_the_wrong_tensor(spoil, message):
    case = network_case()
    got = run_case(case)
    spoil(got)
    verdict = judge(case, got, expected_values(case))
    assert message in verdict and ";" not in verdict  # the one spoiled tensor, and no other


def write_manual_backward(copy, body):
    """Replace the body of manual_backward in a student copy by body (lines at the function's indentation)."""
    path = copy / "tinynet" / "backprop_ninja.py"
    source = path.read_text()
    start = source.index("def manual_backward")
    end = source.index("\n\n\n", start)
    signature = source[start:source.index("\n", start) + 1]
    path.write_text(source[:start] + signature + textwrap.indent(textwrap.dedent(body), "    ") + source[end:])


def test_the_manual_backward_task_is_graded_by_value_and_a_factor_of_two_is_named(tmp_path):
    copy = student_copy(tmp_path / "s", done=["6.1"])
    assert complete_tasks(grader(["6.1"]).grade(copy)) == {"6.1"}
    path = copy / "tinynet" / "backprop_ninja.py"
    path.write_text(path.read_text().replace('"W1": values["hidden"].T @ grad_logits',
                                             '"W1": 2 * values["hidden"].T @ grad_logits'))
    (score,) = grader(["6.1"]).grade(copy)
    assert (score.passed, score.hidden_passed) == (0, 0)
    assert re.search(r"^manual backward of 12-6-4 tanh, batch of 8: W1 WRONG \(max \|diff\| [0-9.e-]+, "
                     r"2.0x the framework's\)$", score.diagnosis), score.diagnosis


def test_a_manual_backward_that_calls_tinynets_backward_meets_the_other_tasks_stubs(tmp_path):
    copy = student_copy(tmp_path / "s")
    write_manual_backward(copy, "return framework_gradients(params, x, labels, activation)\n")
    (score,) = grader(["6.1"], hidden=False).grade(copy)
    assert score.passed == 0 and "NotImplementedError: Task " in score.diagnosis, score.diagnosis
