"""`make report`'s runner: a progress line per step, goes on past a failure, reports it, exits non-zero."""
import pytest

from experiments import __main__ as runner


def test_a_failing_step_is_logged_reported_and_the_run_goes_on(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit, match="2 step\\(s\\) failed: experiments.no_such_part, experiments.nor_this"):
        runner.main(["--only", "no_such_part", "nor_this", "--no-bench"])
    printed = capsys.readouterr().out
    assert "[1/2] experiments.no_such_part ... FAILED" in printed and "[2/2] experiments.nor_this ... FAILED" in printed
    assert "No module named experiments.no_such_part" in (tmp_path / "results/no_such_part/run.log").read_text()
    assert (tmp_path / "results/index.html").exists()
