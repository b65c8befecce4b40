"""Second derivatives: create_graph, tn.grad, gradgradcheck of every op that supports it, hvp and hessian.

softmax, log_softmax and cross_entropy are gradgradchecked beside their first-order checks
(tests/ops/test_gradients.py).
"""
import functools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinynet as tn
from kernels.test_kernels import conv_cases, pool_cases
from strategies import away_from_zero, distinct_values, random_tensor, seeds, shape_and_axis, small_shapes
from tinynet import functional as F
from tinynet.function import Function, once_differentiable
from tinynet.observers import observe_forward
from tinynet.tensor import differentiable_context

broadcast_pairs = hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=3)


# ---- gradgradcheck of every op that has a double backward (float64, random shapes) ----------
@pytest.mark.parametrize("op", [F.add, F.sub, F.mul], ids=["add", "sub", "mul"])
@given(shapes=broadcast_pairs, seed=seeds)
def test_binary_ops_with_broadcasting(op, shapes, seed):
    a, b = (random_tensor(shape, seed + i) for i, shape in enumerate(shapes.input_shapes))
    tn.gradgradcheck(op, [a, b])


@given(shapes=broadcast_pairs, seed=seeds)
def test_div_with_broadcasting(shapes, seed):
    tn.gradgradcheck(F.div, [random_tensor(shapes.input_shapes[0], seed),
                             random_tensor(shapes.input_shapes[1], seed + 1, low=0.5)])


@given(shape=small_shapes, seed=seeds, exponent=st.sampled_from([0, 2, 3, 0.5, -1.5]))
def test_pow(shape, seed, exponent):
    tn.gradgradcheck(lambda x: x ** exponent, [random_tensor(shape, seed, low=0.5)])


@pytest.mark.parametrize("op", [F.neg, F.exp, F.tanh, F.sigmoid, F.softplus, lambda x: x.clone()],
                         ids=["neg", "exp", "tanh", "sigmoid", "softplus", "clone"])
@given(shape=small_shapes, seed=seeds)
def test_smooth_unary_ops(op, shape, seed):
    tn.gradgradcheck(op, [random_tensor(shape, seed)])


@given(shape=small_shapes, seed=seeds)
def test_log_and_sqrt(shape, seed):
    tn.gradgradcheck(F.log, [random_tensor(shape, seed, low=0.2)])
    tn.gradgradcheck(F.sqrt, [random_tensor(shape, seed, low=0.2)])


@pytest.mark.parametrize("op", [F.relu, F.abs, F.leaky_relu, lambda x: F.clamp(x, -0.5, 0.5)],
                         ids=["relu", "abs", "leaky_relu", "clamp"])
@given(shape=small_shapes, seed=seeds)
def test_piecewise_linear_ops_off_their_kinks(op, shape, seed):
    x = away_from_zero(shape, seed)
    tn.gradgradcheck(lambda t: op(t) * t, [x])  # times t: op's own second derivative is 0 off the kinks


@pytest.mark.parametrize("op", [F.sum, F.mean, functools.partial(F.var, correction=0)], ids=["sum", "mean", "var"])
@given(case=shape_and_axis(), keepdims=st.booleans(), seed=seeds)
def test_reductions(op, case, keepdims, seed):
    shape, axis = case
    tn.gradgradcheck(lambda x: op(x * x, axis=axis, keepdims=keepdims), [random_tensor(shape, seed)])


@given(case=shape_and_axis(), keepdims=st.booleans(), seed=seeds)
def test_max_without_ties(case, keepdims, seed):
    shape, axis = case
    tn.gradgradcheck(lambda x: F.amax(x, axis, keepdims) ** 2, [distinct_values(shape, seed)])


@given(shape=small_shapes, seed=seeds)
def test_reshape_transpose_and_expand(shape, seed):
    x = random_tensor(shape, seed)
    permutation = tuple(np.random.default_rng(seed).permutation(len(shape)))
    tn.gradgradcheck(lambda t: F.reshape(t * t, (-1,)), [x])
    tn.gradgradcheck(lambda t: F.transpose(t * t, permutation), [x])
    tn.gradgradcheck(lambda t: F.expand(t * t, (2,) + shape), [x])


