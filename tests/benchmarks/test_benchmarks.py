"""The benchmark code on tiny sizes: it runs, its references agree with tinynet, and it notices when they do not."""
import json
import time
import tracemalloc
import weakref
from datetime import datetime

import numpy as np
import pytest

from benchmarks import __main__ as bench
from benchmarks import cases, latest_run, memory, numpy_reference, per_example, timing
from tinynet.kernels.conv import conv2d_backward_reference, conv2d_reference


def test_quick_run_prints_and_writes_a_row_for_every_case_and_all_implementations_agree(capsys, tmp_path,
                                                                                        monkeypatch):
    loads = iter([1.25, 3.5])  # the load average before the run, then after it
    monkeypatch.setattr(bench, "load_average", lambda: next(loads))
    assert bench.main(["--quick", "--no-torch", "--budget", "0", "--rounds", "2", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "GFLOP/s" in printed and "RESULTS DISAGREE" not in printed
    assert "load average (1 min) before: 1.25" in printed.splitlines()[0] and "after: 3.50" in printed
    names = [case.name for case in cases.all_cases(quick=True, with_torch=False)]
    assert len(names) == 16 and all(f"| {name} |" in printed for name in names)
    written = json.loads((tmp_path / "metrics.json").read_text())
    assert set(written) == {"machine", "started", "command", "rounds", "budget_seconds", "load_before", "load_after",
                            "cases", "round_seconds", "targets_missed"}
    assert (written["load_before"], written["load_after"], written["rounds"]) == (1.25, 3.5, 2)
    assert datetime.fromisoformat(written["started"]).utcoffset().total_seconds() == 0
    assert [row["case"] for row in written["cases"]] == names and written["cases"][0]["torch ms"] == "-"
    assert any("matmul" in line for line in written["machine"])
    for row in written["cases"]:
        for name in ("tinynet", "numpy"):
            assert 0 < float(row[f"{name} min ms"]) <= float(row[f"{name} ms"]), row
            assert len(written["round_seconds"][row["case"]][name]) == 2


def test_only_runs_the_cases_whose_name_contains_the_text(capsys):
    assert bench.main(["--quick", "--no-torch", "--budget", "0", "--only", "CNN", "--only", "MLP"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")][1:]  # after the header
    assert [row.split()[1] for row in rows] == ["MLP", "MLP", "seed-004"]


def test_a_quick_run_has_the_per_op_cases_at_their_one_size():
    names = [case.name for case in cases.all_cases(quick=True, with_torch=False) if "per-op" in case.name]
    assert names == ["MLP 10-5-2 tanh SGD step, batch 4 (per-op overhead)",
                     "elementwise a * b (4, 5), no graph (per-op overhead)",
                     "elementwise a * b (4, 5), fwd + bwd of its sum (per-op overhead)"]


def test_calls_under_a_millisecond_are_timed_in_loops_as_many_as_the_budget_holds():
    calls = []
    seconds = timing.median_seconds(lambda: calls.append(None), budget=0.05)
    assert seconds < 1e-5 < timing.MIN_SAMPLE_SECONDS and len(calls) > 1000


def test_longer_calls_are_timed_one_by_one():
    calls = []
    timing.median_seconds(lambda: calls.append(time.sleep(timing.MIN_SAMPLE_SECONDS)), budget=0)
    assert len(calls) == 3
    timing.median_seconds(lambda: calls.append(time.sleep(timing.MIN_SAMPLE_SECONDS)), budget=10, max_repeats=5)
    assert len(calls) == 3 + 5


def test_numpy_reference_cnn_step_matches_tinynet_over_two_steps():
    rng = np.random.default_rng(0)
    case = cases.cnn_case(2, 9, (2, 3), 4, rng, None)
    tinynet, numpy_ = case.runners["tinynet"], case.runners["numpy"]
    for _ in range(2):  # the second step starts from the updated weights
        assert bench.worst_difference(numpy_(), tinynet()) < 1e-5



def test_the_numpy_cnn_step_makes_the_columns_of_a_few_images_at_a_time():
    """Seed 004's conv2 columns are 27 MB an image: four at once, not the batch's 433 MB."""
    assert numpy_reference.image_chunks((16, 32, 46, 46), (10, 10), np.float32) == [
        slice(0, 4), slice(4, 8), slice(8, 12), slice(12, 16)]
    assert numpy_reference.image_chunks((3, 64, 600, 600), (10, 10), np.float32) == [
        slice(0, 1), slice(1, 2), slice(2, 3)]  # one image at least, even above the budget


def test_the_numpy_cnn_step_by_chunks_matches_tinynet_and_holds_one_chunk_of_columns(monkeypatch):
    """One image a chunk: the same step as tinynet's, and a peak below the whole batch's conv2 columns."""
    monkeypatch.setattr(numpy_reference, "COLUMNS_BUDGET_BYTES", 1)
    batch, size, channels, kernel = 16, 32, (8, 8), 7
    case = cases.cnn_case(batch, size, channels, kernel, np.random.default_rng(0), None)
    tinynet, numpy_ = case.runners["tinynet"], case.runners["numpy"]
    for _ in range(2):
        assert bench.worst_difference(numpy_(), tinynet()) < 1e-5
    conv2_columns = batch * channels[0] * kernel ** 2 * (size // 2) ** 2 * 4  # float32
    tracemalloc.start()
    numpy_()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < conv2_columns


def test_each_case_is_let_go_before_the_next_is_made(monkeypatch, capsys):
    """One case's arrays at a time: the seed-004 CNN case's 0.5 GB must be gone when the face ResNet's is made."""
    first_case_gone = []

    class Arrays:  # what a case's runners hold
        pass

    def two_cases(**options):
        arrays = Arrays()
        alive = weakref.ref(arrays)
        yield cases.Case("first", None, {"tinynet": lambda held=arrays: (np.ones(2),), "numpy": lambda: (np.ones(2),)})
        del arrays
        first_case_gone.append(alive() is None)
        yield cases.Case("second", None, {"tinynet": lambda: (np.ones(2),), "numpy": lambda: (np.ones(2),)})

    monkeypatch.setattr(bench.benchmark_cases, "all_cases", two_cases)
    assert bench.main(["--no-torch", "--budget", "0"]) == 0
    assert first_case_gone == [True] and "| second |" in capsys.readouterr().out

def test_a_disagreement_is_reported():
    case = cases.Case("broken", None, {"tinynet": lambda: (np.ones(3),), "numpy": lambda: (np.zeros(3),)})
    seconds, difference = bench.measure(case, budget=0, rounds=1)
    assert set(seconds) == {"tinynet", "numpy"} and difference == 1.0


def test_rounds_interleave_the_implementations_and_rotate_their_order():
    timed = []
    seconds = timing.interleaved_rounds({"a": "A", "b": "B", "c": "C"}, 4, lambda run: timed.append(run) or len(timed))
    assert "".join(timed) == "ABC" "BCA" "CAB" "ABC"
    assert seconds == {"a": [1, 6, 8, 10], "b": [2, 4, 9, 11], "c": [3, 5, 7, 12]}
    assert timing.median_and_minimum({"a": [3, 1, 2], "b": [5, 4]}) == ({"a": 2, "b": 4.5}, {"a": 1, "b": 4})


def test_a_case_is_measured_in_rounds_each_timing_every_implementation_once():
    calls = []

    def runner(name):  # a call of at least MIN_SAMPLE_SECONDS is one sample: one call a round with no budget
        return lambda: calls.append(name) or time.sleep(timing.MIN_SAMPLE_SECONDS) or (np.ones(2),)
    case = cases.Case("two", None, {"tinynet": runner("t"), "numpy": runner("n")})
    seconds, _ = bench.measure(case, budget=0, rounds=3)
    assert "".join(calls) == "tn" "tn" "nt" "tn"  # the untimed warm-up, then three rounds
    assert [len(times) for times in seconds.values()] == [3, 3]
    assert min(min(times) for times in seconds.values()) >= timing.MIN_SAMPLE_SECONDS


def test_the_budget_is_split_over_the_rounds(monkeypatch):
    budgets = []
    monkeypatch.setattr(bench, "median_seconds", lambda run, budget, *limits: budgets.append(budget) or 1.0)
    case = cases.Case("one", None, {"tinynet": lambda: (np.ones(2),)})
    assert bench.measure(case, budget=0.6, rounds=4)[0] == {"tinynet": [1.0] * 4}
    assert budgets == [pytest.approx(0.15)] * 4


README_TEXT = f"""# Title

Before the section.

{latest_run.START}

old table

{latest_run.END}

After the section.
"""


def test_the_latest_run_section_is_replaced_and_nothing_outside_its_markers():
    replaced = latest_run.replace_section(README_TEXT, "new table\n")
    before, after = README_TEXT.split("old table")
    assert replaced == before.rstrip("\n") + "\n\nnew table\n\n" + after.lstrip("\n")
    assert latest_run.replace_section(replaced, "new table\n") == replaced  # the markers are still there


@pytest.mark.parametrize("text", [README_TEXT.replace(latest_run.START, ""), README_TEXT.replace(latest_run.END, ""),
                                  README_TEXT + latest_run.END + "\n",
                                  README_TEXT.replace(latest_run.START, "X").replace(latest_run.END, latest_run.START)
                                  .replace("X", latest_run.END)])
def test_missing_repeated_or_swapped_markers_are_an_error_that_names_them(text):
    with pytest.raises(ValueError, match="latest-run: start.*latest-run: end.*put them back"):
        latest_run.replace_section(text, "new table\n")


def test_the_benchmarks_readme_has_its_latest_run_section():
    latest_run.section_bounds(latest_run.README.read_text())


def test_update_readme_writes_the_run_between_the_markers(tmp_path, capsys):
    readme = tmp_path / "README.md"
    readme.write_text(README_TEXT)
    assert bench.main(["--quick", "--no-torch", "--budget", "0", "--only", "MLP 10-5-2", "--update-readme",
                       str(readme), "--markdown-out", str(tmp_path / "run.md")]) == 0
    block = (tmp_path / "run.md").read_text()
    assert block.startswith("`") and "python -m benchmarks --quick" in block.splitlines()[0]
    assert "- Run at " in block and "| MLP 10-5-2 tanh SGD step" in block and "- load average (1 min) after" in block
    assert readme.read_text() == latest_run.replace_section(README_TEXT, block)


def test_update_readme_without_markers_stops_before_running_anything(tmp_path, capsys):
    readme = tmp_path / "README.md"
    readme.write_text("# no markers\n")
    with pytest.raises(SystemExit) as stopped:
        bench.main(["--quick", "--no-torch", "--update-readme", str(readme)])
    assert stopped.value.code == 2 and "latest-run: start" in capsys.readouterr().err
    assert readme.read_text() == "# no markers\n"


def test_the_command_line_names_the_thread_settings_it_ran_with(monkeypatch):
    for name in latest_run.TIMING_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert latest_run.command_line(["--only", "MLP 784"]) == "OMP_NUM_THREADS=1 python -m benchmarks --only 'MLP 784'"


def test_numpy_reference_conv_matches_the_loop_reference_with_groups_dilation_and_uneven_padding():
    rng = np.random.default_rng(0)
    x, weight = rng.standard_normal((2, 4, 7, 6)), rng.standard_normal((6, 2, 3, 2))
    settings = ((2, 1), ((1, 2), (0, 1)), (1, 2), 2)  # stride, pads, dilation, groups
    out, columns = numpy_reference.conv2d_forward(x, weight, *settings)
    np.testing.assert_allclose(out, conv2d_reference(x, weight, *settings), rtol=1e-12)
    grad_out = rng.standard_normal(out.shape)
    grads = numpy_reference.conv2d_backward(grad_out, columns, x.shape, weight, *settings)
    for grad, expected in zip(grads, conv2d_backward_reference(grad_out, x, weight, *settings)):
        np.testing.assert_allclose(grad, expected, rtol=1e-12, atol=1e-12)


def test_alexnet_shapes_follow_the_model():
    shapes = [(spec.x_shape, spec.weight_shape, spec.pads) for spec in cases.alexnet_convs(1)]
    assert shapes[0] == ((1, 3, 227, 227), (96, 3, 11, 11), ((4, 4), (4, 4)))
    assert shapes[1] == ((1, 96, 28, 28), (256, 48, 5, 5), ((2, 2), (2, 2)))
    assert [s[0][2] for s in shapes[2:]] == [13, 13, 13] and shapes[4][1] == (256, 192, 3, 3)


def test_torch_references_agree_with_tinynet_when_torch_is_installed():
    pytest.importorskip("torch")
    for case in cases.all_cases(quick=True, with_torch=True):
        first = {name: run() for name, run in case.runners.items()}
        assert bench.worst_difference(first["torch"], first["tinynet"]) < bench.TOLERANCE, case.name


def test_numpy_reference_face_resnet_input_gradient_matches_a_central_difference_in_float64():
    rng = np.random.default_rng(0)
    weights = {name: value.astype(np.float64) for name, value in cases.face_resnet_weights(rng, (4, 4, 8, 8)).items()}
    image, direction = rng.uniform(0, 255, (2, 1, 3, 150, 150))
    grad_out = rng.standard_normal((1, 128))
    descriptors, grad_image = numpy_reference.face_resnet_input_gradient(weights, image, grad_out)
    np.testing.assert_array_equal(descriptors, numpy_reference.face_resnet_forward(weights, image))
    eps = 1e-6
    plus, minus = (numpy_reference.face_resnet_forward(weights, image + sign * eps * direction) for sign in (1, -1))
    numeric = np.sum((plus - minus) * grad_out) / (2 * eps)
    assert np.sum(grad_image * direction) == pytest.approx(numeric, rel=1e-6)


def test_worst_difference_in_chunks_is_the_whole_arrays_relative_difference():
    rng = np.random.default_rng(0)
    results = [rng.standard_normal((7, 5)).astype(np.float32), np.float32(2.0)]
    expected = [results[0] + rng.standard_normal((7, 5)).astype(np.float32) * 1e-3, np.float32(2.5)]
    whole = max(np.max(np.abs(r.astype(np.float64) - e)) / np.max(np.abs(e.astype(np.float64)))
                for r, e in zip(results, expected))
    assert bench.worst_difference(results, expected, chunk=4) == whole
    assert bench.worst_difference([np.ones(3)], [np.ones((3, 1))]) == np.inf


def test_the_memory_benchmark_measures_every_variant_and_checkpointing_changes_no_gradient(capsys, tmp_path):
    memory.main(["--quick", "--repeats", "1", "--out", str(tmp_path)])
    rows = json.loads((tmp_path / "memory.json").read_text())
    assert [row["variant"] for row in rows] == ["plain", "conv blocks checkpointed", "saved in float16", "plain",
                                                "each block checkpointed", "saved in float16", "saved on disk",
                                                "plain", "saved in float16"]
    assert all(row["peak_bytes"] > 0 and row["seconds"] > 0 for row in rows)
    assert all(row["gradient_difference"] == 0 for row in rows if row["variant"] != "saved in float16")
    plain, checkpointed = rows[0], rows[1]  # the CNN step: its convolutions save their inputs for the weights' gradient
    assert checkpointed["saved_bytes"] < plain["saved_bytes"] and checkpointed["held_bytes"] < plain["held_bytes"]
    plain, half = rows[7:]  # the face ResNet's weight gradient: its convolutions save float64 inputs
    assert half["saved_bytes"] < plain["saved_bytes"] / 2 and half["held_bytes"] < plain["held_bytes"]
    assert 0 < half["gradient_difference"] < 1e-2
    assert "| seed-004 CNN SGD step | conv blocks checkpointed |" in capsys.readouterr().out


def test_per_example_gradients_quick_run_agrees_with_the_loop(capsys, tmp_path):
    assert per_example.main(["--quick", "--no-torch", "--rounds", "1", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "vmap is" in printed and "RESULTS DISAGREE" not in printed
    rows = json.loads((tmp_path / "per_example.json").read_text())
    assert [set(row["median_seconds"]) for row in rows] == [{"tinynet loop", "tinynet vmap"}] * 2
    assert all(row["difference_from_loop"]["tinynet vmap"] < 1e-5 for row in rows)


def test_per_example_gradients_of_pytorch_agree_when_torch_is_installed():
    pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    for name, model, x, labels in per_example.cases(rng, quick=True):
        reference = per_example.tinynet_loop(model, x, labels)
        for run in per_example.torch_runners(model, x, labels):
            assert per_example.worst_difference(run(), reference) < 1e-4, name
