"""An executed notebook as one self-contained HTML page: Markdown, code, printed text, figures, errors.

Nothing is fetched when the page opens (no scripts, no CDN, no MathJax): the CSS is inline and
each figure is embedded as a data: URI, so the page opens offline from the file system. The
Markdown goes through the report's own small renderer (experiments.report.markdown_to_html).
"""
import html
import re

import nbformat

from experiments.common.notebook_kernel import traceback_text
from experiments.report import STYLE, markdown_to_html

NOTEBOOK_STYLE = """
.cell { margin: 0.6em 0; } .prompt { font-size: 0.8em; color: #777; font-family: monospace; }
pre.code { background: #f4f6fb; border-left: 3px solid #7a8bc4; }
pre.stdout { background: #fff; border-left: 3px solid #ddd; } pre.stderr { background: #fff4e5; }
pre.error { background: #fdecec; border-left: 3px solid #c33; }
.output img { max-width: 100%; border: 1px solid #ddd; }
"""


def notebook_title(notebook: nbformat.NotebookNode, default: str) -> str:
    """The first Markdown heading of the notebook ("1. Backprop by hand, ..."), else default."""
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            heading = re.search(r"^#+\s+(.+)$", cell.source, re.MULTILINE)
            if heading:
                return heading[1].strip()
    return default


def notebook_page(notebook: nbformat.NotebookNode, title: str, header_html: str = "") -> str:
    """The whole HTML page of an (executed) notebook; header_html goes above the first cell."""
    cells = "\n".join(cell_html(cell) for cell in notebook.cells)
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{STYLE}{NOTEBOOK_STYLE}</style></head><body>\n{header_html}\n{cells}\n</body></html>\n")


def cell_html(cell: nbformat.NotebookNode) -> str:
    """One cell: a Markdown cell rendered, or a code cell as its prompt, its source and its outputs."""
    if cell.cell_type == "markdown":
        return f'<div class="cell markdown">{markdown_to_html(cell.source)}</div>'
    prompt = f"In [{cell.execution_count or ' '}]:"
    outputs = "".join(output_html(output) for output in cell.get("outputs", []))
    return (f'<div class="cell code"><div class="prompt">{prompt}</div><pre class="code">'
            f'{html.escape(cell.source)}</pre><div class="output">{outputs}</div></div>')


def output_html(output: nbformat.NotebookNode) -> str:
    """One output of a code cell: printed text, a PNG figure (embedded), a value's text, or an error."""
    if output.output_type == "stream":
        return f'<pre class="{output.name}">{html.escape(output.text)}</pre>'
    if output.output_type == "error":
        return f'<pre class="error">{html.escape(traceback_text(output))}</pre>'
    data = output.get("data", {})
    if "image/png" in data:
        png = "".join(data["image/png"].split())  # base64, possibly wrapped over lines
        alt = html.escape(data.get("text/plain", "figure"))
        return f'<img alt="{alt}" src="data:image/png;base64,{png}">'
    return f'<pre class="stdout">{html.escape(data.get("text/plain", ""))}</pre>'
