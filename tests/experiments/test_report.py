"""The HTML report: sections for run, failed and missing experiments; every image link resolves."""
import json
from html.parser import HTMLParser

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from experiments import report  # noqa: E402
from experiments.registry import Experiment  # noqa: E402


class LinkCollector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.images, self.links = [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs["src"])
        if tag in ("link", "script"):
            self.links.append(attrs)


def fake_results(tmp_path):
    done = tmp_path / "done"
    done.mkdir()
    (done / "metrics.json").write_text(json.dumps({"test_accuracy": 0.91, "run_seconds": 12.0,
                                                   "split": {"train": 70}}))
    (done / "config.json").write_text(json.dumps({"command": "python -m experiments.done --seed 0"}))
    (done / "summary.md").write_text("# Summary\n\nAccuracy was **91%**.\n\n| a | b |\n|---|---|\n| 1 | 2 |\n")
    (done / "memory_report.txt").write_text("One step's graph\n\nop  count  saved\nTanh  1  <4 kB>\n")
    fig, ax = plt.subplots()
    ax.plot([0, 1])
    fig.savefig(done / "curve.png")
    plt.close(fig)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "run.log").write_text("Traceback ...\nValueError: boom\n")
    return [Experiment("done", "Part 1: done", "000", {"test_accuracy": (0.9, "handout")}),
            Experiment("broken", "Part 2: broken", "000"),
            Experiment("absent", "Part 3: absent", "001", note="Needs `--alexnet-weights`.")]


def test_report_shows_every_experiment_and_every_image_link_resolves(tmp_path, monkeypatch):
    monkeypatch.setattr(report, "EXPERIMENTS", fake_results(tmp_path))
    index = report.build(tmp_path)
    page = index.read_text()
    parser = LinkCollector()
    parser.feed(page)
    assert parser.images == ["done/curve.png"]
    assert all((tmp_path / src).exists() for src in parser.images)
    assert parser.links == []  # nothing external: it opens offline
    assert "ValueError: boom" in page and "failed" in page
    assert "Not run yet" in page and "<code>--alexnet-weights</code>" in page
    assert "<b>91%</b>" in page and "<td>handout</td>" in page
    assert "split.train" in page
    assert "What backward keeps alive" in page and "Tanh  1  &lt;4 kB&gt;" in page


def test_markdown_subset():
    rendered = report.markdown_to_html("## Title\n\n- one\n- two\n\n```\ncode <x>\n```")
    assert "<h4>Title</h4>" in rendered and "<li>two</li>" in rendered and "code &lt;x&gt;" in rendered


def test_the_run_table_gives_each_steps_time_and_memory_and_flags_those_above_the_target(tmp_path, monkeypatch):
    monkeypatch.setattr(report, "EXPERIMENTS", [])
    assert "Not run: <code>make report</code> writes results/run_table.json" in report.build(tmp_path).read_text()
    (tmp_path / "run_table.json").write_text(json.dumps({
        "experiments.small": {"ok": True, "seconds": 12.34, "peak_rss_bytes": 812_000_000, "cpu_seconds": 20.06},
        "experiments.large": {"ok": False, "seconds": 177.0, "peak_rss_bytes": 1_050_000_000}}))
    page = report.build(tmp_path).read_text()
    small = ('<tr><td>experiments.small</td><td>ok</td><td class="num">12.3</td><td class="num">20.1</td>'
             '<td class="num">812</td>')
    large = ('<tr><td>experiments.large</td><td><span class="failed">FAILED</span></td><td class="num">177</td>'
             '<td></td><td class="num">1050</td><td><span class="failed">above the 1.0 GB target</span></td></tr>')
    assert small + "<td>within 1.0 GB</td></tr>" in page and large in page


def test_the_benchmarks_table_says_when_it_ran_and_the_load_around_it(tmp_path, monkeypatch):
    monkeypatch.setattr(report, "EXPERIMENTS", [])
    assert "Not run: <code>make bench</code>" in report.build(tmp_path).read_text()
    (tmp_path / "benchmarks").mkdir()
    (tmp_path / "benchmarks" / "metrics.json").write_text(json.dumps({"cases": [{"case": "MLP step"}]}))
    page = report.build(tmp_path).read_text()  # written before the benchmarks recorded their time and load
    assert "<td>MLP step</td>" in page and "Run at" not in page
    (tmp_path / "benchmarks" / "metrics.json").write_text(json.dumps({
        "started": "2026-12-07T09:30:00+00:00", "rounds": 3, "load_before": 1.234, "load_after": 2.5,
        "cases": [{"case": "MLP step", "tinynet ms": "4.63", "tinynet min ms": "4.50"}]}))
    page = report.build(tmp_path).read_text()
    assert ("<p>Run at 2026-12-07T09:30:00+00:00, 3 interleaved rounds; load average (1 min) 1.23 before, 2.50 "
            "after.") in page
    assert "<th>tinynet min ms</th>" in page and "<td>MLP step</td><td>4.63</td><td>4.50</td>" in page
