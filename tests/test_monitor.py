"""tn.monitor: training-health statistics on constructed cases, and hooks that leave nothing behind."""
import math

import numpy as np
import pytest

import tinynet as tn
from tests.test_memory import live_nodes, no_cycle_collector  # noqa: F401  (the fixture, used by name below)
from tinynet import functional as F
from tinynet import nn, optim
from tinynet.monitor import (
    gradient_histogram,
    relu_dead_fraction,
    sigmoid_saturated_fraction,
    tanh_saturated_fraction,
    update_to_data_ratio,
    zero_fraction,
)


def mlp(activation, rng, hidden=8, classes=3):
    """Linear(4, hidden) -> activation -> Linear(hidden, classes)."""
    return nn.Sequential(nn.Linear(4, hidden, rng=rng), activation, nn.Linear(hidden, classes, rng=rng))


def run_steps(model, optimizer, x, labels, steps, health=None):
    """steps SGD steps of mean cross-entropy on one batch x (N, 4); the first loss goes to health."""
    for _ in range(steps):
        optimizer.zero_grad()
        loss = F.cross_entropy(model(tn.Tensor(x)), labels)
        if health is not None:
            health.record_initial_loss(loss.item(), 3)
        loss.backward()
        optimizer.step()


def batch(rng, n=16):
    return rng.standard_normal((n, 4)).astype(np.float32), rng.integers(0, 3, n)


# ---- the statistics on arrays ---------------------------------------------------------------------------------------

def test_tanh_and_sigmoid_saturation_count_beyond_0_97_and_at_the_same_places():
    t = np.array([0.0, 0.95, -0.969, 0.971, 0.99, 1.0])
    assert tanh_saturated_fraction(t) == pytest.approx(3 / 6)
    x = np.arctanh(np.clip(t, -0.999999, 0.999999)) * 2  # tanh(x / 2) = t, so sigmoid(x) = (1 + t) / 2
    assert sigmoid_saturated_fraction(1 / (1 + np.exp(-x))) == pytest.approx(3 / 6)


def test_a_relu_unit_is_a_channel_dead_only_when_zero_for_every_example_and_position():
    output = np.zeros((3, 4, 2, 2))
    output[2, 1, 1, 0] = 0.5  # channel 1 fires once, for one example at one position: alive
    output[:, 3] = 1.0  # channel 3 always fires
    assert relu_dead_fraction(output) == pytest.approx(2 / 4)
    assert zero_fraction(output) == pytest.approx(1 - 13 / 48)
    assert relu_dead_fraction(np.array([[0.0, 2.0], [0.0, 0.0]])) == pytest.approx(1 / 2)
    with pytest.raises(ValueError, match=r"shape \(N, C, ...\), got \(3,\)"):
        relu_dead_fraction(np.zeros(3))


def test_the_update_to_data_ratio_is_the_std_of_the_change_over_the_std_of_the_parameter():
    before = np.array([1.0, 2.0, 3.0, 4.0])
    assert update_to_data_ratio(before, before - [0.0, 0.0, 0.2, 0.2]) == pytest.approx(0.1 / np.sqrt(1.25))
    assert update_to_data_ratio(np.zeros(3), np.ones(3)) is None


def test_gradient_histogram_counts_every_value_once_outliers_in_the_end_bins():
    grad = np.concatenate([np.random.default_rng(0).uniform(-1, 1, 998), [50.0, -60.0]]).reshape(20, 50)
    counts, bound = gradient_histogram(grad, bins=10)
    assert counts.sum() == grad.size and len(counts) == 10
    assert 0.9 < bound < 1  # the range is the bulk's, not the outliers'
    np.testing.assert_array_equal(counts, np.histogram(np.clip(grad, -bound, bound), np.linspace(-bound, bound, 11))[0])
    counts, bound = gradient_histogram(np.zeros((3, 5)), bins=4)
    assert counts.sum() == 15 and bound > 0


# ---- the monitor on a training loop --------------------------------------------------------------------------------

@pytest.mark.parametrize("biases, saturated", [([10, -10] * 4, 1.0), ([10, 0, -10, 0] * 2, 0.5)])
def test_a_saturated_tanh_layer_reports_its_fraction_of_saturated_units(biases, saturated):
    rng = np.random.default_rng(0)
    model = mlp(nn.Tanh(), rng)
    model.layers[0].weight.data[...] = 0  # pre-activations are the biases: tanh(+-10) = +-1, tanh(0) = 0
    model.layers[0].bias.data[...] = biases
    optimizer = optim.SGD(model.parameters(), lr=1e-6)
    with tn.monitor(model, optimizer) as health:
        run_steps(model, optimizer, *batch(rng), steps=2)
    assert health.activations["layers.1 (Tanh)"]["saturated"] == [saturated] * 2


