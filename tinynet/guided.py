"""Guided backpropagation (Springenberg et al. 2015), built from a hook on every ReLU's output.

A ReLU's backward sends grad_out * (x > 0) to its input. Guided backpropagation also blocks
negative incoming gradients: grad_out * (x > 0) * (grad_out > 0), which is the same VJP applied
to max(grad_out, 0). So each ReLU computed inside `guided_backprop()` gets a hook on its output
that replaces the incoming gradient by its positive part; ReLU itself is unchanged.
"""
import contextlib

import numpy as np

from .observers import observe_forward
from .ops.activation import ReLU


def positive_part(grad):
    """max(grad, 0): the hook guided backpropagation puts on each ReLU's output."""
    return np.maximum(grad, 0)


@contextlib.contextmanager
def guided_backprop():
    """ReLUs computed inside this block pass only positive incoming gradients back (run the forward here)."""
    def hook_relu_outputs(op, ctx, inputs, params, out):
        if op is ReLU and out.requires_grad:
            out.register_hook(positive_part)

    with observe_forward(hook_relu_outputs):
        yield
