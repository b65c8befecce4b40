"""Part 4: the weight images and a quick run."""
import json

import numpy as np
import pytest

from conftest import require_data
from experiments import part4_weights
from experiments.common import faces


def test_as_images_reshapes_rows_and_averages_channels():
    rows = np.arange(2 * 4 * 3, dtype=float).reshape(2, 12)
    np.testing.assert_allclose(faces.as_images(rows, 2), rows.reshape(2, 2, 2, 3).mean(axis=3))
    np.testing.assert_allclose(faces.as_images(rows[:, :4], 2), rows[:, :4].reshape(2, 2, 2))
    with pytest.raises(ValueError, match="rows of 4 or 12"):
        faces.as_images(rows[:, :5], 2)


def test_mean_face_correlation_is_one_for_the_actor_templates():
    rng = np.random.default_rng(0)
    x = rng.random((12, 3, 3))
    y = np.arange(12) % 3
    templates = np.stack([x[y == k].mean(axis=0) - x.mean(axis=0) for k in range(3)])
    np.testing.assert_allclose(part4_weights.mean_face_correlation(templates, x, y), 1)
    assert np.all(part4_weights.mean_face_correlation(-templates, x, y) < -0.99)


def test_quick_run_draws_six_weight_images(tmp_path):
    require_data("facescrub/images")
    part4_weights.main(["--quick", "--out", str(tmp_path)])
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert len(metrics["per_actor_test_accuracy"]) == len(metrics["weight_vs_mean_face_correlation"]) == 6
    assert metrics["architecture"].startswith("1024 inputs -> Linear(6)")
    assert {"weights.png", "learning_curves.png", "summary.md"} <= {p.name for p in tmp_path.iterdir()}
