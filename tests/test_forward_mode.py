"""Forward mode and the tinynet.func transforms: every op's JVP against central differences (float64) and
against its VJP by the adjoint identity <J v, u> = <v, J^T u>; jacfwd against jacrev, hessian against
tn.hessian, nesting, perturbation confusion, the errors; and torch.func, when torch is importable."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinynet as tn
from kernels.test_kernels import conv_cases, pool_cases
from op_calls import CALLS, inputs_of
from strategies import away_from_zero, distinct_values, random_tensor, seeds, shape_and_axis, small_shapes
from tinynet import func
from tinynet import functional as F
from tinynet.finite_differences import ProjectedFunction
from tinynet.function import Function

broadcast_pairs = hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=3)
STEP = 1e-6


def random_like(x, rng):
    """Standard normal values of x's shape and dtype."""
    return rng.standard_normal(x.shape).astype(x.dtype)


def check_jvp(fn, inputs, seed=0, rtol=1e-6):
    """fn's JVP along a random tangent of each input, alone, against the central difference of <u, fn> along it
    (within its round-off, see tinynet.finite_differences); then all tangents at once against the VJP.

    An output in float32 (a cast) is resolved only to float32's round-off: a longer step, a wider floor."""
    rng = np.random.default_rng(seed)
    out = fn(*inputs)
    weights = rng.standard_normal(out.shape)
    tangents = [random_like(x, rng) for x in inputs]
    step = STEP if out.dtype == np.float64 else 1e-2
    float32_roundoff = 0 if out.dtype == np.float64 else 4 * np.finfo(out.dtype).eps * np.abs(weights * out.data).sum()
    for k in range(len(inputs)):
        alone = [tangent if i == k else np.zeros_like(tangent) for i, tangent in enumerate(tangents)]
        _, tangent_out = func.jvp(fn, tuple(inputs), tuple(alone))
        difference = ProjectedFunction(fn, inputs, weights).central_difference(k, tangents[k], step)
        if difference.crossed_kinks:
            continue
        projected = float(np.sum(weights * tangent_out.data))
        roundoff = difference.roundoff + float32_roundoff / step
        assert abs(projected - difference.value) <= roundoff + rtol * abs(difference.value) + 1e-9, \
            f"input {k}: jvp gives {projected}, the central difference {difference.value}"
    check_adjoint(fn, inputs, tangents, weights.astype(out.dtype), rtol=1e-9 if out.dtype == np.float64 else 1e-5)


def check_adjoint(fn, inputs, tangents, cotangent, rtol=1e-9):
    """<J v, u> = <v, J^T u>: the JVP along tangents against the VJP of cotangent."""
    out, tangent_out = func.jvp(fn, tuple(inputs), tuple(tangents))
    assert tangent_out.shape == out.shape and tangent_out.dtype == out.dtype
    _, vjp_fn = func.vjp(fn, *inputs)
    forward = np.sum(tangent_out.data.astype(np.float64) * cotangent)
    backward = sum(np.sum(tangent.astype(np.float64) * gradient.data) for tangent, gradient
                   in zip(tangents, vjp_fn(cotangent)))
    scale = np.sum(np.abs(tangent_out.data.astype(np.float64) * cotangent)) + 1e-30
    assert abs(forward - backward) <= rtol * scale, f"<J v, u> = {forward}, <v, J^T u> = {backward}"


# ---- every op reachable from tinynet.functional (the table in tests/op_calls.py) ----------------
@pytest.mark.parametrize("name", sorted(CALLS))
@given(seed=seeds)
def test_every_jvp_matches_central_differences_and_the_vjp(name, seed):
    check_jvp(CALLS[name][0], inputs_of(name, np.float64, seed % 1000), seed)


@pytest.mark.parametrize("name", sorted(CALLS))
def test_every_jvp_in_float32_has_the_outputs_dtype_and_is_the_vjps_adjoint(name):
    rng = np.random.default_rng(1)
    inputs = inputs_of(name, np.float32)
    out = CALLS[name][0](*inputs)
    check_adjoint(CALLS[name][0], inputs, [random_like(x, rng) for x in inputs],
                  rng.standard_normal(out.shape).astype(out.dtype), rtol=1e-4)


