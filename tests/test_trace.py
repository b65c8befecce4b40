"""tn.trace / tn.tracing record backward as it runs; detect_anomaly names the op that made a bad gradient."""
import base64
import inspect

import numpy as np
import pytest

import tinynet as tn
from tinynet import functional as F
from tinynet.tensor import topological_order
from tinynet.trace import summarize


def small_network():
    """A 2-4-3 tanh network on 5 points, its cross-entropy loss, and its named parameters."""
    rng = np.random.default_rng(0)
    model = tn.nn.Sequential(tn.nn.Linear(2, 4, rng=rng), tn.nn.Tanh(), tn.nn.Linear(4, 3, rng=rng))
    x, y = rng.standard_normal((5, 2)), rng.integers(0, 3, 5)
    return model, x, y


def test_steps_follow_the_reverse_topological_order_and_leaf_grads_equal_grad():
    model, x, y = small_network()
    loss = F.cross_entropy(model(x), y)
    order = list(reversed(topological_order([loss])))
    trace = tn.trace(loss, names=dict(model.named_parameters()))
    numbered = {trace.nodes[step.tensor]["label"]: step.tensor for step in trace.steps}
    assert len(trace.steps) == len(order)
    assert [trace.nodes[s.tensor]["shape"] for s in trace.steps] == [list(t.shape) for t in order]
    for name, parameter in model.named_parameters():
        assert trace.leaf_grads[numbered[name]] == summarize(parameter.grad)


def test_accumulation_shows_two_contributions_into_a():
    a = tn.Tensor(np.array([1.0, 2.0]), requires_grad=True)
    with tn.tracing(names={"a": a}) as trace:
        b = a + a
        c = b * b
        c.sum().backward()
    leaf = trace.steps[-1]
    assert trace.nodes[leaf.tensor]["label"] == "a" and len(leaf.contributions) == 2
    assert leaf.leaf_grad["values"] == [8.0, 16.0]
    np.testing.assert_array_equal(a.grad, [8.0, 16.0])
    assert "sum of 2 contributions" in str(trace)


def test_unbroadcast_axes_are_recorded_for_a_3x1_plus_1x4_add():
    x, y = tn.Tensor(np.ones((3, 1)), requires_grad=True), tn.Tensor(np.ones((1, 4)), requires_grad=True)
    trace = tn.trace((x + y).sum())
    (add,) = [s for s in trace.steps if s.op == "Add"]
    assert [(s["summed_axes"], s["from_shape"], s["grad"]["shape"]) for s in add.to_parents] == [
        ([1], [3, 4], [3, 1]), ([0], [3, 4], [1, 4])]
    assert "summed over axes (1,) of (3, 4)" in str(trace)


def test_tracing_records_where_each_op_was_called():
    x = tn.Tensor(np.array([0.5]), requires_grad=True)
    with tn.tracing() as trace:
        line = inspect.currentframe().f_lineno + 1
        y = F.tanh(x) * 3
        y.sum().backward()
    assert all(s.call_site == f"test_trace.py:{line} in test_tracing_records_where_each_op_was_called"
               for s in trace.steps if s.op in ("Tanh", "Mul"))


def test_large_arrays_are_summarized_and_small_ones_shown_whole():
    x = tn.Tensor(np.arange(40.0).reshape(8, 5), requires_grad=True)
    trace = tn.trace((x * 2).sum())
    leaf = trace.steps[-1].leaf_grad
    assert not leaf["whole"] and leaf["values"] == [2.0, 2.0, 2.0, 2.0] and leaf["norm"] == pytest.approx(np.sqrt(160))
    assert "shape (8, 5), norm 12.65, first values [2, 2, 2, 2, ...]" in str(trace)


def test_detect_anomaly_names_log_and_the_line_that_called_it():
    x = tn.Tensor(np.array([1.0, 2.0]), requires_grad=True)
    with np.errstate(divide="ignore"), tn.detect_anomaly():
        line = inspect.currentframe().f_lineno + 1
        y = F.log(x - x)
        with pytest.raises(tn.AnomalyError) as anomaly:
            y.sum().backward()
    message = str(anomaly.value)
    assert message.startswith(f"Log (called at test_trace.py:{line} in "
                              "test_detect_anomaly_names_log_and_the_line_that_called_it) sent inf to its input 0")


def test_a_wrongly_shaped_gradient_is_named_with_the_line_anomaly_mode_recorded():
    class WrongShape(tn.function.Function):
        @staticmethod
        def forward(ctx, a):
            return a * 2

        @staticmethod
        def backward(ctx, grad_out):
            return (np.ones((7,)),)

    x = tn.Tensor(np.ones(3), requires_grad=True)
    with tn.detect_anomaly():
        line = inspect.currentframe().f_lineno + 1
        y = WrongShape.apply(x).sum()
        with pytest.raises(RuntimeError) as wrong:
            y.backward()
    test_name = "test_a_wrongly_shaped_gradient_is_named_with_the_line_anomaly_mode_recorded"
    assert str(wrong.value).startswith(f"WrongShape (called at test_trace.py:{line} in {test_name}) returned a "
                                       "gradient of shape (7,)")


