"""func.vmap: a function of one example run on a batch in one pass equals the loop over the examples, for every op
of the shared table (tests/op_calls.py), and per-example gradients (vmap of grad) of the course's two networks equal
a loop of single-example backward passes."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinynet as tn
from experiments.cnn_filters import make_cnn
from op_calls import CALLS
from tinynet import func, nn
from tinynet import functional as F
from tinynet.ops.shape import ScatterAdd

BATCH = 3
# batch_norm updates its running statistics in place from the batch's values, and dropout would draw one mask for
# every example: inside a vmap both raise (masks and constants computed from x.data, as clamp's, are batched)
READ_VALUES = {"batch_norm", "dropout"}
SUPPORTED = sorted(set(CALLS) - READ_VALUES)


def examples(name, seed=0):
    """BATCH examples of each input of CALLS[name], float64: arrays (BATCH, *shape)."""
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((BATCH, *shape)) for shape in CALLS[name][1]]


def outputs(result):
    """A function's result as a list of arrays."""
    return [t.data for t in (result if isinstance(result, (tuple, list)) else [result])]


def looped(function, batched, in_dims):
    """function applied example by example: each output stacked along a new axis 0."""
    results = [outputs(function(*(tn.Tensor(x[b]) if dim is not None else x for x, dim in zip(batched, in_dims))))
               for b in range(BATCH)]
    return [np.stack(parts) for parts in zip(*results)]


@pytest.mark.parametrize("name", SUPPORTED)
def test_vmap_equals_the_loop_for_every_op(name):
    function, _ = CALLS[name]
    batched = examples(name)
    in_dims = (0,) * len(batched)
    for got, expected in zip(outputs(func.vmap(function, in_dims)(*batched)), looped(function, batched, in_dims)):
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", [n for n in SUPPORTED if len(CALLS[n][1]) > 1])
def test_vmap_with_shared_inputs_equals_the_loop(name):
    """Only the first input holds examples; the others are shared (in_dims None), then only the last."""
    function, shapes = CALLS[name]
    rng = np.random.default_rng(1)
    for first in (True, False):
        in_dims = tuple(0 if (k == 0) == first else None for k in range(len(shapes)))
        inputs = [rng.standard_normal((BATCH, *shape)) if dim == 0 else tn.Tensor(rng.standard_normal(shape))
                  for shape, dim in zip(shapes, in_dims)]
        got = outputs(func.vmap(function, in_dims)(*inputs))
        for g, expected in zip(got, looped(function, inputs, in_dims)):
            np.testing.assert_allclose(g, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", SUPPORTED)
def test_per_example_gradients_of_every_op_equal_the_loop(name):
    """vmap(grad(sum of the op's outputs, weighted)) against one grad per example."""
    function, _ = CALLS[name]
    batched = examples(name, seed=2)
    argnums = tuple(range(len(batched)))

    def weighted_sum(*inputs):
        return sum((out * np.cos(np.arange(out.size)).reshape(out.shape)).sum()
                   for out in (lambda r: r if isinstance(r, tuple) else (r,))(function(*inputs)))
    got = func.vmap(func.grad(weighted_sum, argnums))(*batched)
    for b in range(BATCH):
        expected = func.grad(weighted_sum, argnums)(*(x[b] for x in batched))
        for g, e in zip(got, expected):
            np.testing.assert_allclose(g.data[b], e.data, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", sorted(READ_VALUES))
def test_ops_that_read_values_raise_inside_vmap(name):
    function, _ = CALLS[name]
    with pytest.raises((RuntimeError, NotImplementedError), match="vmap"):
        func.vmap(function)(*examples(name))


def test_an_op_without_a_batch_rule_raises_naming_it():
    def scatter(x):
        return ScatterAdd.apply(x, shape=(4,), index=np.array([0, 2]))
    with pytest.raises(NotImplementedError, match="vmap: ScatterAdd has no batch rule"):
        func.vmap(scatter)(np.ones((3, 2)))


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(1, 3), max_size=3), st.data(), st.integers(1, 4))
def test_broadcasting_aligns_examples_of_any_ranks(shape_a, data, batch):
    """a batched, b shared (or batched) with fewer axes and some of size 1: each example broadcasts as it would
    alone."""
    kept = data.draw(st.integers(0, len(shape_a)))
    shape_b = [size if data.draw(st.booleans()) else 1 for size in shape_a[len(shape_a) - kept:]]
    rng = np.random.default_rng(kept)
    a, b = rng.standard_normal((batch, *shape_a)), rng.standard_normal(shape_b)
    for in_b, b_value in ((None, b), (0, np.stack([b] * batch))):
        for function in (lambda x, y: x * y + y, lambda x, y: y - x):
            got = func.vmap(function, in_dims=(0, in_b))(a, b_value).data
            np.testing.assert_allclose(got, np.stack([function(tn.Tensor(a[i]), tn.Tensor(b)).data
                                                      for i in range(batch)]), rtol=1e-12)


