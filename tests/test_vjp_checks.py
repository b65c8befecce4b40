"""The reverse pass checks what every VJP returns, and names the op, the input and what was wrong.

Each test defines a tiny op whose backward is wrong in one way. The suite runs with grad_out read-only
(tests/conftest.py), so an op that writes into it fails too.
"""
import re
import weakref

import numpy as np
import pytest

import tinynet as tn
from tinynet.function import Function
from tinynet.tensor import read_only_grad_out


def op_with_backward(backward):
    """An op that doubles its inputs' sum (broadcasting them), with the given (wrong) backward."""

    class Wrong(Function):
        @staticmethod
        def forward(ctx, *arrays):
            return 2 * sum(arrays)

    Wrong.backward = staticmethod(backward)
    return Wrong


def backward_error(op, *inputs, create_graph=False) -> str:
    """The message of the RuntimeError that backward through op(*inputs) raises."""
    with pytest.raises(RuntimeError) as error:
        op.apply(*inputs).sum().backward(create_graph=create_graph)
    return str(error.value)


def test_a_gradient_of_the_wrong_shape_is_named_with_the_op_the_input_and_both_shapes():
    column = tn.Tensor(np.ones((3, 1)), requires_grad=True)
    flattened = op_with_backward(lambda ctx, grad_out: (grad_out.reshape(-1),))
    assert backward_error(flattened, column) == (
        "Wrong returned a gradient of shape (3,) for its input 0 of shape (3, 1): a VJP returns one gradient per "
        "input, of the input's shape (or the output's broadcast shape, which backward sums back)")


def test_a_gradient_that_is_not_the_input_shape_broadcast_is_refused_and_one_that_is_is_summed_back():
    x, y = tn.Tensor(np.ones((2, 3)), requires_grad=True), tn.Tensor(np.ones((2, 3)), requires_grad=True)
    widened = op_with_backward(lambda ctx, grad_out: (grad_out, np.ones((2, 4))))
    assert backward_error(widened, x, y).startswith("Wrong returned a gradient of shape (2, 4) for its input 1 "
                                                    "of shape (2, 3)")
    broadcast = op_with_backward(lambda ctx, grad_out: (np.ones((4, 2, 3)),))
    broadcast.apply(x).sum().backward()
    np.testing.assert_array_equal(x.grad, np.full((2, 3), 4.0))


def test_a_gradient_of_another_dtype_than_its_input_and_output_is_named_with_both_dtypes():
    x = tn.Tensor(np.ones(3, dtype=np.float32), requires_grad=True)
    promoted = op_with_backward(lambda ctx, grad_out: (grad_out.astype(np.float64),))
    assert backward_error(promoted, x) == (
        "Wrong returned a gradient of dtype float64 for its input 0 of dtype float32: a VJP returns each gradient "
        "in its input's dtype (or in the output's, float32, which backward casts back)")


@pytest.mark.parametrize("create_graph", [False, True])
def test_a_mixed_dtype_op_sends_each_input_a_gradient_of_its_own_dtype(create_graph):
    single = tn.Tensor(np.full(3, 2.0, dtype=np.float32), requires_grad=True)
    double = tn.Tensor(np.full(3, 5.0), requires_grad=True)
    (single * double).sum().backward(create_graph=create_graph)
    assert single.grad.dtype == np.float32 and double.grad.dtype == np.float64
    np.testing.assert_array_equal(tn.tensor.values_of(single.grad), [5.0, 5.0, 5.0])


def test_a_wrong_number_of_gradients_is_named():
    x, y = tn.Tensor(np.ones(3), requires_grad=True), tn.Tensor(np.ones(3), requires_grad=True)
    one_short = op_with_backward(lambda ctx, grad_out: (grad_out,))
    assert backward_error(one_short, x, y) == ("Wrong returned 1 gradient for 2 inputs: a VJP returns one gradient "
                                               "(or None) per input")


def test_a_gradient_returned_bare_instead_of_in_a_tuple_is_named():
    x = tn.Tensor(np.ones(3), requires_grad=True)
    bare = op_with_backward(lambda ctx, grad_out: grad_out)
    assert backward_error(bare, x).startswith("Wrong returned an object of type ndarray, not a tuple")
    assert backward_error(bare, x, create_graph=True).startswith("Wrong returned an object of type Tensor, not a tuple")


def test_in_a_create_graph_backward_the_gradient_tensors_are_checked_the_same_way():
    x = tn.Tensor(np.ones(3), requires_grad=True)
    summed = op_with_backward(lambda ctx, grad_out: (grad_out.sum(),))
    assert backward_error(summed, x, create_graph=True).startswith("Wrong returned a gradient of shape () for its "
                                                                   "input 0 of shape (3,)")


def test_a_backward_that_writes_into_grad_out_fails_when_grad_out_is_read_only():
    def doubling_in_place(ctx, grad_out):
        grad_out *= 2
        return (grad_out,)

    x = tn.Tensor(np.ones(3), requires_grad=True)
    with read_only_grad_out(), pytest.raises(ValueError, match=re.escape("read-only")):
        op_with_backward(doubling_in_place).apply(x).sum().backward()


def test_a_tensor_added_twice_around_another_gets_two_and_the_other_one():
    a, b = tn.Tensor(np.ones(2), requires_grad=True), tn.Tensor(np.ones(2), requires_grad=True)
    (a + b + a).sum().backward()  # Add sends one array to both parents: adding into a's in place would change b's
    np.testing.assert_array_equal(a.grad, [2.0, 2.0])
    np.testing.assert_array_equal(b.grad, [1.0, 1.0])


def test_each_leaf_owns_its_gradient_array():
    """Add hands one array to both parents, and backward(grad) starts from the caller's: each .grad is a copy,
    so writing into one (a hand-written update, a hook's caller) changes no other gradient."""
    a, b = tn.Tensor(np.ones(2), requires_grad=True), tn.Tensor(np.ones(2), requires_grad=True)
    seed = np.array([1.0, 2.0])
    (a + b).backward(seed)
    assert a.grad is not b.grad and a.grad is not seed
    a.grad *= 10
    np.testing.assert_array_equal(b.grad, [1.0, 2.0])
    np.testing.assert_array_equal(seed, [1.0, 2.0])
    assert a.grad.flags.writeable and b.grad.flags.writeable  # even with a read-only grad_out (tests' default)


def test_a_gradient_nothing_else_refers_to_becomes_the_leafs_grad_without_a_copy():
    """A fresh gradient array that only the reverse pass refers to is taken as .grad as it is (seed 004's fc weight
    gradient is 139 MB a step); a hook, which could have kept it, makes it a copy again."""
    made = []

    class Doubled(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, grad_out):
            fresh = grad_out * 2
            made.append(weakref.ref(fresh))  # a weak reference: it does not count as one more referrer
            return (fresh,)

    x = tn.Tensor(np.ones(3), requires_grad=True)
    Doubled.apply(x).sum().backward()
    assert x.grad is made[-1]()
    kept = []
    x.grad = None
    x.register_hook(lambda grad: kept.append(grad))
    Doubled.apply(x).sum().backward()
    assert x.grad is not kept[0]
    x.grad *= 10
    np.testing.assert_array_equal(kept[0], [2.0, 2.0, 2.0])
