"""What backward keeps alive: saved bytes per node, saved_tensors_hooks, checkpoint, and no graph left behind."""
import gc

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinynet as tn
from experiments.cnn_filters import make_cnn
from experiments.common.mnist import handout_network
from experiments.common.training import train
from tinynet import functional as F
from tinynet.function import Node
from tinynet.memory import SavedMemory, memory_report, saved_arrays, saved_bytes
from tinynet.tensor import topological_order


def nodes_of(output):
    return [t.node for t in topological_order([output]) if t.node is not None]


def arrays_ctx_holds(ctx):
    """What a ctx holds for backward, found by hand: saved_tensors, array attributes, its conv plan's spectra."""
    held = [a for a in ctx.saved_tensors if a is not None]
    held += [v for v in vars(ctx).values() if isinstance(v, np.ndarray)]
    plan = getattr(ctx, "plan", None)
    held += [a for kept in getattr(plan, "kept", {}).values() for a in kept]
    return {id(a): a for a in held}.values()


@pytest.mark.parametrize("algorithm", ["im2col", "fft"])
def test_bytes_per_node_are_the_nbytes_of_what_ctx_holds(algorithm):
    rng = np.random.default_rng(0)
    model = tn.nn.Sequential(tn.nn.Conv2d(2, 3, 5, padding="same", rng=rng), tn.nn.ReLU(), tn.nn.MaxPool2d(2),
                             tn.nn.Flatten(), tn.nn.Linear(3 * 4 * 4, 4, rng=rng), tn.nn.Tanh())
    x = tn.Tensor(rng.standard_normal((2, 2, 8, 8)), requires_grad=True)
    with tn.force_conv_algorithm(algorithm):
        loss = F.cross_entropy(model(x), np.array([0, 3]))
    nodes = nodes_of(loss)
    assert {n.op.__name__ for n in nodes} >= {"Conv2d", "ReLU", "MaxPool2d", "Linear", "Tanh", "CrossEntropy"}
    for node in nodes:
        assert saved_bytes(node) == sum(a.nbytes for a in arrays_ctx_holds(node.ctx)), node.op.__name__
    conv = next(n for n in nodes if n.op.__name__ == "Conv2d")
    spectra = [name for name in saved_arrays(conv.ctx) if name.startswith("plan.")]
    assert bool(spectra) == (algorithm == "fft")  # FFT keeps the weight's spectra for the input gradient


def test_an_array_saved_twice_or_viewed_counts_once_in_the_total():
    x = tn.Tensor(np.ones((10, 10)), requires_grad=True)
    product = x * x  # Mul saves x twice
    tanh = F.tanh(product)  # saves its output
    both = (tanh * tanh.reshape(100).reshape(10, 10)).sum()  # Mul saves tanh's output and a view of it
    report = memory_report(both)
    per_node = sum(saved_bytes(node) for node in nodes_of(both))
    assert report.saved_bytes == 2 * 800 < per_node == 3 * 800  # each node counts its own bytes once too
    assert report.leaf_bytes == 800
    assert [row.op for row in report.rows][:2] == ["Mul", "Tanh"] and report.rows[0].count == 2


def test_memory_report_of_a_function_names_the_lines_that_saved():
    rng = np.random.default_rng(0)
    w = tn.Tensor(rng.standard_normal((50, 40)), requires_grad=True)

    def loss_fn(x):
        hidden = F.tanh(x @ w)
        return (hidden * hidden).sum()

    report = memory_report(loss_fn, rng.standard_normal((30, 50)))
    assert all("in loss_fn" in row.call_site for row in report.rows)
    assert "Tanh" in str(report) and "call site" in str(report)
    json = report.to_json()
    assert json["saved_bytes"] == report.saved_bytes and {"op", "call_site", "count", "bytes", "share"} == set(
        json["rows"][0])
    assert sum(row["share"] for row in json["rows"]) >= 0.999


