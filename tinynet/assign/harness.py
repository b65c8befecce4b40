"""The grading child: confine itself, then run one task's cases with the student's functions.

    python -I -B TREE/tinynet/assign/harness.py TASK_DIR

TASK_DIR (made by tinynet.assign.grade) holds tree/ (the instructor's package with this task's
functions from the submission), cases.json (limits, and each case's kind, name and settings),
inputs.npz (the cases' arrays) and scratch/, the only folder this process may write (and its
cwd). It writes one .npz to its stdout: each case's arrays ("3/grad0") and, as bytes,
"errors.json" ({case: the exception it raised, in one line}). The student's code runs with
stdout pointed at /dev/null, and nothing it writes is believed: the grader judges the arrays.
Nothing of the submission is read or run before `confine` (an import of the tree runs the
student's decorators and default values).
"""
import json
import os
import sys
import traceback
from pathlib import Path

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)  # python -I puts no script folder on the path
from sandbox import Limits, confine  # noqa: E402  (this folder's module: it imports nothing of the tree)


def describe(error: BaseException, tree: Path) -> str:
    """'ValueError: message (at tinynet/tensor.py:212)': type, first line, and the tree's last line it passed."""
    message = str(error).strip().splitlines()
    where = [frame for frame in traceback.extract_tb(error.__traceback__) if frame.filename.startswith(str(tree))]
    location = f" (at {Path(where[-1].filename).relative_to(tree)}:{where[-1].lineno})" if where else ""
    text = type(error).__name__ + (f": {message[0]}" if message else "") + location
    return "".join(c if c.isprintable() else "?" for c in text)[:300]


def main(task_dir: Path):
    tree, scratch = task_dir / "tree", task_dir / "scratch"
    setup = json.loads((task_dir / "cases.json").read_text())
    with np.load(task_dir / "inputs.npz", allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    for folder in ("home", "tmp", "numba"):  # HOME, TMPDIR and NUMBA_CACHE_DIR (sandbox.child_environment)
        (scratch / folder).mkdir(exist_ok=True)
    if any(case["kind"] == "kernel" for case in setup["cases"]):
        import numba  # noqa: F401  (before confinement: it reads much of the machine once; tinynet loads it lazily)
    results = os.fdopen(os.dup(1), "wb")
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
    confine([tree, task_dir / "cases.json", task_dir / "inputs.npz"], [scratch], Limits(**setup["limits"]))
    sys.path[:] = [str(tree)] + [p for p in sys.path if p != HERE]
    outputs, errors = {}, {}
    try:
        from tinynet.assign.probes import Case, run_case
    except BaseException as error:  # the student's code failed at import: every case fails with it
        errors = {str(k): describe(error, tree) for k in range(len(setup["cases"]))}
    else:
        for k, case in enumerate(setup["cases"]):
            mine = {name.partition("/")[2]: a for name, a in arrays.items() if name.partition("/")[0] == str(k)}
            try:
                result = {f"{k}/{name}": np.asarray(a) for name, a in run_case(Case(case["kind"], case["name"],
                                                                                  case["spec"], mine)).items()}
                odd = [name for name, a in result.items() if a.dtype.kind not in "biuf"]
                if odd:
                    raise TypeError(f"{odd[0].partition('/')[2]} is an array of {result[odd[0]].dtype}, not numbers")
                outputs.update(result)
            except BaseException as error:  # noqa: B036 - a student's SystemExit or KeyboardInterrupt fails its case
                errors[str(k)] = describe(error, tree)
    outputs["errors.json"] = np.frombuffer(json.dumps(errors).encode(), dtype=np.uint8)
    with results:
        np.savez(results, **outputs)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