def test_a_layer_of_dead_relus_reports_all_units_dead_and_a_live_one_none():
    rng = np.random.default_rng(0)
    dead, alive = mlp(nn.ReLU(), rng), mlp(nn.ReLU(), rng)
    dead.layers[0].bias.data[...] = -100  # every pre-activation negative: every unit zero for every example
    alive.layers[0].bias.data[...] = 100
    for model, expected in ((dead, 1.0), (alive, 0.0)):
        optimizer = optim.SGD(model.parameters(), lr=0.1)
        with tn.monitor(model, optimizer) as health:
            run_steps(model, optimizer, *batch(rng), steps=1)
        assert health.activations["layers.1 (ReLU)"] == {"dead": [expected], "zero": [expected]}


def test_an_sgd_step_gives_lr_times_the_gradient_std_over_the_weight_std():
    weight = nn.Parameter(np.array([[1.0, 2.0], [3.0, 4.0]]))
    model = nn.Module()
    model.weight = weight
    optimizer = optim.SGD([weight], lr=0.05)
    with tn.monitor(model, optimizer) as health:
        weight.grad = np.array([[0.0, 0.0], [2.0, 2.0]])  # std 1
        optimizer.step()
    assert health.update_ratios["weight"] == [pytest.approx(0.05 * 1.0 / np.sqrt(1.25))]


def test_a_large_parameters_ratio_comes_from_a_strided_sample_within_a_percent():
    rng = np.random.default_rng(7)
    weight = nn.Parameter(rng.standard_normal((600, 1000)).astype(np.float32))  # 6 x SAMPLE values
    model = nn.Module()
    model.weight = weight
    optimizer = optim.SGD([weight], lr=0.01)
    weight.grad = rng.standard_normal(weight.shape).astype(np.float32) * np.linspace(0, 2, 1000, dtype=np.float32)
    exact = 0.01 * np.std(weight.grad) / np.std(weight.data)
    with tn.monitor(model, optimizer) as health:
        optimizer.step()
    assert health.update_ratios["weight"] == [pytest.approx(exact, rel=0.01)]
    assert sum(health.gradient_histograms["weight"]["counts"][0]) == weight.size


def test_adams_ratio_is_measured_from_the_step_it_took_not_from_lr_times_grad():
    weight = nn.Parameter(np.array([1.0, 2.0, 3.0, 4.0]))
    model = nn.Module()
    model.weight = weight
    optimizer = optim.Adam([weight], lr=0.01)
    with tn.monitor(model, optimizer) as health:
        weight.grad = np.array([10.0, -10.0, 0.1, -0.1])
        optimizer.step()  # Adam's first step moves each weight by lr * sign(grad): std 0.01
    assert health.update_ratios["weight"] == [pytest.approx(0.01 / np.sqrt(1.25), rel=1e-5)]
    assert 0.01 * np.std(weight.grad) / np.sqrt(1.25) > 5 * health.update_ratios["weight"][0]


def test_records_every_kth_step_and_not_the_evaluation_forwards_in_between():
    rng = np.random.default_rng(1)
    model = mlp(nn.Sigmoid(), rng)
    optimizer = optim.SGD(model.parameters(), lr=0.1)
    x, labels = batch(rng)
    with tn.monitor(model, optimizer, every=3) as health:
        run_steps(model, optimizer, x, labels, steps=6, health=health)
        F.cross_entropy(model(tn.Tensor(x)), labels).backward()
        saturating = nn.Sequential(nn.Linear(4, 8, rng=rng), model.layers[1]).eval()
        saturating.layers[0].bias.data[...] = 100  # sigmoid at 1, but in an evaluation pass: not recorded
        saturating(tn.Tensor(x))
        optimizer.step()
    assert health.steps == [0, 3, 6] and health.steps_taken == 7
    assert len(health.activations["layers.1 (Sigmoid)"]["saturated"]) == 3
    assert max(health.activations["layers.1 (Sigmoid)"]["saturated"]) < 0.5
    assert all(len(h["counts"]) == 3 and h["steps"] == [0, 3, 6] for h in health.gradient_histograms.values())
    assert all(sum(counts) == p.size for (name, p) in model.named_parameters()
               for counts in health.gradient_histograms[name]["counts"])


