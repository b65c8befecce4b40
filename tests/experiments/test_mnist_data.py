"""The MNIST loaders: the course files as the data README describes them, and the handout's batches."""
import pickle

import numpy as np
import pytest
import scipy.io

from conftest import require_data
from experiments.common.mnist import (
    MNIST_FILE,
    SNAPSHOT_FILE,
    load_mnist,
    load_snapshot50,
    per_digit_batches,
    unit_scale,
)
from tinynet import UnsafeWeightsError

TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_mnist_all_has_the_documented_digits():
    mnist = load_mnist(path=require_data(MNIST_FILE))
    assert mnist.train_x.shape == (60000, 784) and mnist.test_x.shape == (10000, 784)
    assert mnist.train_x.dtype == np.uint8 and mnist.train_x.max() == 255
    assert mnist.train_x.flags.c_contiguous and mnist.test_x.flags.c_contiguous, "a mini-batch's rows are contiguous"
    assert np.bincount(mnist.train_y).tolist() == TRAIN_COUNTS
    assert np.bincount(mnist.test_y).tolist() == TEST_COUNTS
    assert np.all(np.diff(mnist.train_y) >= 0), "rows are grouped by digit"


def test_snapshot50_holds_the_handout_weights():
    weights = load_snapshot50(require_data(SNAPSHOT_FILE))
    assert {name: value.shape for name, value in weights.items()} == {
        "W0": (784, 300), "b0": (300,), "W1": (300, 10), "b1": (10,)}
    assert all(value.dtype == np.float32 and np.isfinite(value).all() for value in weights.values())
    assert weights["W0"].std() > 0


def fake_mat(path, per_digit=3):
    arrays = {f"{split}{digit}": np.full((per_digit, 784), digit, np.uint8)
              for split in ("train", "test") for digit in range(10)}
    scipy.io.savemat(path, arrays)
    return arrays


def test_load_mnist_keeps_per_digit_rows_and_labels_them(tmp_path):
    fake_mat(tmp_path / "m.mat")
    mnist = load_mnist(per_digit=2, path=tmp_path / "m.mat")
    assert mnist.train_y.tolist() == [d for d in range(10) for _ in range(2)]
    np.testing.assert_array_equal(mnist.test_x[:, 0], mnist.test_y)


def test_load_mnist_names_a_missing_array(tmp_path):
    arrays = fake_mat(tmp_path / "m.mat")
    del arrays["test7"]
    scipy.io.savemat(tmp_path / "m.mat", arrays)
    with pytest.raises(ValueError, match="test7"):
        load_mnist(path=tmp_path / "m.mat")


class RunsCode:
    def __reduce__(self):
        return (print, ("this pickle ran code",))


def test_snapshot50_goes_through_the_restricted_unpickler(tmp_path, capsys):
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"W0": RunsCode()}, protocol=2))
    with pytest.raises(UnsafeWeightsError):
        load_snapshot50(path)
    assert "ran code" not in capsys.readouterr().out


def test_snapshot50_with_a_wrong_shape_is_named(tmp_path):
    path = tmp_path / "small.pkl"
    weights = {"W0": np.zeros((784, 30)), "b0": np.zeros(300), "W1": np.zeros((300, 10)), "b1": np.zeros(10)}
    path.write_bytes(pickle.dumps(weights, protocol=2))
    with pytest.raises(ValueError, match=r"W0 of shape \(784, 300\), got \(784, 30\)"):
        load_snapshot50(path)


def test_unit_scale():
    scaled = unit_scale(np.array([[0, 51, 255]], np.uint8))
    assert scaled.dtype == np.float32
    np.testing.assert_allclose(scaled, [[0, 0.2, 1]])


def test_per_digit_batches_draw_distinct_images_of_every_digit():
    labels = np.repeat(np.arange(10), 7)
    batches = per_digit_batches(labels, 5, np.random.default_rng(0))
    first, second = next(batches), next(batches)
    for batch in (first, second):
        assert labels[batch].tolist() == [d for d in range(10) for _ in range(5)]
        assert len(set(batch.tolist())) == 50
    assert first.tolist() != second.tolist()


def test_per_digit_batches_need_enough_images():
    with pytest.raises(ValueError, match=r"digits \[3\]"):
        next(per_digit_batches(np.array([d for d in range(10) for _ in range(4 if d == 3 else 6)]), 5,
                               np.random.default_rng(0)))