def test_in_dims_and_out_dims_move_the_batch_axis():
    rng = np.random.default_rng(3)
    x, w = rng.standard_normal((4, 5, 2)), rng.standard_normal((3, 4))  # examples along x's axis 1
    out = func.vmap(lambda x, w: F.matmul(w, x), in_dims=(1, None), out_dims=1)(x, w)
    expected = np.stack([w @ x[:, b] for b in range(5)], axis=1)
    assert out.shape == (3, 5, 2)
    np.testing.assert_allclose(out.data, expected, rtol=1e-12)


def test_outputs_may_be_tuples_dicts_and_shared():
    x = np.arange(6.0).reshape(3, 2)
    doubled, total, shared = func.vmap(lambda x, c: (x * 2, {"sum": x.sum()}, c), in_dims=(0, None))(
        x, tn.Tensor(np.ones(2)))
    np.testing.assert_array_equal(doubled.data, x * 2)
    np.testing.assert_array_equal(total["sum"].data, x.sum(1))
    np.testing.assert_array_equal(shared.data, np.ones((3, 2)))


def test_clear_errors():
    x = np.ones((3, 2))
    with pytest.raises(ValueError, match="different numbers of examples"):
        func.vmap(lambda a, b: a + b)(x, np.ones((4, 2)))
    with pytest.raises(ValueError, match="at least one batched argument"):
        func.vmap(lambda a: a, in_dims=None)(x)
    with pytest.raises(ValueError, match="in_dims has 1 entries for 2 arguments"):
        func.vmap(lambda a, b: a, in_dims=(0,))(x, x)
    with pytest.raises(ValueError, match="axis 2 of an argument of shape"):
        func.vmap(lambda a: a, in_dims=2)(x)
    with pytest.raises(RuntimeError, match="no single array"):
        func.vmap(lambda a: tn.Tensor(a.data * 2))(x)
    with pytest.raises(RuntimeError, match="use tinynet.func.grad"):
        func.vmap(lambda a: a.sum().backward())(x)
    with pytest.raises(RuntimeError, match="nested vmap"):
        func.vmap(lambda a: func.vmap(lambda b: b)(a))(np.ones((3, 2, 2)))
    kept = []
    func.vmap(lambda a: kept.append(a) or a)(x)
    with pytest.raises(RuntimeError, match="vmap"):
        kept[0] * 2


def test_jacobians_and_jvps_inside_vmap_equal_the_loop():
    rng = np.random.default_rng(4)
    xs, vs = rng.standard_normal((BATCH, 3)), rng.standard_normal((BATCH, 3))

    def f(x):
        return F.tanh(x) * x.sum()
    for transform in (func.jacrev(f), func.jacfwd(f), func.hessian(lambda x: (F.tanh(x) ** 2).sum())):
        got = func.vmap(transform)(xs).data
        for b in range(BATCH):
            np.testing.assert_allclose(got[b], transform(xs[b]).data, rtol=1e-10, atol=1e-12)
    _, tangents = func.vmap(lambda x, v: func.jvp(f, (x,), (v,)))(xs, vs)
    for b in range(BATCH):
        np.testing.assert_allclose(tangents.data[b], func.jvp(f, (xs[b],), (vs[b],))[1].data, rtol=1e-12)


def test_grad_of_a_vmapped_function_sums_the_examples():
    rng = np.random.default_rng(5)
    w, xs = rng.standard_normal((3, 2)), rng.standard_normal((4, 3))

    def total(w):
        return func.vmap(lambda w, x: F.tanh(F.matmul(x[None], w)).sum(), in_dims=(None, 0))(w, xs).sum()
    expected = sum(func.grad(lambda w, x: F.tanh(F.matmul(x[None], w)).sum())(w, x).data for x in xs)
    np.testing.assert_allclose(func.grad(total)(w).data, expected, rtol=1e-12)


# ---- the course's networks: per-example gradients in one batched pass --------------------------------------
def part1_network(rng):
    """Part 1's handout network, 784 -> 300 tanh -> 10 (experiments/part1_mnist.py), float64."""
    return nn.Sequential(nn.Linear(784, 300, rng=rng), nn.Tanh(), nn.Linear(300, 10, rng=rng)).to(np.float64)


SEED004_SIZE = 23  # the seed's images are 91 x 91; 23 is odd too and pools to an even 12 as 91 to 46: 1/16 the pixels


