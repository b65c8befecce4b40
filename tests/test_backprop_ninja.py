"""The hand-written backward of part 1's network agrees with tinynet's backward, tensor by tensor, and with
finite differences of the loss."""
import numpy as np
import pytest
from test_gradient_comparison import small_network

import tinynet as tn
from tinynet.backprop_ninja import GRADIENT_NAMES, forward, framework_gradients, manual_backward


@pytest.mark.parametrize("activation", ["tanh", "relu"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_manual_backward_is_exactly_the_frameworks(dtype, activation):
    params, x, labels = small_network(dtype)
    manual = manual_backward(params, x, labels, activation)
    result = tn.compare_gradients(manual, framework_gradients(params, x, labels, activation))
    assert [(row.name, row.verdict) for row in result.rows] == [(name, "exact") for name in GRADIENT_NAMES]
    assert all(manual[name].dtype == dtype for name in GRADIENT_NAMES)


def mean_cross_entropy(params, x, labels, activation):
    """The network's loss, from the NumPy forward pass."""
    return -forward(params, x, activation)["log_probs"][np.arange(len(labels)), labels].mean()


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_the_parameters_gradients_are_the_losss_derivatives(activation):
    params, x, labels = small_network(np.float64)
    manual = manual_backward(params, x, labels, activation)
    rng, step = np.random.default_rng(2), 1e-6
    for name in ("W0", "b0", "W1", "b1"):
        direction = rng.standard_normal(params[name].shape)
        moved = [{**params, name: params[name] + sign * step * direction} for sign in (1, -1)]
        difference = (mean_cross_entropy(moved[0], x, labels, activation)
                      - mean_cross_entropy(moved[1], x, labels, activation)) / (2 * step)
        assert np.sum(manual[name] * direction) == pytest.approx(difference, rel=1e-6), name


def test_an_unknown_activation_is_refused_naming_the_choices():
    params, x, labels = small_network(np.float64)
    for compute in (manual_backward, framework_gradients):
        with pytest.raises(ValueError, match="activation='sigmoid': use one of tanh, relu"):
            compute(params, x, labels, "sigmoid")
