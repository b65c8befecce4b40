"""The tutorials as Jupyter notebooks: a percent-format script made into an nbformat v4 notebook.

A tutorial (tutorials/NN_name.py) is a Python script whose cells start at marker lines:

    # %%               a code cell: the lines below it, as they are
    # %% [markdown]    a Markdown cell: the comment lines below it, without their leading "# "

The script is the source, kept in git (plain-text diffs, no outputs); the notebook is made from it
when needed and never committed. Each cell records the script line it starts on
(metadata["tinynet"]["line"]), so an error in the notebook can point back at the script.
"""
import errno
import re
from pathlib import Path

import nbformat

from coursedata.files import write_atomically
from coursedata.paths import PROJECT_ROOT, data_dir

TUTORIALS = PROJECT_ROOT / "tutorials"
CELL_MARKER = re.compile(r"# %%(?P<title>.*)")
KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
# The course data (paths under TINYNET_DATA) each tutorial reads; a tutorial not listed reads none.
NEEDS_DATA = {"04_input_gradients.py": ["pretrained/face_recognition_model.bin", "facescrub"],
              "05_backprop_ninja.py": ["mnist/mnist_all.mat", "mnist/snapshot50.pkl"],
              "06_forward_mode_and_vmap.py": ["mnist/mnist_all.mat", "mnist/snapshot50.pkl"]}


def tutorial_scripts(folder: Path = TUTORIALS) -> list:
    """Every tutorial script folder/NN_*.py, in course order."""
    return sorted(Path(folder).glob("[0-9][0-9]_*.py"))


def require_tutorial_data(script: Path):
    """Raise FileNotFoundError naming the first course data file or folder the tutorial needs that is missing."""
    for relative in NEEDS_DATA.get(Path(script).name, []):
        path = data_dir() / relative
        if not path.exists():
            raise FileNotFoundError(errno.ENOENT, f"{Path(script).name} needs the course data", str(path))


def notebook_from_percent(source: str, name: str = "notebook") -> nbformat.NotebookNode:
    """The nbformat v4 notebook (no outputs) of a percent-format script's text; name is used in errors."""
    cells, kind, first_line, lines = [], "code", 1, []
    for number, line in enumerate(source.splitlines(), start=1):
        marker = CELL_MARKER.fullmatch(line.rstrip())
        if marker is None:
            lines.append(line)
            continue
        cells.extend(_cell(kind, lines, first_line, name))
        kind = "markdown" if marker["title"].strip() == "[markdown]" else "code"
        first_line, lines = number + 1, []
    cells.extend(_cell(kind, lines, first_line, name))
    notebook = nbformat.v4.new_notebook(cells=cells, metadata={"kernelspec": KERNELSPEC,
                                                               "language_info": {"name": "python"}})
    nbformat.validate(notebook)
    return notebook


def _cell(kind, lines, first_line, name):
    """[] for a blank stretch of script, else [the cell of its lines] (kind: "code" or "markdown")."""
    while lines and not lines[-1].strip():
        lines.pop()
    if not any(line.strip() for line in lines):
        return []
    metadata = {"tinynet": {"line": first_line}}
    if kind == "code":
        return [nbformat.v4.new_code_cell("\n".join(lines), metadata=metadata)]
    return [nbformat.v4.new_markdown_cell("\n".join(_uncomment(line, name, number) for number, line
                                                    in enumerate(lines, start=first_line)), metadata=metadata)]


def _uncomment(line, name, number):
    """A Markdown cell's script line without its comment sign: "# text" -> "text", "#" -> ""."""
    if line.rstrip() == "#" or not line.strip():
        return ""
    if not line.startswith("# "):
        raise ValueError(f"{name} line {number}: a [markdown] cell's lines must start with '# ', got {line!r}; "
                         "start a code cell with '# %%' first")
    return line[2:]


def read_tutorial(script: Path) -> nbformat.NotebookNode:
    """The notebook of the tutorial script at `script`."""
    script = Path(script)
    return notebook_from_percent(script.read_text(), script.name)


def write_notebook(notebook: nbformat.NotebookNode, path: Path) -> Path:
    """Write notebook to path (an .ipynb file) and return path."""
    write_atomically(path, nbformat.writes(notebook) + "\n")
    return path
