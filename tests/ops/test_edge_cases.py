"""Edge cases where tinynet and PyTorch once disagreed (issue 17's differential fuzz) and their siblings:
negative axes, empty tensors, exponents at 0, the dtype of constants, zero-size layers."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinynet as tn
from strategies import random_tensor, seeds, small_shapes
from tinynet import functional as F
from tinynet import nn


def float64(values, requires_grad=True):
    return tn.Tensor(np.asarray(values, dtype=np.float64), requires_grad=requires_grad)


# ---- negative axes ------------------------------------------------------------------------
def test_transpose_with_negative_axes_sends_the_gradient_back_through_the_inverse_permutation():
    x = float64([[0.0, 1.0], [2.0, 3.0]])
    F.transpose(x, (-1, 0)).backward(np.array([[1.0, 2.0], [3.0, 4.0]]))
    np.testing.assert_array_equal(x.grad, [[1.0, 3.0], [2.0, 4.0]])
    y = float64(np.zeros((1, 2, 3)))
    F.transpose(y, (-1, 0, 1)).sum().backward()
    assert y.grad.shape == (1, 2, 3)


@given(shape=small_shapes, seed=seeds, data=st.data())
def test_transpose_gradient_for_any_mix_of_negative_axes(shape, seed, data):
    permutation = data.draw(st.permutations(range(len(shape))))
    axes = [a - len(shape) if data.draw(st.booleans()) else a for a in permutation]
    tn.gradcheck(lambda t: F.transpose(t, axes), [random_tensor(shape, seed)])


def test_transpose_swaps_two_dims_as_pytorchs_and_permutes_only_by_one_sequence_or_permute():
    """x.transpose(0, 1) swaps (NumPy's would be the identity on a 2-D array); NumPy's x.transpose(2, 0, 1)
    raises, naming permute, rather than give another answer than PyTorch's."""
    matrix = tn.Tensor(np.arange(6.0).reshape(2, 3))
    np.testing.assert_array_equal(matrix.transpose(0, 1).data, matrix.data.T)
    np.testing.assert_array_equal(matrix.transpose(-1, 0).data, matrix.data.T)
    cube = tn.Tensor(np.zeros((2, 3, 4)))
    assert cube.transpose(0, 2).shape == (4, 3, 2) and cube.transpose(-1, -2).shape == (2, 4, 3)
    assert cube.permute(2, 0, 1).shape == (4, 2, 3) and cube.permute([2, 0, 1]).shape == (4, 2, 3)
    assert cube.transpose([2, 0, 1]).shape == (4, 2, 3) and cube.transpose().shape == (4, 3, 2)
    for call in (lambda: cube.transpose(2, 0, -2), lambda: tn.Tensor([1.0, 2.0]).transpose(0)):
        with pytest.raises(TypeError, match=r"takes two dims to swap .*use permute"):
            call()
    with pytest.raises(ValueError, match=r"permutation of the 2 axes"):
        F.transpose(np.zeros((2, 3)), (0, -2))


def test_flatten_takes_a_negative_start_dim_and_pytorchs_names():
    assert F.flatten(np.zeros((2, 3, 4)), -2).shape == (2, 12)
    assert F.flatten(np.zeros((2, 3, 4, 5)), start_dim=0, end_dim=-2).shape == (24, 5)


def test_pad_takes_pytorchs_flat_format_last_axis_first_and_numpys_pairs():
    x = np.arange(6.0).reshape(2, 3)
    np.testing.assert_array_equal(F.pad(x, (1, 2)).data, np.pad(x, ((0, 0), (1, 2))))
    np.testing.assert_array_equal(F.pad(x, (1, 2, 0, 1)).data, np.pad(x, ((0, 1), (1, 2))))
    np.testing.assert_array_equal(F.pad(x, ((0, 1), (1, 2))).data, np.pad(x, ((0, 1), (1, 2))))
    for wrong in ((1,), (1, 1, 1, 1, 1, 1)):
        with pytest.raises(ValueError, match="PyTorch's flat format needs an even number of sizes, at most 2 per axis"):
            F.pad(x, wrong)


# ---- empty tensors ------------------------------------------------------------------------
def test_mean_over_an_axis_whose_result_is_empty_is_empty():
    x = float64(np.zeros((0, 3)))
    out = F.mean(x, axis=1)
    assert out.shape == (0,)
    out.sum().backward()
    np.testing.assert_array_equal(x.grad, np.zeros((0, 3)))


def test_mean_over_an_empty_axis_is_nan_as_in_pytorch():
    with np.errstate(invalid="ignore"):
        assert np.all(np.isnan(F.mean(np.zeros((0, 3)), axis=0).data))


def test_flatten_and_softmax_of_empty_tensors():
    assert F.flatten(np.zeros((0, 2, 3)), 1).shape == (0, 6)
    for op in (F.softmax, F.log_softmax):
        x = float64(np.zeros((2, 0)))
        out = op(x, axis=1)
        assert out.shape == (2, 0)
        out.sum().backward()
        assert x.grad.shape == (2, 0)
        assert op(np.zeros((0, 3)), axis=-1).shape == (0, 3)


def test_max_over_an_empty_axis_is_refused_clearly_and_otherwise_empty_inputs_work():
    with pytest.raises(ValueError, match="max over an empty axis"):
        F.max(np.zeros((0, 3)), axis=0)
    x = float64(np.zeros((0, 3)))
    F.amax(x, axis=1).sum().backward()
    assert x.grad.shape == (0, 3)


# ---- exponents at 0 -----------------------------------------------------------------------
def test_gradient_of_x_to_the_0_is_0_even_at_0():
    x = float64([0.0, 2.0])
    (x ** 0).sum().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 0.0])


