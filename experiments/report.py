"""Build results/index.html: one browsable page with every experiment's figures and numbers.

`python -m experiments.report [--results results]` (run by `make report` after the
experiments). The page is static and self-contained: inline CSS, images as relative links,
nothing fetched, so it opens offline from the file system.
"""
import argparse
import html
import json
import re
import textwrap
from pathlib import Path

from coursedata.cli import DEBUG_HELP, run_main
from coursedata.files import write_atomically
from experiments.registry import EXPERIMENTS, RUN_TABLE

PEAK_RSS_TARGET_BYTES = 1.0e9  # issue 30: every step's peak resident memory at most 1.0 GB

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; }
h1 { border-bottom: 2px solid #444; } h2 { margin-top: 2.2em; border-bottom: 1px solid #bbb; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.92em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; }
th { background: #f0f0f0; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
figure { display: inline-block; margin: 0.5em; vertical-align: top; }
figure img { max-width: 520px; border: 1px solid #ddd; } figcaption { font-size: 0.85em; color: #555; }
code, pre { background: #f6f6f6; padding: 0.1em 0.3em; } pre { padding: 0.6em; overflow-x: auto; }
.failed { color: #a00; font-weight: bold; } .missing { color: #a60; }
nav a { margin-right: 1em; }
"""


def flatten_metrics(metrics, prefix=""):
    """{dotted key: scalar} from nested metrics (lists and other non-scalars are left out)."""
    flat = {}
    for key, value in metrics.items():
        if isinstance(value, dict):
            flat.update(flatten_metrics(value, f"{prefix}{key}."))
        elif isinstance(value, (int, float, str, bool)) or value is None:
            flat[f"{prefix}{key}"] = value
    return flat


def format_value(value):
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape(str(value))


def table(header, rows):
    """An HTML table; cells holding numbers are right-aligned."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(
        f'<td class="num">{format_value(c)}</td>' if isinstance(c, (int, float)) and not isinstance(c, bool)
        else f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def markdown_to_html(text):
    """A small Markdown subset (headings, paragraphs, lists, pipe tables, fenced or indented code) as HTML."""
    blocks, out = re.split(r"\n\s*\n", text.strip()), []
    for block in blocks:
        lines = block.splitlines()
        if block.startswith("```"):
            out.append(f"<pre>{html.escape(block.strip('`').split(chr(10), 1)[-1])}</pre>")
        elif block.startswith("#"):
            level = min(len(block) - len(block.lstrip("#")) + 2, 6)
            out.append(f"<h{level}>{inline(block.lstrip('#').strip())}</h{level}>")
        elif all(line.startswith("    ") for line in lines):
            out.append(f"<pre>{html.escape(textwrap.dedent(block))}</pre>")
        elif all(line.lstrip().startswith("|") for line in lines) and len(lines) >= 2:
            cells = [[c.strip() for c in line.strip().strip("|").split("|")] for line in lines
                     if not re.fullmatch(r"\s*\|?[\s:|-]+\|?\s*", line)]
            out.append(table(cells[0], [[inline(c) for c in row] for row in cells[1:]]))
        elif re.match(r"\s*[-*] ", lines[0]):  # a list: an item's next lines are indented
            items = re.split(r"\n\s*[-*] ", "\n" + block.lstrip())[1:]
            out.append("<ul>" + "".join(f"<li>{inline(' '.join(item.split()))}</li>" for item in items) + "</ul>")
        else:
            out.append(f"<p>{inline(' '.join(lines))}</p>")
    return "\n".join(out)


def inline(text):
    """Escape text and render `code`, **bold** and *italic*."""
    text = html.escape(text)
    text = re.sub(r"`([^`]+)`", r"<code>\1</code>", text)
    text = re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", text)
    return re.sub(r"\*([^*]+)\*", r"<i>\1</i>", text)


def read_json(path):
    return json.loads(path.read_text()) if path.exists() else None


def section(experiment, results):
    """The HTML section of one experiment: status, command, numbers, figures, summary."""
    folder = results / experiment.name
    metrics, config = read_json(folder / "metrics.json"), read_json(folder / "config.json")
    seed = f" <small>(seed {html.escape(experiment.seed)})</small>" if experiment.seed else ""
    parts = [f'<h2 id="{experiment.name}">{html.escape(experiment.title)}{seed}</h2>']
    command = (config or {}).get("command", f"python -m experiments.{experiment.name} --seed 0")
    parts.append(f"<p>Reproduce: <code>{html.escape(command)}</code></p>")
    if experiment.note:
        parts.append(f"<p>{inline(experiment.note)}</p>")
    if metrics is None:
        log = folder / "run.log"
        if log.exists():
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-25:])
            parts.append(f'<p class="failed">This experiment failed.</p><pre>{html.escape(tail)}</pre>')
        else:
            parts.append(f'<p class="missing">Not run yet: <code>make report</code> or the command above '
                         f"creates {html.escape(str(folder))}.</p>")
        return "\n".join(parts)
    parts.append(f"<p>Run time: {metrics.get('run_seconds', float('nan')):.0f} s</p>")
    parts.append(table(["metric", "value"], sorted(flatten_metrics(metrics).items())))
    pages = sorted(folder.glob("*.html"))
    if pages:
        parts.append("<p>Interactive pages: " + ", ".join(
            f'<a href="{html.escape(page.relative_to(results).as_posix())}">{html.escape(page.stem)}</a>'
            for page in pages) + "</p>")
    for figure in sorted(folder.glob("*.png")):
        relative = figure.relative_to(results).as_posix()
        parts.append(f'<figure><a href="{html.escape(relative)}"><img src="{html.escape(relative)}" '
                     f'alt="{html.escape(figure.stem)}"></a><figcaption>{html.escape(figure.stem)}</figcaption>'
                     "</figure>")
    if (folder / "summary.md").exists():
        parts.append(markdown_to_html((folder / "summary.md").read_text()))
    if (folder / "memory_report.txt").exists():
        parts.append("<h3>What backward keeps alive</h3><p><code>tn.memory_report</code>: the bytes each op saved "
                     "for backward, by op and call site.</p>"
                     f"<pre>{html.escape((folder / 'memory_report.txt').read_text())}</pre>")
    return "\n".join(parts)


def headline(results):
    """Rows (experiment, metric, ours, course reference, source) for every reference number."""
    rows = []
    for experiment in EXPERIMENTS:
        metrics = flatten_metrics(read_json(results / experiment.name / "metrics.json") or {})
        for key, (reference, source) in experiment.references.items():
            ours = metrics.get(key, "not run")
            rows.append([f'<a href="#{experiment.name}">{html.escape(experiment.title)}</a>', html.escape(key),
                         ours, reference, html.escape(source)])
    return rows


def benchmark_parts(results):
    """HTML of results/benchmarks/metrics.json: when the run was and the load around it (`python -m benchmarks`
    writes them since issue 30), then its 'cases' as a table; or a note that the benchmarks were not run."""
    metrics = read_json(results / "benchmarks" / "metrics.json") or {}
    cases = metrics.get("cases", [])
    if not cases:
        return ["<p class='missing'>Not run: <code>make bench</code> writes results/benchmarks/.</p>"]
    parts = []
    if "started" in metrics:
        parts.append(f"<p>Run at {html.escape(metrics['started'])}, {metrics['rounds']} interleaved rounds; load "
                     f"average (1 min) {metrics['load_before']:.2f} before, {metrics['load_after']:.2f} after. "
                     "Times: the median of the rounds, and their minimum.</p>")
    header = list(cases[0])
    return [*parts, table(header, [[case.get(h, "") for h in header] for case in cases])]


def run_table_rows(results):
    """Rows (step, status, wall seconds, processor seconds, peak MB, memory verdict) of results/run_table.json, or
    None if absent (a table from before processor time was recorded leaves that cell empty)."""
    steps = read_json(results / RUN_TABLE)
    if not steps:
        return None
    target = f"{PEAK_RSS_TARGET_BYTES / 1e9:.1f} GB"
    rows = []
    for module, step in steps.items():
        peak = step["peak_rss_bytes"]
        verdict = (f'<span class="failed">above the {target} target</span>' if peak > PEAK_RSS_TARGET_BYTES
                   else f"within {target}")
        cpu_seconds = round(step["cpu_seconds"], 1) if "cpu_seconds" in step else ""
        rows.append([html.escape(module), "ok" if step["ok"] else '<span class="failed">FAILED</span>',
                     round(step["seconds"], 1), cpu_seconds, round(peak / 1e6), verdict])
    return rows


def tutorial_links(results):
    """A paragraph linking each tutorial's page and notebook in results/tutorials/ (python -m experiments.tutorials)."""
    pages = sorted((results / "tutorials").glob("[0-9][0-9]_*.html"))
    links = ", ".join(f'<a href="tutorials/{html.escape(page.name)}">{html.escape(page.stem)}</a> '
                      f'(<a href="tutorials/{html.escape(page.stem)}.ipynb">.ipynb</a>)' for page in pages)
    return (f"<p>Tutorials, run as notebooks: {links}</p>" if pages else
            "<p class='missing'>Tutorials not run yet: <code>python -m experiments.tutorials</code> writes "
            "results/tutorials/.</p>")


def build(results: Path) -> Path:
    """Write results/index.html and return its path."""
    parts = ["<!DOCTYPE html><html><head><meta charset='utf-8'><title>tinynet: the course experiments</title>",
             f"<style>{STYLE}</style></head><body>", "<h1>tinynet: the course experiments</h1>",
             "<nav>" + "".join(f'<a href="#{e.name}">{html.escape(e.title)}</a>' for e in EXPERIMENTS) + "</nav>",
             "<h2>Headline numbers</h2>",
             table(["experiment", "metric", "tinynet", "course", "course source"], headline(results))]
    parts.append(tutorial_links(results))
    parts.append("<h3>Benchmarks</h3>")
    parts.extend(benchmark_parts(results))
    run_rows = run_table_rows(results)
    parts.append("<h3>Run table</h3>")
    parts.append(table(["step", "status", "wall time (s)", "processor time (s)", "peak resident memory (MB)", "memory"],
                       run_rows)
                 if run_rows else "<p class='missing'>Not run: <code>make report</code> writes "
                                  f"results/{RUN_TABLE}.</p>")
    parts.extend(section(experiment, results) for experiment in EXPERIMENTS)
    parts.append("</body></html>")
    index = results / "index.html"
    write_atomically(index, "\n".join(parts))
    return index


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", type=Path, default=Path("results"))
    parser.add_argument("--debug", action="store_true", help=DEBUG_HELP)
    args = parser.parse_args(argv)
    print(f"wrote {build(args.results)}")


if __name__ == "__main__":
    run_main(main)
