"""Part 3 and what it shares with parts 4-6: disjoint splits, preprocessing, a quick run."""
import json

import numpy as np
import pytest

import facescrub
import tinynet as tn
from conftest import require_data
from experiments import part3_mlp
from experiments.common import faces
from experiments.common.training import evaluate
from tinynet import functional as F


def test_splits_share_no_image():
    require_data("facescrub/images")
    dataset = facescrub.load_faces(size=32, color=False)
    hashes = [set(getattr(dataset, name).sha256) for name in faces.SPLITS]
    assert all(hashes)
    assert not (hashes[0] & hashes[1] or hashes[0] & hashes[2] or hashes[1] & hashes[2])


def tiny_dataset(rng, size=4, color=False):
    shape = (size, size, 3) if color else (size, size)
    split = lambda n: facescrub.Split(rng.random((n, *shape), dtype=np.float32), np.arange(n) % 3,
                                      np.array([f"{i:064x}" for i in range(n)]))
    return facescrub.FaceDataset(split(9), split(6), split(6), ["a", "b", "c"], {})


def test_vectors_center_on_the_training_mean_or_map_to_plus_minus_one():
    dataset = tiny_dataset(np.random.default_rng(0))
    centered = faces.vectors(dataset)
    np.testing.assert_allclose(centered["train"][0].mean(axis=0), 0, atol=1e-6)
    np.testing.assert_allclose(centered["test"][0], dataset.test.x.reshape(6, 16) - dataset.train.x.reshape(9, 16)
                               .mean(axis=0), atol=1e-6)
    symmetric = faces.vectors(tiny_dataset(np.random.default_rng(0), color=True), scale="symmetric")
    assert symmetric["val"][0].shape == (6, 48) and -1 <= symmetric["val"][0].min() <= symmetric["val"][0].max() <= 1
    with pytest.raises(ValueError, match="scale"):
        faces.vectors(dataset, scale="other")


def test_l2_loss_adds_the_squared_weights_only():
    rng = np.random.default_rng(0)
    model = faces.make_mlp(4, 3, 2, rng)
    logits, labels = model(tn.Tensor(np.ones((1, 4), np.float32))), np.array([1])
    plain = faces.cross_entropy_l2(model, 0.0)(logits, labels).item()
    penalized = faces.cross_entropy_l2(model, 0.5)(logits, labels).item()
    squares = sum(float(np.sum(layer.weight.data ** 2)) for layer in (model.layers[0], model.layers[2]))
    assert penalized == pytest.approx(plain + 0.5 * squares, rel=1e-5)


def separable_splits():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((60, 8)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    return {"train": (x[:40], y[:40]), "val": (x[40:50], y[40:50]), "test": (x[50:], y[50:])}


def test_fit_learns_a_separable_problem():
    _, curves = faces.fit(separable_splits(), 2, faces.Setting(hidden=8, lr=1e-2, l2=0.0, steps=200, batch_size=20),
                          seed=0)
    assert curves["train_accuracy"][-1] >= 0.95 and curves["train_accuracy"][0] < curves["train_accuracy"][-1]


def test_learning_curves_show_the_cross_entropy_without_the_l2_term():
    splits = separable_splits()
    model, curves = faces.fit(splits, 2, faces.Setting(hidden=8, lr=1e-2, l2=1.0, steps=20, batch_size=20), seed=0)
    assert curves["val_loss"][-1] == pytest.approx(evaluate(model, F.cross_entropy, splits)["val"][0])


def test_quick_run_reports_both_networks(tmp_path):
    require_data("facescrub/images")
    part3_mlp.main(["--quick", "--out", str(tmp_path)])
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert len(metrics["sweep"]) == len(json.loads((tmp_path / "sweep.json").read_text())) == 8
    chosen = max(metrics["sweep"], key=lambda row: row["val_accuracy"])
    assert metrics["val_accuracy"] == chosen["val_accuracy"]
    assert 0 <= metrics["test_accuracy"] <= 1 and metrics["seed002_variant"]["inputs"] == 64 * 64 * 3
    assert {"learning_curves.png", "learning_curves_seed002.png", "summary.md"} <= {p.name for p in tmp_path.iterdir()}
