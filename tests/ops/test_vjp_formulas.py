"""Each op's vjp_formulas (what its backward sends each input, in words): present for the course's ops, named after
forward's inputs, and, for the ops whose backward an assignment task strips, saying nothing the student copy's
class docstring and task text do not already say."""
import importlib
import inspect
import re

import pytest

from tinynet.assign.tasks import load_tasks
from tinynet.ops import activation, conv, elementwise, linear, loss, norm, pool, reduce, shape

COURSE_OPS = [elementwise.Add, elementwise.Mul, elementwise.Div, elementwise.Neg, elementwise.Pow, elementwise.Exp,
              elementwise.Log, elementwise.Abs, elementwise.Where, linear.MatMul, linear.Linear, activation.ReLU,
              activation.Tanh, activation.Sigmoid, reduce.Sum, reduce.Max, shape.Reshape, shape.Transpose,
              shape.GetItem, shape.Expand, shape.Pad, loss.LogSoftmax, loss.CrossEntropy, conv.Conv2d,
              pool.MaxPool2d, pool.AvgPool2d, norm.LocalResponseNorm]
# Words a formula may use that no docstring needs to say: g (grad_out) and how the pieces are joined.
NOTATION = {"g", "at", "to", "else", "elsewhere", "copied"}


@pytest.mark.parametrize("op", COURSE_OPS, ids=lambda op: op.__name__)
def test_each_course_op_names_a_formula_for_its_leading_inputs_of_forward(op):
    inputs = list(inspect.signature(op.forward).parameters)[1:]  # after ctx
    assert op.vjp_formulas and list(op.vjp_formulas) == inputs[:len(op.vjp_formulas)]
    assert all(formula.strip() for formula in op.vjp_formulas.values())


def stripped_ops():
    """(op class, task) for every op whose backward a default assignment task strips."""
    found = []
    for task in load_tasks():
        for target in task.strip:
            file, _, name = target.partition(":")
            if file.startswith("tinynet/ops/") and name.endswith(".backward"):
                module = importlib.import_module(file.removesuffix(".py").replace("/", "."))
                found.append((getattr(module, name.removesuffix(".backward")), task))
    return found


def words(text) -> set:
    """The identifiers in text ('g · (1 − tanh(x)²)' -> {'g', 'tanh', 'x'})."""
    return set(re.findall(r"[A-Za-z_]+", text))


def test_a_stripped_ops_formulas_use_only_words_its_docstring_or_task_text_already_says():
    """The strip replaces backward's body and keeps the class (its docstring and vjp_formulas): a formula that
    named something the docstring does not (softmax where the docstring only says 'its derivative') would
    give the student more than the assignment means to."""
    ops = stripped_ops()
    assert {op.__name__ for op, _ in ops} >= {"Mul", "Tanh", "MatMul", "Linear", "Sum", "Max", "CrossEntropy"}
    for op, task in ops:
        said = words(op.__doc__) | words(task.text) | NOTATION
        for name, formula in op.vjp_formulas.items():
            assert words(formula) <= said, f"{op.__name__}'s formula for {name}: {formula!r} says " \
                                           f"{words(formula) - said}, which its docstring and task {task.id} do not"
