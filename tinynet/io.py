"""Saving and loading weights without running code from files.

`save`/`load` use .npz with allow_pickle=False. Legacy pickled weight files (the course's
snapshot50.pkl, bvlc_alexnet.npy) go through a restricted unpickler that can rebuild only
NumPy arrays and dtypes: a pickle naming any other callable (os.system, eval, ...) raises
UnsafeWeightsError before anything is called.
"""
import io as _io
import os
import pickle
from pathlib import Path

import numpy as np

from .nn.module import Module


class UnsafeWeightsError(pickle.UnpicklingError):
    """A weights file asked to run code or to build objects other than arrays and containers."""


def save(file, module_or_state):
    """Write a Module's state_dict (or a {name: array} dict) as .npz to `file`: a path or a binary file object.

    To a path it writes in place, like np.savez; to write atomically, pass the file object of an
    atomic writer (the course uses coursedata.files.atomic_write).
    """
    if isinstance(file, (str, os.PathLike)):
        with open(file, "wb") as opened:
            return save(opened, module_or_state)
    state = module_or_state.state_dict() if isinstance(module_or_state, Module) else module_or_state
    np.savez(file, **{name: np.asarray(value) for name, value in state.items()})


def load(path):
    """Read an .npz written by `save` as {name: array}. Never unpickles."""
    with np.load(path, allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files}


_ALLOWED_GLOBALS = {
    (f"numpy.{core}.{module}", name)
    for core in ("core", "_core")
    for module, name in [("multiarray", "_reconstruct"), ("multiarray", "scalar"), ("numeric", "_frombuffer")]
} | {("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")}  # encode: bytes in protocol 0-2


class _ArrayOnlyUnpickler(pickle.Unpickler):
    """An Unpickler that resolves only the globals needed to rebuild NumPy arrays."""

    def find_class(self, module, name):
        if (module, name) not in _ALLOWED_GLOBALS:
            raise UnsafeWeightsError(f"refusing to load {module}.{name}: weight files may contain only "
                                     "NumPy arrays, dicts, lists, tuples, strings and numbers")
        return super().find_class(module, name)


def _check_tree(value, where="file"):
    """Unwrap 0-d object arrays and check that only arrays, containers and scalars remain."""
    if isinstance(value, np.ndarray) and value.dtype == object:
        if value.ndim != 0:
            raise UnsafeWeightsError(f"{where}: object arrays are not weights")
        return _check_tree(value.item(), where)
    if isinstance(value, dict):
        return {key: _check_tree(item, f"{where}[{key!r}]") for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_check_tree(item, f"{where}[{i}]") for i, item in enumerate(value))
    if isinstance(value, (np.ndarray, np.generic, str, bytes, int, float, bool, type(None))):
        return value
    raise UnsafeWeightsError(f"{where}: unexpected {type(value).__name__} in a weights file")


def load_pickle_weights(path):
    """Load a legacy pickled weights file (.pkl, or a .npy holding a pickled object).

    Python 2 pickles are read with latin1 string decoding, as NumPy arrays need. Returns
    the stored dict/list of arrays; raises UnsafeWeightsError for anything else.
    """
    raw = Path(path).read_bytes()
    if raw.startswith(b"\x93NUMPY"):
        stream = _io.BytesIO(raw)
        read_header = {(1, 0): np.lib.format.read_array_header_1_0,
                       (2, 0): np.lib.format.read_array_header_2_0}.get(np.lib.format.read_magic(stream))
        if read_header is None:
            raise UnsafeWeightsError(f"{path}: unsupported .npy format version")
        _, _, dtype = read_header(stream)
        if dtype != object:
            return np.load(_io.BytesIO(raw), allow_pickle=False)
        raw = raw[stream.tell():]
    try:
        value = _ArrayOnlyUnpickler(_io.BytesIO(raw), encoding="latin1").load()
    except UnsafeWeightsError:
        raise
    except Exception as error:
        raise UnsafeWeightsError(f"{path} is not a readable weights pickle: {error}") from error
    return _check_tree(value)