@given(shape=hnp.array_shapes(min_dims=2, max_dims=3, min_side=2, max_side=4), seed=seeds)
def test_indexing_with_repeated_indices(shape, seed):
    x = random_tensor(shape, seed)
    rows = np.random.default_rng(seed).integers(0, shape[0], size=5)
    tn.gradgradcheck(lambda t: t[1:, ::2] ** 3, [x])
    tn.gradgradcheck(lambda t: t[rows] ** 3, [x])


@given(shape=hnp.array_shapes(min_dims=1, max_dims=3, max_side=3), count=st.integers(1, 3), seed=seeds,
       data=st.data())
def test_concatenate_stack_and_pad(shape, count, seed, data):
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    tensors = [random_tensor(shape, seed + i) for i in range(count)]
    tn.gradgradcheck(lambda *ts: F.concatenate(ts, axis) ** 2, tensors)
    tn.gradgradcheck(lambda *ts: F.stack(ts, axis) ** 2, tensors)
    widths = [(1, 0)] * len(shape)
    tn.gradgradcheck(lambda t: F.pad(t, widths) ** 3, tensors[:1])


@given(batch=hnp.array_shapes(min_dims=0, max_dims=2, max_side=3), n=st.integers(1, 3), k=st.integers(1, 3),
       m=st.integers(1, 3), seed=seeds)
def test_batched_matmul(batch, n, k, m, seed):
    a, b = random_tensor(batch + (n, k), seed), random_tensor((k, m), seed + 1)
    tn.gradgradcheck(F.matmul, [a, b])
    tn.gradgradcheck(lambda x, y: F.tanh(x @ y), [a, b])


@given(n=st.integers(1, 3), features=st.integers(1, 3), outputs=st.integers(1, 3), with_bias=st.booleans(),
       seed=seeds)
def test_linear(n, features, outputs, with_bias, seed):
    x, weight, bias = (random_tensor(shape, seed + i) for i, shape in enumerate([(n, features), (outputs, features),
                                                                                   (outputs,)]))
    tn.gradgradcheck(lambda *args: F.sigmoid(F.linear(*args)), [x, weight, bias] if with_bias else [x, weight])


@given(shape=small_shapes, seed=seeds, reduction=st.sampled_from(["mean", "sum"]))
def test_binary_cross_entropy_and_mse(shape, seed, reduction):
    target = np.random.default_rng(seed).random(shape)
    tn.gradgradcheck(lambda x: F.binary_cross_entropy_with_logits(x, target, reduction), [random_tensor(shape, seed)])
    tn.gradgradcheck(lambda x, y: F.mse_loss(x, y, reduction), [random_tensor(shape, seed),
                                                                 random_tensor(shape, seed + 1)])


@given(case=conv_cases(), with_bias=st.booleans())
def test_conv2d(case, with_bias):
    x, weight, (stride, pads, dilation, groups), rng = case
    inputs = [tn.Tensor(x.astype(np.float64), requires_grad=True),
              tn.Tensor(weight.astype(np.float64), requires_grad=True)]
    if with_bias:
        inputs.append(tn.Tensor(rng.standard_normal(weight.shape[0]), requires_grad=True))
    tn.gradgradcheck(lambda *ts: F.tanh(F.conv2d(ts[0], ts[1], ts[2] if with_bias else None, stride, pads,
                                                 groups=groups, dilation=dilation)), inputs, fast=True)


@pytest.mark.parametrize("pool", [F.max_pool2d, F.avg_pool2d], ids=["max", "avg"])
@given(case=pool_cases())
def test_pooling(pool, case):
    x, kernel, stride, pads, _ = case
    tn.gradgradcheck(lambda t: pool(t, kernel, stride, pads) ** 2, [tn.Tensor(x * 0.1, requires_grad=True)])


