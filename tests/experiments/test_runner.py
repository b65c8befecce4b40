"""`make report`'s runner: a progress line per step, goes on past a failure, reports it, exits non-zero."""
import pytest

from experiments import __main__ as runner
from experiments.registry import Experiment


def test_a_failing_step_is_logged_reported_and_the_run_goes_on(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(runner, "EXPERIMENTS", [Experiment("no_such_part", "", ""), Experiment("nor_this", "", "")])
    with pytest.raises(SystemExit, match="2 step\\(s\\) failed: experiments.no_such_part, experiments.nor_this"):
        runner.main(["--only", "no_such_part", "nor_this", "--no-bench"])
    printed = capsys.readouterr().out
    assert "[1/2] experiments.no_such_part ... FAILED" in printed and "[2/2] experiments.nor_this ... FAILED" in printed
    assert "No module named experiments.no_such_part" in (tmp_path / "results/no_such_part/run.log").read_text()
    assert (tmp_path / "results/index.html").exists()


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
    monkeypatch.setattr(runner, "run", lambda module, out, seed, debug: calls.append((module, debug)) or (True, 0.0))
    monkeypatch.setattr(runner.report, "build", lambda results: results / "index.html")
    runner.main(["--only", "part1_mnist", "--debug"])
    assert calls == [("experiments.part1_mnist", True), ("benchmarks", False)]
