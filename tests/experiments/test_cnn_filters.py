"""Seed 004's filter CNN: the seed's filter tiling, and a quick smoke run."""
import json
import tracemalloc

import numpy as np

from conftest import require_data
from experiments import cnn_filters
from experiments.common.training import EVAL_BATCH_SIZE, predict


def test_cnn_filters_quick_run(tmp_path):
    require_data("facescrub/images")
    cnn_filters.main(["--quick", "--out", str(tmp_path)])
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["train_images"] == 8 and 0 <= metrics["test_accuracy"] <= 1
    written = {p.name for p in tmp_path.iterdir()}
    assert {"filters_conv1.png", "filters_conv2.png", "occlusion.png", "summary.md", "memory_report.txt",
            "health.png"} <= written
    assert metrics["health"]["shapes"]["layers.0.weight"] == [32, 1, 10, 10] and len(metrics["health"]["steps"]) == 1
    memory = json.loads((tmp_path / "memory_report.json").read_text())
    assert {row["op"] for row in memory["rows"]} >= {"Conv2d", "MaxPool2d", "Linear"}
    assert memory["saved_bytes"] == metrics["memory_report"]["saved_bytes"] > 0


def test_filter_grid_tiles_every_filter_pair_with_gaps():
    weight = np.arange(2 * 3 * 2 * 2, dtype=np.float64).reshape(2, 3, 2, 2)  # 6 filters -> a 3x3 grid
    grid = cnn_filters.filter_grid(weight, padding=1)
    assert grid.shape == (8, 8) and grid.min() == 0 and grid.max() == 1
    np.testing.assert_allclose(grid[:2, :2], weight[0, 0] / weight.max())
    np.testing.assert_allclose(grid[3:5, 0:2], weight[1, 0] / weight.max())  # 4th filter: output 1, input 0
    assert np.all(grid[2, :] == 0) and np.all(grid[:, 2] == 0)


def traced_peak(function, *args):
    """(function(*args), the most bytes tracemalloc traced above the start while it ran)."""
    tracemalloc.start()
    try:
        return function(*args), tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_evaluation_batches_give_the_same_scores_with_a_lower_peak():
    """Issue 30: the 138 training crops in one batch held two of conv1's (138, 32, 91, 91) activations (146 MB each:
    its output plus bias, and ReLU's) and im2col columns at once; in batches of cnn_filters.EVAL_BATCH_SIZE less
    than one and a half of them, and the scores are the same (bit for bit with OpenBLAS's SkylakeX kernels; with
    its Haswell kernels, OPENBLAS_CORETYPE=Haswell, a row of a product rounds by where it falls in the batch:
    scores then differ by up to 5e-6 of themselves)."""
    model = cnn_filters.make_cnn(np.random.default_rng(0))
    x = np.random.default_rng(1).random((138, 1, 91, 91), dtype=np.float32)
    whole = predict(model, x, EVAL_BATCH_SIZE)
    batched, batched_peak = traced_peak(predict, model, x, cnn_filters.EVAL_BATCH_SIZE)
    np.testing.assert_allclose(batched, whole, rtol=1e-5, atol=0)
    assert batched_peak < 1.5 * (138 * 32 * 91 * 91 * 4)
