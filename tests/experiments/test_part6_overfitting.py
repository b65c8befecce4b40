"""Part 6: finding a unit that copies a training image, and a quick run."""
import json

import numpy as np

from conftest import require_data
from experiments import part6_overfitting
from experiments.common import faces


def test_memorization_finds_a_unit_that_copies_a_training_image():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((20, 16)).astype(np.float32)
    untrained = faces.make_mlp(16, 4, 2, np.random.default_rng(1))
    model = faces.make_mlp(16, 4, 2, np.random.default_rng(1))
    model.layers[0].weight.data[2] += 3 * x[7]
    best, correlation = part6_overfitting.memorization(model, untrained, x)
    assert best[2] == 7 and correlation["change"][2] > 0.999 and correlation["weights"][2] > 0.9
    np.testing.assert_allclose(np.delete(correlation["weights"], 2), np.delete(correlation["untrained"], 2))


def test_row_correlations_match_numpy():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((2, 5, 9))
    expected = [np.corrcoef(u, v)[0, 1] for u, v in zip(a, b)]
    np.testing.assert_allclose(part6_overfitting.row_correlations(a, b), expected, rtol=1e-10)


def test_the_untrained_network_is_the_one_fit_starts_from():
    x = np.random.default_rng(0).standard_normal((12, 6)).astype(np.float32)
    splits = {name: (x, np.arange(12) % 3) for name in faces.SPLITS}
    model, _ = faces.fit(splits, 3, faces.Setting(hidden=5, lr=1e-3, l2=0.0, steps=0), seed=4)
    untrained = faces.make_mlp(6, 5, 3, np.random.default_rng(4))
    np.testing.assert_array_equal(model.layers[0].weight.data, untrained.layers[0].weight.data)


def test_quick_run_reports_each_size(tmp_path):
    require_data("facescrub/images")
    part6_overfitting.main(["--quick", "--out", str(tmp_path)])
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert [row["hidden"] for row in metrics["sizes"]] == list(part6_overfitting.HIDDEN_SIZES)
    assert all(row["gap"] == row["train_accuracy"] - row["val_accuracy"] for row in metrics["sizes"])
    written = {p.name for p in tmp_path.iterdir()}
    assert {"overfitting.png", "memorizing_units.png", "summary.md", "health.png"} <= written
    assert metrics["health"]["shapes"]["layers.0.weight"][0] == part6_overfitting.HIDDEN_SIZES[-1]
