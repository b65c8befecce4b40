"""Anomaly mode: find the op whose backward first produced a NaN, an infinity or a wrongly shaped gradient.

    with tn.detect_anomaly():
        loss = f(x)          # each op remembers the file:line that called it
        loss.backward()      # each gradient an op sends back is checked; the first bad one raises

The error names the op, where its forward was called, and the parent that was to receive the
gradient, e.g. for `log(x - x)`: "Log (called at demo.py:3 in main) sent inf to its input 0, the
result of Sub (called at demo.py:3 in main)". Outside the block nothing is recorded or checked.
"""
import contextlib

import numpy as np

from .observers import observe_backward, observe_forward
from .recorder import remember_call_site
from .tensor import broadcast_axes


class AnomalyError(RuntimeError):
    """A backward step produced a non-finite or wrongly shaped gradient."""


def _made_by(tensor) -> str:
    """'Sub (called at file:line in f)', or a description of a leaf."""
    if tensor.node is None:
        return f"a leaf of shape {tensor.shape}"
    site = tensor.node.call_site or "an unknown line (it was made outside detect_anomaly)"
    return f"{tensor.node.op.__name__} (called at {site})"


def _check_step(tensor, grad_out, parent_grads):
    """Raise AnomalyError if the gradients tensor's op sends to its parents are not finite or not shaped."""
    if parent_grads is None:
        return
    parents = tensor.node.parents
    if len(parent_grads) != len(parents):
        raise AnomalyError(f"{_made_by(tensor)}: backward returned {len(parent_grads)} gradients for "
                           f"{len(parents)} inputs")
    for k, (parent, grad) in enumerate(zip(parents, parent_grads)):
        if grad is None or not parent.requires_grad:
            continue
        grad = np.asarray(grad)
        try:
            broadcast_axes(grad.shape, parent.shape)
        except ValueError:
            raise AnomalyError(f"{_made_by(tensor)} sent a gradient of shape {grad.shape} to its input {k}, "
                               f"{_made_by(parent)}, whose shape is {parent.shape}") from None
        if not np.all(np.isfinite(grad)):
            bad = "nan" if np.isnan(grad).any() else "inf"
            incoming = "" if np.all(np.isfinite(grad_out)) else " (its own incoming gradient was not finite)"
            raise AnomalyError(f"{_made_by(tensor)} sent {bad} to its input {k}, the result of "
                               f"{_made_by(parent)}{incoming}")


@contextlib.contextmanager
def detect_anomaly():
    """Record each op's call site in the forward; check every gradient backward sends (see the module)."""
    with observe_forward(remember_call_site), observe_backward(_check_step):
        yield