def test_saved_memory_falls_to_zero_as_each_node_is_released():
    x = tn.Tensor(np.ones(100), requires_grad=True)
    loss = F.tanh(F.tanh(x)).sum()
    nodes, memory = nodes_of(loss), SavedMemory()
    for node in nodes:
        memory.hold(node)
    assert memory.total == 2 * 800
    memory.release(nodes[-2])
    assert memory.total == 800
    for node in nodes[:-2] + nodes[-1:]:
        memory.release(node)
    assert memory.total == 0 and memory.holders == {}


# ---- saved_tensors_hooks --------------------------------------------------------------------------------------------

def test_pack_runs_once_per_saved_array_in_order_and_unpack_at_each_read():
    packed, unpacked = [], []

    def pack(array):
        packed.append(array)
        return ("packed", len(packed) - 1)

    def unpack(handle):
        unpacked.append(handle)
        return packed[handle[1]]

    a, b = (tn.Tensor(np.array(values), requires_grad=True) for values in ([1.0, 2.0], [3.0, 4.0]))
    with tn.saved_tensors_hooks(pack, unpack):
        product = a * b  # saves a, b
        out = F.tanh(product)  # saves its output
    assert [id(x) for x in packed] == [id(a._data), id(b._data), id(out._data)]
    assert product.node.ctx.saved_for_backward == (("packed", 0), ("packed", 1))
    out.sum().backward()
    assert unpacked == [("packed", 2), ("packed", 0), ("packed", 1)]
    np.testing.assert_allclose(a.grad, (1 - np.tanh([3.0, 8.0]) ** 2) * [3.0, 4.0])
    product.node.ctx.saved_tensors  # noqa: B018  (each read unpacks again)
    assert len(unpacked) == 5


def test_hooks_nest_innermost_first_and_nothing_is_packed_without_a_graph():
    calls = []

    def hooks(name):
        return (lambda array: calls.append(name) or array), (lambda array: array)

    x = tn.Tensor([1.0, 2.0], requires_grad=True)
    with tn.saved_tensors_hooks(*hooks("outer")):
        F.tanh(x)
        with tn.saved_tensors_hooks(*hooks("inner")):
            F.tanh(x)
            with tn.no_grad():
                F.tanh(x)
            F.tanh(tn.Tensor([1.0]))  # requires no grad: no graph
        F.tanh(x)
    F.tanh(x)
    assert calls == ["outer", "inner", "outer"]


def test_float16_saves_give_the_error_of_rounding_what_was_saved():
    rng = np.random.default_rng(0)
    x = tn.Tensor(rng.standard_normal(1000), requires_grad=True)
    with tn.saved_in_float16():
        loss = (x * x).sum()  # d/dx = 2x, from the saved x
    assert all(a.dtype == np.float16 for a in saved_arrays(loss.node.parents[0].node.ctx).values())
    loss.backward()
    np.testing.assert_array_equal(x.grad, 2 * x.data.astype(np.float16).astype(np.float64))
    relative = np.abs(x.grad - 2 * x.data) / np.abs(2 * x.data)
    assert 1e-5 < relative.max() <= 2.0 ** -11  # float16 keeps 11 significant bits: half an ulp of relative error
    assert x.grad.dtype == np.float64


def test_float16_saving_skips_what_it_is_told_and_integer_arrays():
    rng = np.random.default_rng(0)
    weight = tn.Tensor(rng.standard_normal((3, 4)), requires_grad=True)
    with tn.saved_in_float16(skip=[weight]):
        loss = F.cross_entropy(tn.Tensor(rng.standard_normal((2, 3)), requires_grad=True) @ weight, np.array([1, 2]))
    matmul = loss.node.parents[0].node
    assert [a.dtype for a in saved_arrays(matmul.ctx).values()] == [np.float16, np.float64]
    assert saved_arrays(loss.node.ctx)["target"].dtype == np.int64


def test_saves_on_disk_give_the_same_gradient_and_the_files_go_with_the_graph(tmp_path):
    rng = np.random.default_rng(0)
    x = tn.Tensor(rng.standard_normal((5, 6)), requires_grad=True)
    with tn.saved_on_disk(tmp_path):
        loss = F.tanh(x @ x.T).sum()
    assert len(list(tmp_path.iterdir())) == 3  # x twice (as the two inputs of MatMul: two files) and tanh's output
    loss.backward()
    expected = tn.grad(F.tanh(x @ x.T).sum(), x)[0].data
    np.testing.assert_allclose(x.grad, expected, rtol=1e-14)
    del loss
    assert list(tmp_path.iterdir()) == []


