"""Seed 001's networks: parameter counts as the seed states them, and a quick smoke run."""
import json

import numpy as np

from conftest import require_data
from experiments import olivetti_cnn


def parameter_count(model):
    return sum(p.size for p in model.parameters())


def test_parameter_counts_match_the_seed():
    rng = np.random.default_rng(0)
    assert parameter_count(olivetti_cnn.make_fcnn(rng)) == 16393
    assert parameter_count(olivetti_cnn.make_cnn(rng)) == 3405


def test_quick_run_writes_figures_and_metrics(tmp_path):
    require_data("olivetti/olivetti_faces.npz")
    olivetti_cnn.main(["--quick", "--out", str(tmp_path), "--seed", "1"])
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["CNN"]["parameters"] == 3405 and len(metrics["CNN"]["heldout_folds"]) == 5
    assert {"learning_curves.png", "faces.png", "filters.png", "conv_maps.png", "pooled_maps.png",
            "summary.md", "config.json", "health_FCNN.png", "health_CNN.png"} <= {p.name for p in tmp_path.iterdir()}
    assert metrics["health"]["CNN"]["classes"] == 2 and list(metrics["health"]["CNN"]["activations"]) == [
        "layers.1 (ReLU)", "layers.5 (ReLU)"]
