"""In-place writes (tinynet.versions): a backward never reads an array an op saved after it was changed; it raises
naming the op, the array and the write. Writes that cannot change a gradient go through."""
import re

import numpy as np
import pytest

import tinynet as tn
from tinynet import functional as F
from tinynet.versions import TrackedArray


def weights_and_loss():
    """w and x (3,) with requires_grad, and loss = sum(w * x): Mul saves both (each one's gradient reads the other)."""
    w = tn.Tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    x = tn.Tensor(np.array([0.5, -1.0, 2.0]), requires_grad=True)
    return w, x, (w * x).sum()


def changed_since(op, which):
    """The error backward raises when op's saved `which` ('input 0', 'output') was written since op ran."""
    return (rf"{op} saved its {which} \(shape .*\) for backward, but it was changed in place afterwards \(last "
            rf"written at test_versions.py:\d+ in ")


@pytest.mark.parametrize("write", [
    lambda w: w.data.__setitem__(0, 9.0),
    lambda w: np.multiply(w.data, 2, out=w.data),
    lambda w: w.data[1:].fill(0.0),
    lambda w: np.copyto(w.data, np.zeros(3)),
    lambda w: w.data.reshape(3, 1).__setitem__((2, 0), 1.0),
    lambda w: w.data.sort(),
])
def test_a_write_into_a_saved_input_through_data_makes_backward_raise_naming_the_op(write):
    w, x, loss = weights_and_loss()
    write(w)
    with pytest.raises(RuntimeError, match=changed_since("Mul", "input 0") + "<lambda>"):
        loss.backward()


def test_an_in_place_operator_on_data_is_counted_and_keeps_the_tensors_array():
    w, x, loss = weights_and_loss()
    before = w._data
    w.data *= 2
    assert w._data is before and w.version.count == 1
    with pytest.raises(RuntimeError, match=changed_since("Mul", "input 0")):
        loss.backward()


def test_an_optimizer_step_before_backward_makes_backward_raise():
    w, x, loss = weights_and_loss()
    w.grad = np.ones(3)
    tn.optim.SGD([w], lr=0.1).step()
    with pytest.raises(RuntimeError, match=changed_since("Mul", "input 0") + "test_an_optimizer_step"):
        loss.backward()


def test_a_write_into_a_saved_output_is_named_too():
    x = tn.Tensor(np.array([0.5, -1.0]), requires_grad=True)
    exponential = F.exp(x)  # Exp saves its output
    exponential.data[0] = 0.0
    with pytest.raises(RuntimeError, match=changed_since("Exp", "output")):
        exponential.sum().backward()


def test_a_write_into_memory_a_view_shares_is_seen_through_the_view():
    """y = x.reshape(...) views x's memory: a write into x changes the y that Mul saved (and the other way round)."""
    x = tn.Tensor(np.arange(1.0, 7.0), requires_grad=True)
    y = x.reshape(2, 3)
    loss = (y * y).sum()
    x.data[0] = 5.0
    with pytest.raises(RuntimeError, match=changed_since("Mul", "input 0")):
        loss.backward()
    z = x.detach()
    z.data[1] = 0.0
    assert x.version.count == 2


def test_writes_that_cannot_change_a_gradient_go_through():
    w, x, loss = weights_and_loss()
    loss.backward()
    w.data[0] = 9.0  # after backward
    np.testing.assert_array_equal(w._data, [9.0, 2.0, 3.0])
    a, b = tn.Tensor(np.ones(2), requires_grad=True), tn.Tensor(np.ones(2), requires_grad=True)
    total = (a + b).sum()  # Add saves nothing
    a.data[0] = 5.0
    total.backward()
    np.testing.assert_array_equal(b.grad, [1.0, 1.0])
    unused = tn.Tensor(np.zeros(2))
    unused.data[:] = 1.0  # no graph saved it
    np.testing.assert_array_equal(unused._data, [1.0, 1.0])


def test_a_training_loop_steps_after_each_backward_without_complaint():
    model = tn.nn.Linear(3, 2)
    optimizer = tn.optim.SGD(model.parameters(), lr=0.1)
    x = tn.Tensor(np.ones((4, 3)))
    for _ in range(3):
        optimizer.zero_grad()
        loss = (model(x) ** 2).mean()
        loss.backward()
        optimizer.step()
    evaluated = model(x)  # a graph that is evaluated and never backpropagated does not stop a step
    optimizer.step()
    assert evaluated.shape == (4, 2)


def test_a_backward_after_a_write_raises_even_when_it_is_the_second_backward():
    """tinynet keeps graphs for a second backward: one after a write must not use the changed values."""
    w, x, loss = weights_and_loss()
    loss.backward()
    x.data[2] = 0.0
    with pytest.raises(RuntimeError, match=changed_since("Mul", "input 1")):
        loss.backward()


def test_data_is_a_tracked_view_whose_arithmetic_gives_plain_arrays():
    x = tn.Tensor(np.array([[1.0, 2.0], [3.0, 4.0]]))
    assert isinstance(x.data, TrackedArray) and np.shares_memory(x.data, x._data)
    for result in (x.data + 1, x.data.sum(axis=0), np.exp(x.data), x.data @ x.data):
        assert type(result) is np.ndarray
    copied = x.data.copy()
    assert type(copied) is np.ndarray and type(x.data.astype(np.float32)) is np.ndarray  # copies are plain arrays
    copied[0, 0] = 7.0  # a copy's writes are nobody's
    assert x.version.count == 0 and x._data[0, 0] == 1.0
    assert tn.Tensor(x.data)._data.base is not None  # a Tensor of x.data shares x's memory, as it did


def test_the_message_says_what_to_do():
    w, x, loss = weights_and_loss()
    w.data[0] = 9.0
    with pytest.raises(RuntimeError, match=re.escape("Run the forward again after changing it, or change a copy")):
        loss.backward()