def test_a_double_backward_through_packed_saves_raises_naming_the_op():
    x = tn.Tensor([1.0, 2.0], requires_grad=True)
    with tn.saved_tensors_hooks(lambda a: a.copy(), lambda a: a):
        y = (x * x).sum()
    with pytest.raises(RuntimeError, match="Mul saved its arrays through saved_tensors_hooks"):
        tn.grad(y, x, create_graph=True)


# ---- checkpoint -----------------------------------------------------------------------------------------------------

def block_and_data(rng, batch, features, hidden, dropout=0.0):
    block = tn.nn.Sequential(tn.nn.Linear(features, hidden, rng=rng, dtype=np.float64), tn.nn.Tanh(),
                             tn.nn.Dropout(dropout, rng=np.random.default_rng(1)),
                             tn.nn.Linear(hidden, features, rng=rng, dtype=np.float64))
    head = tn.nn.Linear(features, 3, rng=rng, dtype=np.float64)
    return block, head, rng.standard_normal((batch, features)), rng.integers(0, 3, batch)


def gradients(block, head, x, labels, wrap):
    """The gradients of every parameter and of x, with the block run plain or checkpointed (wrap)."""
    for p in block.parameters() + head.parameters():
        p.grad = None
    generator = block.layers[2].rng
    state = generator.bit_generator.state
    x = tn.Tensor(x, requires_grad=True)
    F.cross_entropy(head(F.relu(wrap(block, x)) + x), labels).backward()
    generator.bit_generator.state = state  # the next call draws the same dropout masks
    return [p.grad for p in block.parameters() + head.parameters()] + [x.grad]


@given(batch=st.integers(1, 6), features=st.integers(1, 5), hidden=st.integers(1, 7),
       dropout=st.sampled_from([0.0, 0.5]))
def test_checkpointed_and_plain_gradients_agree(batch, features, hidden, dropout):
    block, head, x, labels = block_and_data(np.random.default_rng(0), batch, features, hidden, dropout)
    plain = gradients(block, head, x, labels, lambda fn, t: fn(t))
    checkpointed = gradients(block, head, x, labels, tn.checkpoint)
    for a, b in zip(plain, checkpointed):
        np.testing.assert_allclose(b, a, rtol=1e-13, atol=1e-15)


def test_checkpoint_keeps_nothing_inside_and_recomputes_in_backward():
    block, head, x, labels = block_and_data(np.random.default_rng(0), 4, 3, 5)
    calls = []
    counted = tn.nn.Sequential(block)
    counted.forward = lambda t: calls.append(1) or block(t)
    out = tn.checkpoint(counted, tn.Tensor(x, requires_grad=True), parameters=block.parameters())
    assert [n.op.__name__ for n in nodes_of(out)] == ["Checkpoint"] and len(calls) == 1
    out.sum().backward()
    assert len(calls) == 2 and all(p.grad is not None for p in block.parameters())


def test_checkpoint_works_with_tn_grad_and_leaves_dot_grad_alone():
    block, head, x, labels = block_and_data(np.random.default_rng(0), 4, 3, 5)
    x = tn.Tensor(x, requires_grad=True)
    plain = tn.grad(head(block(x)).sum(), [x, block.layers[0].weight])
    checkpointed = tn.grad(head(tn.checkpoint(block, x)).sum(), [x, block.layers[0].weight])
    for a, b in zip(plain, checkpointed):
        np.testing.assert_allclose(b.data, a.data, rtol=1e-13)
    assert all(p.grad is None for p in block.parameters())


def test_checkpoint_of_a_function_with_unnamed_parameters_raises_in_backward():
    w = tn.Tensor(np.ones((3, 3)), requires_grad=True)
    x = tn.Tensor(np.ones((2, 3)), requires_grad=True)
    out = tn.checkpoint(lambda t: F.tanh(t @ w), x)
    with pytest.raises(RuntimeError, match="neither its arguments nor its parameters"):
        out.sum().backward()
    tn.checkpoint(lambda t: F.tanh(t @ w), x, parameters=[w]).sum().backward()
    np.testing.assert_allclose(w.grad, 2 * (1 - np.tanh(3.0) ** 2))


