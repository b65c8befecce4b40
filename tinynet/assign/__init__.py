"""Assignment mode: a student copy of tinynet with chosen VJPs and kernels removed, graded per task.

    python -m tinynet.assign make --out student/              # the default tasks (default_tasks.toml)
    python -m tinynet.assign make --tasks my.toml --out student/
    python -m tinynet.assign check student/                   # a score table, as an autograder posts
    python -m tinynet.assign check-class submissions/ --out grades/
    python -m tinynet.assign gradescope --out autograder.zip  # the same grading on Gradescope (gradescope.py)

A task names functions to strip (`tinynet/ops/elementwise.py:Mul.backward`), the tests a student
runs in the copy (`pytest -m task2_1`), and the cases that grade it. In the copy, each stripped
function keeps its signature and docstring and raises `NotImplementedError("Task 2.1: ...")`.
Grading trusts nothing of the submission but the text of the stripped functions: splice.py puts
them into a copy of the grader's own package (bytecode.py gives the files it leaves as they are
their .pyc), harness.py runs the task's cases in a child confined by sandbox.py, and grade.py
judges the arrays the child returns with probes.py.
"""
