"""Ops that run a faster forward when no gradient is wanted (tn.no_grad, or no input requiring one) give the same
values, and the same branch to the tools that ask for it (finite differences' kink detection records ops under
no_grad), as their forward that keeps what backward needs."""
import numpy as np
import pytest

import tinynet as tn
import tinynet.functional as F
from tinynet.recorder import record_ops

OPS = {
    "relu": lambda x: F.relu(x),
    "max_pool2d 3x3/2": lambda x: F.max_pool2d(x, 3, 2),
    "max_pool2d 2x2 padded": lambda x: F.max_pool2d(x, 2, 1, padding=1),
}


def with_nans_and_ties(seed):
    rng = np.random.default_rng(seed)
    x = rng.integers(-2, 3, (2, 3, 9, 8)).astype(np.float32)  # many ties and zeros
    x[rng.random(x.shape) < 0.05] = np.nan
    return x


@pytest.mark.parametrize("name", OPS)
@pytest.mark.parametrize("seed", [0, 1])
def test_no_grad_forward_gives_the_values_and_branch_of_the_graph_forward(name, seed):
    x = with_nans_and_ties(seed)
    with record_ops() as graph_calls:
        with_graph = OPS[name](tn.Tensor(x, requires_grad=True))
    with tn.no_grad(), record_ops() as plain_calls:
        plain = OPS[name](tn.Tensor(x, requires_grad=True))
    np.testing.assert_array_equal(plain.numpy(), with_graph.numpy())
    (graph_call,), (plain_call,) = graph_calls, plain_calls
    np.testing.assert_array_equal(plain_call.branch, graph_call.branch)
