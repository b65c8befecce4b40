"""Benchmark mode of the convolution chooser: timed with a fake clock, cached in a JSON file, off by default."""
import itertools
import json

import numpy as np
import pytest

import tinynet as tn
from tinynet import functional as F
from tinynet.kernels import conv_choice

SHAPES = ((2, 3, 9, 9), (4, 3, 5, 5))
SETTINGS = ((1, 1), ((2, 2), (2, 2)), (1, 1), 1)


@pytest.fixture(autouse=True)
def benchmark_state(monkeypatch, tmp_path):
    """Every test starts with benchmark mode as at import (TINYNET_CONV_BENCHMARK unset) and a cache in tmp_path."""
    monkeypatch.setattr(conv_choice, "_benchmark", {"enabled": None, "cache_path": None, "choices": None})
    monkeypatch.delenv("TINYNET_CONV_BENCHMARK", raising=False)
    monkeypatch.setenv("TINYNET_CACHE", str(tmp_path))


def fake_clock(monkeypatch, seconds_per_algorithm):
    """A clock that makes each timed run of the algorithms (in ALGORITHMS' order, BENCHMARK_RUNS runs each) last
    the given seconds: each run reads the clock twice."""
    runs = [seconds for seconds in seconds_per_algorithm for _ in range(conv_choice.BENCHMARK_RUNS)]
    readings = itertools.chain.from_iterable((0.0, seconds) for seconds in runs)
    monkeypatch.setattr(conv_choice, "clock", lambda: next(readings))


def cache_file(tmp_path):
    return tmp_path / "conv_choices.json"


def test_benchmark_mode_is_off_by_default_and_on_by_the_environment_or_the_call(monkeypatch):
    assert not conv_choice.benchmark_enabled()
    monkeypatch.setattr(conv_choice, "_benchmark", {"enabled": None, "cache_path": None, "choices": None})
    monkeypatch.setenv("TINYNET_CONV_BENCHMARK", "1")
    assert conv_choice.benchmark_enabled()
    monkeypatch.delenv("TINYNET_CONV_BENCHMARK")
    assert conv_choice.benchmark_enabled()  # the environment is read once, not at every convolution
    tn.conv_benchmark(False)
    assert not conv_choice.benchmark_enabled()
    tn.conv_benchmark()
    assert conv_choice.benchmark_enabled()


@pytest.mark.parametrize("seconds, fastest", [((0.5, 0.25), "fft"), ((0.25, 0.5), "im2col")])
def test_the_fastest_timed_algorithm_runs_and_says_so(seconds, fastest, monkeypatch, tmp_path):
    assert list(conv_choice.ALGORITHMS)[:2] == ["im2col", "fft"]
    fake_clock(monkeypatch, seconds)
    tn.conv_benchmark(True)
    choice = tn.conv_algorithm(*SHAPES, padding=2)
    assert choice.algorithm == fastest
    assert choice.reason == (f"{fastest}: timed: forward and both gradients im2col {seconds[0] * 1e3:g} ms, "
                             f"fft {seconds[1] * 1e3:g} ms (the fastest runs)")
    assert tn.conv_algorithm(*SHAPES, padding=2) == choice  # timed once: the fake clock has no more readings
    saved = json.loads(cache_file(tmp_path).read_text())
    assert saved["format"] == conv_choice.CACHE_FORMAT and saved["machine"] == conv_choice.this_machine()
    assert saved["seconds"] == {conv_choice.settings_key(SHAPES + SETTINGS + ("float32",)):
                                {"im2col": seconds[0], "fft": seconds[1]}}


def test_only_the_algorithms_that_can_run_are_timed(monkeypatch):
    fake_clock(monkeypatch, [0.5])
    tn.conv_benchmark(True)
    choice = tn.conv_algorithm(*SHAPES, stride=2)
    assert choice.algorithm == "im2col" and "fft" not in choice.reason
    fake_clock(monkeypatch, [0.5, 0.75, 0.25])  # a 3x3 kernel: every algorithm can run it
    choice = tn.conv_algorithm((2, 3, 9, 9), (4, 3, 3, 3), padding=1)
    assert list(conv_choice.ALGORITHMS) == ["im2col", "fft", "winograd"]
    assert choice.algorithm == "winograd" and "im2col 500 ms, fft 750 ms, winograd 250 ms" in choice.reason


