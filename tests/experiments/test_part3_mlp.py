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

    def split(n):
        return facescrub.Split(rng.random((n, *shape), dtype=np.float32), np.arange(n) % 3,
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


def test_standardized_faces_ignore_brightness_and_contrast():
    rng = np.random.default_rng(0)
    x = rng.random((5, 16))
    standardized = faces.standardized_faces(x)
    np.testing.assert_allclose(standardized.mean(axis=1), 0, atol=1e-12)
    np.testing.assert_allclose(standardized.std(axis=1), 1, rtol=1e-12)
    np.testing.assert_allclose(faces.standardized_faces(0.3 * x + 0.5), standardized, atol=1e-12)
    np.testing.assert_array_equal(faces.standardized_faces(np.full((1, 16), 0.7)), np.zeros((1, 16)))


def test_vectors_standardize_each_face_then_center_on_the_training_mean():
    dataset = tiny_dataset(np.random.default_rng(0))
    standardized = {name: faces.standardized_faces(getattr(dataset, name).x.reshape(-1, 16)) for name in faces.SPLITS}
    vectors = faces.vectors(dataset, scale="standardize")
    np.testing.assert_allclose(vectors["val"][0], standardized["val"] - standardized["train"].mean(axis=0), atol=1e-5)
    assert vectors["val"][0].dtype == np.float32


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


def assert_folds_partition_by_photo(folds, sha256):
    rows = np.concatenate(folds)
    np.testing.assert_array_equal(np.sort(rows), np.arange(len(sha256)))
    fold_of_photo = {}
    for fold, held_out in enumerate(folds):
        for photo in sha256[held_out]:
            first = fold_of_photo.setdefault(photo, fold)
            assert first == fold, f"photo {photo} is in folds {first} and {fold}"


def test_folds_keep_each_photo_together_and_deal_each_actor_evenly():
    rng = np.random.default_rng(0)
    photo = rng.integers(0, 40, size=120)
    sha256, y = np.array([f"{p:064x}" for p in photo]), photo % 4
    folds = part3_mlp.sha256_folds(sha256, y, 5, np.random.default_rng(1))
    assert_folds_partition_by_photo(folds, sha256)
    for actor in range(4):
        photos_per_fold = [len(set(sha256[held_out][y[held_out] == actor])) for held_out in folds]
        assert max(photos_per_fold) - min(photos_per_fold) <= 1
    with pytest.raises(ValueError, match="distinct photos"):
        part3_mlp.sha256_folds(sha256[:3], y[:3], 5, rng)


def test_fold_splits_center_on_the_training_folds_and_mirror_them_only():
    x = np.random.default_rng(0).random((6, part3_mlp.SIZE ** 2), dtype=np.float32)
    y, held_out = np.arange(6), np.array([1, 4])
    splits = part3_mlp.fold_splits(x, y, held_out)
    training = np.array([0, 2, 3, 5])
    mean = x[training].mean(axis=0)
    np.testing.assert_allclose(splits["val"][0], x[held_out] - mean, atol=1e-6)
    np.testing.assert_array_equal(splits["train"][1], np.concatenate([y[training], y[training]]))
    mirrored = (x[training] - mean).reshape(4, part3_mlp.SIZE, part3_mlp.SIZE)[:, :, ::-1].reshape(4, -1)
    np.testing.assert_allclose(splits["train"][0][4:], mirrored, atol=1e-6)
    unmirrored = part3_mlp.fold_splits(x, y, held_out, mirror=False)
    np.testing.assert_allclose(unmirrored["train"][0], x[training] - mean, atol=1e-6)


def test_quick_run_reports_both_networks(tmp_path):
    require_data("facescrub/images")
    part3_mlp.main(["--quick", "--out", str(tmp_path)])
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    rows = json.loads((tmp_path / "sweep.json").read_text())
    assert rows == metrics["sweep"] and len(rows) == 8
    assert all(len(row["fold_accuracies"]) == part3_mlp.FOLDS for row in rows)
    best = max(row["cv_accuracy"] for row in rows)
    chosen = [row for row in rows if (row["hidden"], row["lr"], row["l2"]) ==
              tuple(metrics["setting"][key] for key in ("hidden", "lr", "l2"))]
    assert chosen[0]["cv_accuracy"] == best
    assert metrics["selection"]["pooled_images"] == metrics["split_sizes"]["train"] + metrics["split_sizes"]["val"]
    assert sum(metrics["selection"]["fold_sizes"]) == metrics["selection"]["pooled_images"]
    assert 0 <= metrics["test_accuracy"] <= 1 and metrics["seed002_variant"]["inputs"] == 64 * 64 * 3
    seeds = metrics["over_training_seeds"]
    assert len(seeds["seeds"]) == len(seeds["test_accuracy"]) == part3_mlp.TRAINING_SEEDS
    assert seeds["test_accuracy"][0] == metrics["test_accuracy"]
    assert set(metrics["cross_validated_ablations"]) == {"without_standardized_faces", "without_mirrored_faces"}
    assert {"learning_curves.png", "learning_curves_seed002.png", "summary.md", "health.png"} <= {
        p.name for p in tmp_path.iterdir()}
    assert metrics["health"]["steps"] == list(range(part3_mlp.QUICK_STEPS)) and metrics["health"]["classes"] == 6


def test_folds_of_the_real_training_and_validation_images_keep_each_photo_together():
    require_data("facescrub/images")
    pool = part3_mlp.pooled(facescrub.load_faces(size=32, color=False))
    folds = part3_mlp.sha256_folds(pool.sha256, pool.y, part3_mlp.FOLDS, np.random.default_rng(0))
    assert_folds_partition_by_photo(folds, pool.sha256)