# ---- primitives over random shapes ------------------------------------------------------------------
@pytest.mark.parametrize("fn", [F.neg, F.exp, F.tanh, F.sigmoid, F.softplus, F.gelu, lambda x: x.clone(),
                                lambda x: x ** 3, lambda x: x.double()],
                         ids=["neg", "exp", "tanh", "sigmoid", "softplus", "gelu", "clone", "cube", "cast"])
@given(shape=small_shapes, seed=seeds)
def test_smooth_unary_ops(fn, shape, seed):
    check_jvp(fn, [random_tensor(shape, seed)], seed)


@given(shape=small_shapes, seed=seeds, exponent=st.sampled_from([0, 0.5, -1.5]))
def test_log_sqrt_and_pow(shape, seed, exponent):
    x = random_tensor(shape, seed, low=0.2)
    for fn in (F.log, F.sqrt, lambda t: t ** exponent):
        check_jvp(fn, [x], seed)


@pytest.mark.parametrize("fn", [F.relu, F.abs, F.leaky_relu, lambda x: F.clamp(x, -0.5, 0.5)],
                         ids=["relu", "abs", "leaky_relu", "clamp"])
@given(shape=small_shapes, seed=seeds)
def test_piecewise_linear_ops_off_their_kinks(fn, shape, seed):
    check_jvp(fn, [away_from_zero(shape, seed)], seed)


@pytest.mark.parametrize("fn", [F.add, F.sub, F.mul, lambda a, b: F.div(a, b * b + 0.5),
                                lambda a, b: F.where(np.ones(np.broadcast_shapes(a.shape, b.shape)) > 0.5, a, b)],
                         ids=["add", "sub", "mul", "div", "where"])
@given(shapes=broadcast_pairs, seed=seeds)
def test_binary_ops_with_broadcasting(fn, shapes, seed):
    check_jvp(fn, [random_tensor(shape, seed + i) for i, shape in enumerate(shapes.input_shapes)], seed)


@pytest.mark.parametrize("fn", [F.sum, F.mean, F.amax, F.amin], ids=["sum", "mean", "amax", "amin"])
@given(case=shape_and_axis(), keepdims=st.booleans(), seed=seeds)
def test_reductions(fn, case, keepdims, seed):
    shape, axis = case
    check_jvp(lambda x: fn(x, axis, keepdims), [distinct_values(shape, seed)], seed)


@given(case=shape_and_axis(), seed=seeds)
def test_softmax_and_log_softmax(case, seed):
    shape, axis = case
    axis = axis if isinstance(axis, int) else -1
    check_jvp(lambda x: F.softmax(x, axis), [random_tensor(shape, seed)], seed)
    check_jvp(lambda x: F.log_softmax(x, axis), [random_tensor(shape, seed)], seed)


@given(batch=hnp.array_shapes(min_dims=0, max_dims=2, max_side=3), n=st.integers(1, 3), k=st.integers(1, 3),
       m=st.integers(1, 3), seed=seeds)
def test_matmul(batch, n, k, m, seed):
    check_jvp(F.matmul, [random_tensor(batch + (n, k), seed), random_tensor((k, m), seed + 1)], seed)


@given(n=st.integers(1, 3), features=st.integers(1, 3), outputs=st.integers(1, 3), with_bias=st.booleans(),
       seed=seeds)
def test_linear(n, features, outputs, with_bias, seed):
    shapes = [(n, features), (outputs, features)] + ([(outputs,)] if with_bias else [])
    check_jvp(F.linear, [random_tensor(shape, seed + i) for i, shape in enumerate(shapes)], seed)


@given(shape=small_shapes, seed=seeds)
def test_shape_ops(shape, seed):
    x = random_tensor(shape, seed)
    check_jvp(lambda t: F.reshape(t, (-1,)), [x], seed)
    check_jvp(F.transpose, [x], seed)
    check_jvp(lambda t: t[..., ::2], [x], seed)
    check_jvp(lambda t: t[np.array([0, 0, shape[0] - 1])], [x], seed)  # a picked twice
    check_jvp(lambda t: F.pad(t, (1, 2)), [x], seed)
    check_jvp(lambda a, b: F.concatenate([a, b], axis=-1), [x, random_tensor(shape, seed + 1)], seed)
    check_jvp(lambda t: F.expand(t, (2,) + shape), [x], seed)


