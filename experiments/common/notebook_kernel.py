"""Running a notebook in a real Jupyter kernel (nbclient + ipykernel), cell by cell, as Jupyter or Colab would.

The kernel is ipykernel on this very Python (sys.executable), so it sees the same packages as the
caller: a venv's tinynet, not whatever a system-wide "python3" kernelspec points at. Figures come
back as PNG outputs (matplotlib's inline backend, whatever MPLBACKEND the caller has).
"""
import re
from pathlib import Path

import nbformat
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from traitlets import default

from coursedata.paths import environment_importing_project

INLINE_FIGURES = "module://matplotlib_inline.backend_inline"
CELL_TIMEOUT_SECONDS = 600  # the slowest tutorial cell (04's face ResNet) takes seconds; this only stops a hang
TRACEBACK_LINES = 15
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class NotebookCellError(Exception):
    """A notebook's cell raised: the message names the cell, the script line it comes from and the traceback."""


class KernelOfThisPython(KernelManager):
    """A kernel manager that starts `sys.executable -m ipykernel_launcher`.

    No kernelspec is looked up on disk (kernel_dirs is empty): jupyter_client then falls back on
    ipykernel's own "python3" spec, whose command is this interpreter. A python3 kernelspec in
    ~/.local/share/jupyter or /usr/share/jupyter, registered by another Python, is never used.
    """

    @default("kernel_spec_manager")
    def _kernelspecs_of_ipykernel_only(self):
        return KernelSpecManager(kernel_dirs=[])


def kernel_environment() -> dict:
    """This process's environment, with inline figures and the project's folder first on PYTHONPATH."""
    return {**environment_importing_project(), "MPLBACKEND": INLINE_FIGURES}


def run_notebook(notebook: nbformat.NotebookNode, cwd: Path, name: str = "notebook") -> nbformat.NotebookNode:
    """Execute notebook's cells in order in a fresh kernel whose working folder is cwd; return the notebook.

    The outputs (text, PNG figures, errors) are filled in place. At the first cell that raises,
    NotebookCellError says which one (see describe_failure); the notebook keeps every output up to
    and including that cell's error, so it can still be rendered.
    """
    # The client makes (so owns, and shuts down at the end) its kernel manager: one given as km= stays running.
    # The kernel is stopped at once when the last cell is done ("immediate"): nothing in it is needed any more,
    # and a graceful shutdown costs half a second per notebook.
    client = NotebookClient(notebook, kernel_manager_class=KernelOfThisPython, kernel_name="python3",
                            shutdown_kernel="immediate", timeout=CELL_TIMEOUT_SECONDS,
                            resources={"metadata": {"path": str(cwd)}})
    try:
        client.execute(env=kernel_environment())
    except CellExecutionError:
        raise NotebookCellError(describe_failure(notebook, name)) from None
    return notebook


def describe_failure(notebook: nbformat.NotebookNode, name: str) -> str:
    """Which cell of an executed notebook raised, and the last lines of its traceback.

    "02_gradient_checking.py: cell 7 of 15 (In [4], from line 31 of the script) raised ZeroDivisionError: ..."
    Cells are counted from 1, Markdown cells included.
    """
    for number, cell in enumerate(notebook.cells, start=1):
        error = next((output for output in cell.get("outputs", []) if output.output_type == "error"), None)
        if error is None:
            continue
        traceback = traceback_text(error).splitlines()
        line = cell.metadata.get("tinynet", {}).get("line")
        origin = f"In [{cell.execution_count}]" + (f", from line {line} of the script" if line else "")
        return (f"{name}: cell {number} of {len(notebook.cells)} ({origin}) raised {error.ename}: {error.evalue}\n"
                + "\n".join(traceback[-TRACEBACK_LINES:]))
    return f"{name}: a cell raised, but no cell has an error output"


def traceback_text(error: nbformat.NotebookNode) -> str:
    """The traceback of an error output as plain text (IPython colours it with ANSI escape codes)."""
    return ANSI_ESCAPE.sub("", "\n".join(error.traceback))
