"""Every op's analytic gradient against central finite differences (float64), over random shapes."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinynet as tn
from strategies import away_from_zero, distinct_values, random_tensor, seeds, shape_and_axis, small_shapes
from tinynet import functional as F

broadcast_pairs = hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=3)


@pytest.mark.parametrize("op", [F.add, F.sub, F.mul], ids=["add", "sub", "mul"])
@given(shapes=broadcast_pairs, seed=seeds)
def test_binary_ops_with_broadcasting(op, shapes, seed):
    a, b = (random_tensor(shape, seed + i) for i, shape in enumerate(shapes.input_shapes))
    tn.gradcheck(op, [a, b])


@given(shapes=broadcast_pairs, seed=seeds)
def test_div_with_broadcasting(shapes, seed):
    numerator = random_tensor(shapes.input_shapes[0], seed)
    denominator = random_tensor(shapes.input_shapes[1], seed + 1, low=0.5)
    tn.gradcheck(F.div, [numerator, denominator])


@given(shape=small_shapes, seed=seeds, exponent=st.sampled_from([2, 3, 0.5, -1.5]))
def test_pow(shape, seed, exponent):
    tn.gradcheck(lambda x: x ** exponent, [random_tensor(shape, seed, low=0.5)])


@pytest.mark.parametrize("op", [F.neg, F.exp, F.tanh, F.sigmoid], ids=["neg", "exp", "tanh", "sigmoid"])
@given(shape=small_shapes, seed=seeds)
def test_smooth_unary_ops(op, shape, seed):
    tn.gradcheck(op, [random_tensor(shape, seed)])


@given(shape=small_shapes, seed=seeds)
def test_log(shape, seed):
    tn.gradcheck(F.log, [random_tensor(shape, seed, low=0.2)])


@given(shape=small_shapes, seed=seeds)
def test_relu_off_the_kink(shape, seed):
    tn.gradcheck(F.relu, [away_from_zero(shape, seed)])


@pytest.mark.parametrize("op", [F.sum, F.mean], ids=["sum", "mean"])
@given(case=shape_and_axis(), keepdims=st.booleans(), seed=seeds)
def test_sum_and_mean(op, case, keepdims, seed):
    shape, axis = case
    tn.gradcheck(lambda x: op(x, axis, keepdims), [random_tensor(shape, seed)])


@given(case=shape_and_axis(), keepdims=st.booleans(), seed=seeds)
def test_max_without_ties(case, keepdims, seed):
    shape, axis = case
    tn.gradcheck(lambda x: F.amax(x, axis, keepdims), [distinct_values(shape, seed)])


def test_max_shares_the_gradient_between_ties():
    x = tn.Tensor(np.array([1.0, 3.0, 3.0]), requires_grad=True)
    F.max(x).backward()
    np.testing.assert_array_equal(x.grad, [0.0, 0.5, 0.5])


@given(shape=small_shapes, seed=seeds)
def test_reshape_and_transpose(shape, seed):
    x = random_tensor(shape, seed)
    permutation = tuple(np.random.default_rng(seed).permutation(len(shape)))
    tn.gradcheck(lambda t: F.reshape(t, (-1,)), [x])
    tn.gradcheck(lambda t: F.transpose(t, permutation), [x])
    tn.gradcheck(lambda t: t.T, [x])


@given(shape=hnp.array_shapes(min_dims=2, max_dims=3, min_side=2, max_side=5), seed=seeds)
def test_indexing_slices_integers_and_repeated_fancy_indices(shape, seed):
    x = random_tensor(shape, seed)
    rows = np.random.default_rng(seed).integers(0, shape[0], size=5)  # repeats: gradients must add up
    tn.gradcheck(lambda t: t[1:, ::2], [x])
    tn.gradcheck(lambda t: t[rows], [x])
    tn.gradcheck(lambda t: t[..., rows % shape[-1]], [x])  # an array beside basic indices: repeats add up too
    tn.gradcheck(lambda t: t[0, -1], [x])
    tn.gradcheck(lambda t: t[t.data > 0], [x])


@given(shape=hnp.array_shapes(min_dims=1, max_dims=3, max_side=3), count=st.integers(1, 3), seed=seeds,
       data=st.data())
def test_concatenate_and_stack(shape, count, seed, data):
    axis = data.draw(st.integers(0, len(shape) - 1))
    tensors = [random_tensor(shape, seed + i) for i in range(count)]
    tn.gradcheck(lambda *ts: F.concatenate(ts, axis), tensors)
    tn.gradcheck(lambda *ts: F.stack(ts, axis), tensors)


@given(shape=small_shapes, seed=seeds, data=st.data())
def test_pad(shape, seed, data):
    widths = data.draw(st.lists(st.tuples(st.integers(0, 2), st.integers(0, 2)), min_size=len(shape),
                                max_size=len(shape)))
    tn.gradcheck(lambda x: F.pad(x, widths), [random_tensor(shape, seed)])


@given(batch=hnp.array_shapes(min_dims=0, max_dims=2, max_side=3), n=st.integers(1, 4), k=st.integers(1, 4),
       m=st.integers(1, 4), seed=seeds)
def test_batched_matmul(batch, n, k, m, seed):
    a = random_tensor(batch + (n, k), seed)
    b = random_tensor((k, m), seed + 1)  # broadcast over a's batch axes
    tn.gradcheck(F.matmul, [a, b])
    tn.gradcheck(F.matmul, [random_tensor((m, k), seed), random_tensor(batch + (k, n), seed + 1)])


@given(k=st.integers(1, 5), m=st.integers(1, 4), seed=seeds)
def test_matmul_with_vectors(k, m, seed):
    vector, matrix = random_tensor((k,), seed), random_tensor((k, m), seed + 1)
    tn.gradcheck(F.matmul, [vector, matrix])
    tn.gradcheck(F.matmul, [random_tensor((m, k), seed), vector])
    tn.gradcheck(F.matmul, [vector, random_tensor((k,), seed + 2)])


@given(batch=hnp.array_shapes(min_dims=0, max_dims=2, max_side=3), features=st.integers(1, 5),
       outputs=st.integers(1, 4), with_bias=st.booleans(), seed=seeds)
def test_linear(batch, features, outputs, with_bias, seed):
    """One op for x: (N, in); x: (in,) or (B, N, in) through reshapes around it, as PyTorch's (*, in)."""
    x, weight, bias = (random_tensor(shape, seed + i) for i, shape in enumerate([batch + (features,),
                                                                                   (outputs, features), (outputs,)]))
    tn.gradcheck(F.linear, [x, weight, bias] if with_bias else [x, weight])


