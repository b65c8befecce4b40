"""gradcheck (float64) of conv2d, pooling and LRN through the Tensor API, and their layers."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinynet as tn
from tinynet import functional as F
from tinynet import nn
from strategies import distinct_values, random_tensor, seeds
from kernels.test_kernels import conv_cases, pool_cases


@given(case=conv_cases(), with_bias=st.booleans())
def test_conv2d_gradients(case, with_bias):
    x, weight, (stride, pads, dilation, groups), rng = case
    inputs = [tn.Tensor(x.astype(np.float64), requires_grad=True), tn.Tensor(weight.astype(np.float64),
                                                                             requires_grad=True)]
    if with_bias:
        inputs.append(tn.Tensor(rng.standard_normal(weight.shape[0]), requires_grad=True))
    tn.gradcheck(lambda *ts: F.conv2d(ts[0], ts[1], ts[2] if with_bias else None, stride, pads, groups, dilation),
                 inputs)


@pytest.mark.parametrize("pool", [F.max_pool2d, F.avg_pool2d], ids=["max", "avg"])
@given(case=pool_cases())
def test_pooling_gradients(pool, case):
    x, kernel, stride, pads, _ = case
    tn.gradcheck(lambda t: pool(t, kernel, stride, pads), [tn.Tensor(x * 0.1, requires_grad=True)])


@given(channels=st.integers(1, 6), radius=st.integers(0, 3), seed=seeds,
       alpha=st.sampled_from([2e-5, 0.1, 1.0]), beta=st.sampled_from([0.5, 0.75]))
def test_local_response_norm_gradients(channels, radius, seed, alpha, beta):
    x = random_tensor((2, channels, 3, 3), seed)
    tn.gradcheck(lambda t: F.local_response_norm(t, radius, 1.0, alpha, beta), [x])


@given(seed=seeds)
def test_global_avg_pool_gradient(seed):
    tn.gradcheck(F.global_avg_pool2d, [random_tensor((2, 3, 4, 5), seed)])


def test_a_small_cnn_end_to_end_gradient_for_input_and_every_weight():
    def cnn(x, conv_weight, conv_bias, fc_weight, fc_bias):
        hidden = F.relu(F.conv2d(x, conv_weight, conv_bias, padding="same"))
        hidden = F.max_pool2d(F.local_response_norm(hidden, 1, alpha=0.1), 2)
        return F.linear(F.flatten(hidden), fc_weight, fc_bias)

    inputs = [distinct_values((2, 2, 6, 6), seed=0), random_tensor((4, 2, 3, 3), 1), random_tensor((4,), 2),
              random_tensor((2, 4 * 3 * 3), 3), random_tensor((2,), 4)]
    tn.gradcheck(cnn, inputs, fast=True)


def test_conv_layer_parameter_count_and_shape_errors():
    layer = nn.Conv2d(1, 4, 8, rng=np.random.default_rng(0))
    assert sum(p.size for p in layer.parameters()) == 260
    with pytest.raises(ValueError, match=r"expected input of shape \(N, C, H, W\), got \(64, 64\)"):
        layer(tn.Tensor(np.zeros((64, 64))))
    with pytest.raises(ValueError, match="input has 3 channels"):
        layer(tn.Tensor(np.zeros((1, 3, 64, 64))))
    with pytest.raises(ValueError, match="does not fit"):
        layer(tn.Tensor(np.zeros((1, 1, 4, 4))))