# ---- known values --------------------------------------------------------------------------
X = np.linspace(-3, 3, 13)


def elementwise_second_derivative(fn, values):
    """(x, d²fn/dx² at x) for an elementwise fn, the second derivative recorded as a graph (to go on)."""
    x = tn.Tensor(values, requires_grad=True)
    (first,) = tn.grad(fn(x).sum(), x, create_graph=True)
    (second,) = tn.grad(first.sum(), x, create_graph=True)
    return x, second


def test_second_and_third_derivative_of_tanh():
    t = np.tanh(X)
    x, second = elementwise_second_derivative(F.tanh, X)
    (third,) = tn.grad(second.sum(), x)
    np.testing.assert_allclose(second.data, -2 * t * (1 - t * t), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(third.data, -2 * (1 - t * t) * (1 - 3 * t * t), rtol=1e-12, atol=1e-15)


def test_second_derivative_of_sigmoid():
    s = 1 / (1 + np.exp(-X))
    _, second = elementwise_second_derivative(F.sigmoid, X)
    np.testing.assert_allclose(second.data, s * (1 - s) * (1 - 2 * s), rtol=1e-12, atol=1e-15)


def test_hessian_of_log_sum_exp_is_diag_p_minus_p_p_transpose():
    x = np.array([0.5, -1.0, 2.0, 0.0])
    p = np.exp(x) / np.exp(x).sum()
    hessian = tn.hessian(lambda t: -F.log_softmax(t)[0] + t[0], x)  # log-sum-exp, through log_softmax
    np.testing.assert_allclose(hessian.data, np.diag(p) - np.outer(p, p), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(tn.hessian(lambda t: (t ** 3).sum(), x).data, np.diag(6 * x), atol=1e-15)


def softmax_regression_hessian(features, weights):
    """The hand-derived Hessian of mean cross-entropy of softmax(features @ weights): (D, K, D, K).

    H = (1/N) sum_i x_i x_i^T (kron) (diag p_i - p_i p_i^T), p_i = softmax(x_i @ weights).
    """
    logits = features @ weights
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    covariance = np.einsum("nk,kl->nkl", p, np.eye(p.shape[1])) - np.einsum("nk,nl->nkl", p, p)
    return np.einsum("na,nb,nkl->akbl", features, features, covariance) / len(features)


@given(seed=seeds)
def test_hvp_of_softmax_regression_equals_the_hand_hessian_times_v(seed):
    rng = np.random.default_rng(seed)
    features, labels = rng.standard_normal((20, 5)), rng.integers(0, 3, 20)
    weights, v = rng.standard_normal((5, 3)), rng.standard_normal((5, 3))
    value, product = tn.hvp(lambda w: F.cross_entropy(features @ w, labels), weights, v)
    expected = np.einsum("akbl,bl->ak", softmax_regression_hessian(features, weights), v)
    np.testing.assert_allclose(product.data, expected, rtol=0, atol=1e-10)
    assert value.item() == pytest.approx(F.cross_entropy(features @ weights, labels).item(), abs=1e-12)


def test_hvp_and_hessian_of_a_linear_function_are_zero():
    x = np.array([1.0, 2.0])
    np.testing.assert_array_equal(tn.hvp(lambda t: (t * 3).sum(), x, np.ones(2))[1].data, [0.0, 0.0])
    np.testing.assert_array_equal(tn.hessian(lambda t: (t * 3).sum(), x).data, np.zeros((2, 2)))


# ---- tn.grad and backward(create_graph=True) -----------------------------------------------
def test_grad_returns_gradients_and_leaves_dot_grad_alone():
    x = tn.Tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = tn.Tensor(np.array([3.0, 4.0]), requires_grad=True)
    (x * y).sum().backward()
    gx, gy = tn.grad([(x * y).sum(), (x * x).sum()], [x, y])
    np.testing.assert_array_equal(gx.data, [3.0 + 2.0, 4.0 + 4.0])
    np.testing.assert_array_equal(gy.data, [1.0, 2.0])
    np.testing.assert_array_equal(x.grad, [3.0, 4.0])  # from the backward above, unchanged
    assert not gx.requires_grad and isinstance(x.grad, np.ndarray)


def test_grad_takes_grad_outputs_and_reports_unused_inputs():
    x, unused = (tn.Tensor(np.array([1.0, 2.0]), requires_grad=True) for _ in range(2))
    (g,) = tn.grad(x * x, x, grad_outputs=np.array([1.0, 10.0]))
    np.testing.assert_array_equal(g.data, [2.0, 40.0])
    with pytest.raises(RuntimeError, match="input 1 .* is not used.*allow_unused=True"):
        tn.grad((x * x).sum(), [x, unused])
    assert tn.grad((x * x).sum(), [x, unused], allow_unused=True)[1] is None
    with pytest.raises(ValueError, match="grad_outputs has 2 entries for 1 outputs"):
        tn.grad(x * x, x, grad_outputs=[np.ones(2), np.ones(2)])


def test_backward_with_create_graph_makes_grad_a_differentiable_tensor():
    x = tn.Tensor(np.array([0.5, -1.0]), requires_grad=True)
    (x ** 3).sum().backward(create_graph=True)
    assert isinstance(x.grad, tn.Tensor) and x.grad.requires_grad
    np.testing.assert_allclose(x.grad.data, 3 * x.data ** 2)
    (second,) = tn.grad(x.grad.sum(), x)
    np.testing.assert_allclose(second.data, 6 * x.data)


def test_gradient_penalty_trains_through_the_gradient():
    """d/dw of |d loss / d x|^2 (a gradient penalty) against finite differences of the penalty."""
    rng = np.random.default_rng(0)
    x = tn.Tensor(rng.standard_normal((4, 3)), requires_grad=True)

    def penalty(weight):
        with tn.enable_grad():  # gradcheck's finite differences run under no_grad; tn.grad needs the graph
            (gx,) = tn.grad(F.tanh(x @ weight).sum(), x, create_graph=True)
        return (gx * gx).sum()
    tn.gradcheck(penalty, [tn.Tensor(rng.standard_normal((3, 2)), requires_grad=True)])


# ---- what cannot double-backward says so -----------------------------------------------------
@pytest.mark.parametrize("name, fn", [
    ("GELU", F.gelu),
    ("LocalResponseNorm", lambda x: F.local_response_norm(x, depth_radius=1)),
])
def test_ops_without_double_backward_raise_an_error_naming_them(name, fn):
    x = tn.Tensor(np.random.default_rng(0).random((1, 2, 4, 4)) + 0.5, requires_grad=True)
    fn(x).sum().backward()  # first order works
    with pytest.raises(RuntimeError, match=f"^{name} has no double backward"):
        tn.grad(fn(x).sum(), x, create_graph=True)


class SavesItsDerivative(Function):
    """tanh that keeps its derivative, a smooth function of x, as an attribute, and is not marked
    @once_differentiable: its double backward treats the derivative as a constant."""

    @staticmethod
    def forward(ctx, x):
        ctx.slope = 1 - np.tanh(x) ** 2
        return np.tanh(x)

    @staticmethod
    def backward(ctx, grad_out):
        return (grad_out * ctx.slope,)


def test_gradgradcheck_catches_a_wrong_double_backward_and_names_the_op():
    x = random_tensor((3,), 0)
    tn.gradcheck(lambda t: SavesItsDerivative.apply(t), [x])  # the first order is right
    with pytest.raises(tn.GradcheckError, match="second derivatives(.|\n)*first op that disagrees: SavesItsDerivative"):
        tn.gradgradcheck(lambda t: SavesItsDerivative.apply(t) * 2, [x])


class SavesACopy(Function):
    """x * x that saves a copy of x: not an input, so a double backward cannot differentiate through it."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x.copy())
        return x * x

    @staticmethod
    def backward(ctx, grad_out):
        (x,) = ctx.saved_tensors
        return (2 * grad_out * x,)


class FirstOrderOnly(Function):
    """x ** 3 whose backward is marked @once_differentiable."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x ** 3

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        (x,) = ctx.saved_tensors
        return (3 * grad_out * x * x,)


def test_a_saved_array_that_is_no_input_or_output_raises_in_a_double_backward_naming_the_op():
    x = random_tensor((3,), 0)
    tn.gradcheck(lambda t: SavesACopy.apply(t), [x])  # the first order is right
    with pytest.raises(RuntimeError, match="^SavesACopy.forward saved an array that is neither one of its inputs"):
        tn.grad(SavesACopy.apply(x).sum(), x, create_graph=True)


def test_once_differentiable_ops_work_once_and_name_themselves_when_differentiated_again():
    x = random_tensor((3,), 1)
    tn.gradcheck(lambda t: FirstOrderOnly.apply(t), [x])
    with pytest.raises(RuntimeError, match="^FirstOrderOnly has no double backward"):
        tn.grad(FirstOrderOnly.apply(x).sum(), x, create_graph=True)


def test_the_saved_tensors_of_a_double_backward_are_the_inputs_and_output_themselves():
    """Mul saves its inputs, Exp its output: in a create_graph backward, ctx.saved_tensors holds those Tensors."""
    a, b = random_tensor((2,), 2), random_tensor((2,), 3)
    seen = []
    with observe_forward(lambda op, ctx, inputs, params, out: seen.append((op, ctx, inputs, out))):
        product, exponential = a * b, F.exp(a)
    assert [op.__name__ for op, *_ in seen] == ["Mul", "Exp"]
    assert [tensor._data is array for tensor, array in zip(seen[0][2], seen[0][1].saved_tensors)] == [True, True]
    assert seen[1][1].saved_tensors[0] is exponential._data
    assert [t is x for t, x in zip(differentiable_context(product).saved_tensors, (a, b))] == [True, True]
    assert differentiable_context(exponential).saved_tensors[0] is exponential


# ---- hooks and observers in a create_graph backward -------------------------------------------
def test_hooks_receive_tensors_and_their_replacement_is_differentiated():
    x = tn.Tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = x * x
    seen = []
    y.register_hook(lambda grad: seen.append(grad) or grad * 3)
    (g,) = tn.grad(y.sum(), x, create_graph=True)
    assert isinstance(seen[0], tn.Tensor)
    np.testing.assert_array_equal(g.data, 6 * x.data)
    np.testing.assert_array_equal(tn.grad(g.sum(), x)[0].data, [6.0, 6.0])


def test_tracing_and_anomaly_mode_observe_a_create_graph_backward():
    a = tn.Tensor(np.array([1.0, 2.0]), requires_grad=True)
    with tn.tracing(names={"a": a}) as trace, tn.detect_anomaly():
        (F.tanh(a) * a).sum().backward(create_graph=True)
    assert [step.op for step in trace.steps] == ["Sum", "Mul", "Tanh", "a"]
    assert trace.steps[-1].leaf_grad == trace.steps[-1].grad_out
    np.testing.assert_allclose(trace.steps[-1].grad_out["values"], a.grad.data)
    with tn.tracing() as trace:
        tn.grad((F.tanh(a) * a).sum(), a, create_graph=True)
    assert len(trace.steps) == 4


@pytest.mark.parametrize("fn", [lambda t: F.max_pool2d(t, 2), lambda t: F.avg_pool2d(t, 2),
                                lambda t: F.conv2d(t, np.ones((1, 2, 2, 2)))], ids=["max_pool", "avg_pool", "conv"])
def test_double_backward_of_an_empty_batch(fn):
    x = tn.Tensor(np.zeros((0, 2, 4, 4)), requires_grad=True)
    (gradient,) = tn.grad((fn(x) ** 2).sum(), x, create_graph=True)
    (second,) = tn.grad(gradient.sum(), x)
    assert second.shape == x.shape
