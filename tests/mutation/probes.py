"""Small float64 computations through each mutated piece of code, and the gradcheck of one of them.

`python -m tests.mutation.probes NAME [OP]` (run by the runner in a mutant's copy of the repo) checks the
probe NAME with tn.gradcheck, or tn.gradgradcheck for a second-order probe, and prints one JSON line:
its verdict, the op its message blames and whether that is OP, the message, and tinynet's path (so
the runner can tell that the copy was imported).
"""
import json
import re
import sys
from typing import NamedTuple

import numpy as np

import tinynet as tn
import tinynet.functional as F
from tinynet.kernels import conv


class Probe(NamedTuple):
    """fn of inputs to check; second_order: check with gradgradcheck (its double backward)."""
    fn: object
    inputs: tuple
    second_order: bool = False


def values(*shape, low=-2.0, high=2.0, seed=0):
    """A float64 leaf of shape with values in [low, high)."""
    return tn.Tensor(np.random.default_rng(seed).uniform(low, high, shape), requires_grad=True)


def away_from_zero(*shape, seed=0):
    """Values in +-[0.5, 2): no kink of ReLU or |x| within a finite-difference step."""
    magnitudes = np.random.default_rng(seed).uniform(0.5, 2.0, shape)
    signs = np.where(np.random.default_rng(seed + 1).random(shape) < 0.5, -1.0, 1.0)
    return tn.Tensor(magnitudes * signs, requires_grad=True)


def distinct(*shape, seed=0):
    """A permutation of well-separated values: no ties in a max, so no kink within a step."""
    return tn.Tensor(np.random.default_rng(seed).permutation(np.prod(shape)).reshape(shape) * 0.1,
                     requires_grad=True)


def convolution(algorithm, stride=1, padding=1, dilation=1, kernel=3, second_order=False):
    """conv2d of a (2, 2, 7, 7) batch by (3, 2, k, k) weights with `algorithm`, one image per batch chunk."""
    conv.COLUMNS_BUDGET_BYTES = 1  # a chunk per image, so that batch-chunk bugs show

    def fn(x, weight):
        with tn.force_conv_algorithm(algorithm):
            return F.conv2d(x, weight, stride=stride, padding=padding, dilation=dilation)
    return Probe(fn, (values(2, 2, 7, 7), values(3, 2, kernel, kernel, seed=1)), second_order)


def shared_gradient(x):
    """(t + x) + 3 t: Add hands one array to t and to x, and t's then receives 3 t's gradient (in place, the bug)."""
    t = x * 2
    return (t + x) + t * 3


