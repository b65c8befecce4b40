"""Weight files: npz round trip, and a restricted unpickler that runs no code."""
import os
import pickle

import numpy as np
import pytest

import tinynet as tn
from tinynet import nn
from conftest import require_data


class RunsAShellCommand:
    def __reduce__(self):
        return (os.system, ("touch PWNED",))


def test_save_load_round_trip(tmp_path):
    model = nn.Linear(3, 2, rng=np.random.default_rng(0))
    tn.save(tmp_path / "w.npz", model)
    loaded = tn.load(tmp_path / "w.npz")
    np.testing.assert_array_equal(loaded["weight"], model.weight.data)
    assert [p.name for p in tmp_path.iterdir()] == ["w.npz"]  # no temp file left behind


@pytest.mark.parametrize("protocol", [0, 2, 5])
def test_malicious_pickle_raises_and_runs_nothing(tmp_path, monkeypatch, protocol):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"W0": np.zeros(2), "payload": RunsAShellCommand()}, protocol=protocol))
    with pytest.raises(tn.UnsafeWeightsError, match="refusing to load (posix|os).system"):
        tn.load_pickle_weights(path)
    assert not (tmp_path / "PWNED").exists()


def test_malicious_object_npy_raises(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil.npy"
    np.save(path, np.array({"conv1": RunsAShellCommand()}, dtype=object), allow_pickle=True)
    with pytest.raises(tn.UnsafeWeightsError):
        tn.load_pickle_weights(path)
    assert not (tmp_path / "PWNED").exists()


def test_pickled_dict_npy_like_bvlc_alexnet_loads(tmp_path):
    weights = {"conv1": [np.ones((11, 11, 3, 96), np.float32), np.zeros(96, np.float32)]}
    np.save(tmp_path / "w.npy", np.array(weights, dtype=object), allow_pickle=True)
    loaded = tn.load_pickle_weights(tmp_path / "w.npy")
    assert loaded["conv1"][0].shape == (11, 11, 3, 96)


def test_garbage_file_gives_a_clear_error(tmp_path):
    (tmp_path / "junk.pkl").write_bytes(b"<html>not found</html>")
    with pytest.raises(tn.UnsafeWeightsError, match="not a readable weights pickle"):
        tn.load_pickle_weights(tmp_path / "junk.pkl")


def test_course_snapshot_loads_through_the_restricted_unpickler():
    weights = tn.load_pickle_weights(require_data("mnist/snapshot50.pkl"))
    assert {k: v.shape for k, v in weights.items()} == {"W0": (784, 300), "b0": (300,), "W1": (300, 10),
                                                         "b1": (10,)}