def seed004_network(rng):
    """Seed 004's CNN (experiments/cnn_filters.py) for SEED004_SIZE x SEED004_SIZE gray images, float64, dropout
    off: its layers (10 x 10 'same' convolutions, 'same' poolings, dropout) as they are for 91 x 91."""
    return make_cnn(rng, SEED004_SIZE).to(np.float64).eval()


def per_example_gradients_equal_the_loop(model, x, labels):
    params = {name: tn.Tensor(p.data) for name, p in model.named_parameters()}

    def loss(params, x, label):
        return F.cross_entropy(func.functional_call(model, params, x[None]), label[None])
    batched = func.vmap(func.grad(loss), in_dims=(None, 0, 0))(params, x, labels)
    for b in range(len(x)):
        model.zero_grad()
        F.cross_entropy(model(tn.Tensor(x[b:b + 1])), labels[b:b + 1]).backward()
        for name, p in model.named_parameters():
            np.testing.assert_allclose(batched[name].data[b], p.grad, rtol=1e-9, atol=1e-13, err_msg=name)
    return batched


def test_per_example_gradients_of_part1_network():
    rng = np.random.default_rng(6)
    gradients = per_example_gradients_equal_the_loop(part1_network(rng), rng.standard_normal((5, 784)),
                                                     rng.integers(0, 10, 5))
    assert gradients["layers.0.weight"].shape == (5, 300, 784)


def test_per_example_gradients_of_seed004_cnn():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 1, SEED004_SIZE, SEED004_SIZE))
    gradients = per_example_gradients_equal_the_loop(seed004_network(rng), x, rng.integers(0, 2, 2))
    assert gradients["layers.0.weight"].shape == (2, 32, 1, 10, 10)


def test_masks_and_indices_from_values_are_batched():
    """x.data inside a vmap holds every example's values: masks, clips and argmax made from it work per example."""
    x = np.array([[1.0, -2.0, 3.0], [-1.0, 5.0, 0.5]])

    def f(x):
        positive = F.where(x.data > 0, x, 0.0)
        return positive, F.clamp(x, -1.5, 2.0), F.max(x, 0).indices
    positive, clamped, indices = func.vmap(f)(x)
    np.testing.assert_array_equal(positive.data, np.where(x > 0, x, 0))
    np.testing.assert_array_equal(clamped.data, np.clip(x, -1.5, 2.0))
    np.testing.assert_array_equal(indices, [2, 1])
    with pytest.raises(RuntimeError, match="np.median was called"):
        func.vmap(lambda x: np.median(x.data))(x)
    with pytest.raises(RuntimeError, match="converted to one array"):
        func.vmap(lambda x: np.asarray(x.data))(x)


LOSSES_OF_LABELS = {
    "cross_entropy": lambda x, y: F.cross_entropy(x, y),
    "cross_entropy_sum": lambda x, y: F.cross_entropy(x, y, reduction="sum"),
    "cross_entropy_smoothed": lambda x, y: F.cross_entropy(x, y, label_smoothing=0.1),
    "cross_entropy_weighted": lambda x, y: F.cross_entropy(x, y, weight=np.linspace(0.5, 2, 5)),
    "nll_loss": lambda x, y: F.nll_loss(F.log_softmax(x), y),
    "nll_loss_weighted": lambda x, y: F.nll_loss(F.log_softmax(x), y, weight=np.linspace(0.5, 2, 5)),
}


@pytest.mark.parametrize("name", sorted(LOSSES_OF_LABELS))
def test_losses_of_labels_per_example_equal_the_loop(name):
    """Each example's own class labels (an integer array batched along axis 0), one of them ignored."""
    rng = np.random.default_rng(8)
    logits, labels = rng.standard_normal((BATCH, 4, 5)), rng.integers(0, 5, (BATCH, 4))
    labels[0, 1] = -100  # ignore_index
    loss = LOSSES_OF_LABELS[name]
    if name in ("cross_entropy", "cross_entropy_sum"):  # one op, CrossEntropy: no ignored sample there
        labels[0, 1] = 3
    got = func.vmap(func.grad(loss))(logits, labels)
    for b in range(BATCH):
        np.testing.assert_allclose(got.data[b], func.grad(loss)(logits[b], labels[b]).data, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("loss", [F.cross_entropy, F.binary_cross_entropy_with_logits], ids=lambda f: f.__name__)
def test_losses_of_probability_targets_per_example_equal_the_loop(loss):
    rng = np.random.default_rng(9)
    logits, targets = rng.standard_normal((BATCH, 4, 5)), rng.random((BATCH, 4, 5))
    targets /= targets.sum(axis=-1, keepdims=True)
    got = func.vmap(func.grad(loss))(logits, targets)
    for b in range(BATCH):
        np.testing.assert_allclose(got.data[b], func.grad(loss)(logits[b], targets[b]).data, rtol=1e-12, atol=1e-15)