@given(case=conv_cases(), with_bias=st.booleans())
def test_conv2d(case, with_bias):
    x, weight, (stride, pads, dilation, groups), rng = case
    inputs = [tn.Tensor(x.astype(np.float64)), tn.Tensor(weight.astype(np.float64))]
    if with_bias:
        inputs.append(tn.Tensor(rng.standard_normal(weight.shape[0])))
    check_jvp(lambda *ts: F.conv2d(ts[0], ts[1], ts[2] if with_bias else None, stride, pads, groups=groups,
                                   dilation=dilation), inputs)


@pytest.mark.parametrize("pool", [F.max_pool2d, F.avg_pool2d], ids=["max", "avg"])
@given(case=pool_cases())
def test_pooling(pool, case):
    x, kernel, stride, pads, _ = case
    check_jvp(lambda t: pool(t, kernel, stride, pads), [tn.Tensor(x * 0.1)])


@given(shape=st.tuples(st.integers(1, 2), st.integers(1, 5), st.integers(1, 3), st.integers(1, 3)), seed=seeds,
       radius=st.integers(0, 2))
def test_local_response_norm(shape, seed, radius):
    check_jvp(lambda t: F.local_response_norm(t, depth_radius=radius, alpha=0.5), [random_tensor(shape, seed)], seed)


@given(n=st.integers(1, 4), classes=st.integers(1, 4), reduction=st.sampled_from(["mean", "sum"]), seed=seeds)
def test_cross_entropy(n, classes, reduction, seed):
    labels = np.random.default_rng(seed).integers(0, classes, n)
    check_jvp(lambda t: F.cross_entropy(t, labels, reduction=reduction), [random_tensor((n, classes), seed)], seed)


# ---- the transforms -------------------------------------------------------------------------------
STEPS = {  # name: (tinynet's step, torch's step), each of x (2, 3) and y (2, 3) to a (2, 3) result
    "tanh": (lambda x, y: F.tanh(x), lambda x, y, torch: torch.tanh(x)),
    "sigmoid": (lambda x, y: F.sigmoid(x), lambda x, y, torch: torch.sigmoid(x)),
    "square": (lambda x, y: x * x, lambda x, y, torch: x * x),
    "times y": (lambda x, y: x * y, lambda x, y, torch: x * y),
    "plus y": (lambda x, y: x + y, lambda x, y, torch: x + y),
    "over 1 + y^2": (lambda x, y: x / (1 + y * y), lambda x, y, torch: x / (1 + y * y)),
    "softplus": (lambda x, y: F.softplus(x), lambda x, y, torch: torch.nn.functional.softplus(x)),
    "softmax": (lambda x, y: F.softmax(x, -1), lambda x, y, torch: torch.softmax(x, -1)),
    "log_softmax": (lambda x, y: F.log_softmax(x, 0), lambda x, y, torch: torch.log_softmax(x, 0)),
    "matmul": (lambda x, y: x @ F.transpose(y) @ x, lambda x, y, torch: x @ y.T @ x),
    "mean": (lambda x, y: x - F.mean(x, 1, keepdims=True), lambda x, y, torch: x - x.mean(1, keepdim=True)),
    "exp": (lambda x, y: F.exp(F.tanh(x)), lambda x, y, torch: torch.exp(torch.tanh(x))),  # bounded: no overflow
}
programs = st.lists(st.sampled_from(sorted(STEPS)), min_size=1, max_size=4)


def program_of(steps, torch=None):
    """The function (x, y) -> the steps applied in turn to x, in tinynet (or in torch, given the module)."""
    def run(x, y):
        for step in steps:
            x = STEPS[step][0](x, y) if torch is None else STEPS[step][1](x, y, torch)
        return x
    return run


def two_inputs(seed):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((2, 3)), rng.standard_normal((2, 3))


@given(steps=programs, seed=seeds)
def test_jacfwd_is_jacrev_on_random_programs(steps, seed):
    x, y = two_inputs(seed)
    forward = func.jacfwd(program_of(steps), argnums=(0, 1))(x, y)
    reverse = func.jacrev(program_of(steps), argnums=(0, 1))(x, y)
    for by_forward, by_reverse in zip(forward, reverse):
        assert by_forward.shape == (2, 3, 2, 3)
        np.testing.assert_allclose(by_forward.data, by_reverse.data, rtol=1e-10, atol=1e-12)


