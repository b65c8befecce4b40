"""Recording the ops of a forward pass: which ops ran, on what, called from where, on which branch.

gradcheck records each finite-difference evaluation to see kink crossings (an op's branch, e.g.
which inputs of a ReLU were positive, differs between x + h and x - h), and records the forward
once more to re-check every op's VJP on the inputs it actually saw.
"""
import contextlib
import functools
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .observers import observe_forward

ENGINE_DIR = Path(__file__).resolve().parent
MODELS_DIR = ENGINE_DIR / "models"  # model definitions count as the user's code: their lines say where


@dataclass
class OpCall:
    """One op's forward as it ran: op(*inputs, **params), from call_site, taking branch, running implementation
    (Function.implementation: Conv2d's algorithm, or None)."""

    op: type
    inputs: list
    params: dict
    branch: np.ndarray
    call_site: str
    implementation: str | None = None

    @property
    def name(self) -> str:
        return self.op.__name__


@contextlib.contextmanager
def record_ops(call_sites=False):
    """Inside this block, every op's forward is appended to the yielded list as an OpCall.

    call_sites: also record the file:line that called the op (costs a stack walk per op).
    """
    calls = []

    def record(op, ctx, inputs, params, out):
        calls.append(OpCall(op, list(inputs), params, op.branch(ctx), caller_outside_engine() if call_sites else "",
                            op.implementation(ctx)))

    with observe_forward(record):
        yield calls


def remember_call_site(op, ctx, inputs, params, out):
    """A forward observer: note on out's graph node the line of user code that called op."""
    if out.node is not None:
        out.node.call_site = caller_outside_engine()


def caller_outside_engine() -> str:
    """'file:line in function' of the innermost frame that is not tinynet's own machinery."""
    frame = sys._getframe(1)
    while frame is not None:
        if not is_engine_file(frame.f_code.co_filename):
            return f"{os.path.basename(frame.f_code.co_filename)}:{frame.f_lineno} in {frame.f_code.co_name}"
        frame = frame.f_back
    return "<unknown>"


@functools.cache
def is_engine_file(filename) -> bool:
    """Whether filename is one of tinynet's own modules (the model definitions count as the user's code).
    Cached: the optimizers ask at every step, and pathlib takes microseconds to answer."""
    path = Path(filename)
    return path.is_relative_to(ENGINE_DIR) and not path.is_relative_to(MODELS_DIR)


def ops_whose_branch_differs(calls: list, other_calls: list) -> list:
    """Names of the ops that took a different branch in two recordings of one computation.

    The two recordings list the same ops in the same order, unless the computation itself
    took another path (Python control flow on values); then every op from there on counts.
    """
    differing = []
    for call, other in zip(calls, other_calls):
        if call.op is not other.op:
            return differing + [f"{call.name} (the computation took another path)"]
        if call.branch is not None and not np.array_equal(call.branch, other.branch):
            differing.append(call.name)
    return differing
