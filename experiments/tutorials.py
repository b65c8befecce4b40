"""The tutorials as Jupyter notebooks, run through a real kernel and rendered as pages.

For each tutorials/NN_name.py (every one, in course order) the results folder gets:
- NN_name.ipynb: the notebook, without outputs: open it in Jupyter, or upload it to Colab;
- NN_name.html: the notebook as it ran here (ipykernel on this Python), printed text and figures
  included, as one self-contained page that opens offline.
The kernel works in the results folder, so files a tutorial writes (01's backward-stepper page) land
there too. The course data each tutorial needs (NEEDS_DATA) is checked before any kernel starts. A
tutorial whose cell raises is rendered up to its error; the others still run, and the run fails at
the end naming the cell. The tutorials fix their own seeds (--seed and --quick change nothing);
--no-run writes only the notebooks, in a second.
"""
import html
import time

from coursedata.cli import run_main
from coursedata.files import write_atomically
from experiments.common.cli import experiment_parser
from experiments.common.notebook_kernel import NotebookCellError, run_notebook
from experiments.common.notebook_page import notebook_page, notebook_title
from experiments.common.notebooks import read_tutorial, require_tutorial_data, tutorial_scripts, write_notebook
from experiments.common.results import Results


def page_header(script, notebook_file) -> str:
    """The line above a tutorial page's first cell: where the notebook and its source are."""
    return (f'<p class="download">Run it yourself: <a href="{html.escape(notebook_file)}">'
            f"{html.escape(notebook_file)}</a> (open it in Jupyter, or upload it to Colab), made from "
            f"<code>tutorials/{html.escape(script.name)}</code>.</p>")


def render_tutorial(script, out):
    """Write out/<stem>.ipynb, run it in a kernel, write out/<stem>.html.

    Returns (its metrics: cells, figures, seconds, ok; the error message, or None when every cell ran).
    """
    notebook = read_tutorial(script)
    write_notebook(notebook, out / f"{script.stem}.ipynb")
    started, error = time.perf_counter(), None
    try:
        run_notebook(notebook, out, script.name)
    except NotebookCellError as failure:
        error = str(failure)
    seconds = round(time.perf_counter() - started, 2)
    page = notebook_page(notebook, notebook_title(notebook, script.stem), page_header(script, f"{script.stem}.ipynb"))
    write_atomically(out / f"{script.stem}.html", page)
    outputs = [output for cell in notebook.cells for output in cell.get("outputs", [])]
    figures = sum("image/png" in output.get("data", {}) for output in outputs)
    return {"cells": len(notebook.cells), "figures": figures, "seconds": seconds, "ok": error is None}, error


def summary(tutorials: dict, errors: list) -> str:
    """summary.md: one row per tutorial ({stem: metrics}), then each failure's message."""
    rows = "\n".join(f"| {stem} | {m['cells']} | {m['figures']} | {m['seconds']:.1f} | "
                     f"{'ok' if m['ok'] else '**failed**'} |" for stem, m in tutorials.items())
    failures = "\n\n".join(f"```\n{error}\n```" for error in errors)
    return f"""# The tutorials, run as notebooks

Each tutorial ran top to bottom in a fresh Jupyter kernel; its page (linked above) shows the
notebook as it ran, and the `.ipynb` beside it opens in Jupyter or Colab.

| tutorial | cells | figures | seconds | status |
|---|---|---|---|---|
{rows}

{failures}
"""


def main(argv=None):
    parser = experiment_parser("tutorials", __doc__)
    parser.add_argument("--no-run", action="store_true", help="only write the notebooks: no kernel, no pages")
    args = parser.parse_args(argv)
    errors = []
    with Results(args.out, args) as results:
        if args.no_run:
            for script in tutorial_scripts():
                print(f"wrote {write_notebook(read_tutorial(script), args.out / f'{script.stem}.ipynb')}")
            return
        for script in tutorial_scripts():
            require_tutorial_data(script)  # before any kernel starts: seconds, not minutes, to say what is missing
        tutorials = results.metrics["tutorials"] = {}
        for script in tutorial_scripts():
            tutorials[script.stem], error = render_tutorial(script, args.out)
            print(f"{script.stem}: {'ok' if error is None else 'FAILED'} in {tutorials[script.stem]['seconds']:.1f} s")
            if error:
                print(error)
                errors.append(error)
        results.summary(summary(tutorials, errors))
    if errors:
        raise NotebookCellError("\n\n".join(errors))


if __name__ == "__main__":
    run_main(main)
