"""`make report`'s runner: a progress line per step, goes on past a failure, reports it, exits non-zero;
each step's wall time and peak resident memory (its own, not the largest child's so far) in results/run_table.json."""
import json
import subprocess
import sys

import pytest

from experiments import __main__ as runner
from experiments import report
from experiments.registry import Experiment


def test_a_failing_step_is_logged_reported_and_the_run_goes_on(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(runner, "EXPERIMENTS", [Experiment("no_such_part", "", ""), Experiment("nor_this", "", "")])
    with pytest.raises(SystemExit, match="2 step\\(s\\) failed: experiments.no_such_part, experiments.nor_this"):
        runner.main(["--only", "no_such_part", "nor_this", "--no-bench"])
    printed = capsys.readouterr().out
    assert "[1/2] experiments.no_such_part ... FAILED in " in printed
    assert "[2/2] experiments.nor_this ... FAILED" in printed
    assert " MB (see results/nor_this/run.log)" in printed
    assert "No module named experiments.no_such_part" in (tmp_path / "results/no_such_part/run.log").read_text()
    assert (tmp_path / "results/index.html").exists()
    table = json.loads((tmp_path / "results/run_table.json").read_text())
    assert list(table) == ["experiments.no_such_part", "experiments.nor_this"]
    assert table["experiments.nor_this"]["ok"] is False and table["experiments.nor_this"]["peak_rss_bytes"] > 0


MEASURE_TWO_CHILDREN = """
import json, sys
from experiments.__main__ import run_child
steps = [run_child([sys.executable, "-c", f"block = b'x' * {megabytes * 10**6}"], sys.stderr) for megabytes in (300, 0)]
print(json.dumps([[step.ok, step.seconds, step.peak_rss_bytes] for step in steps]))
"""


def test_the_peak_is_that_of_each_child_not_the_largest_so_far():
    """A child touching 300 MB (b"x" * n writes every byte), then one touching nothing, run by a small
    parent (a child's peak counts the parent's resident memory at the fork: pytest's would hide the difference)."""
    measured = subprocess.run([sys.executable, "-c", MEASURE_TWO_CHILDREN], capture_output=True, text=True, check=True)
    (large_ok, large_seconds, large_peak), (small_ok, _, small_peak) = json.loads(measured.stdout)
    assert large_ok and small_ok and large_seconds > 0
    assert large_peak >= 300e6
    assert small_peak < 100e6  # RUSAGE_CHILDREN would still say 300 MB here


def test_the_runner_imports_neither_numpy_nor_tinynet():
    """Each child's peak counts the runner's resident memory at the fork, so the runner stays small."""
    imported = subprocess.run([sys.executable, "-c", "import sys, experiments.__main__; "
                               "print(sorted({'numpy', 'tinynet'} & set(sys.modules)))"],
                              capture_output=True, text=True, check=True).stdout
    assert imported == "[]\n"


def test_a_step_is_recorded_and_its_progress_line_gives_time_and_peak(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(runner, "run", lambda module, out, seed, debug: runner.StepRun(True, 57.2, 812_000_000))
    runner.main(["--only", "part1_mnist", "--no-bench"])
    assert "[1/1] experiments.part1_mnist ... ok in 57 s, peak 812 MB" in capsys.readouterr().out
    assert json.loads((tmp_path / "results/run_table.json").read_text()) == {
        "experiments.part1_mnist": {"ok": True, "seconds": 57.2, "peak_rss_bytes": 812_000_000}}
    assert "812" in (tmp_path / "results/index.html").read_text()


@pytest.mark.parametrize("argv, message", [(["--only"], "expected at least one argument"),
                                           (["--only", "part1_mnist", "part99"], "invalid choice: 'part99'")])
def test_only_needs_known_experiment_names(tmp_path, monkeypatch, capsys, argv, message):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        runner.main(argv)
    assert exit_info.value.code == 2 and message in capsys.readouterr().err and not (tmp_path / "results").exists()


def test_debug_is_passed_on_to_experiments_but_not_to_the_benchmarks(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    calls = []
    monkeypatch.setattr(runner, "run", lambda module, out, seed, debug: calls.append((module, debug))
                        or runner.StepRun(True, 0.0, 0))
    monkeypatch.setattr(report, "build", lambda results: results / "index.html")
    runner.main(["--only", "part1_mnist", "--debug"])
    assert calls == [("experiments.part1_mnist", True), ("benchmarks", False)]