PROBES = {
    "add": lambda: Probe(F.add, (values(3, 4), values(3, 4, seed=1))),
    "mul": lambda: Probe(F.mul, (values(3, 4), values(3, 4, seed=1))),
    "mul_second_order": lambda: Probe(F.mul, (values(3, 4), values(3, 4, seed=1)), True),
    "div": lambda: Probe(F.div, (values(3, 4), values(3, 4, low=0.5, high=2.0, seed=1))),
    "neg": lambda: Probe(F.neg, (values(3, 4),)),
    "pow": lambda: Probe(lambda x: x ** 3, (values(3, 4, low=0.5),)),
    "exp": lambda: Probe(F.exp, (values(3, 4),)),
    "log": lambda: Probe(F.log, (values(3, 4, low=0.5),)),
    "abs": lambda: Probe(F.abs, (away_from_zero(3, 4),)),
    "where": lambda: Probe(lambda a, b: F.where(np.eye(3, 4, dtype=bool), a, b), (values(3, 4), values(3, 4, seed=1))),
    "relu": lambda: Probe(F.relu, (away_from_zero(3, 4),)),
    "relu_shared": lambda: Probe(lambda x: F.relu(x * 2) + x * 2, (away_from_zero(3, 4),)),
    "tanh": lambda: Probe(F.tanh, (values(3, 4),)),
    "sigmoid": lambda: Probe(F.sigmoid, (values(3, 4),)),
    "softplus": lambda: Probe(F.softplus, (values(3, 4),)),
    "gelu": lambda: Probe(F.gelu, (values(3, 4),)),
    "sum_axis": lambda: Probe(lambda x: x.sum(axis=1), (values(3, 4),)),
    "max_axis": lambda: Probe(lambda x: F.amax(x, axis=1), (distinct(3, 4),)),
    "matmul_square": lambda: Probe(F.matmul, (values(3, 3), values(3, 3, seed=1))),
    "matmul_transposed_weight": lambda: Probe(lambda x, w: x @ w.T, (values(3, 4), values(5, 4, seed=1))),
    "linear": lambda: Probe(F.linear, (values(3, 4), values(5, 4, seed=1), values(5, seed=2))),
    "linear_square": lambda: Probe(F.linear, (values(4, 4), values(4, 4, seed=1), values(4, seed=2))),
    "log_softmax": lambda: Probe(F.log_softmax, (values(3, 4),)),
    "log_softmax_square": lambda: Probe(F.log_softmax, (values(4, 4),)),
    "cross_entropy": lambda: Probe(lambda x: F.cross_entropy(x, np.array([0, 2, 1, 2])), (values(4, 3),)),
    "bce": lambda: Probe(lambda x: F.binary_cross_entropy_with_logits(x, np.eye(3, 4)), (values(3, 4),)),
    "permute3": lambda: Probe(lambda x: F.permute(x, (1, 2, 0)), (values(2, 3, 4),)),
    "getitem_repeated": lambda: Probe(lambda x: x[np.array([0, 0, 2])], (values(3, 4),)),
    "pad": lambda: Probe(lambda x: F.pad(x, (1, 2, 2, 0)), (values(3, 4),)),
    "max_pool": lambda: Probe(lambda x: F.max_pool2d(x, 2), (distinct(1, 2, 4, 4),)),
    "max_pool_overlapping": lambda: Probe(lambda x: F.max_pool2d(x, 3, stride=1), (distinct(1, 2, 5, 5),)),
    "max_pool_second_order": lambda: Probe(lambda x: F.max_pool2d(x, 2, stride=1) ** 2, (distinct(1, 2, 4, 5),), True),
    "avg_pool_same": lambda: Probe(lambda x: F.avg_pool2d(x, 3, stride=2, padding="same"), (values(1, 2, 5, 6),)),
    "avg_pool_second_order": lambda: Probe(lambda x: F.avg_pool2d(x, 2, stride=1) ** 2, (values(1, 2, 4, 5),), True),
    "lrn": lambda: Probe(lambda x: F.local_response_norm(x, depth_radius=1, bias=1.0, alpha=0.3, beta=0.75),
                         (values(2, 5, 3, 3),)),
    "conv_im2col": lambda: convolution("im2col", stride=2),
    "conv_dilated": lambda: convolution("im2col", dilation=2),
    "conv_second_order": lambda: convolution("im2col", second_order=True),
    "conv_fft": lambda: convolution("fft", padding=((1, 2), (2, 1)), kernel=4),
    "conv_winograd": lambda: convolution("winograd"),
    "conv_winograd_asymmetric": lambda: convolution("winograd", padding=((1, 1), (0, 0))),
    "broadcast_add": lambda: Probe(F.add, (values(3, 4), values(1, 4, seed=1))),
    "add_shared": lambda: Probe(shared_gradient, (values(3, 4),)),
    "chain": lambda: Probe(lambda x: F.tanh(x * 2) * x, (values(3, 4),)),
}


def check(name, op=None) -> dict:
    """Run the probe's gradcheck (or gradgradcheck). verdict: "caught" (GradcheckError), "missed", or "error"
    (anything else raised, e.g. by the forward: not gradcheck's finding); named: the message names op."""
    probe = PROBES[name]()
    check = tn.gradgradcheck if probe.second_order else tn.gradcheck
    verdict, message = "missed", ""
    try:
        check(probe.fn, probe.inputs)
    except tn.GradcheckError as error:
        verdict, message = "caught", str(error)
    except Exception as error:  # a mutant may break anything: report it, do not crash
        verdict, message = "error", f"{type(error).__name__}: {error}"
    named_op = named_in(message) if verdict == "caught" else ""
    return {"verdict": verdict, "named_op": named_op, "named": op is not None and named_op == op, "message": message,
            "tinynet": tn.__file__}


def named_in(message) -> str:
    """The op a GradcheckError's message blames: the first whose own VJP disagrees, or the one whose backward
    failed ('' when it blames none)."""
    found = re.search(r"first op that disagrees: (\w+)|backward itself failed in (\w+)", message)
    return next(name for name in found.groups() if name) if found else ""


if __name__ == "__main__":
    print(json.dumps(check(*sys.argv[1:])))
