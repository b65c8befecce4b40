"""Seed 000 part 1: the handout network holds the snapshot's weights, and a quick run of the script."""
import json
import math

import numpy as np

import tinynet as tn
from conftest import require_data
from experiments import part1_mnist
from experiments.common.mnist import MNIST_FILE, SNAPSHOT_FILE, handout_network


def test_handout_network_computes_tanh_x_w0_plus_b0_then_w1_b1():
    rng = np.random.default_rng(0)
    snapshot = {"W0": rng.standard_normal((784, 300)), "b0": rng.standard_normal(300),
                "W1": rng.standard_normal((300, 10)), "b1": rng.standard_normal(10)}
    snapshot = {name: value.astype(np.float32) for name, value in snapshot.items()}
    x = rng.random((5, 784)).astype(np.float32)
    expected = np.tanh(x @ snapshot["W0"] + snapshot["b0"]) @ snapshot["W1"] + snapshot["b1"]
    logits = handout_network(snapshot)(tn.Tensor(x)).data
    np.testing.assert_allclose(logits, expected, rtol=1e-4, atol=1e-4)


def test_summed_nll_is_the_sum_over_images():
    logits, labels = tn.Tensor(np.log([[0.5, 0.5], [0.25, 0.75]])), np.array([0, 1])
    assert part1_mnist.summed_nll(logits, labels).item() == np.float32(-np.log(0.5) - np.log(0.75))


def test_strongest_units_pick_the_largest_weight_into_each_digit():
    output_weights = np.zeros((10, 300))
    output_weights[np.arange(10), np.arange(10) * 7] = 1.0
    assert part1_mnist.strongest_units(output_weights).tolist() == list(range(0, 70, 7))


def test_quick_run_trains_from_the_snapshot_and_writes_figures(tmp_path):
    require_data(MNIST_FILE), require_data(SNAPSHOT_FILE)
    part1_mnist.main(["--quick", "--out", str(tmp_path), "--seed", "2"])
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["test_accuracy"] > metrics["initial_test_accuracy"]
    assert metrics["curves"]["step"] == [0, 10, 20] and len(metrics["shown_unit_output_weights"]) == 10
    assert {"digits.png", "learning_curves.png", "hidden_units.png", f"hidden_unit_{part1_mnist.SHOWN_UNIT}.png",
            "summary.md", "config.json", "memory_report.txt", "health.png"} <= {p.name for p in tmp_path.iterdir()}
    health = metrics["health"]
    assert health["steps"] == list(range(20)) and list(health["activations"]) == ["layers.1 (Tanh)"]
    assert health["classes"] == 10 and health["initial_loss"] < math.log(10)  # it starts from trained weights
    memory = (tmp_path / "memory_report.txt").read_text()
    assert memory.startswith("One training step's graph: 500 images") and "Linear" in memory and "Tanh" in memory