def test_outside_anomaly_mode_and_tracing_nothing_is_recorded():
    x = tn.Tensor(np.array([1.0]), requires_grad=True)
    y = F.tanh(x)
    assert y.node.call_site is None


def test_each_node_shows_its_saved_bytes_and_each_step_what_the_rest_of_backward_needs():
    model, x, y = small_network()
    loss = F.cross_entropy(model(x), y)
    report = tn.memory_report(loss)
    trace = tn.trace(loss)
    assert trace.saved_bytes == report.saved_bytes
    needed = [step.saved_bytes_needed for step in trace.steps]
    assert needed == sorted(needed, reverse=True) and needed[-1] == 0 and needed[0] < trace.saved_bytes
    tanh = next(step for step in trace.steps if step.op == "Tanh")
    assert trace.nodes[tanh.tensor]["saved_bytes"] == 5 * 4 * 4  # its (5, 4) float32 output
    assert "saved 80 B; the steps still to come need" in str(trace)


def op_classes() -> dict:
    """{name: op class} of every Function subclass, to look up the op a trace node names."""
    found, classes = {}, [tn.function.Function]
    while classes:
        op = classes.pop()
        found[op.__name__] = op
        classes.extend(op.__subclasses__())
    return found


def test_each_step_shows_what_the_op_that_ran_sends_each_input_and_a_fallback_for_ops_without_formulas():
    model, x, y = small_network()
    x = tn.Tensor(x, requires_grad=True)
    trace = tn.trace(F.cross_entropy(tn.functional.concatenate([model(x), x], axis=1)[:, :3], y))
    text, ops = str(trace), op_classes()
    shown = 0
    for step in trace.steps:
        op = ops.get(trace.nodes[step.tensor]["op"])
        for sent in step.to_parents:
            name = list(op.vjp_formulas)[sent["input"]] if op.vjp_formulas else None
            written = f"{name}: {op.vjp_formulas[name]}" if name else f"see {op.__name__}.backward"
            assert f"-> t{sent['parent']} ({written}):" in text
            shown += 1
    assert shown == sum(len(step.to_parents) for step in trace.steps) > 8
    assert "(see Concatenate.backward)" in text and "(weight: gᵀ @ x)" in text


def test_a_tensor_used_by_two_ops_writes_its_gradient_as_the_chain_rule_sum_naming_both():
    x = tn.Tensor(np.array([0.5, -1.0]), requires_grad=True)
    with tn.tracing(names={"x": x}) as trace:
        y = x * 3
        (F.tanh(y) + y).sum().backward()
    (at_y,) = [step for step in trace.steps if step.op == "Mul"]
    tanh, add = (next(s.tensor for s in trace.steps if s.op == op) for op in ("Tanh", "Add"))
    assert trace.chain_rule_sum(at_y) == f"grad t{at_y.tensor} = g from t{add} (Add, input b) + g from t{tanh} " \
                                         "(Tanh, input x)"  # in the order backward sent them
    assert f"chain rule: grad t{at_y.tensor} = g from t{add}" in str(trace)


def test_image_shaped_values_and_gradients_carry_heatmaps_and_others_none():
    rng = np.random.default_rng(0)
    image = tn.Tensor(rng.standard_normal((2, 1, 6, 6)), requires_grad=True)
    weight = tn.Tensor(rng.standard_normal((3, 1, 3, 3)), requires_grad=True)
    with tn.tracing(names={"image": image}) as trace:  # keeps the values the graph does not (ReLU's output)
        F.relu(F.conv2d(image, weight)).sum().backward()
    by_op = {step.op: step for step in trace.steps}
    assert by_op["image"].heatmap["planes"] == ["image 0, channel 0"]
    assert (by_op["image"].heatmap["height"], by_op["image"].heatmap["width"]) == (6, 6)
    assert len(by_op["ReLU"].heatmap["planes"]) == 3 and by_op["Sum"].heatmap is None
    relu_value = trace.nodes[by_op["ReLU"].tensor]["heatmap"]
    levels = np.frombuffer(base64.b64decode(relu_value["data"]), dtype=np.int8)
    assert levels.min() == 0 and levels.max() == 127  # a ReLU's output: no negative values
    assert trace.nodes[by_op["Sum"].tensor]["heatmap"] is None
    after_the_forward = tn.trace(F.relu(F.conv2d(image, weight)).sum())  # the ReLU's output is gone: no heatmap
    relu_number = next(step.tensor for step in after_the_forward.steps if step.op == "ReLU")
    assert after_the_forward.nodes[relu_number]["heatmap"] is None