def test_conv2d_times_its_own_arrays_and_a_later_run_reads_the_cache(monkeypatch, tmp_path):
    timed = []
    original = conv_choice.seconds_of
    monkeypatch.setattr(conv_choice, "seconds_of",
                        lambda plan, x, *rest: (timed.append(x), original(plan, x, *rest))[1])
    fake_clock(monkeypatch, (0.5, 0.25))
    tn.conv_benchmark(True)
    x = tn.Tensor(np.random.default_rng(0).standard_normal(SHAPES[0]), requires_grad=True)
    with conv_choice.recorded_conv_choices() as choices:
        F.conv2d(x, np.ones(SHAPES[1]), padding=2).sum().backward()
    assert [choice.algorithm for _, _, choice in choices] == ["fft"]
    assert len(timed) == 2 * conv_choice.BENCHMARK_RUNS and all(array is x._data for array in timed)
    monkeypatch.setattr(conv_choice, "_benchmark", {"enabled": True, "cache_path": None, "choices": None})  # a new run
    monkeypatch.setattr(conv_choice, "clock", None)  # nothing is timed again
    assert tn.conv_algorithm(*SHAPES, padding=2, dtype=np.float64).algorithm == "fft"


def test_forcing_wins_over_benchmark_mode(monkeypatch):
    monkeypatch.setattr(conv_choice, "clock", None)
    tn.conv_benchmark(True)
    with tn.force_conv_algorithm("im2col"):
        assert "forced" in tn.conv_algorithm(*SHAPES, padding=2).reason


@pytest.mark.parametrize("content, why", [
    ("{not json", "Expecting property name"),
    ('{"format": "something else", "machine": "?", "seconds": {}}', "not written by this version"),
    (None, "'winograd_42' cannot run"),
    (None, "'fft' cannot run"),
    (None, "is not a time in seconds"),
    ('[1, 2]', "'list' object has no attribute 'get'")])
def test_a_corrupt_or_foreign_cache_is_ignored_with_a_warning_and_replaced(content, why, monkeypatch, tmp_path):
    if content is None:  # this machine's format, with a wrong entry
        key = conv_choice.settings_key(SHAPES + (SETTINGS[0] if why != "'fft' cannot run" else (2, 2),) + SETTINGS[1:]
                                       + ("float32",))
        times = {"winograd_42" if "winograd" in why else "fft": 0.1 if "time" not in why else -1.0}
        content = json.dumps({"format": conv_choice.CACHE_FORMAT, "machine": conv_choice.this_machine(),
                              "seconds": {key: times}})
    cache_file(tmp_path).write_text(content)
    fake_clock(monkeypatch, (0.25, 0.5))
    tn.conv_benchmark(True)
    with pytest.warns(UserWarning, match=f"ignoring the conv choices cache .*{why}"):
        assert tn.conv_algorithm(*SHAPES, padding=2).algorithm == "im2col"
    assert json.loads(cache_file(tmp_path).read_text())["format"] == conv_choice.CACHE_FORMAT


def test_an_unwritable_cache_warns_and_the_choice_still_runs(monkeypatch, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    fake_clock(monkeypatch, (0.25, 0.5))
    tn.conv_benchmark(True, cache_path=blocker / "conv_choices.json")
    with pytest.warns(UserWarning, match="could not write the conv choices cache"):
        assert tn.conv_algorithm(*SHAPES, padding=2).algorithm == "im2col"


def test_a_write_that_fails_midway_warns_and_leaves_no_temporary_file(monkeypatch, tmp_path):
    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    fake_clock(monkeypatch, (0.25, 0.5))
    monkeypatch.setattr(conv_choice.json, "dump", full_disk)
    tn.conv_benchmark(True)
    with pytest.warns(UserWarning, match="could not write the conv choices cache.*No space left"):
        assert tn.conv_algorithm(*SHAPES, padding=2).algorithm == "im2col"
    assert list(tmp_path.iterdir()) == []