def test_checkpoint_refuses_a_double_backward_and_a_non_tensor_result():
    x = tn.Tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="Checkpoint has no double backward"):
        tn.grad(tn.checkpoint(lambda t: t * t, x).sum(), x, create_graph=True)
    with pytest.raises(TypeError, match="returns one Tensor"):
        tn.checkpoint(lambda t: (t, t), x)


def test_checkpointed_module_has_the_modules_parameters():
    block, head, x, labels = block_and_data(np.random.default_rng(0), 4, 3, 5)
    wrapped = tn.Checkpointed(block)
    assert [name for name, _ in wrapped.named_parameters()][0] == "module.layers.0.weight"
    np.testing.assert_allclose(wrapped(tn.Tensor(x)).data, block(tn.Tensor(x)).data)


# ---- no graph kept alive by accident --------------------------------------------------------------------------------

def live_nodes():
    return sum(type(o) is Node for o in gc.get_objects())  # not isinstance: that asks some modules for __class__


@pytest.fixture
def no_cycle_collector():
    """Inside the test, only reference counting frees objects: a graph kept in a reference cycle stays counted."""
    gc.collect()
    gc.disable()
    yield
    gc.enable()


def count_nodes_at_each_step(model, optimizer, loss_fn, x, y, steps):
    """Train with experiments' train loop; the live nodes at each zero_grad (the previous step's graph is still
    referenced then, by the loop's `loss`), and after training."""
    counts, zero_grad = [], optimizer.zero_grad

    def counting_zero_grad():
        counts.append(live_nodes())
        zero_grad()

    optimizer.zero_grad = counting_zero_grad
    train(model, optimizer, loss_fn, x, y, steps=steps, batch_size=8, rng=np.random.default_rng(0),
          eval_splits={}, eval_every=steps, progress=False)
    return counts, live_nodes()


@pytest.mark.parametrize("network", ["part 1", "seed 004 CNN"])
def test_live_graph_nodes_return_to_what_they_were_after_each_training_step(network, no_cycle_collector):
    rng = np.random.default_rng(0)
    if network == "part 1":
        model = handout_network({"W0": rng.standard_normal((784, 300)) * 0.05, "b0": np.zeros(300),
                                 "W1": rng.standard_normal((300, 10)) * 0.05, "b1": np.zeros(10)})
        x, y, optimizer = rng.random((40, 784), dtype=np.float32), rng.integers(0, 10, 40), tn.optim.Adam
    else:
        model = make_cnn(rng, size=12)
        x, y, optimizer = rng.random((40, 1, 12, 12), dtype=np.float32), rng.integers(0, 2, 40), tn.optim.SGD
    before = live_nodes()
    counts, after = count_nodes_at_each_step(model, optimizer(model.parameters(), lr=1e-3), F.cross_entropy, x, y, 5)
    assert after == before
    assert counts[0] == before and len(set(counts[1:])) == 1 and counts[1] > before  # one step's graph, never more


def test_a_dropped_loss_frees_its_graph_without_the_cycle_collector(no_cycle_collector):
    before = live_nodes()
    x = tn.Tensor(np.ones((3, 4)), requires_grad=True)
    loss = F.cross_entropy(F.tanh(x @ x.T), np.array([0, 1, 2]))
    loss.backward()
    assert live_nodes() > before
    del loss
    assert live_nodes() == before


def test_memory_of_a_float16_graph_is_smaller_than_plain():
    x = tn.Tensor(np.ones((100, 100)), requires_grad=True)
    plain = memory_report(F.tanh(F.tanh(x)).sum())
    with tn.saved_in_float16():
        half = memory_report(F.tanh(F.tanh(x)).sum())
    assert half.saved_bytes * 4 == plain.saved_bytes
    assert half.held_bytes * 4 == plain.held_bytes  # the graph holds no other values
