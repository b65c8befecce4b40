"""Hand-computed values, and stability at extreme logits."""
import numpy as np
import pytest

import tinynet as tn
from tinynet import functional as F


def test_softmax_cross_entropy_gradient_is_p_minus_y_over_n():
    logits = tn.Tensor(np.array([[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]]), requires_grad=True)
    labels = np.array([1, 2])
    F.cross_entropy(logits, labels).backward()
    p = np.exp(logits.data) / np.exp(logits.data).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(logits.grad, (p - np.eye(3)[labels]) / 2, rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("batch, outputs", [(16, 7), (3, 70)])  # (3, 70): the weight goes on the left
def test_linear_gives_the_bits_of_matmul_with_the_transposed_weight_plus_bias(dtype, batch, outputs):
    """F.linear (one Linear op) against matmul(x, transpose(weight)) + bias: the same arithmetic in the same
    order, so every value and gradient is equal to the last bit, and of the inputs' dtype."""
    rng = np.random.default_rng(0)
    values = [rng.standard_normal(shape).astype(dtype) for shape in [(batch, 40), (outputs, 40), (outputs,)]]
    labels = rng.integers(0, outputs, batch)

    def loss_and_gradients(fused):
        x, weight, bias = (tn.Tensor(v, requires_grad=True) for v in values)
        logits = F.linear(x, weight, bias) if fused else F.matmul(x, F.transpose(weight)) + bias
        loss = F.cross_entropy(logits, labels)
        loss.backward()
        return loss.data, logits.data, x.grad, weight.grad, bias.grad

    for fused, composed in zip(loss_and_gradients(True), loss_and_gradients(False)):
        assert fused.dtype == composed.dtype == dtype
        np.testing.assert_array_equal(fused, composed, strict=True)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_cross_entropy_gives_the_bits_of_nll_loss_of_log_softmax(dtype, reduction):
    """F.cross_entropy (one CrossEntropy op) against nll_loss(log_softmax(logits)): the same arithmetic in
    the same order, so the loss and the gradient (here scaled on its way back) are equal to the last bit."""
    rng = np.random.default_rng(0)
    values = (3 * rng.standard_normal((16, 7))).astype(dtype)
    labels = rng.integers(0, 7, 16)

    def loss_and_gradient(fused):
        logits = tn.Tensor(values, requires_grad=True)
        loss = (F.cross_entropy(logits, labels, reduction=reduction) if fused
                else F.nll_loss(F.log_softmax(logits, axis=1), labels, reduction=reduction))
        (loss * 0.7).backward()
        return loss.data, logits.grad

    for fused, composed in zip(loss_and_gradient(True), loss_and_gradient(False)):
        assert fused.dtype == composed.dtype == dtype
        np.testing.assert_array_equal(fused, composed, strict=True)


def test_cross_entropy_value_and_one_hot_equivalence():
    logits = np.log(np.array([[0.2, 0.3, 0.5]]))
    assert F.cross_entropy(logits, np.array([2])).item() == pytest.approx(-np.log(0.5))
    assert F.cross_entropy(logits, np.array([[0.0, 0.0, 1.0]])).item() == pytest.approx(-np.log(0.5))


def test_binary_cross_entropy_value_and_gradient():
    logits = tn.Tensor(np.array([0.0, 2.0]), requires_grad=True)
    loss = F.binary_cross_entropy_with_logits(logits, np.array([1.0, 0.0]), reduction="sum")
    assert loss.item() == pytest.approx(np.log(2) + np.log(1 + np.exp(2.0)))
    loss.backward()
    np.testing.assert_allclose(logits.grad, [0.5 - 1.0, 1 / (1 + np.exp(-2.0))])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_of_a_very_negative_input_keeps_its_digits(dtype):
    """sigmoid(x) for x < 0 to full relative precision, not with the cancellation of (1 + tanh(x/2)) / 2, which
    gave sigmoid(-40) = 0; so binary_cross_entropy of sigmoid(-40) against 1 is 40, not the log floor's 100."""
    x = np.array([-10.0, -30.0, -40.0, -80.0, 30.0], dtype=dtype)
    expected = np.exp(x.astype(np.float64)) / (1 + np.exp(x.astype(np.float64)))
    np.testing.assert_allclose(F.sigmoid(x).data, expected, rtol=4 * np.finfo(dtype).eps, strict=False)
    loss = F.binary_cross_entropy(F.sigmoid(np.array([-40.0])), np.array([1.0]))
    assert loss.item() == pytest.approx(40.0, rel=1e-12)


def test_mse_and_l2_penalty_values():
    assert F.mse_loss(np.array([1.0, 3.0]), np.array([0.0, 0.0])).item() == pytest.approx(5.0)
    assert F.l2_penalty([tn.Tensor([1.0, 2.0]), tn.Tensor([[3.0]])], 0.5).item() == pytest.approx(7.0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_extreme_logits_give_finite_losses_and_gradients(dtype):
    logits = tn.Tensor(np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4]], dtype=dtype), requires_grad=True)
    for loss in [F.cross_entropy(logits, np.array([1, 0])),
                 F.log_softmax(logits).sum(),
                 F.softmax(logits).sum(),
                 F.binary_cross_entropy_with_logits(logits, np.ones((2, 3), dtype=dtype))]:
        logits.grad = None
        loss.backward()
        assert np.isfinite(loss.item()) and np.all(np.isfinite(logits.grad))
    assert F.cross_entropy(logits, np.array([1, 0])).item() == pytest.approx((2e4 + np.log(3)) / 2)
    assert np.all(np.isfinite(F.sigmoid(logits).data))


def test_dropout_keeps_the_expected_value_and_is_identity_in_eval():
    x = tn.Tensor(np.ones(100000))
    dropped = F.dropout(x, 0.3, training=True, rng=np.random.default_rng(0)).data
    np.testing.assert_allclose(np.unique(dropped), [0.0, 1 / 0.7], rtol=1e-6)
    assert dropped.mean() == pytest.approx(1.0, abs=0.01)
    assert F.dropout(x, 0.3, training=False) is x


def test_loss_input_errors_say_what_was_expected():
    with pytest.raises(ValueError, match=r"expected logits of shape \(N, C\)"):
        F.cross_entropy(np.zeros(3), np.array([0]))
    for target in [3, -1]:
        with pytest.raises(ValueError, match=r"class indices must lie in \[0, 3\)"):
            F.cross_entropy(np.zeros((1, 3)), np.array([target]))
    with pytest.raises(ValueError, match="reduction"):
        F.mse_loss(np.zeros(2), np.zeros(2), reduction="avg")


def test_linear_input_errors_name_the_shapes():
    with pytest.raises(ValueError, match=r"linear expects x \(\.\.\., in\), weight \(out, in\) and bias \(out,\), "
                                         r"got x \(2, 3\), weight \(4, 5\)"):
        F.linear(np.zeros((2, 3)), np.zeros((4, 5)))
    with pytest.raises(ValueError, match=r"bias \(1, 4\)"):
        F.linear(np.zeros((2, 5)), np.zeros((4, 5)), np.zeros((1, 4)))
