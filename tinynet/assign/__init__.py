"""Assignment mode: a student copy of tinynet with chosen VJPs and kernels removed, graded per task.

    python -m tinynet.assign make --out student/            # the default tasks (default_tasks.toml)
    python -m tinynet.assign make --tasks my.toml --out student/
    python -m tinynet.assign check student/                 # a score table, as an autograder posts

A task names functions to strip (`tinynet/ops/elementwise.py:Mul.backward`) and the tests that
grade it. In the copy, each stripped function keeps its signature and docstring and raises
`NotImplementedError("Task 2.1: ...")`; each test carries its task's marker (`pytest -m task2_1`).
The default tasks are graded by tests that do not lean on each other's tasks: op VJPs by
`check_op` (their backward called directly), the graph core with ops of its own, kernels
against their NumPy references.
"""
