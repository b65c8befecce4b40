"""Saving and loading weights without running code from files, within size limits.

`save`/`load` use .npz archives of plain numeric arrays and never unpickle. Legacy pickled
weight files (the course's snapshot50.pkl, bvlc_alexnet.npy) go through a restricted
unpickler that builds nothing itself: the few NumPy names it allows resolve to stand-ins that
only record their arguments, and every array is then made in one place (`_array_from`) from a
checked (shape, dtype, raw bytes) triple. A pickle naming any other callable (os.system,
eval, ...) is refused before anything is called.

Limits, checked from headers before anything large is read or decompressed:
- MAX_BYTES: the most bytes a file may hold on disk, and the most array data it may expand to.
- MAX_ENTRIES: the most npz members, pickle opcodes, or entries of a pickled tree (arrays,
  containers, strings and numbers, a shared one counted at every place it is used).
- MAX_DEPTH: the deepest nesting of containers in a pickled tree.
Raise MAX_BYTES and MAX_ENTRIES for one call with the `max_bytes=` / `max_entries=` keywords of
`load` and `load_pickle_weights`, or for the whole process by setting `tinynet.io.MAX_BYTES` /
`tinynet.io.MAX_ENTRIES`.

Every refusal raises UnsafeWeightsError, whose message names the file and the reason. A file
that cannot be opened raises the usual OSError (FileNotFoundError, ...).
"""
import math
import mmap
import os
import pickle
import pickletools
import re
import struct
import zipfile
from contextlib import contextmanager

import numpy as np

from .nn.module import Module

MAX_BYTES = 2**30
MAX_ENTRIES = 100_000
MAX_DEPTH = 100
MAX_DIMS = 32


class UnsafeWeightsError(pickle.UnpicklingError, ValueError):
    """A weights file was refused: it asked to run code, held something other than numeric arrays
    in dicts/lists/tuples, was damaged, or exceeded the size limits. The message names the file."""


class _Refused(Exception):
    """Why a file is refused, raised inside the readers; the public functions add the file's name."""


def save(file, module_or_state):
    """Write a Module's state_dict (or a {name: array} dict) as .npz to `file`: a path or a binary file object.

    To a path it writes in place, like np.savez; to write atomically, pass the file object of an
    atomic writer (the course uses coursedata.files.atomic_write). Only plain numeric (bool, int,
    uint, float) arrays can be saved: `load` reads nothing else.
    """
    state = module_or_state.state_dict() if isinstance(module_or_state, Module) else module_or_state
    arrays = {name: np.asarray(value) for name, value in state.items()}
    for name, array in arrays.items():
        if not _is_plain_numeric(array.dtype):
            raise ValueError(f"{name}: cannot save an array of dtype {array.dtype}; weights must be bool, int, "
                             "uint or float arrays")
    if isinstance(file, (str, os.PathLike)):
        with open(file, "wb") as opened:
            np.savez(opened, **arrays)
    else:
        np.savez(file, **arrays)


def load(path, *, max_bytes=None, max_entries=None):
    """Read an .npz written by `save` (or np.savez) as {name: array}. Never unpickles.

    Only plain bool/int/uint/float arrays are read. Before any member is decompressed, the
    archive must have at most `max_entries` members (default MAX_ENTRIES) whose headers promise
    at most `max_bytes` bytes in all (default MAX_BYTES); each .npy header must promise exactly
    its member's size. Raises UnsafeWeightsError naming the file and the reason otherwise,
    including for a plain .npy or a pickle (read those with np.load / load_pickle_weights).
    """
    limits = _Limits(max_bytes, max_entries)
    with open(path, "rb") as file, _refusals_naming(path, "weights .npz"):
        limits.check("max_bytes", "the file's size in bytes", os.fstat(file.fileno()).st_size)
        start = file.read(6)
        if not start.startswith(b"PK"):
            raise _Refused(_not_npz_reason(start))
        limits.check("max_entries", "the number of members its zip directory can hold", _zip_member_bound(file))
        with zipfile.ZipFile(file) as archive:
            return _read_npz(archive, limits)


