"""gradcheck (float64) of conv2d, pooling and LRN through the Tensor API, the padding forms of the
functional API, and their layers."""
import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import tinynet as tn
from kernels.test_kernels import conv_cases, paddings, pool_cases
from strategies import distinct_values, random_tensor, seeds
from tinynet import functional as F
from tinynet import nn
from tinynet.kernels.pool import avg_pool_reference, max_pool_reference
from tinynet.kernels.windows import resolve_padding


@given(case=conv_cases(), with_bias=st.booleans())
def test_conv2d_gradients(case, with_bias):
    x, weight, (stride, pads, dilation, groups), rng = case
    inputs = [tn.Tensor(x.astype(np.float64), requires_grad=True), tn.Tensor(weight.astype(np.float64),
                                                                             requires_grad=True)]
    if with_bias:
        inputs.append(tn.Tensor(rng.standard_normal(weight.shape[0]), requires_grad=True))
    tn.gradcheck(lambda *ts: F.conv2d(ts[0], ts[1], ts[2] if with_bias else None, stride, pads, groups=groups,
                                      dilation=dilation), inputs)


@pytest.mark.parametrize("pool", [F.max_pool2d, F.avg_pool2d], ids=["max", "avg"])
@given(case=pool_cases())
def test_pooling_gradients(pool, case):
    x, kernel, stride, pads, _ = case
    tn.gradcheck(lambda t: pool(t, kernel, stride, pads), [tn.Tensor(x * 0.1, requires_grad=True)])


def test_conv2d_same_and_valid_padding_strings():
    x, weight = tn.Tensor(np.ones((1, 1, 227, 227))), tn.Tensor(np.ones((2, 1, 11, 11)))
    assert F.conv2d(x, weight, stride=4, padding="same").shape == (1, 2, 57, 57)
    assert F.conv2d(x, weight, stride=4, padding="valid").shape == (1, 2, 55, 55)
    out = F.conv2d(np.ones((1, 1, 6, 6)), np.ones((1, 1, 3, 3)), stride=2, padding="same")
    np.testing.assert_array_equal(out.data[0, 0], [[9, 9, 6], [9, 9, 6], [6, 6, 4]])  # TensorFlow: extra pad last


def real_pixel_avg_pool2d(x, kernel, stride, padding):
    """The mean of each window's real pixels, as tinynet.kernels.pool's reference takes it."""
    return F.avg_pool2d(x, kernel, stride, padding, count_include_pad=False)


@pytest.mark.parametrize("pool, reference", [(F.max_pool2d, max_pool_reference),
                                             (real_pixel_avg_pool2d, avg_pool_reference)], ids=["max", "avg"])
@given(case=pool_cases(), padding=paddings)
def test_pooling_takes_every_padding_form(pool, reference, case, padding):
    x, kernel, stride, _, _ = case
    pads = resolve_padding(padding, x.shape[2:], kernel, stride, (1, 1))
    assume(all(before < k and after < k for (before, after), k in zip(pads, kernel)))
    x_t = tn.Tensor(x * 0.1, requires_grad=True)
    np.testing.assert_allclose(pool(x_t, kernel, stride, padding).data, reference(x_t.data, kernel, stride, pads))
    tn.gradcheck(lambda t: pool(t, kernel, stride, padding), [x_t])


@given(case=pool_cases(), padding=paddings)
def test_avg_pool_counts_the_padding_zeros_as_pytorch_does(case, padding):
    """count_include_pad=True (PyTorch's default): the pool of the zero-padded image; padding='same' is
    TensorFlow's rule and, as there, counts only real pixels."""
    x, kernel, stride, _, _ = case
    pads = resolve_padding(padding, x.shape[2:], kernel, stride, (1, 1))
    assume(all(before < k and after < k for (before, after), k in zip(pads, kernel)))
    x_t = tn.Tensor(x * 0.1, requires_grad=True)
    if padding == "same":
        expected = avg_pool_reference(x_t.data, kernel, stride, pads)
    else:
        expected = avg_pool_reference(np.pad(x_t.data, ((0, 0), (0, 0)) + pads), kernel, stride, ((0, 0), (0, 0)))
    np.testing.assert_allclose(F.avg_pool2d(x_t, kernel, stride, padding).data, expected)
    tn.gradcheck(lambda t: F.avg_pool2d(t, kernel, stride, padding), [x_t])


@given(channels=st.integers(1, 6), radius=st.integers(0, 3), seed=seeds,
       alpha=st.sampled_from([2e-5, 0.1, 1.0]), beta=st.sampled_from([0.5, 0.6, 0.75]))
def test_local_response_norm_gradients(channels, radius, seed, alpha, beta):
    x = random_tensor((2, channels, 3, 3), seed)
    tn.gradcheck(lambda t: F.local_response_norm(t, depth_radius=radius, bias=1.0, alpha=alpha, beta=beta), [x])


@given(seed=seeds)
def test_global_avg_pool_gradient(seed):
    tn.gradcheck(F.global_avg_pool2d, [random_tensor((2, 3, 4, 5), seed)])


def test_a_small_cnn_end_to_end_gradient_for_input_and_every_weight():
    def cnn(x, conv_weight, conv_bias, fc_weight, fc_bias):
        hidden = F.relu(F.conv2d(x, conv_weight, conv_bias, padding="same"))
        hidden = F.max_pool2d(F.local_response_norm(hidden, depth_radius=1, alpha=0.1), 2)
        return F.linear(F.flatten(hidden, 1), fc_weight, fc_bias)

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
