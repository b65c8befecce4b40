"""Write pickles opcode by opcode, as an attacker (or Python 2's NumPy) would: tests of tinynet.io use them."""
import pickle
import struct

import numpy as np

NDARRAY_STATE_VERSION = 1
DTYPE_STATE_VERSION = 3


def pickled(*body: bytes) -> bytes:
    """A protocol 2 pickle of the opcodes `body` (which leave one object on the stack)."""
    return pickle.PROTO + b"\x02" + b"".join(body) + pickle.STOP


def global_(module: str, name: str) -> bytes:
    return pickle.GLOBAL + f"{module}\n{name}\n".encode()


def text(value: str) -> bytes:
    data = value.encode()
    return pickle.BINUNICODE + struct.pack("<I", len(data)) + data


def py2_string(data: bytes) -> bytes:
    """A Python 2 str (BINSTRING): read as a latin1 str by Python 3."""
    return pickle.BINSTRING + struct.pack("<i", len(data)) + data


def raw(data: bytes) -> bytes:
    return pickle.BINBYTES + struct.pack("<I", len(data)) + data


def integer(value: int) -> bytes:
    return pickle.BININT + struct.pack("<i", value)


def tuple_(*items: bytes) -> bytes:
    return pickle.MARK + b"".join(items) + pickle.TUPLE


def call(function: bytes, *args: bytes) -> bytes:
    return function + tuple_(*args) + pickle.REDUCE


def dict_(**items: bytes) -> bytes:
    return pickle.MARK + b"".join(text(key) + value for key, value in items.items()) + pickle.DICT


def dtype_state(byte_order="<", subarray=pickle.NONE, names=pickle.NONE, fields=pickle.NONE, elsize=-1, alignment=-1,
                flags=0) -> bytes:
    """The state tuple NumPy's dtype.__setstate__ takes; the defaults are a plain numeric dtype's."""
    return tuple_(integer(DTYPE_STATE_VERSION), text(byte_order), subarray, names, fields, integer(elsize),
                  integer(alignment), integer(flags))


def dtype(code: str, state: bytes = None, string=text) -> bytes:
    """numpy.dtype(code, 0, 1) then BUILD with `state` (a plain little-endian dtype's unless given)."""
    created = call(global_("numpy", "dtype"), string(code), integer(0), integer(1))
    return created + (state or dtype_state()) + pickle.BUILD


def ndarray(shape, dtype_ops: bytes, data_ops: bytes, fortran=pickle.NEWFALSE, core="numpy.core") -> bytes:
    """An ndarray as NumPy pickles it: _reconstruct(ndarray, (0,), b'b'), then BUILD with
    (1, shape, dtype, fortran, data)."""
    empty = call(global_(f"{core}.multiarray", "_reconstruct"), global_("numpy", "ndarray"), tuple_(integer(0)),
                 raw(b"b"))
    state = tuple_(integer(NDARRAY_STATE_VERSION), tuple_(*map(integer, shape)), dtype_ops, fortran, data_ops)
    return empty + state + pickle.BUILD


def py2_ndarray(array: np.ndarray) -> bytes:
    """`array` as Python 2's NumPy pickled it: numpy.core names, int dtype flags, raw data as a Python 2 str."""
    byte_order = "|" if array.dtype.itemsize == 1 else "<"
    code = array.dtype.str[1:]
    dtype_ops = dtype(code, dtype_state(byte_order), string=lambda value: py2_string(value.encode()))
    return ndarray(array.shape, dtype_ops, py2_string(np.ascontiguousarray(array).tobytes()))


def npy_object_header() -> bytes:
    """The .npy header np.save writes before the pickle of a 0-d object array."""
    header = "{'descr': '|O', 'fortran_order': False, 'shape': (), }"
    header += " " * (63 - (10 + len(header)) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode()
