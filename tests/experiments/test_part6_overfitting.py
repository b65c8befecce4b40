"""Part 6: finding a unit that copies a training image, and a quick run."""
import json

import numpy as np

from conftest import require_data
from experiments import part6_overfitting
from experiments.common import faces


def test_memorization_finds_a_unit_that_copies_a_training_image():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((20, 16)).astype(np.float32)
    model = faces.make_mlp(16, 4, 2, rng)
    model.layers[0].weight.data[2] = 3 * x[7]
    best, correlation = part6_overfitting.memorization(model, x)
    assert best[2] == 7 and correlation[2] > 0.999
    assert np.all(np.abs(np.delete(correlation, 2)) < 0.99)


def test_quick_run_reports_each_size(tmp_path):
    require_data("facescrub/images")
    part6_overfitting.main(["--quick", "--out", str(tmp_path)])
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert [row["hidden"] for row in metrics["sizes"]] == list(part6_overfitting.HIDDEN_SIZES)
    assert all(row["gap"] == row["train_accuracy"] - row["val_accuracy"] for row in metrics["sizes"])
    assert {"overfitting.png", "memorizing_units.png", "summary.md"} <= {p.name for p in tmp_path.iterdir()}