first_and_second = pytest.mark.parametrize("check", [tn.gradcheck, tn.gradgradcheck], ids=["first", "second"])


@first_and_second
@pytest.mark.parametrize("op", [F.softmax, F.log_softmax], ids=["softmax", "log_softmax"])
@given(case=shape_and_axis(), seed=seeds)
def test_softmax_family(check, op, case, seed):
    shape, _ = case
    axis = int(np.random.default_rng(seed).integers(-len(shape), len(shape)))
    check(lambda x: op(x, axis), [random_tensor(shape, seed)])


@first_and_second
@given(n=st.integers(1, 5), classes=st.integers(1, 5), seed=seeds,
       reduction=st.sampled_from(["mean", "sum", "none"]), one_hot=st.booleans())
def test_cross_entropy(check, n, classes, seed, reduction, one_hot):
    labels = np.random.default_rng(seed).integers(0, classes, n)
    target = np.eye(classes)[labels] if one_hot else labels
    check(lambda x: F.cross_entropy(x, target, reduction=reduction), [random_tensor((n, classes), seed)])


@given(shape=small_shapes, seed=seeds, reduction=st.sampled_from(["mean", "sum"]))
def test_binary_cross_entropy_with_logits(shape, seed, reduction):
    target = np.random.default_rng(seed).random(shape)
    tn.gradcheck(lambda x: F.binary_cross_entropy_with_logits(x, target, reduction),
                 [random_tensor(shape, seed)])


@given(shape=small_shapes, seed=seeds)
def test_mse_loss(shape, seed):
    tn.gradcheck(F.mse_loss, [random_tensor(shape, seed), random_tensor(shape, seed + 1)])


@given(shapes=st.lists(small_shapes, min_size=1, max_size=3), seed=seeds)
def test_l2_penalty(shapes, seed):
    params = [random_tensor(shape, seed + i) for i, shape in enumerate(shapes)]
    tn.gradcheck(lambda *ps: F.l2_penalty(ps, 0.3), params)


@given(shape=small_shapes, seed=seeds, p=st.sampled_from([0.2, 0.5]))
def test_dropout_with_a_fixed_mask(shape, seed, p):
    tn.gradcheck(lambda x: F.dropout(x, p, training=True, rng=np.random.default_rng(seed)),
                 [random_tensor(shape, seed)])
