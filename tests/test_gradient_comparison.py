"""compare_gradients: exact for the framework's own gradients, approx for the same gradient computed another way,
WRONG (with the factor) for a planted bug, and a clear row for a wrong shape or a missing gradient."""
import numpy as np
import pytest

import tinynet as tn
from tinynet.backprop_ninja import framework_gradients
from tinynet.finite_differences import roundoff


def small_network(dtype, seed=0, batch=6, inputs=20, hidden=7, classes=4):
    """(params, x, labels) of a small network of part 1's shape, in dtype."""
    rng = np.random.default_rng(seed)
    params = {"W0": rng.standard_normal((inputs, hidden)) * 0.3, "b0": rng.standard_normal(hidden),
              "W1": rng.standard_normal((hidden, classes)), "b1": rng.standard_normal(classes)}
    params = {name: value.astype(dtype) for name, value in params.items()}
    return params, rng.random((batch, inputs)).astype(dtype), rng.integers(0, classes, batch)


def tensors_after_backward(dtype):
    """{name: Tensor} of a tanh layer whose .grad backward filled (an intermediate kept by retain_grad)."""
    params, x, labels = small_network(dtype)
    weight, bias = tn.Tensor(params["W0"], requires_grad=True), tn.Tensor(params["b0"], requires_grad=True)
    hidden = (tn.Tensor(x) @ weight + bias).tanh()
    hidden.retain_grad()
    (hidden ** 2).sum().backward()
    return {"weight": weight, "bias": bias, "hidden": hidden}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_frameworks_own_gradients_are_exact(dtype):
    tensors = tensors_after_backward(dtype)
    result = tn.compare_gradients({name: t.grad.copy() for name, t in tensors.items()}, tensors)
    assert [row.verdict for row in result.rows] == ["exact"] * 3 and result.passed
    assert [row.name for row in result.rows] == ["weight", "bias", "hidden"]
    assert str(result).splitlines()[-1] == "3 gradients compared, all match"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_one_ulp_off_is_approx_not_exact(dtype):
    tensors = tensors_after_backward(dtype)
    manual = {name: t.grad.copy() for name, t in tensors.items()}
    manual["bias"][0] = np.nextafter(manual["bias"][0], dtype(np.inf))
    assert [row.verdict for row in tn.compare_gradients(manual, tensors).rows] == ["exact", "approx", "exact"]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_planted_factor_of_two_in_one_tensor_is_wrong_and_named_with_its_factor(dtype):
    params, x, labels = small_network(dtype)
    manual = framework_gradients(params, x, labels)
    manual["W1"] = manual["W1"] * 2
    result = tn.compare_gradients(manual, framework_gradients(params, x, labels))
    assert [row.name for row in result.wrong] == ["W1"] and not result.passed
    row = result["W1"]
    assert row.verdict == "WRONG" and row.note == "2.0x the framework's"
    assert row.max_abs_difference == pytest.approx(np.abs(manual["W1"] / 2).max())
    table = str(result)
    assert "W1" in table and "2.0x the framework's" in table and table.endswith("1 of 9 gradients wrong: W1")


def test_a_gradient_with_its_sign_flipped_says_so():
    params, x, labels = small_network(np.float64)
    manual = framework_gradients(params, x, labels)
    manual["b0"] = -manual["b0"]
    assert tn.compare_gradients(manual, framework_gradients(params, x, labels))["b0"].note == "-1.0x the framework's"


def test_an_error_that_is_no_constant_factor_is_wrong_without_one():
    params, x, labels = small_network(np.float64)
    manual = framework_gradients(params, x, labels)
    manual["hidden"] = manual["hidden"] + 1e-6 * np.random.default_rng(1).standard_normal(manual["hidden"].shape)
    row = tn.compare_gradients(manual, framework_gradients(params, x, labels))["hidden"]
    assert row.verdict == "WRONG" and row.note == ""


