"""Hypothesis strategies shared by the gradient tests."""
import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinynet as tn

small_shapes = hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4)
seeds = st.integers(0, 2**32 - 1)


def random_tensor(shape, seed, low=None, requires_grad=True):
    """A float64 Tensor of standard normal values (or uniform in [low, low + 1] when low is set)."""
    rng = np.random.default_rng(seed)
    values = rng.standard_normal(shape) if low is None else low + rng.random(shape)
    return tn.Tensor(values, requires_grad=requires_grad)


def away_from_zero(shape, seed, margin=0.1):
    """A float64 Tensor whose entries have |x| >= margin: off the kink of relu at 0."""
    rng = np.random.default_rng(seed)
    values = rng.choice([-1.0, 1.0], shape) * (margin + rng.random(shape))
    return tn.Tensor(values, requires_grad=True)


def distinct_values(shape, seed):
    """A float64 Tensor with all entries distinct (spacing >= 0.1): no ties for max."""
    rng = np.random.default_rng(seed)
    size = int(np.prod(shape))
    return tn.Tensor(rng.permutation(size).reshape(shape) * 0.1 + 0.01 * rng.random(shape), requires_grad=True)


@st.composite
def shape_and_axis(draw):
    """(shape, axis): a small shape and an axis argument for it (None, an int, negatives too, or a tuple)."""
    shape = draw(small_shapes)
    axis = draw(st.none() | st.integers(-len(shape), len(shape) - 1)
                | st.lists(st.integers(-len(shape), len(shape) - 1), min_size=1, max_size=len(shape),
                           unique_by=lambda a: a % len(shape)).map(tuple))
    return shape, axis