@pytest.mark.parametrize("exponent, expected", [(1, 1.0), (2, 0.0), (3, 0.0)])
def test_integer_exponents_at_0_have_the_calculus_gradient(exponent, expected):
    x = float64([0.0])
    (x ** exponent).sum().backward()
    np.testing.assert_array_equal(x.grad, [expected])


def test_std_of_constant_values_has_a_zero_gradient_as_in_pytorch():
    x = float64([2.0, 2.0, 2.0])
    x.std().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 0.0, 0.0])


# ---- the dtype of constants ---------------------------------------------------------------
def test_a_python_float_takes_the_dtype_of_the_graph_it_joins():
    x = float64(1.0)
    assert (x - 0.1).item() == 1.0 - 0.1
    assert (0.1 - x).item() == 0.1 - 1.0
    assert F.mse_loss(x, 0.1).item() == (1.0 - 0.1) ** 2
    assert F.mse_loss(0.1, x).item() == (0.1 - 1.0) ** 2


def test_a_numpy_constant_does_not_change_the_dtype_of_a_float32_graph():
    x = tn.Tensor(np.ones((1, 1, 3, 3), dtype=np.float32))
    assert (x ** np.float64(0.5)).dtype == np.float32
    assert F.conv2d(x, np.ones((2, 1, 1, 1)), np.ones(2)).dtype == np.float32
    assert F.conv2d(np.ones((1, 1, 3, 3)), tn.Tensor(np.ones((2, 1, 1, 1), np.float32))).dtype == np.float32
    assert F.linear(x.reshape(1, 9), np.ones((2, 9)), np.ones(2)).dtype == np.float32
    assert F.matmul(np.ones((2, 9)), x.reshape(9, 1)).dtype == np.float32
    assert F.stack([np.ones(2), tn.Tensor(np.ones(2, np.float32))]).dtype == np.float32


# ---- zero-size layers ---------------------------------------------------------------------
def test_layers_with_no_inputs_or_no_outputs_build_and_run():
    rng = np.random.default_rng(0)
    layer = nn.Linear(0, 2, rng=rng, dtype=np.float64)
    x = float64(np.zeros((3, 0)))
    out = layer(x)
    np.testing.assert_array_equal(out.data, np.broadcast_to(layer.bias.data, (3, 2)))
    out.sum().backward()
    assert layer.weight.grad.shape == (2, 0) and x.grad.shape == (3, 0)
    assert nn.Linear(2, 0, rng=rng)(tn.Tensor(np.ones((3, 2)))).shape == (3, 0)
    assert nn.Conv2d(0, 2, 3, rng=rng)(tn.Tensor(np.ones((1, 0, 4, 4)))).shape == (1, 2, 2, 2)
    assert nn.Conv2d(2, 0, 3, rng=rng)(tn.Tensor(np.ones((1, 2, 4, 4)))).shape == (1, 0, 2, 2)


empty_shapes = st.lists(st.integers(0, 3), min_size=2, max_size=3).filter(lambda shape: 0 in shape).map(tuple)
unary_ops = {"neg": F.neg, "exp": F.exp, "log": F.log, "relu": F.relu, "tanh": F.tanh, "sigmoid": F.sigmoid,
             "square": lambda x: x ** 2, "sum": lambda x: F.sum(x, axis=0), "mean": lambda x: F.mean(x, axis=-1),
             "transpose": F.transpose, "reshape": lambda x: F.reshape(x, (-1,)), "flatten": F.flatten,
             "index": lambda x: x[:, ::2], "pad": lambda x: F.pad(x, [(1, 0)] * x.ndim),
             "softmax": F.softmax, "log_softmax": lambda x: F.log_softmax(x, 0), "sub": lambda x: 1.5 - x,
             "concatenate": lambda x: F.concatenate([x, x], -1), "stack": lambda x: F.stack([x, x], -1),
             "matmul": lambda x: x @ np.ones(x.shape[-1:] + (2,)), "mse": lambda x: F.mse_loss(x, 0.5, "sum"),
             "dropout": lambda x: F.dropout(x, 0.5, rng=np.random.default_rng(0))}


@pytest.mark.parametrize("op", unary_ops.values(), ids=unary_ops.keys())
@given(shape=empty_shapes)
def test_every_op_takes_empty_tensors_and_gives_empty_gradients(op, shape):
    x = float64(np.zeros(shape))
    with np.errstate(divide="ignore", invalid="ignore"):  # the mean over an empty axis is nan, as in PyTorch
        out = op(x)
        out.backward(np.zeros(out.shape))
    assert x.grad.shape == shape and not np.any(x.grad)
