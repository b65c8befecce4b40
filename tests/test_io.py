"""Weight files: npz round trip, legacy pickles loaded as NumPy pickled them, limits.

Hostile files are in test_io_hostile.py."""
import hashlib
import pickle

import numpy as np
import pytest

import tinynet as tn
from conftest import require_data
from pickle_ops import dict_, dtype, dtype_state, ndarray, npy_object_header, pickled, py2_ndarray
from tinynet import nn


def test_save_load_round_trip(tmp_path):
    model = nn.Linear(3, 2, rng=np.random.default_rng(0))
    tn.save(tmp_path / "w.npz", model)
    loaded = tn.load(tmp_path / "w.npz")
    np.testing.assert_array_equal(loaded["weight"], model.weight.data)
    assert [p.name for p in tmp_path.iterdir()] == ["w.npz"]  # no temp file left behind


SNAPSHOT_SHA256 = {"W0": "42f6c221700a19fb", "W1": "b39db5f4ad83d5d3",
                   "b0": "ae90f1e9c203e9d0", "b1": "04b9fe95cfa31b1e"}


def test_course_snapshot_arrays_are_the_ones_numpy_unpickles():
    """The first 16 hex digits of each array's SHA-256, as NumPy's own unpickler gave them before this loader."""
    weights = tn.load_pickle_weights(require_data("mnist/snapshot50.pkl"))
    assert {k: v.shape for k, v in weights.items()} == {"W0": (784, 300), "b0": (300,), "W1": (300, 10), "b1": (10,)}
    assert all(value.dtype == np.float32 and value.flags.writeable for value in weights.values())
    digests = {name: hashlib.sha256(value.tobytes()).hexdigest()[:16] for name, value in weights.items()}
    assert digests == SNAPSHOT_SHA256


TREE = {"W": np.arange(6, dtype=np.float32).reshape(2, 3), "fortran": np.asfortranarray(np.ones((2, 3), np.int16)),
        "big_endian": np.arange(4, dtype=">i4"), "empty": np.zeros((0, 3)), "mask": np.array([True, False]),
        "counts": np.arange(3, dtype=np.uint64), "half": np.ones(3, np.float16), "scalar": np.float32(1.5),
        "layers": [np.ones(2), (np.zeros(1), "relu")], "step": 3, "rate": 0.5, "note": None, "tag": b"v1"}


def assert_same_tree(loaded, expected):
    """Same containers, values, and arrays (values, dtype up to byte order, shape, memory order)."""
    assert type(loaded) is type(expected)
    if isinstance(expected, dict):
        assert loaded.keys() == expected.keys()
        for key in expected:
            assert_same_tree(loaded[key], expected[key])
    elif isinstance(expected, (list, tuple)):
        assert len(loaded) == len(expected)
        for item, expected_item in zip(loaded, expected):
            assert_same_tree(item, expected_item)
    elif isinstance(expected, (np.ndarray, np.generic)):
        assert loaded.dtype == expected.dtype.newbyteorder("=") and loaded.shape == expected.shape
        np.testing.assert_array_equal(loaded, expected)
        if isinstance(expected, np.ndarray):
            assert loaded.flags.f_contiguous == expected.flags.f_contiguous and loaded.flags.writeable
    else:
        assert loaded == expected


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_pickled_trees_load_as_numpy_pickled_them(tmp_path, protocol):
    tree = {**TREE, "tied": TREE["W"]}
    (tmp_path / "w.pkl").write_bytes(pickle.dumps(tree, protocol=protocol))
    loaded = tn.load_pickle_weights(tmp_path / "w.pkl")
    assert_same_tree(loaded, tree)
    assert loaded["tied"] is loaded["W"], "a shared array is built once"


def test_python2_pickles_load(tmp_path):
    """As Python 2's NumPy wrote them: numpy.core names, int dtype flags, raw data in Python 2 str."""
    arrays = {"W0": np.arange(12, dtype=np.float32).reshape(3, 4), "labels": np.arange(3, dtype=np.uint8)}
    (tmp_path / "w.pkl").write_bytes(pickled(dict_(**{name: py2_ndarray(a) for name, a in arrays.items()})))
    assert_same_tree(tn.load_pickle_weights(tmp_path / "w.pkl"), arrays)


def test_python2_object_npy_like_bvlc_alexnet_loads(tmp_path):
    conv1 = [np.ones((11, 11, 3, 96), np.float32), np.arange(96, dtype=np.float32)]
    layers = dict_(conv1=pickle.MARK + b"".join(map(py2_ndarray, conv1)) + pickle.LIST)
    object_array = ndarray((), dtype("O8", dtype_state("|", flags=63)), pickle.MARK + layers + pickle.LIST)
    (tmp_path / "bvlc.npy").write_bytes(npy_object_header() + pickled(object_array))
    assert_same_tree(tn.load_pickle_weights(tmp_path / "bvlc.npy"), {"conv1": conv1})


def test_plain_npy_loads_through_load_pickle_weights(tmp_path):
    np.save(tmp_path / "w.npy", np.arange(5.0))
    np.testing.assert_array_equal(tn.load_pickle_weights(tmp_path / "w.npy"), np.arange(5.0))


def test_load_names_what_to_use_for_a_plain_npy(tmp_path):
    np.save(tmp_path / "w.npy", np.arange(5.0))
    with pytest.raises(tn.UnsafeWeightsError, match=r"w.npy: this is a .npy file \(one unnamed array\)"):
        tn.load(tmp_path / "w.npy")


def test_limits_are_raised_by_keyword_or_module_constant(tmp_path, monkeypatch):
    model = nn.Linear(30, 20, rng=np.random.default_rng(0))
    tn.save(tmp_path / "w.npz", model)
    (tmp_path / "w.pkl").write_bytes(pickle.dumps(model.state_dict()))
    monkeypatch.setattr(tn.io, "MAX_BYTES", 1000)
    for load, path in [(tn.load, tmp_path / "w.npz"), (tn.load_pickle_weights, tmp_path / "w.pkl")]:
        with pytest.raises(tn.UnsafeWeightsError, match=r"more than max_bytes=1,000; if you trust the file, pass "
                                                        r"max_bytes= or set tinynet.io.MAX_BYTES"):
            load(path)
        np.testing.assert_array_equal(load(path, max_bytes=10_000)["weight"], model.weight.data)
    monkeypatch.setattr(tn.io, "MAX_ENTRIES", 1)
    with pytest.raises(tn.UnsafeWeightsError, match="more than max_entries=1;"):
        tn.load(tmp_path / "w.npz", max_bytes=10_000)
    assert tn.load(tmp_path / "w.npz", max_bytes=10_000, max_entries=2).keys() == {"weight", "bias"}


def test_limits_must_be_ints(tmp_path):
    with pytest.raises(ValueError, match="max_bytes must be an int >= 0 .*, got '1GB'"):
        tn.load(tmp_path / "w.npz", max_bytes="1GB")


def test_unsafe_weights_error_is_a_value_error_and_an_unpickling_error():
    assert issubclass(tn.UnsafeWeightsError, ValueError) and issubclass(tn.UnsafeWeightsError, pickle.UnpicklingError)


def test_save_refuses_what_load_would_refuse(tmp_path):
    with pytest.raises(ValueError, match="name: cannot save an array of dtype <U3"):
        tn.save(tmp_path / "w.npz", {"name": np.array("abc")})
    assert list(tmp_path.iterdir()) == []
