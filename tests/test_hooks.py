"""register_hook, retain_grad, guided backpropagation, and the forward and optimizer-step hooks, on the cases PyTorch
documents."""
import numpy as np
import pytest

import tinynet as tn
from tinynet import functional as F
from tinynet import nn


def test_a_hook_on_a_leaf_replaces_its_gradient_and_can_be_removed():
    v = tn.Tensor(np.zeros(3), requires_grad=True)
    handle = v.register_hook(lambda grad: grad * 2)  # torch.Tensor.register_hook's own example
    v.backward(np.array([1.0, 2.0, 3.0]))
    np.testing.assert_array_equal(v.grad, [2.0, 4.0, 6.0])
    handle.remove()
    v.backward(np.array([1.0, 2.0, 3.0]))
    np.testing.assert_array_equal(v.grad, [3.0, 6.0, 9.0])


def test_a_hook_on_an_intermediate_changes_what_flows_to_its_parents():
    x = tn.Tensor(np.array([1.0, -2.0]), requires_grad=True)
    y = x * 3
    y.register_hook(lambda grad: np.zeros_like(grad))
    (y * y).sum().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 0.0])


def test_a_hook_sees_the_accumulated_gradient_once_and_none_keeps_it():
    a = tn.Tensor(np.array([1.0, 2.0]), requires_grad=True)
    b = a * 2
    seen = []
    b.register_hook(lambda grad: seen.append(grad.copy()))
    (b + b).sum().backward()
    assert len(seen) == 1
    np.testing.assert_array_equal(seen[0], [2.0, 2.0])
    np.testing.assert_array_equal(a.grad, [4.0, 4.0])


def test_retain_grad_keeps_an_intermediate_gradient_and_accumulates():
    x = tn.Tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    y = x * 2
    z = y * y
    y.retain_grad()
    z.sum().backward()
    np.testing.assert_array_equal(y.grad, 2 * y.data)
    assert z.grad is None  # not retained: like PyTorch, only leaves and retained tensors keep .grad
    z = y * y
    z.sum().backward()
    np.testing.assert_array_equal(y.grad, 4 * y.data)


def test_hooks_and_retain_grad_need_a_tensor_that_requires_grad():
    with pytest.raises(RuntimeError, match="does not require grad"):
        tn.Tensor(np.ones(2)).register_hook(print)
    with pytest.raises(RuntimeError, match="does not require grad"):
        tn.Tensor(np.ones(2)).retain_grad()


def test_guided_backprop_passes_only_positive_gradients_through_positive_inputs():
    x = tn.Tensor(np.array([-1.0, 2.0, 3.0, -4.0]), requires_grad=True)
    upstream = np.array([5.0, -6.0, 7.0, 8.0])
    with tn.guided_backprop():
        guided = F.relu(x)
    guided.backward(upstream)
    np.testing.assert_array_equal(x.grad, [0.0, 0.0, 7.0, 0.0])
    x.grad = None
    F.relu(x).backward(upstream)  # a ReLU made after the block is plain again
    np.testing.assert_array_equal(x.grad, [0.0, -6.0, 7.0, 0.0])


def test_a_forward_hook_sees_module_inputs_and_output_and_can_replace_the_output():
    layer, seen = nn.Tanh(), []
    handle = layer.register_forward_hook(lambda module, inputs, output: seen.append((module, inputs, output)))
    doubling = layer.register_forward_hook(lambda module, inputs, output: output * 2)  # torch's order: as registered
    x = tn.Tensor(np.array([[0.5, -1.0]]))
    out = layer(x)
    np.testing.assert_allclose(out.data, 2 * np.tanh(x.data))
    [(module, inputs, output)] = seen
    assert module is layer and inputs == (x,)
    np.testing.assert_allclose(output.data, np.tanh(x.data))
    handle.remove()
    doubling.remove()
    np.testing.assert_allclose(layer(x).data, np.tanh(x.data))
    assert len(seen) == 1 and layer._forward_hooks == ()


def test_named_modules_name_each_module_by_its_attribute_path():
    model = nn.Sequential(nn.Linear(2, 3), nn.Sequential(nn.ReLU(), nn.Linear(3, 1)))
    assert [(name, type(module).__name__) for name, module in model.named_modules()] == [
        ("", "Sequential"), ("layers.0", "Linear"), ("layers.1", "Sequential"), ("layers.1.layers.0", "ReLU"),
        ("layers.1.layers.1", "Linear")]


def test_step_hooks_run_before_and_after_the_parameters_move_and_can_be_removed():
    weight = nn.Parameter(np.array([1.0, 2.0]))
    optimizer = tn.optim.SGD([weight], lr=0.5)
    seen = []
    pre = optimizer.register_step_pre_hook(lambda opt, args, kwargs: seen.append(("pre", opt, weight.data.copy())))
    post = optimizer.register_step_post_hook(lambda opt, args, kwargs: seen.append(("post", opt, weight.data.copy())))
    weight.grad = np.array([1.0, 1.0])
    optimizer.step()
    assert [(when, opt) for when, opt, _ in seen] == [("pre", optimizer), ("post", optimizer)]
    np.testing.assert_array_equal(seen[0][2], [1.0, 2.0])
    np.testing.assert_array_equal(seen[1][2], [0.5, 1.5])
    pre.remove()
    post.remove()
    optimizer.step()
    assert len(seen) == 2 and optimizer._step_pre_hooks == optimizer._step_post_hooks == ()
