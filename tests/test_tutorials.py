"""Every tutorial runs top to bottom: a tutorial that no longer runs is a failing test.

The tutorials are percent-format notebooks, i.e. Python scripts whose cells are marked by
`# %%` comments, so running the script executes every cell in order, as Jupyter would.
"""
import os
import subprocess
import sys

import pytest

from conftest import require_data
from coursedata.paths import PROJECT_ROOT

TUTORIALS = sorted((PROJECT_ROOT / "tutorials").glob("[0-9][0-9]_*.py"))
NEEDS_DATA = {"04_input_gradients.py": ["pretrained/face_recognition_model.bin", "facescrub"],
              "05_backprop_ninja.py": ["mnist/mnist_all.mat", "mnist/snapshot50.pkl"],
              "06_forward_mode_and_vmap.py": ["mnist/mnist_all.mat", "mnist/snapshot50.pkl"]}


def test_there_are_six_tutorials():
    """(A student copy, which has tests/assignment_tasks.json, leaves out 05: it works assignment task 6.1 out.)"""
    student_copy = (PROJECT_ROOT / "tests" / "assignment_tasks.json").exists()
    assert [t.name[:2] for t in TUTORIALS] == ["01", "02", "03", "04", *([] if student_copy else ["05"]), "06"]


@pytest.mark.parametrize("tutorial", TUTORIALS, ids=lambda path: path.stem)
def test_tutorial_runs_top_to_bottom(tutorial, tmp_path):
    for relative in NEEDS_DATA.get(tutorial.name, []):
        require_data(relative)
    run = subprocess.run([sys.executable, str(tutorial)], cwd=tmp_path, capture_output=True, text=True,
                         env={**os.environ, "MPLBACKEND": "Agg"})
    assert run.returncode == 0, f"{tutorial.name} failed:\n{run.stdout[-2000:]}\n{run.stderr[-3000:]}"
