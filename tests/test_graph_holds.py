"""The graph keeps alive only the leaves and what ops saved for backward: the tensors ops made are held as
GraphTensors, without their values, so an intermediate the user drops is freed unless an op saved it."""
import gc
import tracemalloc
import weakref

import numpy as np
import pytest

import tinynet as tn
from tinynet import functional as F
from tinynet.tensor import GraphTensor, graph_vertex


def leaf(shape, seed=0):
    return tn.Tensor(np.random.default_rng(seed).standard_normal(shape), requires_grad=True)


def test_an_intermediate_no_op_saved_is_freed_when_the_user_drops_it():
    x = leaf((50, 40))
    shifted = x + 1.0  # Add saves nothing, and neither does Sum
    squashed = F.tanh(x)  # Tanh saves its output for its backward
    loss = (shifted.sum() + squashed.sum()) * 2.0
    shifted_values, squashed_values = weakref.ref(shifted._data), weakref.ref(squashed._data)
    del shifted, squashed
    gc.collect()
    assert shifted_values() is None
    assert squashed_values() is not None  # saved by Tanh: the graph needs it
    loss.backward()
    np.testing.assert_allclose(x.grad, 2.0 + 2.0 * (1.0 - np.tanh(x.data) ** 2))


def test_children_hold_the_graph_tensor_and_it_holds_no_reference_to_its_tensor():
    x = leaf((3,))
    hidden = x * 2.0
    out = hidden.sum()
    (parent,) = out.node.parents
    assert isinstance(parent, GraphTensor) and parent is graph_vertex(hidden) and parent is not hidden
    assert (parent.shape, parent.dtype, parent.node) == (hidden.shape, hidden.dtype, hidden.node)
    assert all(value is not hidden and value is not hidden._data for value in vars(parent).values())
    hidden_alive = weakref.ref(hidden)
    del hidden
    gc.collect()
    assert hidden_alive() is None
    with pytest.raises(RuntimeError, match=r"values of this Mul output \(shape \(3,\)\) were not kept: no op saved"):
        parent.numpy()


def graph_bytes_after_forward(run):
    """Bytes still allocated after run() (whose result is kept: the graph), above those before."""
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        loss = run()
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert loss.requires_grad
    return held


def deep_tanh_chain(x):
    """tanh applied 8 times then summed: each Tanh saves its output, nothing else is needed."""
    for _ in range(8):
        x = F.tanh(x)
    return x.sum()


def test_float16_saves_lower_what_the_graph_holds_by_about_four():
    x = tn.Tensor(np.random.default_rng(0).standard_normal((200, 200)), requires_grad=True)  # float64
    plain = graph_bytes_after_forward(lambda: deep_tanh_chain(x))
    with tn.saved_in_float16():
        half = graph_bytes_after_forward(lambda: deep_tanh_chain(x))
    assert plain > 8 * x.data.nbytes * 0.9  # the eight saved float64 outputs
    assert half < plain / 3  # float16 copies (4x smaller), the float64 values freed
    report_plain = tn.memory_report(deep_tanh_chain(x))
    with tn.saved_in_float16():
        report_half = tn.memory_report(deep_tanh_chain(x))
    assert report_half.held_bytes * 4 == report_plain.held_bytes == 8 * x.data.nbytes


def test_a_hook_on_an_intermediate_the_user_dropped_still_runs_and_may_replace_the_gradient():
    x = leaf((4,))
    hidden = x * 3.0
    seen = []
    hidden.register_hook(lambda grad: seen.append(grad.copy()) or grad * 10.0)
    loss = hidden.sum()
    del hidden
    gc.collect()
    loss.backward()
    np.testing.assert_array_equal(seen[0], np.ones(4))
    np.testing.assert_array_equal(x.grad, np.full(4, 30.0))


def test_a_hook_handle_removes_the_hook_from_the_graph():
    x = leaf((4,))
    hidden = x * 3.0
    handle = hidden.register_hook(lambda grad: grad * 10.0)
    handle.remove()
    hidden.sum().backward()
    np.testing.assert_array_equal(x.grad, np.full(4, 3.0))


def test_retain_grad_fills_the_intermediates_grad_while_it_lives_and_is_harmless_after():
    x = leaf((4,))
    hidden = x * 3.0
    hidden.retain_grad()
    kept, dropped = F.tanh(hidden), x * 5.0
    dropped.retain_grad()
    loss = kept.sum() + dropped.sum()
    del dropped
    loss.backward()
    np.testing.assert_allclose(hidden.grad, 1.0 - np.tanh(hidden.data) ** 2)
    assert hidden.retains_grad and graph_vertex(hidden).grad is hidden.grad
    loss.backward()  # accumulates
    np.testing.assert_allclose(hidden.grad, 2.0 * (1.0 - np.tanh(hidden.data) ** 2))


def test_grad_with_respect_to_an_intermediate_captures_it_in_the_graph():
    x = leaf((4,))
    hidden = x * 3.0
    (d_hidden,) = tn.grad((hidden * hidden).sum(), [hidden])
    np.testing.assert_allclose(d_hidden.data, 2.0 * hidden.data)
    assert hidden.grad is None


def test_a_double_backward_through_dropped_intermediates_finds_the_saved_ones():
    x = leaf((5,))
    loss = F.tanh(x * x).sum()  # x * x is dropped at once; Tanh saved its output, Mul saved x
    (gradient,) = tn.grad(loss, [x], create_graph=True)
    gc.collect()
    (second,) = tn.grad(gradient.sum(), [x])
    t = np.tanh(x.data ** 2)
    expected = 2.0 * (1 - t ** 2) - 8.0 * x.data ** 2 * t * (1 - t ** 2)  # d/dx of 2x(1 - tanh(x^2)^2)
    np.testing.assert_allclose(second.data, expected, rtol=1e-10)


def test_a_write_into_a_saved_intermediate_is_still_caught_through_its_graph_tensor():
    x = leaf((3,))
    squashed = F.tanh(x)
    loss = squashed.sum()
    squashed.data[0] = 5.0
    with pytest.raises(RuntimeError, match=r"Tanh saved its output \(shape \(3,\)\) for backward, but it was "
                                            r"changed in place"):
        loss.backward()


def test_a_write_through_a_view_of_a_dropped_saved_intermediate_is_caught():
    x = leaf((2, 3))
    grown = F.exp(x)  # Exp saves its output
    loss = grown.sum()
    flat = grown.reshape(6)  # shares grown's memory, and so its version
    del grown
    gc.collect()
    flat.data[0] = 5.0
    with pytest.raises(RuntimeError, match=r"Exp saved its output \(shape \(2, 3\)\) for backward, but it was changed"):
        loss.backward()
