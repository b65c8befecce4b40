"""Tutorial scripts as notebooks: the percent-format converter, and running a notebook in a real kernel."""
import json
import os
import sys

import nbformat
import pytest

from experiments.common.notebook_kernel import NotebookCellError, run_notebook
from experiments.common.notebooks import notebook_from_percent, tutorial_scripts, write_notebook

SCRIPT = """# %% [markdown]
# # Title
#
# Some *text*.

# %%
x = 1

# %% [markdown]
#     indented code

# %%
print(x + 1)
"""


def test_a_percent_script_becomes_markdown_and_code_cells_without_outputs(tmp_path):
    notebook = notebook_from_percent(SCRIPT)
    assert [cell.cell_type for cell in notebook.cells] == ["markdown", "code", "markdown", "code"]
    assert [cell.source for cell in notebook.cells] == ["# Title\n\nSome *text*.", "x = 1", "    indented code",
                                                        "print(x + 1)"]
    assert [cell.metadata["tinynet"]["line"] for cell in notebook.cells] == [2, 7, 10, 13]
    assert all(cell.outputs == [] and cell.execution_count is None for cell in notebook.cells[1::2])
    assert notebook.metadata.kernelspec.name == "python3" and notebook.nbformat == 4
    reread = nbformat.read(write_notebook(notebook, tmp_path / "n.ipynb"), as_version=4)
    nbformat.validate(reread)
    assert reread.cells == notebook.cells


def test_lines_before_the_first_marker_are_a_code_cell_and_blank_stretches_make_no_cell():
    notebook = notebook_from_percent("import os\n\n# %%\n\n\n# %%\nos.sep\n")
    assert [(cell.cell_type, cell.source) for cell in notebook.cells] == [("code", "import os"), ("code", "os.sep")]


def test_an_uncommented_line_in_a_markdown_cell_is_an_error_naming_the_line():
    with pytest.raises(ValueError, match=r"t\.py line 3: a \[markdown\] cell's lines must start with '# '"):
        notebook_from_percent("# %% [markdown]\n# text\nx = 1\n", "t.py")


def test_the_tutorials_are_found_in_course_order_each_number_once():
    numbers = [script.name[:2] for script in tutorial_scripts()]
    assert numbers[:4] == ["01", "02", "03", "04"] and numbers == sorted(set(numbers))


def decoy_kernelspec(folder):
    """A "python3" kernelspec in folder/kernels/ whose kernel has DECOY_KERNEL=1 in its environment."""
    spec = folder / "kernels" / "python3"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "decoy", "language": "python", "env": {"DECOY_KERNEL": "1"}}))
    return folder


def test_the_kernel_is_this_python_and_figures_come_back_as_png_whatever_mplbackend(tmp_path, monkeypatch):
    monkeypatch.setenv("MPLBACKEND", "Agg")  # as in CI: the kernel must still send figures inline
    # jupyter_client looks in JUPYTER_PATH before the venv's share/jupyter: a kernelspec found there is not used
    monkeypatch.setenv("JUPYTER_PATH", str(decoy_kernelspec(tmp_path / "jupyter")))
    notebook = notebook_from_percent("# %%\nimport os, sys\nprint(sys.executable, os.environ.get('DECOY_KERNEL'))\n"
                                     "# %%\nimport matplotlib.pyplot as plt\nplt.plot([1, 2])\n"
                                     "# %%\nopen('written.txt', 'w').write('here')\nprint(os.getpid())\n")
    run_notebook(notebook, tmp_path)
    assert notebook.cells[0].outputs[0].text == f"{sys.executable} None\n"
    with pytest.raises(ProcessLookupError):  # the kernel was shut down (and reaped) when the notebook ended
        os.kill(int(notebook.cells[2].outputs[0].text), 0)
    assert any("image/png" in output.get("data", {}) for output in notebook.cells[1].outputs)
    assert (tmp_path / "written.txt").read_text() == "here"  # the kernel works in the folder it was given


def test_a_raising_cell_is_named_by_number_and_script_line_with_the_tracebacks_last_lines(tmp_path):
    notebook = notebook_from_percent("# %% [markdown]\n# Broken on purpose\n"
                                     "# %%\nprint('before')\n"
                                     "# %%\ndef divide(a):\n    return a / 0\n\n\ndivide(1)\n"
                                     "# %%\nprint('never')\n", "broken.py")
    with pytest.raises(NotebookCellError) as failure:
        run_notebook(notebook, tmp_path, "broken.py")
    message = str(failure.value)
    assert message.startswith("broken.py: cell 3 of 4 (In [2], from line 6 of the script) raised "
                              "ZeroDivisionError: division by zero\n")
    assert "----> 2     return a / 0" in message and "\x1b[" not in message
    assert notebook.cells[1].outputs[0].text == "before\n" and notebook.cells[3].outputs == []