def load_pickle_weights(path, *, max_bytes=None, max_entries=None):
    """Load a legacy pickled weights file (.pkl, or a .npy holding a pickled object or one array).

    Returns the stored tree: dicts with str keys, lists and tuples of plain numeric arrays,
    NumPy scalars, strings and numbers. Python 2 pickles are read with latin1 string decoding,
    as NumPy arrays need. Limits: the file is at most `max_bytes` bytes (default MAX_BYTES) and
    `max_entries` pickle opcodes (default MAX_ENTRIES); the tree, expanded, has at most
    `max_entries` entries and `max_bytes` of array data, and is nested at most MAX_DEPTH deep.
    Raises UnsafeWeightsError, naming the file and the reason, for anything else.
    """
    limits = _Limits(max_bytes, max_entries)
    with open(path, "rb") as file, _refusals_naming(path, "weights pickle"):
        size = os.fstat(file.fileno()).st_size
        limits.check("max_bytes", "the file's size in bytes", size)
        if size == 0:
            raise _Refused("the file is empty")
        if file.read(6) != b"\x93NUMPY":
            file.seek(0)
            return _checked_tree(_unpickle(file, limits), limits)
        file.seek(0)
        shape, _, dtype = _read_npy_header(file, "its .npy header")
        if dtype != np.dtype(object):
            file.seek(0)
            return _read_npy(file, size, "its array")
        if shape != ():
            raise _Refused(f"object arrays of shape {shape} are not weights (only a 0-d one holding a dict is)")
        return _checked_tree(_object_array_item(_unpickle(file, limits)), limits)


@contextmanager
def _refusals_naming(path, kind):
    """Turn every failure while reading the open file `path` into one UnsafeWeightsError naming it."""
    try:
        yield
    except _Refused as refusal:
        raise UnsafeWeightsError(f"{path}: {refusal}") from None
    except MemoryError:
        raise
    except Exception as error:
        raise UnsafeWeightsError(f"{path} is not a readable {kind}: {type(error).__name__}: {error}") from error


class _Limits:
    """The size limits of one read: max_bytes and max_entries, the module's constants unless given."""

    def __init__(self, max_bytes, max_entries):
        self.max_bytes = MAX_BYTES if max_bytes is None else max_bytes
        self.max_entries = MAX_ENTRIES if max_entries is None else max_entries
        for name, limit in vars(self).items():
            if not isinstance(limit, int) or limit < 0:
                raise ValueError(f"{name} must be an int >= 0 (or None for tinynet.io.{name.upper()}), got {limit!r}")

    def check(self, name, what, size):
        """Refuse if `size` (of `what`) exceeds the limit called `name`: 'max_bytes' or 'max_entries'."""
        limit = getattr(self, name)
        if size > limit:
            raise _Refused(f"{what} is {size:,}, more than {name}={limit:,}; if you trust the file, pass "
                           f"{name}= or set tinynet.io.{name.upper()} to allow more")


def _is_plain_numeric(dtype):
    """True for bool, int, uint and float dtypes: not object, structured, string, complex or dates."""
    return dtype.kind in "biuf"


def _describe(value):
    """A short description of a value read from a file, safe to put in a message (no deep or huge repr)."""
    if isinstance(value, (str, bytes)):
        return repr(value[:40]) + ("..." if len(value) > 40 else "")
    if isinstance(value, (bool, float, type(None))) or isinstance(value, int) and abs(value) < 2**64:
        return repr(value)
    return getattr(value, "what", f"a {type(value).__name__}")


# .npz and .npy

def _not_npz_reason(start):
    """Why a file starting with the bytes `start` is not an .npz archive, and what to use instead."""
    if start == b"\x93NUMPY":
        return ("this is a .npy file (one unnamed array), not an .npz of named weights: read it with "
                "np.load(path), or with tinynet.load_pickle_weights if it holds a pickled dict like bvlc_alexnet.npy")
    if start[:1] in (b"\x80", b"(", b"}", b"]"):
        return "this is a pickle, not an .npz: read legacy pickled weights with tinynet.load_pickle_weights"
    return "this is not an .npz archive (it does not start like a zip file)"