def softmax_minus_one_hot_backward(params, x, labels):
    """The same gradients as manual_backward, computed in another order: the logits' gradient as
    (softmax - one_hot) / N, the softmax recomputed from the logits (not as exp(log_softmax))."""
    hidden = np.tanh(x @ params["W0"] + params["b0"])
    logits = hidden @ params["W1"] + params["b1"]
    softmax = np.exp(logits - logits.max(axis=1, keepdims=True))
    softmax /= softmax.sum(axis=1, keepdims=True)
    one_hot = np.eye(logits.shape[1], dtype=logits.dtype)[labels]
    grad_logits = (softmax - one_hot) / len(labels)
    grad_hidden_pre = (grad_logits @ params["W1"].T) * (1 - hidden ** 2)
    return {"logits": grad_logits, "W1": hidden.T @ grad_logits, "b1": grad_logits.sum(axis=0),
            "W0": x.T @ grad_hidden_pre, "b0": grad_hidden_pre.sum(axis=0)}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_same_gradient_computed_in_another_order_is_approx(dtype):
    params, x, labels = small_network(dtype, batch=200, inputs=784, hidden=300, classes=10)
    manual = softmax_minus_one_hot_backward(params, x, labels)
    framework = {name: grad for name, grad in framework_gradients(params, x, labels).items() if name in manual}
    result = tn.compare_gradients(manual, framework)
    assert {row.verdict for row in result.rows} == {"approx"}, str(result)


def test_the_tolerance_is_the_round_off_of_both_computations_as_finite_differences_estimate_it():
    manual, framework = np.array([3.0, 4.0]), np.array([3.0, 4.0], dtype=np.float32)
    row = tn.compare_gradients({"g": manual}, {"g": framework})["g"]
    assert row.tolerance == roundoff(5.0, np.float64) + roundoff(5.0, np.float32)
    just_over = framework.astype(np.float64) + np.array([0.0, 1.01 * row.tolerance])
    assert tn.compare_gradients({"g": just_over}, {"g": framework})["g"].verdict == "WRONG"


def test_a_transposed_gradient_is_a_wrong_shape_named_with_both_shapes():
    params, x, labels = small_network(np.float64)
    manual = framework_gradients(params, x, labels)
    manual["W0"] = manual["W0"].T
    row = tn.compare_gradients(manual, framework_gradients(params, x, labels))["W0"]
    assert row.verdict == "WRONG SHAPE" and row.shape == (20, 7)
    assert row.note == "manual has shape (7, 20), the framework's (20, 7): transposed?"
    row = tn.compare_gradients({"b": np.zeros((1, 3))}, {"b": np.zeros(3)})["b"]
    assert row.verdict == "WRONG SHAPE" and row.note == "manual has shape (1, 3), the framework's (3,)"


@pytest.mark.parametrize("shape", [(0,), (0, 3), (), (1,), (1, 1)])
def test_empty_and_one_element_tensors(shape):
    framework = np.full(shape, 0.75)
    assert tn.compare_gradients({"t": framework.copy()}, {"t": framework})["t"].verdict == "exact"
    row = tn.compare_gradients({"t": 2 * framework}, {"t": framework})["t"]
    if framework.size:
        assert (row.verdict, row.note) == ("WRONG", "2.0x the framework's")
    else:
        assert row.verdict == "exact" and row.max_abs_difference == 0.0


def test_zeros_nan_missing_and_misspelled_gradients_are_named():
    framework = {"a": np.ones(3), "b": np.ones(3), "c": np.ones(3), "d": np.zeros(3)}
    result = tn.compare_gradients({"a": np.zeros(3), "b": np.array([1.0, np.nan, 1.0]), "d": np.ones(3)}, framework)
    assert [(row.verdict, row.note) for row in result.rows] == [
        ("WRONG", "all zeros"), ("WRONG", "has nan or inf"), ("MISSING", "no manual gradient given"),
        ("WRONG", "the framework's is all zeros")]
    assert str(result).endswith("4 of 4 gradients wrong: a, b, c, d")
    with pytest.raises(KeyError, match=r"manual gradients \['W3'\] have no framework gradient"):
        tn.compare_gradients({"W3": np.ones(3)}, framework)
    with pytest.raises(KeyError, match="no gradient named 'e' was compared"):
        result["e"]


def test_a_tensor_without_a_gradient_says_to_call_backward_or_retain_grad():
    x = tn.Tensor(np.ones(3), requires_grad=True)
    doubled = x * 2
    with pytest.raises(ValueError, match=r"doubled has no \.grad: call loss\.backward\(\) first, and "
                                         r"doubled\.retain_grad\(\)"):
        tn.compare_gradients({}, {"doubled": doubled})


def test_huge_values_are_wrong_not_approx_though_their_squares_overflow():
    framework = np.array([1.0, -2.0, 0.5])
    for huge in (np.full(3, 1e200), np.array([1e300, 0.0, 0.0])):
        row = tn.compare_gradients({"g": huge}, {"g": framework})["g"]
        assert row.verdict == "WRONG" and np.isfinite(row.tolerance), row
    assert tn.compare_gradients({"g": 1e200 * framework}, {"g": framework})["g"].note == "1e+200x the framework's"
