"""Each primitive's VJP checked alone (tinynet.gradcheck.check_op): its backward is called directly,
so these tests do not depend on the graph core, and an assignment task can be graded on its own."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from strategies import away_from_zero, distinct_values, random_tensor, seeds, shape_and_axis, small_shapes
from tinynet.gradcheck import check_op
from tinynet.ops.activation import ReLU, Sigmoid, Tanh
from tinynet.ops.elementwise import Add, Div, Exp, Log, Mul, Neg, Pow
from tinynet.ops.linear import Linear, MatMul
from tinynet.ops.loss import CrossEntropy, LogSoftmax
from tinynet.ops.reduce import Max, Sum


@pytest.mark.parametrize("op", [Add, Mul, Div])
@given(shape=small_shapes, seed=seeds)
def test_binary_elementwise_vjps(op, shape, seed):
    check_op(op, [random_tensor(shape, seed), random_tensor(shape, seed + 1, low=0.5)])


@pytest.mark.parametrize("op", [Neg, Exp])
@given(shape=small_shapes, seed=seeds)
def test_unary_elementwise_vjps(op, shape, seed):
    check_op(op, [random_tensor(shape, seed)])


@given(shape=small_shapes, seed=seeds, exponent=st.sampled_from([2, 3, 0.5, -1.5]))
def test_log_and_pow_vjps(shape, seed, exponent):
    check_op(Log, [random_tensor(shape, seed, low=0.2)])
    check_op(Pow, [random_tensor(shape, seed, low=0.5)], {"exponent": exponent})


@pytest.mark.parametrize("op", [Tanh, Sigmoid])
@given(shape=small_shapes, seed=seeds)
def test_smooth_activation_vjps(op, shape, seed):
    check_op(op, [random_tensor(shape, seed)])


@given(shape=small_shapes, seed=seeds)
def test_relu_vjp_off_the_kink(shape, seed):
    check_op(ReLU, [away_from_zero(shape, seed)])


@given(batch=hnp.array_shapes(min_dims=0, max_dims=2, max_side=3), n=st.integers(1, 4), k=st.integers(1, 4),
       m=st.integers(1, 4), seed=seeds)
def test_matmul_vjp(batch, n, k, m, seed):
    check_op(MatMul, [random_tensor(batch + (n, k), seed), random_tensor(batch + (k, m), seed + 1)])


@given(n=st.integers(1, 4), features=st.integers(1, 4), outputs=st.integers(1, 4), with_bias=st.booleans(),
       seed=seeds)
def test_linear_vjp(n, features, outputs, with_bias, seed):
    x, weight, bias = (random_tensor(shape, seed + i) for i, shape in enumerate([(n, features), (outputs, features),
                                                                                   (outputs,)]))
    check_op(Linear, [x, weight, bias] if with_bias else [x, weight])


@given(case=shape_and_axis(), keepdims=st.booleans(), seed=seeds)
def test_sum_and_max_vjps(case, keepdims, seed):
    shape, axis = case
    check_op(Sum, [random_tensor(shape, seed)], {"axis": axis, "keepdims": keepdims})
    check_op(Max, [distinct_values(shape, seed)], {"axis": axis, "keepdims": keepdims})


@given(case=shape_and_axis(), seed=seeds)
def test_log_softmax_vjp(case, seed):
    shape, axis = case
    if axis is None or not isinstance(axis, int):
        axis = -1
    check_op(LogSoftmax, [random_tensor(shape, seed)], {"axis": axis})


@given(n=st.integers(1, 5), classes=st.integers(1, 5), reduction=st.sampled_from(["mean", "sum"]), seed=seeds)
def test_cross_entropy_vjp(n, classes, reduction, seed):
    labels = np.random.default_rng(seed).integers(0, classes, n)
    check_op(CrossEntropy, [random_tensor((n, classes), seed)], {"target": labels, "reduction": reduction})
