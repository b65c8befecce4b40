"""Seed 002: the hand-written gradient against autodiff and finite differences, the hand Hessian against
tinynet's Hessian-vector product, the two-weight cost slice against the full cost, and a quick run of the script."""
import json
import math

import numpy as np
import pytest

import tinynet as tn
from conftest import require_data
from experiments import mnist_softmax as ms
from experiments.common.mnist import MNIST_FILE


def random_problem(seed=0, n=40, pixels=784, digits=10):
    """A small float64 problem: weights (784, 10), bias (10,), x (40, 784) in [0, 1), labels (40,)."""
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((pixels, digits)) * 0.1, rng.standard_normal(digits) * 0.1,
            rng.random((n, pixels)) * (rng.random((n, pixels)) < 0.3), rng.integers(0, digits, n))


def test_hand_gradient_equals_autodiff():
    weights, bias, x, labels = random_problem()
    hand_w, hand_b = ms.hand_gradients(weights, bias, x, labels)
    auto_w, auto_b = ms.autodiff_gradients(weights, bias, x, labels)
    assert auto_w.dtype == np.float64 and np.abs(hand_w).max() > 1
    np.testing.assert_allclose(hand_w, auto_w, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(hand_b, auto_b, rtol=1e-10, atol=1e-12)


def test_hand_gradient_equals_central_differences():
    weights, bias, x, labels = random_problem(seed=1)
    hand_w, _ = ms.hand_gradients(weights, bias, x, labels)
    rows, _ = ms.gradient_check(weights, bias, x, labels, np.random.default_rng(5))
    for row in rows:
        numeric = row["finite_differences"][1e-5]
        assert numeric == pytest.approx(hand_w[row["pixel"], row["digit"]], rel=1e-6, abs=1e-8)


def test_cost_is_stable_at_huge_logits():
    weights, bias, x, labels = random_problem(seed=2)
    assert np.isfinite(ms.cost(weights * 1e4, bias, x, labels))
    assert np.isfinite(ms.hand_gradients(weights * 1e4, bias, x, labels)[0]).all()


def test_gradient_table_reports_every_weight_and_step():
    weights, bias, x, labels = random_problem(seed=3)
    rows, (analytic, numeric, roundoff) = ms.gradient_check(weights, bias, x, labels, np.random.default_rng(0))
    table, worst = ms.gradient_table(rows)
    assert len(rows) == ms.CHECKED_WEIGHTS and set(worst) == set(ms.SWEEP_STEPS) and numeric.shape == (10, 6)
    assert worst[1e-5] < 1e-6 < worst[1e-1]  # truncation error shrinks with the step
    assert worst[1e-5] < 1e-6 < worst[1e-10]  # round-off grows as the step shrinks
    np.testing.assert_allclose(analytic, [row["autodiff"] for row in rows])
    assert table.count("\n") == ms.CHECKED_WEIGHTS + 2


def test_newton_cg_on_the_whole_model_lowers_the_cost_with_tinynets_hvp():
    weights, bias, x, labels = random_problem(seed=5, n=60)
    splits = {"train": (x, labels), "test": (x, labels)}
    start_loss, _ = ms.mean_cost_and_accuracy(weights, bias, x, labels)
    trained_weights, _, finals = ms.newton_cg(weights, bias, (x, labels), splits, iterations=3)
    assert trained_weights.shape == weights.shape and finals["hvp_calls"] > 0 and finals["images"] == 60
    assert finals["train_loss"] < 0.5 * start_loss


def test_weight_pair_matches_the_full_cost_and_gradient():
    weights, bias, x, labels = random_problem(seed=4)
    pixels, digit = (5, 700), 3
    pair = ms.WeightPair(weights, bias, x, labels, pixels, digit)
    moved = weights.copy()
    moved[pixels[0], digit], moved[pixels[1], digit] = 0.7, -1.3
    assert pair.cost(0.7, -1.3) == pytest.approx(ms.cost(moved, bias, x, labels) / len(labels), rel=1e-12)
    hand_w, _ = ms.hand_gradients(moved, bias, x, labels)
    np.testing.assert_allclose(pair.gradient(np.array([0.7, -1.3])), hand_w[list(pixels), digit] / len(labels),
                               rtol=1e-10)
    step = 1e-6
    numeric = np.stack([(pair.gradient(np.array([0.7, -1.3]) + e) - pair.gradient(np.array([0.7, -1.3]) - e))
                        / (2 * step) for e in np.eye(2) * step])
    np.testing.assert_allclose(pair.hessian(np.array([0.7, -1.3])), numeric, rtol=1e-5)
    np.testing.assert_allclose(pair.gradient(pair.minimum()), 0, atol=1e-12)


def test_hand_hessian_vector_product_equals_tinynets_hvp():
    weights, bias, x, labels = random_problem(seed=5)
    v = np.random.default_rng(6).standard_normal(weights.shape)
    hand = ms.hand_hessian_vector_product(weights, bias, x, v)
    assert np.abs(hand).max() > 1e-2
    np.testing.assert_allclose(ms.autodiff_hessian_vector_product(weights, bias, x, labels, v), hand, rtol=0,
                               atol=1e-10)
    assert ms.hessian_check(weights, bias, x, labels, np.random.default_rng(7)) < 1e-10


def test_newton_cg_with_tinynets_hvp_reaches_the_pairs_minimum():
    weights, bias, x, labels = random_problem(seed=4, n=200)
    pair = ms.WeightPair(weights, bias, x, labels, (5, 6), 3)
    w = np.array([0.7, -1.3])
    assert pair.tinynet_cost(tn.Tensor(w)).item() == pytest.approx(pair.cost(*w), rel=1e-12)
    np.testing.assert_allclose(pair.hessian_vector_product(w, np.array([1.0, 2.0])),
                               pair.hessian(w) @ [1.0, 2.0], rtol=1e-10)
    path = pair.newton_cg_path(pair.minimum() + ms.PAIR_OFFSET, ms.PAIR_STEPS)
    np.testing.assert_allclose(path[-1], pair.minimum(), atol=1e-4)  # its line search stops at the cost's round-off
    assert len(path) <= 20


def test_quick_run_writes_the_table_curves_and_figures(tmp_path):
    require_data(MNIST_FILE)
    ms.main(["--quick", "--out", str(tmp_path), "--seed", "1"])
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["gradient_check"]["autodiff_max_relative_error"] < 1e-12
    assert len(metrics["gradient_check"]["rows"]) == ms.CHECKED_WEIGHTS
    for label in ("GD", f"momentum {ms.MOMENTUM}"):
        losses = metrics["curves"][f"{label} train_loss"]
        assert losses[-1] < losses[0]
    distances = metrics["weight_pair"]["final_distance"]
    assert len(distances) == 3 and max(distances.values()) < np.linalg.norm(ms.PAIR_OFFSET)
    assert metrics["hessian_check"] < 1e-10 and metrics["weight_pair"]["hvp_vs_hand_hessian"] < 1e-10
    written = {p.name for p in tmp_path.iterdir()}
    assert {"learning_curves.png", "weights.png", "weight_paths.png", "step_sweep.png", "summary.md",
            "config.json", "health_gradient_descent.png", "health_momentum.png"} <= written
    health = metrics["health"]
    assert health["momentum"]["initial_loss"] == health["gradient_descent"]["initial_loss"]
    assert abs(health["momentum"]["initial_loss"] - math.log(10)) < 0.1  # small random weights: near ln 10
    assert list(health["momentum"]["update_ratios"]) == ["weights", "bias"]
    assert "central diff. h=1e-05" in (tmp_path / "summary.md").read_text()