@given(steps=programs, seed=seeds)
def test_hessian_is_tn_hessian_on_random_programs(steps, seed):
    """Forward over reverse (func.hessian), reverse over forward, and double backward (tn.hessian) agree."""
    x, y = two_inputs(seed)
    f = program_of(steps)
    hessian = func.hessian(lambda t: f(t, y).sum())(x)
    assert hessian.shape == (2, 3, 2, 3)
    np.testing.assert_allclose(hessian.data, tn.hessian(lambda t: f(t, y).sum(), x).data, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(func.jacrev(func.jacfwd(lambda t: f(t, y).sum()))(x).data, hessian.data, rtol=1e-9,
                               atol=1e-12)


SECOND_ORDER_ONLY_BY_FIRST_ORDER_BACKWARD = {"gelu", "local_response_norm"}  # @once_differentiable: they raise


@pytest.mark.parametrize("name", sorted(set(CALLS) - SECOND_ORDER_ONLY_BY_FIRST_ORDER_BACKWARD))
def test_every_jvp_is_differentiable_reverse_over_forward(name):
    """d/dx <u, J(x) v> two ways: the VJP of the JVP (each JVP rule run on Tensors) and the JVP of the VJP (each
    VJP's ops pushing tangents forward)."""
    rng = np.random.default_rng(2)
    fn, inputs = CALLS[name][0], inputs_of(name, np.float64)
    tangents = tuple(random_like(x, rng) for x in inputs)
    cotangent = rng.standard_normal(fn(*inputs).shape)
    reverse_over_forward = func.vjp(lambda *xs: func.jvp(fn, xs, tangents)[1], *inputs)[1](cotangent)
    for k, by_reverse in enumerate(reverse_over_forward):
        forward_over_reverse = func.jvp(lambda *xs, k=k: func.vjp(fn, *xs)[1](cotangent)[k], tuple(inputs),
                                        tangents)[1]
        np.testing.assert_allclose(by_reverse.data, forward_over_reverse.data, rtol=1e-9, atol=1e-12)


def test_jacobians_of_several_arguments_shapes_and_argnums():
    x, y = np.arange(6.0).reshape(2, 3), np.ones(4)
    f = lambda a, b: F.sum(a, 1)[:, None] * b  # noqa: E731
    for jacobian in (func.jacfwd, func.jacrev):
        assert jacobian(f)(x, y).shape == (2, 4, 2, 3)
        assert jacobian(f, argnums=1)(x, y).shape == (2, 4, 4)
        assert [j.shape for j in jacobian(f, argnums=(1, -2))(x, y)] == [(2, 4, 4), (2, 4, 2, 3)]
        np.testing.assert_array_equal(jacobian(f, argnums=1)(x, y).data, np.einsum("i,jk->ijk", x.sum(1), np.eye(4)))
    with pytest.raises(ValueError, match="argnums must be an int or a non-empty tuple"):
        func.jacrev(f, argnums=2)(x, y)


def two_outputs(a, b):
    """A function with a tuple of two outputs, of shapes (2,) and (2, 3), for a (2, 3) and b (3,)."""
    return F.sum(F.tanh(a) * b, 1), a * F.exp(b)


def test_a_tuple_of_outputs_gives_a_tuple_of_tangents_cotangents_and_jacobians():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((2, 3)), rng.standard_normal(3)
    (first, second), (tangent_first, tangent_second) = func.jvp(two_outputs, (a, b), (np.ones((2, 3)), np.zeros(3)))
    assert first.shape == tangent_first.shape == (2,) and second.shape == tangent_second.shape == (2, 3)
    np.testing.assert_allclose(tangent_second.data, np.exp(b) * np.ones((2, 3)))
    _, vjp_fn = func.vjp(two_outputs, a, b)
    grad_a, grad_b = vjp_fn((np.zeros(2), np.ones((2, 3))))
    np.testing.assert_allclose(grad_a.data, np.broadcast_to(np.exp(b), (2, 3)))
    np.testing.assert_allclose(grad_b.data, a.sum(0) * np.exp(b))
    with pytest.raises(ValueError, match="one cotangent per output"):
        vjp_fn(np.zeros(2))
    forward, reverse = func.jacfwd(two_outputs, (0, 1))(a, b), func.jacrev(two_outputs, (0, 1))(a, b)
    assert [[j.shape for j in by_output] for by_output in forward] == [[(2, 2, 3), (2, 3)], [(2, 3, 2, 3), (2, 3, 3)]]
    for by_forward, by_reverse in zip(forward, reverse):
        for jacobian_forward, jacobian_reverse in zip(by_forward, by_reverse):
            np.testing.assert_allclose(jacobian_forward.data, jacobian_reverse.data, rtol=1e-12)


def test_grad_of_grad_and_no_perturbation_confusion():
    x = tn.Tensor(np.array(3.0))
    cube = lambda t: t ** 3  # noqa: E731
    assert func.grad(func.grad(cube))(x).item() == pytest.approx(18.0)  # 6x
    assert func.grad(func.grad(func.grad(cube)))(x).item() == pytest.approx(6.0)
    # d/dx [x * d(x y)/dy at y = x] = d(x^2)/dx = 2x: the inner gradient is with respect to y alone
    assert func.grad(lambda t: t * func.grad(lambda y: t * y)(t))(x).item() == pytest.approx(6.0)
    # inner input a constant: the inner gradient x still depends on the outer x
    assert func.grad(lambda t: func.grad(lambda y: t * t * y)(tn.Tensor(np.array(1.0))))(x).item() == pytest.approx(6.0)
    assert func.jvp(func.grad(cube), (x,), (np.array(1.0),))[1].item() == pytest.approx(18.0)  # forward over reverse
    reverse_over_forward = func.grad(lambda t: func.jvp(cube, (t,), (np.array(1.0),))[1])
    assert reverse_over_forward(x).item() == pytest.approx(18.0)


def test_grad_value_aux_and_vjp():
    x = tn.Tensor(np.array([1.0, 2.0]))
    gradient, (value, aux) = func.grad_and_value(lambda t: ((t * t).sum(), "aux"), has_aux=True)(x)
    np.testing.assert_array_equal(gradient.data, [2.0, 4.0])
    assert value.item() == 5.0 and aux == "aux"
    out, vjp_fn = func.vjp(lambda a, b: a * b, x, np.array([3.0, 4.0]))
    grad_a, grad_b = vjp_fn(np.array([1.0, 10.0]))
    np.testing.assert_array_equal(grad_a.data, [3.0, 40.0])
    np.testing.assert_array_equal(grad_b.data, [1.0, 20.0])
    with pytest.raises(ValueError, match="one-element output"):
        func.grad(lambda t: t * 2)(x)
    assert func.grad(lambda t: F.sum(x))(tn.Tensor(np.ones(2))).data.tolist() == [0.0, 0.0]  # unused: zeros


def test_under_no_grad_the_transforms_still_differentiate():
    x = tn.Tensor(np.array([1.0, 2.0]))
    with tn.no_grad():
        np.testing.assert_array_equal(func.grad(lambda t: (t * t).sum())(x).data, [2.0, 4.0])
        np.testing.assert_array_equal(func.jvp(lambda t: t * t, (x,), (np.ones(2),))[1].data, [2.0, 4.0])


def test_linearize_gives_the_jvp_at_the_primals():
    x = tn.Tensor(np.array([0.5, -1.0]))
    out, jvp_fn = func.linearize(F.tanh, x)
    np.testing.assert_allclose(out.data, np.tanh(x.data))
    np.testing.assert_allclose(jvp_fn(np.array([2.0, 1.0])).data, (1 - np.tanh(x.data) ** 2) * [2.0, 1.0])


def test_a_tangent_left_on_a_tensor_after_its_jvp_is_never_read_again():
    x = tn.Tensor(np.array([1.0, 2.0]))
    kept = []
    func.jvp(lambda t: kept.append(t * 3) or kept[0], (x,), (np.ones(2),))
    _, tangent = func.jvp(lambda t: t + kept[0], (x,), (np.full(2, 5.0),))
    np.testing.assert_array_equal(tangent.data, [5.0, 5.0])  # kept[0] is a constant now, not 3 * its old tangent


# ---- errors -----------------------------------------------------------------------------------------
class NoForwardRule(Function):
    """2x without a JVP rule."""

    @staticmethod
    def forward(ctx, x):
        return 2 * x

    @staticmethod
    def backward(ctx, grad_out):
        return (2 * grad_out,)


class WrongTangent(Function):
    """x summed to one element, whose JVP returns the input's shape."""

    @staticmethod
    def forward(ctx, x):
        return np.asarray(x.sum())

    @staticmethod
    def backward(ctx, grad_out):
        return (grad_out + np.zeros(3),)

    @staticmethod
    def jvp(ctx, tangent):
        return tangent


class Float32Tangent(NoForwardRule):
    @staticmethod
    def jvp(ctx, tangent):
        return (2 * tangent).astype(np.float32)


def test_an_op_without_a_jvp_rule_raises_naming_it_and_works_outside_forward_mode():
    x = tn.Tensor(np.ones(3), requires_grad=True)
    NoForwardRule.apply(x).sum().backward()
    np.testing.assert_array_equal(func.jacrev(NoForwardRule.apply)(x).data, 2 * np.eye(3))
    with pytest.raises(NotImplementedError, match="^forward mode: NoForwardRule has no JVP rule"):
        func.jvp(NoForwardRule.apply, (x,), (np.ones(3),))


def test_a_jvp_of_the_wrong_shape_or_dtype_raises_naming_the_op():
    x = tn.Tensor(np.ones(3))
    with pytest.raises(RuntimeError, match=r"^forward mode: WrongTangent.jvp returned a tangent of shape \(3,\)"):
        func.jvp(WrongTangent.apply, (x,), (np.ones(3),))
    with pytest.raises(RuntimeError, match="^forward mode: Float32Tangent.jvp returned a tangent of dtype float32"):
        func.jvp(Float32Tangent.apply, (x,), (np.ones(3),))


def test_tangents_that_do_not_fit_their_primals_raise():
    x = tn.Tensor(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"^tangent 0 has shape \(3,\) and dtype float64, primal 0 shape \(2, 3\)"):
        func.jvp(F.tanh, (x,), (np.ones(3),))
    with pytest.raises(ValueError, match="^tangent 1 has shape .* dtype float32"):
        func.jvp(F.add, (x, x), (np.ones((2, 3)), np.ones((2, 3), np.float32)))
    with pytest.raises(TypeError, match="as tuples"):
        func.jvp(F.tanh, x, np.ones((2, 3)))


def test_nested_forward_mode_raises():
    x = tn.Tensor(np.ones(2))
    with pytest.raises(RuntimeError, match="^nested jvp is not supported"):
        func.jvp(lambda t: func.jvp(F.tanh, (t,), (np.ones(2),))[1], (x,), (np.ones(2),))
    with pytest.raises(RuntimeError, match="^nested jvp is not supported"):
        func.jacfwd(func.jacfwd(F.tanh))(x)
    assert func.jvp(F.tanh, (x,), (np.ones(2),))[1].shape == (2,)  # the failed levels closed


@pytest.mark.parametrize("name, fn", [("GELU", F.gelu),
                                      ("LocalResponseNorm", lambda x: F.local_response_norm(x, depth_radius=1))])
def test_forward_over_reverse_through_a_first_order_backward_raises_naming_the_op(name, fn):
    x = tn.Tensor(np.random.default_rng(0).random((1, 2, 2, 2)) + 0.5)
    func.jacrev(lambda t: fn(t).sum())(x)  # reverse mode alone works
    func.jacfwd(fn)(x)  # forward mode too
    with pytest.raises(RuntimeError, match=f"^{name} has no double backward"):
        func.hessian(lambda t: fn(t).sum())(x)


def test_tensors_requiring_grad_change_nothing():
    """As torch.func's, the transforms ignore requires_grad, of their inputs and of the tensors f closes over:
    outside another transform their results are constants, and GELU's first-order backward serves."""
    x, w = tn.Tensor(np.array([1.0, 2.0]), requires_grad=True), tn.Tensor(np.array([0.5, -1.0]), requires_grad=True)
    fixed = w.detach()
    gradient = func.grad(lambda t: F.gelu(t * w).sum())(x)
    assert not gradient.requires_grad
    np.testing.assert_array_equal(gradient.data, func.grad(lambda t: F.gelu(t * fixed).sum())(x.detach()).data)
    np.testing.assert_array_equal(func.jvp(lambda t: F.gelu(t * w), (x,), (np.ones(2),))[1].data,
                                  func.jvp(lambda t: F.gelu(t * fixed), (x.detach(),), (np.ones(2),))[1].data)
    np.testing.assert_array_equal(func.jacrev(F.gelu)(x).data, func.jacfwd(F.gelu)(x).data)


# ---- against torch.func -----------------------------------------------------------------------------
@given(steps=programs, seed=seeds)
def test_transforms_match_torch_func_on_random_programs(steps, seed):
    torch = pytest.importorskip("torch")
    x, y = two_inputs(seed)
    v, u = two_inputs(seed + 1)
    ours, theirs = program_of(steps), program_of(steps, torch)
    tx, ty, tv, tu = (torch.tensor(a) for a in (x, y, v, u))
    close = dict(rtol=1e-9, atol=1e-12)
    out, tangent = func.jvp(ours, (x, y), (v, u))
    torch_out, torch_tangent = torch.func.jvp(theirs, (tx, ty), (tv, tu))
    np.testing.assert_allclose(out.data, torch_out.numpy(), **close)
    np.testing.assert_allclose(tangent.data, torch_tangent.numpy(), **close)
    for ours_grad, torch_grad in zip(func.vjp(ours, x, y)[1](u), torch.func.vjp(theirs, tx, ty)[1](tu)):
        np.testing.assert_allclose(ours_grad.data, torch_grad.numpy(), **close)
    for transform, torch_transform in [(func.jacfwd, torch.func.jacfwd), (func.jacrev, torch.func.jacrev)]:
        for ours_jacobian, torch_jacobian in zip(transform(ours, argnums=(0, 1))(x, y),
                                                 torch_transform(theirs, argnums=(0, 1))(tx, ty)):
            np.testing.assert_allclose(ours_jacobian.data, torch_jacobian.numpy(), **close)
    np.testing.assert_allclose(func.hessian(lambda a: ours(a, y).sum())(x).data,
                               torch.func.hessian(lambda a: theirs(a, ty).sum())(tx).numpy(), **close)
    torch_hessian = torch.func.jacrev(torch.func.jacfwd(lambda a: theirs(a, ty).sum()))(tx)
    np.testing.assert_allclose(func.jacrev(func.jacfwd(lambda a: ours(a, y).sum()))(x).data,
                               torch_hessian.numpy(force=True), **close)  # a linear program's is torch's ZeroTensor
    # grad of grad: d/da sum(a * grad f(a))
    np.testing.assert_allclose(func.grad(lambda a: (func.grad(lambda b: ours(b, y).sum())(a) * a).sum())(x).data,
                               torch.func.grad(lambda a: (torch.func.grad(lambda b: theirs(b, ty).sum())(a)
                                                          * a).sum())(tx).numpy(), **close)


def test_tuple_outputs_match_torch_func():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    a, b, v, w = (rng.standard_normal(shape) for shape in [(2, 3), (3,), (2, 3), (3,)])
    ta, tb, tv, tw = (torch.tensor(x) for x in (a, b, v, w))

    def theirs(a, b):
        return torch.sum(torch.tanh(a) * b, 1), a * torch.exp(b)

    for mine, reference in zip(func.jvp(two_outputs, (a, b), (v, w))[1], torch.func.jvp(theirs, (ta, tb), (tv, tw))[1]):
        np.testing.assert_allclose(mine.data, reference.numpy(), rtol=1e-12)
    cotangents = (rng.standard_normal(2), rng.standard_normal((2, 3)))
    for mine, reference in zip(func.vjp(two_outputs, a, b)[1](cotangents),
                               torch.func.vjp(theirs, ta, tb)[1](tuple(map(torch.tensor, cotangents)))):
        np.testing.assert_allclose(mine.data, reference.numpy(), rtol=1e-12)
    for transform, torch_transform in [(func.jacfwd, torch.func.jacfwd), (func.jacrev, torch.func.jacrev)]:
        for by_output, torch_by_output in zip(transform(two_outputs, (0, 1))(a, b),
                                              torch_transform(theirs, (0, 1))(ta, tb)):
            for mine, reference in zip(by_output, torch_by_output):
                np.testing.assert_allclose(mine.data, reference.numpy(), rtol=1e-12)


@pytest.mark.parametrize("name", sorted(set(CALLS) - {"cast"}))  # cast computes in float32: no float64 differences
def test_gradcheck_with_check_forward_passes_every_op(name):
    """gradcheck(check_forward=True) judges every op's JVP as it judges its VJP (and against it)."""
    inputs = inputs_of(name, np.float64, 3)
    for report in tn.gradcheck(CALLS[name][0], inputs, check_forward=True):
        assert report.passed and len(report.forward) == len(report.elements)
