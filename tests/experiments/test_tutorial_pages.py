"""The report's tutorial step (experiments.tutorials): a notebook and an offline page per tutorial, and the links."""
import json
import re

import nbformat
import pytest

from experiments import report, tutorials
from experiments.common.notebook_kernel import NotebookCellError
from experiments.common.notebooks import tutorial_scripts

DRAWS = """# %% [markdown]
# # 1. A figure
#
# Text with `code`:
#
#     y = x ** 2

# %%
import matplotlib.pyplot as plt
print("drawing <y>")
plt.plot([0, 1, 2], [0, 1, 4])
plt.show()
"""
BREAKS = """# %%
x = 2

# %%
y = x / 0
"""


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    """The step run over two tutorials, 01_draws.py and 02_breaks.py: (results folder, the error it raised)."""
    folder, out = tmp_path_factory.mktemp("tutorials"), tmp_path_factory.mktemp("results") / "tutorials"
    (folder / "01_draws.py").write_text(DRAWS)
    (folder / "02_breaks.py").write_text(BREAKS)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tutorials, "tutorial_scripts", lambda: tutorial_scripts(folder))
        with pytest.raises(NotebookCellError) as failure:
            tutorials.main(["--out", str(out)])
    return out, str(failure.value)


def test_each_tutorial_gets_a_notebook_without_outputs_and_a_page_and_a_failure_names_its_cell(rendered):
    out, error = rendered
    assert error.startswith("02_breaks.py: cell 2 of 2 (In [2], from line 5 of the script) raised ZeroDivisionError")
    notebook = nbformat.read(out / "01_draws.ipynb", as_version=4)
    assert [cell.cell_type for cell in notebook.cells] == ["markdown", "code"] and notebook.cells[1].outputs == []
    metrics = json.loads((out / "metrics.json").read_text())["tutorials"]
    assert {stem: (m["cells"], m["figures"], m["ok"]) for stem, m in metrics.items()} == {
        "01_draws": (2, 1, True), "02_breaks": (2, 0, False)}
    assert "| 02_breaks | 2 | 0 |" in (out / "summary.md").read_text() and error in (out / "summary.md").read_text()
    broken_page = (out / "02_breaks.html").read_text()
    assert '<pre class="error">' in broken_page and "ZeroDivisionError: division by zero" in broken_page
    assert "\x1b[" not in broken_page


def test_the_page_renders_markdown_code_printed_text_and_embeds_its_figure(rendered):
    page = (rendered[0] / "01_draws.html").read_text()
    assert "<title>1. A figure</title>" in page and "<pre>y = x ** 2</pre>" in page
    assert "Text with <code>code</code>:" in page and "drawing &lt;y&gt;" in page and "In [1]:" in page
    assert re.findall(r'src="([^"]{0,22})', page) == ["data:image/png;base64,"]
    assert re.findall(r'href="([^"]*)"', page) == ["01_draws.ipynb"]
    outside_figures = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", page)
    assert not re.search(r"https?:|//[a-z]|@import|url\(|<script", outside_figures)


def test_the_page_opens_offline_in_chromium_with_its_figure_and_no_errors(rendered, browser_page):
    browser_page.goto((rendered[0] / "01_draws.html").as_uri())
    sizes = browser_page.eval_on_selector_all(".output img", "images => images.map(i => [i.complete, i.naturalWidth])")
    assert len(sizes) == 1 and sizes[0][0] and sizes[0][1] > 100
    assert "drawing <y>" in browser_page.inner_text(".output")
    assert browser_page.errors == [] and all(url.startswith(("file://", "data:")) for url in browser_page.requests)


def test_no_run_writes_only_the_notebooks(tmp_path, monkeypatch):
    (tmp_path / "01_breaks.py").write_text(BREAKS)
    monkeypatch.setattr(tutorials, "tutorial_scripts", lambda: tutorial_scripts(tmp_path))
    tutorials.main(["--no-run", "--out", str(tmp_path / "out")])
    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == ["01_breaks.ipynb", "config.json",
                                                                          "metrics.json"]


def test_the_report_links_each_tutorials_page_and_notebook(tmp_path, monkeypatch):
    monkeypatch.setattr(report, "EXPERIMENTS", [])
    assert "Tutorials not run yet" in report.build(tmp_path).read_text()
    (tmp_path / "tutorials").mkdir()
    for stem in ["02_second", "01_first"]:
        (tmp_path / "tutorials" / f"{stem}.html").write_text("")
    links = re.findall(r'href="(tutorials/[^"]*)"', report.build(tmp_path).read_text())
    assert links == ["tutorials/01_first.html", "tutorials/01_first.ipynb", "tutorials/02_second.html",
                     "tutorials/02_second.ipynb"]


def test_the_reports_markdown_keeps_indented_code_and_list_items_over_several_lines():
    rendered = report.markdown_to_html("Since:\n\n- one item\n  over two lines\n- two\n\n    x = a <\n      b")
    assert "<li>one item over two lines</li><li>two</li>" in rendered and "<pre>x = a &lt;\n  b</pre>" in rendered