def _zip_member_bound(file):
    """The most members zipfile could find in the zip `file`, read from its end records as zipfile
    reads them, before zipfile reads the directory: it parses the whole central directory (whose
    size the records give) into entries of at least 46 bytes each, whatever count they claim.
    """
    end = file.seek(0, os.SEEK_END)
    file.seek(max(0, end - 0xFFFF - 22 - 76))  # end record (22 bytes), comment (< 64 KiB), ZIP64 records before
    tail = file.read()
    file.seek(0)
    at = len(tail) - 22 if tail[-22:-18] == b"PK\x05\x06" and tail[-2:] == b"\0\0" else tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) - at < 22:
        raise _Refused("this is not a zip archive: it has no end-of-central-directory record")
    members, directory_size = struct.unpack_from("<HI", tail, at + 10)
    if at >= 76 and tail[at - 20:at - 16] == b"PK\x06\x07" and tail[at - 76:at - 72] == b"PK\x06\x06":
        members, directory_size = struct.unpack_from("<QQ", tail, at - 76 + 32)  # ZIP64 total entries, directory size
    return max(members, directory_size // 46)


def _read_npz(archive, limits):
    """{name: array} from the members of an open npz archive, with sizes checked before decompressing."""
    members = archive.infolist()
    names = [info.filename for info in members]
    strange = [name for name in names if not name.endswith(".npy")]
    if strange:
        raise _Refused(f"member {_describe(strange[0])} is not an .npy array; only archives written by "
                       "tinynet.save or np.savez are read")
    if len(set(names)) != len(names):
        raise _Refused("the archive has two members with the same name")
    limits.check("max_bytes", "the members' total size in bytes", sum(info.file_size for info in members))
    arrays = {}
    for info in members:
        with archive.open(info) as member:
            arrays[info.filename[:-4]] = _read_npy(member, info.file_size, f"member {_describe(info.filename)}")
    return arrays


def _read_npy_header(file, where):
    """(shape, fortran_order, dtype) from the .npy header at the start of the file (format 1.0 or 2.0)."""
    version = np.lib.format.read_magic(file)
    read_header = {(1, 0): np.lib.format.read_array_header_1_0,
                   (2, 0): np.lib.format.read_array_header_2_0}.get(version)
    if read_header is None:
        raise _Refused(f"{where}: .npy format version {version} is not supported (1.0 and 2.0 are)")
    return read_header(file)


def _read_npy(file, size, where):
    """The array of an .npy stream of `size` bytes (a file or an npz member), read after its header is
    checked: a plain numeric dtype, and exactly `size` bytes of header and data."""
    shape, _, dtype = _read_npy_header(file, where)
    if not _is_plain_numeric(dtype):
        raise _Refused(f"{where}: dtype {dtype} is not a plain bool/int/uint/float dtype")
    if any(n < 0 for n in shape):
        raise _Refused(f"{where}: shape {shape} has a negative size")
    data_size = math.prod(shape) * dtype.itemsize
    if file.tell() + data_size != size:
        raise _Refused(f"{where}: its header promises {data_size:,} bytes of data (shape {shape}, dtype {dtype}) "
                       f"but it holds {size - file.tell():,}")
    file.seek(0)
    return np.lib.format.read_array(file, allow_pickle=False)


# Pickles: what the course's legacy files contain (pickletools.dis of snapshot50.pkl and NumPy's
# pickles of arrays, protocols 0-5) is dicts, lists, tuples, strings, bytes, numbers, None and
# bools, and arrays as GLOBAL/STACK_GLOBAL + REDUCE + BUILD of a few NumPy names. Only those
# opcodes are allowed; not INST/OBJ/NEWOBJ (build any class), EXT (registry), PERSID, buffers, sets.
_ALLOWED_OPCODES = {op.code.encode("latin1"): op for op in pickletools.opcodes if op.name in {
    "MARK", "STOP", "POP", "POP_MARK", "PROTO", "FRAME", "NONE", "NEWTRUE", "NEWFALSE",
    "INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1", "LONG4", "FLOAT", "BINFLOAT",
    "STRING", "BINSTRING", "SHORT_BINSTRING", "BINBYTES", "SHORT_BINBYTES", "BINBYTES8", "BYTEARRAY8",
    "UNICODE", "SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8",
    "EMPTY_LIST", "APPEND", "APPENDS", "LIST", "EMPTY_TUPLE", "TUPLE", "TUPLE1", "TUPLE2", "TUPLE3",
    "EMPTY_DICT", "DICT", "SETITEM", "SETITEMS",
    "GET", "BINGET", "LONG_BINGET", "PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE",
    "GLOBAL", "STACK_GLOBAL", "REDUCE", "BUILD"}}
_OPCODE_NAMES = {op.code.encode("latin1"): op.name for op in pickletools.opcodes}
_LENGTH_PREFIXES = {pickletools.TAKEN_FROM_ARGUMENT1: "<B", pickletools.TAKEN_FROM_ARGUMENT4: "<i",
                    pickletools.TAKEN_FROM_ARGUMENT4U: "<I", pickletools.TAKEN_FROM_ARGUMENT8U: "<Q"}


def _scan_opcodes(data, position, limits):
    """Check, without unpickling, that `data` (bytes or mmap) holds from `position` one whole pickle made
    only of allowed opcodes, at most max_entries of them (so unpickling makes at most that many objects)."""
    count = 0
    while True:
        code = data[position:position + 1]
        if not code:
            raise _Refused("the pickle is truncated: it ends before its STOP opcode")
        if code not in _OPCODE_NAMES:
            raise _Refused(f"this is not a readable weights pickle: byte {position} is {code}, not a pickle opcode")
        op = _ALLOWED_OPCODES.get(code)
        if op is None:
            raise _Refused(f"opcode {_OPCODE_NAMES[code]} at byte {position} is not used by weight files")
        count += 1
        limits.check("max_entries", "the number of pickle opcodes", count)
        start = position + 1
        position = _argument_end(op, data, start)
        if position > len(data):
            raise _Refused(f"the pickle is truncated inside its {op.name} opcode at byte {start - 1}")
        if op.name in ("PUT", "LONG_BINPUT") and _memo_index(op.name, data[start:position]) > count:
            # the unpickler grows its memo table to twice the index: one opcode could claim gigabytes
            raise _Refused(f"the pickle's {op.name} opcode at byte {start - 1} stores to a memo slot beyond the "
                           f"{count} opcodes before it")
        if op.name == "FRAME" and struct.unpack_from("<Q", data, start)[0] > len(data) - position:
            raise _Refused(f"the pickle's FRAME opcode at byte {start - 1} claims more bytes than the file holds")
        if op.name == "STOP":
            return


def _argument_end(op, data, start):
    """Where the argument of the opcode `op`, starting at `start`, ends: past len(data) if the data is cut."""
    width = op.arg.n if op.arg else 0
    if width >= 0:
        return start + width
    if width == pickletools.UP_TO_NEWLINE:
        end = start
        for _ in range(2 if op.name == "GLOBAL" else 1):  # GLOBAL's argument is two lines: module, name
            end = data.find(b"\n", end) + 1 or len(data) + 1
        return end
    prefix = _LENGTH_PREFIXES[width]
    if start + struct.calcsize(prefix) > len(data):
        return len(data) + 1
    (length,) = struct.unpack_from(prefix, data, start)
    if length < 0:
        raise _Refused(f"the pickle's {op.name} opcode at byte {start - 1} has a negative length")
    return start + struct.calcsize(prefix) + length


def _memo_index(op_name, argument):
    """The memo slot the argument of a PUT (a decimal line) or a LONG_BINPUT (4-byte unsigned) names."""
    if op_name == "LONG_BINPUT":
        return struct.unpack("<I", argument)[0]
    return int(argument) if len(argument) <= 20 else math.inf


class _StandIn:
    """What the unpickler gets for an allowed NumPy name: a callable that records, and cannot be BUILT."""

    __slots__ = ("what", "record")

    def __init__(self, name, record=None):
        self.what, self.record = f"the name {name}", record

    def __call__(self, *args):
        if self.record is None:
            raise _Refused(f"{self.what} cannot be called")
        return self.record(*args)

    def __setstate__(self, state):
        raise _Refused(f"{self.what} cannot be given a state")


class _DtypeRecord:
    """A pickled numpy.dtype: the arguments of numpy.dtype(code, align, copy) and the state BUILD gives it."""

    __slots__ = ("args", "state")
    what = "a bare numpy.dtype"

    def __init__(self, *args):
        self.args, self.state = args, None

    def __setstate__(self, state):
        if self.state is not None:
            raise _Refused("a dtype is given its state twice")
        self.state = state


class _ArrayRecord:
    """A pickled ndarray or NumPy scalar: state is (version, shape, dtype record, is_fortran, raw data),
    what ndarray.__setstate__ would take; `_array_from` builds the array after checking it."""

    __slots__ = ("state", "is_scalar")
    what = "an array"

    def __init__(self, state=None, is_scalar=False):
        self.state, self.is_scalar = state, is_scalar

    def __setstate__(self, state):
        if self.state is not None:
            raise _Refused("an array is given its state twice")
        self.state = state


_NDARRAY = _StandIn("numpy.ndarray")


def _reconstruct(subtype, shape, typecode):
    """numpy's _reconstruct(ndarray, (0,), b'b'): an empty array that BUILD then fills; no subclasses."""
    if subtype is not _NDARRAY:
        raise _Refused(f"_reconstruct can rebuild only numpy.ndarray, not {_describe(subtype)}")
    return _ArrayRecord()


def _frombuffer(buffer, dtype, shape, order):
    """numpy's _frombuffer(data, dtype, shape, order), how protocol 5 pickles arrays."""
    if order not in ("C", "F"):
        raise _Refused(f"_frombuffer's order must be 'C' or 'F', not {_describe(order)}")
    return _ArrayRecord((1, shape, dtype, order == "F", buffer))


def _scalar(dtype, data):
    """numpy's scalar(dtype, raw bytes): a NumPy scalar such as np.float32(1.5)."""
    return _ArrayRecord((1, (), dtype, False, data), is_scalar=True)


def _latin1_bytes(text, encoding):
    """_codecs.encode(text, 'latin1'): how protocol 2 pickles store bytes (an array's raw data)."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise _Refused("_codecs.encode is allowed only to turn a str into latin1 bytes")
    return text.encode("latin1")


def _empty_bytes():
    """bytes(): how protocols 0-2 pickle b'' (an empty array's raw data)."""
    return b""


_STAND_INS = {("numpy", "ndarray"): _NDARRAY, ("numpy", "dtype"): _StandIn("numpy.dtype", _DtypeRecord),
              ("_codecs", "encode"): _StandIn("_codecs.encode", _latin1_bytes)}
for _builtins in ("builtins", "__builtin__"):  # Python 3 and 2 names
    _STAND_INS[_builtins, "bytes"] = _StandIn("bytes", _empty_bytes)
for _core in ("core", "_core"):  # NumPy 1 and 2 names
    _STAND_INS[f"numpy.{_core}.multiarray", "_reconstruct"] = _StandIn("_reconstruct", _reconstruct)
    _STAND_INS[f"numpy.{_core}.multiarray", "scalar"] = _StandIn("scalar", _scalar)
    _STAND_INS[f"numpy.{_core}.numeric", "_frombuffer"] = _StandIn("_frombuffer", _frombuffer)


class _RecordingUnpickler(pickle.Unpickler):
    """An Unpickler whose only globals are the stand-ins above: it records arrays, never builds them."""

    def find_class(self, module, name):
        stand_in = _STAND_INS.get((module, name))
        if stand_in is None:
            raise _Refused(f"refusing to load {module[:100]}.{name[:100]}: weight files may contain only "
                           "NumPy arrays, dicts, lists, tuples, strings and numbers")
        return stand_in


def _unpickle(file, limits):
    """The tree the pickle at the file's position describes, arrays still as _ArrayRecords; opcodes checked first.

    The file is mapped, not read, so that its bytes are not held in memory beside what they unpickle to.
    """
    start = file.tell()
    with mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as data:
        _scan_opcodes(data, start, limits)
    file.seek(start)
    return _RecordingUnpickler(file, encoding="latin1").load()


_DTYPE_CODE = re.compile(r"[biuf][1-9][0-9]?")


def _dtype_from(record, where, allow_object=False):
    """The np.dtype a pickled numpy.dtype(code, align, copy) describes, if it is plain bool/int/uint/float
    (or object, if allowed) and its state is exactly the one NumPy writes for it, but for the byte order."""
    args = record.args if isinstance(record, _DtypeRecord) else ()
    code = args[0] if args else None
    if not (isinstance(code, str) and (_DTYPE_CODE.fullmatch(code) or allow_object and code == "O8")
            and len(args) <= 3 and all(flag in (0, 1) for flag in args[1:])):  # Python 2 wrote ints
        raise _Refused(f"{where}: the dtype {_describe(code)} is not a plain bool/int/uint/float dtype")
    state = record.state
    is_state = isinstance(state, tuple) and len(state) == 8
    byte_order = state[1] if is_state and state[1] in ("<", ">") else ""
    try:
        dtype = np.dtype(byte_order + code)
    except TypeError:
        raise _Refused(f"{where}: the dtype {code!r} is not a plain bool/int/uint/float dtype") from None
    if state is not None and not (is_state and state[0] == 3 and state[1] in ("<", ">", "|", "=")
                                  and state[2:] == (None, None, None, -1, -1, dtype.flags)):
        raise _Refused(f"{where}: the dtype {code!r} has a state NumPy does not write (forged fields, sizes or flags)")
    return dtype


def _array_from(record, where):
    """The ndarray (or NumPy scalar) an _ArrayRecord describes: the one place arrays are made.

    Checked first: a plain numeric dtype, a shape of at most MAX_DIMS non-negative ints, a bool
    Fortran flag, and raw bytes (bytes, or latin1 str from Python 2) exactly shape * itemsize long.
    The array owns a copy of those bytes (writable, sharing nothing with the file), in native byte order.
    """
    state = record.state
    if not (isinstance(state, tuple) and len(state) == 5 and state[0] == 1):
        raise _Refused(f"{where}: an array's state must be (1, shape, dtype, is_fortran, data)")
    _, shape, dtype, is_fortran, data = state
    if not (isinstance(shape, tuple) and len(shape) <= MAX_DIMS and all(type(n) is int and n >= 0 for n in shape)):
        raise _Refused(f"{where}: an array's shape must be a tuple of at most {MAX_DIMS} sizes >= 0")
    dtype = _dtype_from(dtype, where)
    if not isinstance(is_fortran, bool):
        raise _Refused(f"{where}: an array's Fortran-order flag must be a bool")
    if isinstance(data, str):
        try:
            data = data.encode("latin1")
        except UnicodeEncodeError:
            raise _Refused(f"{where}: an array's raw data is text that is not latin1 bytes") from None
    if not isinstance(data, (bytes, bytearray)):
        raise _Refused(f"{where}: an array's raw data must be bytes, not {_describe(data)}")
    size = math.prod(shape) * dtype.itemsize
    if size != len(data):
        raise _Refused(f"{where}: an array of shape {shape} and dtype {dtype} needs {size:,} bytes, "
                       f"the file gives {len(data):,}")
    array = np.frombuffer(data, dtype).reshape(shape, order="F" if is_fortran else "C")
    array = array.astype(dtype.newbyteorder("="), order="K")  # a writable copy, in native byte order as NumPy gives
    return array[()] if record.is_scalar else array


def _object_array_item(root):
    """The object held by the 0-d object array that np.save pickles after an object .npy header
    (bvlc_alexnet.npy: the dict of layers), taken out without ever building an object array."""
    state = root.state if isinstance(root, _ArrayRecord) else None
    if not (isinstance(state, tuple) and len(state) == 5 and state[1] == () and isinstance(state[4], list)
            and len(state[4]) == 1
            and _dtype_from(state[2], "its object array", allow_object=True) == np.dtype(object)):
        raise _Refused("the pickle after an object .npy header must be one 0-d object array")
    return state[4][0]


class _Frame:
    """A container being checked: its (key, child) pairs still to visit, and what was checked so far."""

    __slots__ = ("container", "key", "children", "values", "entries", "nbytes")

    def __init__(self, container, key):
        self.container, self.key = container, key
        self.children = iter(container.items() if isinstance(container, dict) else enumerate(container))
        self.values, self.entries, self.nbytes = [], 1, 0

    def add(self, checked, limits):
        """Take in a checked child (value, entries, array bytes), refusing the container if it grows too large."""
        value, entries, nbytes = checked
        self.values.append(value)
        self.entries += entries
        self.nbytes += nbytes
        limits.check("max_entries", "the number of entries (a shared one counted at each use)", self.entries)
        limits.check("max_bytes", "the arrays' total size in bytes (a shared one counted at each use)", self.nbytes)

    def checked(self):
        """(the container rebuilt from its checked children, entries, array bytes)."""
        values = dict(zip(self.container, self.values)) if isinstance(self.container, dict) else self.values
        return type(self.container)(values), self.entries, self.nbytes


_LEAF_TYPES = (str, bytes, int, float, type(None))


def _checked_tree(root, limits):
    """root with every _ArrayRecord built into an array, after checking the whole tree.

    Walks each object once, by identity (a shared array is built once and stays shared), without
    recursion. Refused: anything but dicts with str keys, lists, tuples, arrays, strings, bytes,
    numbers and None; cycles; nesting deeper than MAX_DEPTH; and trees that, expanded as a
    consumer walking them would see them (a shared part counted at every use), hold more than
    max_entries entries or max_bytes of array data: a few hundred bytes of lists that reuse each
    other through the pickle memo are refused at once instead of exploding downstream.
    """
    checked = {}  # id(object) -> (value, entries, array bytes), for every object already checked
    frames = [_Frame([root], None)]  # the root, in a list of its own
    while True:
        frame = frames[-1]
        key, child = next(frame.children, (None, frames))
        if child is frames:  # all of frame's children are checked
            frames.pop()
            if not frames:
                return frame.values[0]
            checked[id(frame.container)] = frame.checked()
            frames[-1].add(checked[id(frame.container)], limits)
        elif isinstance(frame.container, dict) and not isinstance(key, str):
            raise _Refused(f"{_where(frames[:-1], frame.key)}: dict keys must be strings, found {_describe(key)}")
        elif id(child) in checked:
            frame.add(checked[id(child)], limits)
        elif isinstance(child, (dict, list, tuple)):
            if any(f.container is child for f in frames):
                raise _Refused(f"{_where(frames, key)}: a container holds itself (a cycle)")
            if len(frames) > MAX_DEPTH:
                raise _Refused(f"{_where(frames, key)}: containers are nested more than MAX_DEPTH={MAX_DEPTH} deep")
            frames.append(_Frame(child, key))
        else:
            checked[id(child)] = _checked_leaf(child, frames, key)
            frame.add(checked[id(child)], limits)


def _where(frames, key):
    """Where the child `key` of the innermost frame sits in the file, e.g. file['conv1'][0]."""
    keys = [frame.key for frame in frames[2:]] + ([key] if len(frames) > 1 else [])  # frames[0] holds the root
    return "file" + "".join(f"[{_describe(k)}]" for k in keys)


def _checked_leaf(leaf, frames, key):
    """(value, entries, array bytes) for a leaf of the tree: an array built by _array_from, or a plain value."""
    if isinstance(leaf, _ArrayRecord):
        array = _array_from(leaf, _where(frames, key))
        leaf.state = None  # let go of the raw bytes: peak memory is then about the arrays, not twice them
        return array, 1, array.nbytes
    if isinstance(leaf, _LEAF_TYPES):
        return leaf, 1, 0
    raise _Refused(f"{_where(frames, key)}: {_describe(leaf)} is not weights data (only numeric arrays, dicts with "
                   "str keys, lists, tuples, strings and numbers are)")
