"""Anomaly mode: find the op whose backward first produced a NaN or an infinity, or wrote into its grad_out.

    with tn.detect_anomaly():
        loss = f(x)          # each op remembers the file:line that called it
        loss.backward()      # each gradient an op sends back is checked; the first bad one raises

The error names the op, where its forward was called, and the parent that was to receive the
gradient, e.g. for `log(x - x)`: "Log (called at demo.py:3 in main) sent inf to its input 0, the
result of Sub (called at demo.py:3 in main)". Outside the block nothing is recorded, and only the reverse
pass's own checks run (each VJP's gradients: their number, shapes and dtypes).
"""
import contextlib

import numpy as np

from .observers import observe_backward, observe_forward
from .recorder import remember_call_site
from .tensor import read_only_grad_out


class AnomalyError(RuntimeError):
    """A backward step produced a non-finite gradient."""


def _made_by(tensor) -> str:
    """'Sub (called at file:line in f)', or a description of a leaf."""
    if tensor.node is None:
        return f"a leaf of shape {tensor.shape}"
    site = tensor.node.call_site or "an unknown line (it was made outside detect_anomaly)"
    return f"{tensor.node.op.__name__} (called at {site})"


def _check_step(tensor, grad_out, parent_grads):
    """Raise AnomalyError if a gradient tensor's op sends to its parents is not finite (the reverse pass itself
    checks their number, shapes and dtypes)."""
    if parent_grads is None:
        return
    for k, (parent, grad) in enumerate(zip(tensor.node.parents, parent_grads)):
        if grad is None or not parent.requires_grad:
            continue
        if not np.all(np.isfinite(grad)):
            bad = "nan" if np.isnan(grad).any() else "inf"
            incoming = "" if np.all(np.isfinite(grad_out)) else " (its own incoming gradient was not finite)"
            raise AnomalyError(f"{_made_by(tensor)} sent {bad} to its input {k}, the result of "
                               f"{_made_by(parent)}{incoming}")


@contextlib.contextmanager
def detect_anomaly():
    """Record each op's call site in the forward; check every gradient backward sends (see the module), and hand
    each VJP a read-only grad_out (tinynet.tensor.read_only_grad_out)."""
    with observe_forward(remember_call_site), observe_backward(_check_step), read_only_grad_out():
        yield
