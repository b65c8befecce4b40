"""The experiment helpers: results are written atomically, training records curves."""
import json
import tracemalloc

import numpy as np

import tinynet as tn
from experiments.common.cli import experiment_parser
from experiments.common.plots import image_grid, learning_curves
from experiments.common.results import Results
from experiments.common.training import accuracy, evaluate, minibatches, predict, train
from tinynet import functional as F
from tinynet import nn, optim


def test_minibatches_cover_every_index_once():
    batches = list(minibatches(10, 3, np.random.default_rng(0)))
    assert [len(b) for b in batches] == [3, 3, 3, 1]
    assert sorted(np.concatenate(batches)) == list(range(10))


def test_accuracy():
    assert accuracy(np.array([[0.1, 0.9], [0.8, 0.2]]), np.array([1, 1])) == 0.5
    assert accuracy(np.array([[2.0], [-1.0], [0.5]]), np.array([1, 1, 0])) == 1 / 3


def test_train_records_curves_and_learns_a_separable_problem(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((200, 2)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    model = nn.Sequential(nn.Linear(2, 2, rng=rng))
    curves = train(model, optim.SGD(model.parameters(), lr=0.5), F.cross_entropy, x, y, steps=50, batch_size=20,
                   rng=rng, eval_splits={"train": (x, y)}, eval_every=10, progress=False)
    assert curves["step"] == [0, 10, 20, 30, 40, 50]
    assert curves["train_accuracy"][-1] > 0.95 and curves["train_loss"][-1] < curves["train_loss"][0]
    assert model.training


def test_results_write_config_metrics_and_figures(tmp_path):
    args = experiment_parser("demo", "a demo").parse_args(["--seed", "3", "--out", str(tmp_path)])
    with Results(args.out, args, hidden=300) as results:
        results.metrics["accuracy"] = np.float32(0.5)
        results.figure(learning_curves({"step": [0, 1], "train_accuracy": [0, 1], "train_loss": [1, 0]}, "t"), "curves")
        results.figure(image_grid(np.zeros((3, 4, 4)), 1, 3, titles=list("abc"), colorbar=True, symmetric=True), "grid")
        results.weights(nn.Linear(2, 3, rng=np.random.default_rng(0)), "head")
        results.summary("# demo\n")
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["seed"] == 3 and config["hidden"] == 300
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["accuracy"] == 0.5 and "run_seconds" in metrics
    assert tn.load(tmp_path / "head.npz")["weight"].shape == (3, 2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "curves.png", "grid.png", "head.npz",
                                                         "metrics.json", "summary.md"]


def test_results_write_a_memory_report_and_its_totals(tmp_path):
    args = experiment_parser("demo", "a demo").parse_args(["--out", str(tmp_path)])
    x = tn.Tensor(np.ones((4, 3)), requires_grad=True)
    with Results(args.out, args) as results:
        report = results.memory_report("x twice", lambda: (x * x).sum())
    assert (tmp_path / "memory_report.txt").read_text() == f"x twice\n\n{report}\n"
    assert json.loads((tmp_path / "memory_report.json").read_text())["rows"][0]["op"] == "Mul"
    assert json.loads((tmp_path / "metrics.json").read_text())["memory_report"]["saved_bytes"] == 4 * 3 * 8


def test_predict_leaves_no_graph_and_restores_training_mode():
    model = nn.Sequential(nn.Linear(2, 2, rng=np.random.default_rng(0)), nn.Dropout(0.5))
    scores = predict(model, np.ones((3, 2), np.float32))
    assert scores.shape == (3, 2) and model.training
    np.testing.assert_array_equal(scores, predict(model, np.ones((3, 2), np.float32)))  # dropout off in eval


def test_train_takes_given_batches_and_an_evaluation_loss():
    x = np.arange(8, dtype=np.float32).reshape(4, 2)
    y = np.array([0, 1, 0, 1])
    model = nn.Sequential(nn.Linear(2, 2, rng=np.random.default_rng(0)))
    seen = []

    def recording_loss(outputs, labels):
        seen.append(labels.tolist())
        return F.cross_entropy(outputs, labels, reduction="sum")

    curves = train(model, optim.SGD(model.parameters(), lr=0.1), recording_loss, x, y, steps=2, batch_size=3,
                   rng=np.random.default_rng(0), eval_splits={"all": (x, y)}, progress=False,
                   batches=iter([np.array([1, 3]), np.array([0])]), eval_loss_fn=lambda out, labels: out.sum() * 0)
    assert seen == [[1, 1], [0]]
    assert curves["all_loss"] == [0.0, 0.0]


def evaluation_batches(model):
    """A list that gets (images in the batch, bytes tracemalloc traces) at each evaluation-mode forward of model."""
    seen = []

    def hook(module, inputs, output):
        if not module.training:
            seen.append((len(inputs[0]), tracemalloc.get_traced_memory()[0]))

    model.register_forward_hook(hook)
    return seen


def test_train_holds_no_gradient_or_graph_through_its_evaluations():
    """Issue 30: the last step's gradients (seed 004: its fc layer's 139 MB) and graph were held through every
    evaluation and the next step's forward."""
    rng = np.random.default_rng(0)
    model = nn.Sequential(nn.Linear(1000, 1000, rng=rng), nn.ReLU(), nn.Linear(1000, 2, rng=rng))
    x, y = rng.standard_normal((64, 1000), dtype=np.float32), rng.integers(0, 2, 64)
    # Numba's first kernel call in a process loads its registries and compiled kernels for good (~14 MB that
    # tracemalloc counts): a run of a small model first, so that only what train holds is measured, whatever
    # tests this process ran before.
    small = nn.Sequential(nn.Linear(3, 3, rng=rng), nn.ReLU(), nn.Linear(3, 2, rng=rng))
    train(small, optim.SGD(small.parameters(), lr=0.1), F.cross_entropy, x[:4, :3], y[:4], steps=2, batch_size=4,
          rng=rng, eval_splits={"all": (x[:4, :3], y[:4])}, eval_every=1, progress=False)
    seen = evaluation_batches(model)
    tracemalloc.start()
    try:
        train(model, optim.SGD(model.parameters(), lr=0.1), F.cross_entropy, x, y, steps=2, batch_size=64,
              rng=rng, eval_splits={"all": (x, y)}, eval_every=1, progress=False)
    finally:
        tracemalloc.stop()
    (_, before_training), *after_steps = seen
    assert len(after_steps) == 2
    assert max(held for _, held in after_steps) - before_training < model[0].weight.data.nbytes / 4
    assert all(p.grad is None for p in model.parameters())


def test_evaluations_take_the_batch_size_given():
    x, y = np.ones((5, 2), np.float32), np.array([0, 1, 0, 1, 0])
    model = nn.Sequential(nn.Linear(2, 2, rng=np.random.default_rng(0)))
    seen = evaluation_batches(model)
    evaluate(model, F.cross_entropy, {"all": (x, y)}, batch_size=2)
    train(model, optim.SGD(model.parameters(), lr=0.1), F.cross_entropy, x, y, steps=1, batch_size=5,
          rng=np.random.default_rng(0), eval_splits={"all": (x, y)}, progress=False, eval_batch_size=3)
    assert [images for images, _ in seen] == [2, 2, 1, 3, 2, 3, 2]
