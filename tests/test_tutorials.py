"""Every tutorial runs top to bottom as a notebook in a real Jupyter kernel: a tutorial that no longer runs fails.

The tutorials are percent-format scripts (cells marked by `# %%` comments); each is made into a notebook
(experiments.common.notebooks) and its cells run in order by nbclient in an ipykernel on this Python, as
Jupyter or Colab would run them. A failure names the cell, the script line it starts on and the traceback.
"""
import pytest

from conftest import require_data
from coursedata.paths import PROJECT_ROOT
from experiments.common.notebook_kernel import TRACEBACK_LINES, NotebookCellError, run_notebook
from experiments.common.notebooks import NEEDS_DATA, read_tutorial, tutorial_scripts

TUTORIALS = tutorial_scripts()


def test_there_are_six_tutorials():
    """(A student copy, which has tests/assignment_tasks.json, leaves out 05: it works assignment task 6.1 out.)"""
    student_copy = (PROJECT_ROOT / "tests" / "assignment_tasks.json").exists()
    assert [t.name[:2] for t in TUTORIALS] == ["01", "02", "03", "04", *([] if student_copy else ["05"]), "06"]


def run_tutorial(script, cwd):
    """Run the tutorial at script as a notebook in folder cwd; a raising cell fails the test with its message."""
    try:
        run_notebook(read_tutorial(script), cwd, script.name)
    except NotebookCellError as error:
        pytest.fail(str(error), pytrace=False)


@pytest.mark.parametrize("tutorial", TUTORIALS, ids=lambda path: path.stem)
def test_tutorial_runs_top_to_bottom_in_a_kernel(tutorial, tmp_path):
    for relative in NEEDS_DATA.get(tutorial.name, []):
        require_data(relative)
    run_tutorial(tutorial, tmp_path)


def test_a_broken_tutorial_fails_naming_its_cell(tmp_path):
    broken = tmp_path / "99_broken.py"
    broken.write_text("# %% [markdown]\n# # Broken\n\n# %%\nx = 1\n\n# %%\n"
                      "def dig(depth):\n    return dig(depth - 1) if depth else [][x]\n\n\ndig(20)\n")
    with pytest.raises(pytest.fail.Exception) as failure:
        run_tutorial(broken, tmp_path)
    message = str(failure.value)
    assert message.startswith("99_broken.py: cell 3 of 3 (In [2], from line 8 of the script) raised "
                              "IndexError: list index out of range\n")
    assert message.endswith("return dig(depth - 1) if depth else [][x]\n\nIndexError: list index out of range")
    assert len(message.splitlines()) == 1 + TRACEBACK_LINES  # the traceback's last lines only: it has 20 frames
