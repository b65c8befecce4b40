"""The graph core: dtypes, accumulation, broadcasting, deep graphs, no_grad, detach."""
import numpy as np
import pytest

import tinynet as tn


def test_dtype_is_float32_unless_float64_is_given():
    assert tn.Tensor([1, 2]).dtype == np.float32
    assert tn.Tensor(np.arange(3)).dtype == np.float32
    assert tn.Tensor(np.zeros(2)).dtype == np.float64
    assert tn.Tensor([1.0], dtype=np.float64).dtype == np.float64
    assert (tn.Tensor(np.ones(2, np.float32)) * 2.5).dtype == np.float32


def test_gradients_accumulate_over_backward_calls_and_shared_uses():
    x = tn.Tensor([2.0, -1.0], requires_grad=True)
    (x * x).sum().backward()  # d/dx x^2 = 2x: x appears twice in one graph
    np.testing.assert_allclose(x.grad, [4.0, -2.0])
    (x * 3).sum().backward()
    np.testing.assert_allclose(x.grad, [7.0, 1.0])


def test_broadcast_gradient_is_summed_back_to_each_input_shape():
    a = tn.Tensor(np.ones((2, 3)), requires_grad=True)
    b = tn.Tensor(np.ones((1, 3)), requires_grad=True)
    c = tn.Tensor(2.0, requires_grad=True)
    (a * b * c).sum().backward()
    assert a.grad.shape == (2, 3) and b.grad.shape == (1, 3) and c.grad.shape == ()
    np.testing.assert_allclose(b.grad, [[4.0, 4.0, 4.0]])
    np.testing.assert_allclose(c.grad, 6.0)


def test_deep_graph_needs_no_recursion():
    x = tn.Tensor(1.0, requires_grad=True)
    y = x
    for _ in range(20000):
        y = y * 1.0001
    y.backward()
    np.testing.assert_allclose(x.grad, 1.0001 ** 20000, rtol=1e-3)


def test_diamond_graph_visits_each_node_once():
    x = tn.Tensor(3.0, requires_grad=True, dtype=np.float64)
    h = x * x
    (h + h).backward()  # d/dx 2x^2 = 4x
    assert x.grad == pytest.approx(12.0)


def test_no_grad_records_nothing_and_detach_cuts_the_graph():
    x = tn.Tensor([1.0], requires_grad=True)
    with tn.no_grad():
        y = x * 2
    assert not y.requires_grad and y.is_leaf
    z = (x * 2).detach()
    assert not z.requires_grad and z.is_leaf
    assert tn.is_grad_enabled()


def test_backward_errors_are_clear():
    with pytest.raises(RuntimeError, match="one-element"):
        (tn.Tensor([1.0, 2.0], requires_grad=True) * 2).backward()
    with pytest.raises(RuntimeError, match="does not require grad"):
        tn.Tensor([1.0]).backward()
    with pytest.raises(ValueError, match="expected \\(2,\\)"):
        (tn.Tensor([1.0, 2.0], requires_grad=True) * 2).backward(np.ones(3))


def test_numpy_array_on_the_left_of_an_operator_gives_a_tensor():
    x = tn.Tensor([1.0, 2.0], requires_grad=True)
    y = np.array([3.0, 4.0]) * x
    assert isinstance(y, tn.Tensor)
    y.sum().backward()
    np.testing.assert_allclose(x.grad, [3.0, 4.0])


def test_a_float32_array_is_shared_and_anything_else_is_converted():
    array = np.zeros(3, dtype=np.float32)
    tn.Tensor(array).data[0] = 1.0
    assert array[0] == 1.0
    doubles = np.zeros(3)
    tn.Tensor(doubles, dtype=np.float32).data[0] = 1.0
    assert doubles[0] == 0.0
