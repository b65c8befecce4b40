"""The graph core alone (topological order, accumulation, un-broadcasting), with ops defined here.

These tests use no op of tinynet's own, so they grade the core by itself (assignment task 1.1).
"""
import numpy as np
import pytest

from tinynet import Tensor
from tinynet.function import Function
from tinynet.tensor import broadcast_axes, graph_vertex, topological_order, unbroadcast


class Scale(Function):
    """a * factor: d/da = factor."""

    @staticmethod
    def forward(ctx, a, factor):
        ctx.factor = factor
        return a * factor

    @staticmethod
    def backward(ctx, grad_out):
        return (grad_out * ctx.factor,)


class Plus(Function):
    """a + b with NumPy broadcasting: both receive grad_out (the core sums it back to their shapes)."""

    @staticmethod
    def forward(ctx, a, b):
        return a + b

    @staticmethod
    def backward(ctx, grad_out):
        return grad_out, grad_out


def scale(x, factor):
    return Scale.apply(x, factor=factor)


def plus(a, b):
    return Plus.apply(a, b)


def test_broadcast_axes_are_the_added_and_the_stretched_ones():
    assert broadcast_axes((2, 3, 4), (3, 1)) == (0, 2)
    assert broadcast_axes((2, 3), (2, 3)) == ()
    assert broadcast_axes((4, 2), ()) == (0, 1)
    assert broadcast_axes((2, 0), (2, 1)) == (1,)  # an empty batch: the size-1 axis is summed over nothing
    for grad_shape, shape in [((7,), (3,)), ((3,), (2, 3)), ((2, 3), (2, 1, 3)), ((1,), (0,))]:
        with pytest.raises(ValueError, match="cannot be summed"):
            broadcast_axes(grad_shape, shape)


def test_unbroadcast_sums_added_and_stretched_axes():
    grad = np.arange(24.0).reshape(2, 3, 4)
    np.testing.assert_array_equal(unbroadcast(grad, (3, 1)), grad.sum(axis=(0, 2)).reshape(3, 1))
    np.testing.assert_array_equal(unbroadcast(grad, (2, 3, 4)), grad)
    assert unbroadcast(grad, ()).shape == () and unbroadcast(grad, ()) == grad.sum()


def test_chain_rule_through_a_chain():
    x = Tensor(np.array([1.0, -2.0]), requires_grad=True)
    scale(scale(x, 3.0), -2.0).backward(np.array([1.0, 10.0]))
    np.testing.assert_array_equal(x.grad, [-6.0, -60.0])


def test_a_tensor_used_twice_receives_the_sum_and_each_node_is_visited_once():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    top, bottom = scale(x, 2.0), scale(x, 5.0)
    plus(top, bottom).backward(np.ones(2))  # a diamond: x -> (top, bottom) -> plus
    np.testing.assert_array_equal(x.grad, [7.0, 7.0])
    plus(x, x).backward(np.ones(2))  # the same tensor twice in one op; .grad accumulates over calls
    np.testing.assert_array_equal(x.grad, [9.0, 9.0])


def test_topological_order_puts_every_tensor_after_its_parents():
    x = Tensor(np.ones(2), requires_grad=True)
    a = scale(x, 2.0)
    b = plus(a, x)
    c = plus(b, a)
    x, a, b, c = (graph_vertex(t) for t in (x, a, b, c))  # as the graph holds them
    position = {tensor: k for k, tensor in enumerate(topological_order([c]))}
    assert position[x] < position[a] < position[b] < position[c] and len(position) == 4


def test_broadcast_gradients_are_summed_back_to_each_shape():
    column, row = Tensor(np.ones((3, 1)), requires_grad=True), Tensor(np.ones((1, 4)), requires_grad=True)
    plus(column, row).backward(np.ones((3, 4)))
    np.testing.assert_array_equal(column.grad, np.full((3, 1), 4.0))
    np.testing.assert_array_equal(row.grad, np.full((1, 4), 3.0))


def test_a_deep_chain_needs_no_recursion():
    x = Tensor(np.array([1.0]), requires_grad=True)
    y = x
    for _ in range(5000):
        y = scale(y, 1.0)
    y.backward(np.array([1.0]))
    np.testing.assert_array_equal(x.grad, [1.0])