def test_a_layer_that_did_not_run_and_a_parameter_without_gradient_record_none():
    rng = np.random.default_rng(2)
    model = mlp(nn.ReLU(), rng)
    model.spare = nn.Tanh()  # a module the model's forward does not call
    optimizer = optim.SGD(model.parameters(), lr=0.1)
    with tn.monitor(model, optimizer) as health:
        model.spare(tn.Tensor(np.full((2, 3), 5.0)))  # run by hand in step 0 only
        run_steps(model, optimizer, *batch(rng), steps=2)
        model.layers[0].bias.requires_grad = False
    assert health.activations["spare (Tanh)"] == {"saturated": [1.0, None]}
    with tn.monitor(model, optimizer) as health:
        optimizer.zero_grad()
        F.cross_entropy(model(tn.Tensor(batch(rng)[0])), np.zeros(16, dtype=np.int64)).backward()
        optimizer.step()
    assert health.update_ratios["layers.0.bias"] == [None]
    assert health.gradient_histograms["layers.0.bias"]["steps"] == []


def test_the_first_loss_is_kept_with_ln_classes_and_later_ones_ignored():
    rng = np.random.default_rng(3)
    model = mlp(nn.Tanh(), rng)
    model.layers[2].weight.data[...] = 0  # equal scores for the 3 classes: the loss is ln 3
    model.layers[2].bias.data[...] = 0
    optimizer = optim.SGD(model.parameters(), lr=0.5)
    with tn.monitor(model, optimizer) as health:
        run_steps(model, optimizer, *batch(rng), steps=3, health=health)
    record = health.to_json()
    assert record["initial_loss"] == pytest.approx(math.log(3), rel=1e-6)
    assert record["expected_initial_loss"] == pytest.approx(math.log(3)) and record["classes"] == 3
    assert record["shapes"] == {"layers.0.weight": [8, 4], "layers.0.bias": [8], "layers.2.weight": [3, 8],
                                "layers.2.bias": [3]}


def test_only_the_parameters_the_optimizer_steps_are_watched():
    model = mlp(nn.ReLU(), np.random.default_rng(6))
    with tn.monitor(model, optim.SGD(model.layers[2].parameters(), lr=0.1)) as health:
        pass
    assert list(health.update_ratios) == list(health.gradient_histograms) == ["layers.2.weight", "layers.2.bias"]


def test_a_single_logit_is_compared_with_ln_2():
    health = tn.monitor(nn.Sequential(nn.Linear(2, 1)), optim.SGD(nn.Linear(1, 1).parameters(), lr=0.1))
    health.record_initial_loss(0.7, 1)
    assert health.to_json()["expected_initial_loss"] == pytest.approx(math.log(2))
    health.remove()


def test_every_must_be_a_positive_number_of_steps():
    model = nn.Sequential(nn.Linear(2, 1))
    with pytest.raises(ValueError, match="every must be a positive number of steps, got 0"):
        tn.monitor(model, optim.SGD(model.parameters(), lr=0.1), every=0)


# ---- nothing left behind -------------------------------------------------------------------------------------------

def test_leaving_the_block_takes_every_hook_off_and_records_nothing_more():
    rng = np.random.default_rng(4)
    model = mlp(nn.ReLU(), rng)
    optimizer = optim.Adam(model.parameters())
    with tn.monitor(model, optimizer) as health:
        run_steps(model, optimizer, *batch(rng), steps=2)
    assert all(module._forward_hooks == () for module in model.modules())
    assert optimizer._step_pre_hooks == () and optimizer._step_post_hooks == ()
    run_steps(model, optimizer, *batch(rng), steps=2)
    assert health.steps == [0, 1]


@pytest.mark.usefixtures("no_cycle_collector")
def test_a_monitored_run_keeps_no_graph_alive():
    rng = np.random.default_rng(5)
    model = mlp(nn.Tanh(), rng)
    optimizer = optim.SGD(model.parameters(), lr=0.1)
    x, labels = batch(rng)
    before = live_nodes()
    with tn.monitor(model, optimizer) as health:
        run_steps(model, optimizer, x, labels, steps=3, health=health)
    assert live_nodes() == before
