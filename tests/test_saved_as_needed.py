"""Ops keep for backward only what the gradients asked for read (ctx.needs_input_grad): an input's gradient that
nobody wants keeps nothing alive. Double backward and forward mode, which read the same saves, still work."""
import numpy as np
import pytest

import tinynet as tn
from tinynet import functional as F
from tinynet.func import jvp
from tinynet.memory import saved_arrays


def saved_ids(output):
    """ids of the arrays output's own op saved (save_for_backward and array attributes)."""
    return {id(array) for array in saved_arrays(output.node.ctx).values()}


def tensors(shapes, wants, seed=0):
    rng = np.random.default_rng(seed)
    return [tn.Tensor(rng.standard_normal(shape), requires_grad=want) for shape, want in zip(shapes, wants)]


CASES = {  # op: (shapes of its two inputs, how to call it)
    "Mul": (((3, 4), (3, 4)), lambda a, b: a * b),
    "MatMul": (((3, 4), (4, 2)), lambda a, b: a @ b),
    "Linear": (((3, 4), (2, 4)), F.linear),
    "Conv2d": (((2, 3, 6, 6), (4, 3, 3, 3)), F.conv2d),
}


@pytest.mark.parametrize("op", sorted(CASES))
@pytest.mark.parametrize("wants", [(True, False), (False, True), (True, True)])
def test_each_input_is_saved_only_for_the_other_inputs_gradient(op, wants):
    shapes, call = CASES[op]
    a, b = tensors(shapes, wants)
    out = call(a, b)
    assert out.node.op.__name__ == op
    kept = saved_ids(out)
    assert (id(a._data) in kept) == wants[1], "a is read only by b's gradient"
    assert (id(b._data) in kept) == wants[0], "b is read only by a's gradient"
    out.backward(np.ones(out.shape))
    for tensor, want in zip((a, b), wants):
        assert (tensor.grad is not None) == want


def test_div_keeps_a_only_for_bs_gradient():
    a, b = tensors(((3,), (3,)), (True, False))
    assert saved_ids(a / b) == {id(b._data)}
    a, b = tensors(((3,), (3,)), (False, True))
    assert saved_ids(a / b) == {id(a._data), id(b._data)}


def test_the_input_gradient_through_frozen_convolutions_keeps_no_activation_for_them():
    x, weight, weight2 = tensors(((1, 2, 8, 8), (3, 2, 3, 3), (2, 3, 3, 3)), (True, False, False))
    with tn.force_conv_algorithm("im2col"):
        hidden = F.conv2d(x, weight, padding=1)
        out = F.conv2d(hidden, weight2)
    assert saved_ids(hidden) == {id(weight._data)}  # x's gradient reads the weight, not x
    assert saved_ids(out) == {id(weight2._data)}


@pytest.mark.parametrize("op", sorted(CASES))
def test_second_derivatives_with_one_input_frozen_match_the_fully_differentiable_ones(op):
    shapes, call = CASES[op]
    a, b = tensors(shapes, (True, False), seed=1)
    (grad_a,) = tn.grad(call(a, b).tanh().sum(), [a], create_graph=True)
    (hessian_row,) = tn.grad((grad_a * grad_a).sum(), [a])
    a2, b2 = tensors(shapes, (True, True), seed=1)
    (grad_a2,) = tn.grad(call(a2, b2).tanh().sum(), [a2], create_graph=True)
    (hessian_row2,) = tn.grad((grad_a2 * grad_a2).sum(), [a2])
    np.testing.assert_allclose(hessian_row.data, hessian_row2.data, rtol=1e-10)


@pytest.mark.parametrize("op", sorted(CASES))
def test_forward_mode_through_an_input_without_gradient_reads_what_it_needs(op):
    shapes, call = CASES[op]
    a, b = tensors(shapes, (False, False), seed=2)
    direction = np.random.default_rng(3).standard_normal(shapes[0])
    _, tangent = jvp(lambda a_: call(a_, b), (a,), (tn.Tensor(direction),))
    step = 1e-6
    finite = (call(tn.Tensor(a.data + step * direction), b).data - call(tn.Tensor(a.data - step * direction), b).data)
    np.testing.assert_allclose(tangent.data, finite / (2 * step), rtol=1e-5, atol=1e-8)


def test_a_write_into_an_input_that_no_gradient_reads_leaves_backward_right():
    w, x = tensors(((3,), (3,)), (True, False))
    loss = (w * x).sum()  # w's gradient reads x only: w was not saved
    w.data[0] = 9.0
    loss.backward()
    np.testing.assert_array_equal(w.grad, x.data)
