"""`make report`'s runner: a progress line per step, goes on past a failure, reports it, exits non-zero;
each step's wall time and peak resident memory (its own, not the largest child's so far) in results/run_table.json;
experiments side by side (each on one thread) in the order their `after` allows, the benchmarks alone at the end."""
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from benchmarks import __main__ as benchmarks_main
from experiments import __main__ as runner
from experiments import report
from experiments.registry import Experiment


def test_a_failing_step_is_logged_reported_and_the_run_goes_on(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(runner, "EXPERIMENTS", [Experiment("no_such_part", "", ""), Experiment("nor_this", "", "")])
    with pytest.raises(SystemExit, match="2 step\\(s\\) failed: experiments.no_such_part, experiments.nor_this"):
        runner.main(["--only", "no_such_part", "nor_this", "--no-bench", "--jobs", "1"])
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
print(json.dumps([[step.ok, step.seconds, step.peak_rss_bytes, step.cpu_seconds] for step in steps]))
"""


def test_the_peak_is_that_of_each_child_not_the_largest_so_far():
    """A child touching 300 MB (b"x" * n writes every byte), then one touching nothing, run by a small
    parent (a child's peak counts the parent's resident memory at the fork: pytest's would hide the difference)."""
    measured = subprocess.run([sys.executable, "-c", MEASURE_TWO_CHILDREN], capture_output=True, text=True, check=True)
    (large_ok, large_seconds, large_peak, large_cpu), (small_ok, _, small_peak, _) = json.loads(measured.stdout)
    assert large_ok and small_ok and large_seconds > 0 and 0 < large_cpu
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
    monkeypatch.setattr(runner, "run", lambda *_: runner.StepRun(True, 57.2, 812_000_000))
    runner.main(["--only", "part1_mnist", "--no-bench"])
    assert "[1/1] experiments.part1_mnist ... ok in 57 s, peak 812 MB" in capsys.readouterr().out
    assert json.loads((tmp_path / "results/run_table.json").read_text()) == {
        "experiments.part1_mnist": {"ok": True, "seconds": 57.2, "peak_rss_bytes": 812_000_000, "cpu_seconds": 0.0}}
    assert "812" in (tmp_path / "results/index.html").read_text()


@pytest.mark.parametrize("argv, message", [(["--only"], "expected at least one argument"),
                                           (["--only", "part1_mnist", "part99"], "invalid choice: 'part99'")])
def test_only_needs_known_experiment_names(tmp_path, monkeypatch, capsys, argv, message):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        runner.main(argv)
    assert exit_info.value.code == 2 and message in capsys.readouterr().err and not (tmp_path / "results").exists()


def test_debug_is_passed_on_to_experiments_and_the_benchmarks_get_their_short_round(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    calls = []
    monkeypatch.setattr(runner, "run", lambda module, out, seed, options, threads:
                        calls.append((module, options)) or runner.StepRun(True, 0.0, 0))
    monkeypatch.setattr(report, "build", lambda results: results / "index.html")
    runner.main(["--only", "part1_mnist", "--debug"])
    assert calls == [("experiments.part1_mnist", ("--debug",)), ("benchmarks", runner.BENCHMARK_OPTIONS)]
    options = benchmarks_main.parse_arguments(list(runner.BENCHMARK_OPTIONS))
    assert (options.rounds, options.budget) == (1, 0.2)


def steps(*specs):
    """Steps from (name, seconds, after names) triples."""
    return [runner.Step(name, Path(name), after, seconds) for name, seconds, after in specs]


def test_work_ahead_is_a_steps_seconds_plus_the_longest_chain_waiting_for_it():
    chain = steps(("a", 10, ()), ("b", 5, ("a",)), ("c", 20, ("b",)), ("d", 1, ("a",)), ("e", 30, ()))
    assert runner.work_ahead(chain) == {"a": 35, "b": 25, "c": 20, "d": 1, "e": 30}


def test_the_longest_chain_of_work_starts_first_and_a_step_waits_for_its_after():
    """part 7 reads part 3's metrics and part 8 part 7's head; one at a time, so the order is the start order."""
    started = []
    course = steps(("part3", 100, ()), ("part7", 30, ("part3",)), ("part8", 40, ("part7",)), ("cnn", 120, ()),
                   ("quick", 5, ()))
    finished = [step.module for step, _ in runner.as_finished(course, 1, lambda step: started.append(step.module))]
    assert started == finished == ["part3", "cnn", "part7", "part8", "quick"]


def test_steps_run_side_by_side_but_not_before_what_they_wait_for():
    """With two jobs, a and b run at once (each waits to see the other start), c only after both."""
    events, lock = [], threading.Lock()
    began = {name: threading.Event() for name in "abc"}

    def launch(step):
        with lock:
            events.append(f"start {step.module}")
        began[step.module].set()
        partner = {"a": "b", "b": "a"}.get(step.module)
        overlapped = began[partner].wait(timeout=60) if partner else None  # a deadlock guard, not a time limit
        with lock:
            events.append(f"end {step.module}")
        return overlapped

    results = dict((step.module, outcome) for step, outcome in
                   runner.as_finished(steps(("a", 2, ()), ("b", 1, ()), ("c", 9, ("a", "b"))), 2, launch))
    assert results == {"a": True, "b": True, "c": None}
    assert events[:2] == ["start a", "start b"] and events[-2:] == ["start c", "end c"]


def test_a_step_waiting_for_one_that_is_not_run_starts_at_once():
    started = []
    list(runner.as_finished(steps(("part8", 40, ("part7",)),), 2, lambda step: started.append(step.module)))
    assert started == ["part8"]


def test_side_by_side_experiments_get_one_thread_each_and_the_benchmarks_run_last_on_the_default(
        tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    calls = []
    monkeypatch.setattr(runner, "run", lambda module, out, seed, options, threads:
                        calls.append((module, threads))
                        or runner.StepRun(module != "experiments.part4_weights", 1.0, 10**8))
    monkeypatch.setattr(report, "build", lambda results: results / "index.html")
    with pytest.raises(SystemExit, match="1 step\\(s\\) failed: experiments.part4_weights"):
        runner.main(["--only", "part3_mlp", "part4_weights", "part7_features", "--jobs", "2"])
    assert sorted(calls[:3]) == [(f"experiments.{name}", 1) for name in ("part3_mlp", "part4_weights",
                                                                          "part7_features")]
    assert calls.index(("experiments.part3_mlp", 1)) < calls.index(("experiments.part7_features", 1))
    assert calls[3] == ("benchmarks", None)
    printed = capsys.readouterr().out
    assert "[4/4] benchmarks ... ok in 1 s, peak 100 MB" in printed
    assert "experiments.part4_weights ... FAILED in 1 s, peak 100 MB (see results/part4_weights/run.log)" in printed
    assert "4 steps in " in printed and ", 2 at a time" in printed
    assert set(json.loads((tmp_path / "results/run_table.json").read_text())) == {
        "experiments.part3_mlp", "experiments.part4_weights", "experiments.part7_features", "benchmarks"}


def test_one_job_leaves_the_threads_to_the_default(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    calls = []
    monkeypatch.setattr(runner, "run", lambda module, out, seed, options, threads:
                        calls.append(threads)
                        or runner.StepRun(True, 0.0, 0))
    monkeypatch.setattr(report, "build", lambda results: results / "index.html")
    runner.main(["--only", "part3_mlp", "--jobs", "1"])
    assert calls == [None, None]


def test_jobs_must_be_at_least_one(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit):
        runner.main(["--jobs", "0"])
    assert "--jobs must be at least 1, got 0" in capsys.readouterr().err


@pytest.mark.parametrize("threads", [1, None])
def test_a_child_sees_its_thread_limits_and_the_project_on_its_path(monkeypatch, threads):
    for name in runner.THREAD_LIMITS:
        monkeypatch.setenv(name, "7")
    environment = runner.child_environment(threads)
    assert {environment[name] for name in runner.THREAD_LIMITS} == {"7" if threads is None else "1"}
    assert environment["PYTHONPATH"].split(os.pathsep)[0] == str(Path(runner.__file__).resolve().parents[1])


def test_the_course_s_after_names_are_experiments_that_come_before():
    """So that no two steps wait for each other."""
    names = [experiment.name for experiment in runner.EXPERIMENTS]
    for experiment in runner.EXPERIMENTS:
        assert all(names.index(name) < names.index(experiment.name) for name in experiment.after), experiment.name
    after = {experiment.name: experiment.after for experiment in runner.EXPERIMENTS}
    assert after["part7_features"] == ("part3_mlp",)
    assert after["part8_gradients"] == after["part9_guided_backprop"] == ("part7_features",)
