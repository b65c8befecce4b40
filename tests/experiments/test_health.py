"""The training-health panel: train(health=...) records it, Results.health writes the figure and the metrics."""
import json
import math

import numpy as np
import pytest

import tinynet as tn
from experiments.common.cli import experiment_parser
from experiments.common.faces import cross_entropy_l2
from experiments.common.health import health_panel, weight_names
from experiments.common.results import Results
from experiments.common.training import HEALTH_RECORDS, train
from tinynet import functional as F
from tinynet import nn, optim


def classifier(rng, classes=4):
    """Linear(3, 6) -> tanh -> Linear(6, 5) -> ReLU -> Linear(5, classes), the last layer zero: ln(classes) at
    first."""
    model = nn.Sequential(nn.Linear(3, 6, rng=rng), nn.Tanh(), nn.Linear(6, 5, rng=rng), nn.ReLU(),
                          nn.Linear(5, classes, rng=rng))
    model.layers[4].weight.data[...] = 0
    model.layers[4].bias.data[...] = 0
    return model


def monitored_run(tmp_path, steps=60):
    """A monitored train() of classifier() inside Results; returns (metrics.json as read back, out folder)."""
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((100, 3)).astype(np.float32), rng.integers(0, 4, 100)
    args = experiment_parser("demo", "a demo").parse_args(["--out", str(tmp_path)])
    with Results(args.out, args) as results:
        model = classifier(rng)
        train(model, optim.Adam(model.parameters(), lr=1e-2), cross_entropy_l2(model, 10.0), x, y, steps=steps,
              batch_size=20, rng=rng, eval_splits={"train": (x, y)}, eval_every=10, progress=False,
              eval_loss_fn=F.cross_entropy, health=results.health)
    return json.loads((tmp_path / "metrics.json").read_text()), tmp_path


def test_a_monitored_training_run_writes_the_panel_and_its_numbers(tmp_path):
    metrics, out = monitored_run(tmp_path)
    health = metrics["health"]
    assert (out / "health.png").stat().st_size > 10_000
    assert health["every"] == 60 // HEALTH_RECORDS and health["steps"] == list(range(0, 60, 3))
    assert health["initial_loss"] == pytest.approx(math.log(4), rel=1e-5)  # the data loss, not the L2 term
    assert list(health["activations"]) == ["layers.1 (Tanh)", "layers.3 (ReLU)"]
    assert all(len(values) == HEALTH_RECORDS for values in health["update_ratios"].values())
    histograms = health["gradient_histograms"]["layers.0.weight"]
    assert [sum(counts) for counts in histograms["counts"]] == [18] * HEALTH_RECORDS
    assert weight_names(health) == ["layers.0.weight", "layers.2.weight", "layers.4.weight"]


def test_an_unmonitored_run_records_no_health_and_leaves_no_hooks(tmp_path):
    rng = np.random.default_rng(1)
    model = classifier(rng)
    optimizer = optim.SGD(model.parameters(), lr=0.1)
    x, y = rng.standard_normal((20, 3)).astype(np.float32), rng.integers(0, 4, 20)
    train(model, optimizer, F.cross_entropy, x, y, steps=3, batch_size=10, rng=rng, eval_splits={}, progress=False,
          health=lambda monitor: None)
    assert all(module._forward_hooks == () for module in model.modules())
    assert optimizer._step_pre_hooks == optimizer._step_post_hooks == ()


def test_the_panel_draws_a_run_without_activations_gradients_or_initial_loss():
    health = {"every": 1, "steps": [0], "initial_loss": None, "classes": None, "expected_initial_loss": None,
              "activations": {}, "update_ratios": {"w": [None]}, "shapes": {"w": [2, 2]},
              "gradient_histograms": {"w": {"steps": [], "counts": [], "bounds": []}}}
    fig = health_panel(health, "empty")
    texts = " ".join(text.get_text() for ax in fig.axes for text in ax.texts)
    assert "no initial loss recorded" in texts and "no nn.Tanh, nn.Sigmoid or nn.ReLU modules" in texts


def test_the_panel_draws_each_weights_ratio_against_the_1e_3_line_and_each_activation_statistic(tmp_path):
    health = monitored_run(tmp_path, steps=20)[0]["health"]
    axes = {ax.get_title(): ax for ax in health_panel(health, "demo").axes}
    ratios = axes["update-to-data ratio"]
    assert ratios.get_yscale() == "log"
    lines = {line.get_label(): line for line in ratios.get_lines()}
    assert list(lines) == [*weight_names(health), "1e-3 guide"] and set(lines["1e-3 guide"].get_ydata()) == {1e-3}
    np.testing.assert_allclose(lines["layers.2.weight"].get_ydata(), health["update_ratios"]["layers.2.weight"])
    activations = [ax for title, ax in axes.items() if title.startswith("activations")][0]
    assert [line.get_label() for line in activations.get_lines()] == [
        "layers.1 (Tanh): saturated", "layers.3 (ReLU): dead", "layers.3 (ReLU): zero"]
    np.testing.assert_allclose(activations.get_lines()[1].get_ydata(),
                               100 * np.array(health["activations"]["layers.3 (ReLU)"]["dead"]))
    bars = axes["initial loss vs ln(classes)"].patches
    assert [bar.get_height() for bar in bars] == pytest.approx([health["initial_loss"], math.log(4)])
    assert [ax.get_title() for ax in axes.values() if ax.get_title().endswith("gradient")] == [
        f"{name} gradient" for name in weight_names(health)]


def test_several_runs_of_one_experiment_each_get_a_panel_and_a_key_under_health(tmp_path):
    args = experiment_parser("demo", "a demo").parse_args(["--out", str(tmp_path)])
    with Results(args.out, args) as results:
        for run, lr in (("slow", 1e-4), ("fast", 1.0)):
            model = classifier(np.random.default_rng(2))
            optimizer = optim.SGD(model.parameters(), lr=lr)
            with tn.monitor(model, optimizer) as monitor:
                model.layers[0].weight.grad = np.arange(18, dtype=np.float32).reshape(6, 3)
                optimizer.step()
            results.health(monitor, run=run)
    health = json.loads((tmp_path / "metrics.json").read_text())["health"]
    assert list(health) == ["slow", "fast"] and (tmp_path / "health_slow.png").exists()
    assert health["fast"]["update_ratios"]["layers.0.weight"][0] == pytest.approx(
        1e4 * health["slow"]["update_ratios"]["layers.0.weight"][0], rel=1e-3)
