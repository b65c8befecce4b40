"""Hostile weight files: each is refused with one UnsafeWeightsError naming the file and the reason.

All files are loaded in one child process, under an address-space and CPU-time rlimit, so that a
crash (a segfault from a forged array) or a runaway bomb fails these tests instead of killing
pytest or the machine. The child reports each outcome and how much its peak RSS grew. Last, a
seeded fuzz: random byte edits of good files must each load or be refused, never crash.
"""
import io
import json
import os
import pickle
import re
import struct
import subprocess
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from pickle_ops import (
    call,
    dict_,
    dtype,
    dtype_state,
    global_,
    integer,
    ndarray,
    npy_object_header,
    pickled,
    py2_ndarray,
    raw,
    text,
    tuple_,
)

MiB = 1 << 20
CHILD_ADDRESS_SPACE = 1536 * MiB  # importing tinynet takes about 330 MiB of address space
PEAK_RSS_GROWTH_LIMIT = 32 * MiB  # no case may make the loader's peak memory grow more than this


class RunsAShellCommand:
    def __reduce__(self):
        return (os.system, ("touch PWNED",))


@dataclass
class Case:
    name: str
    loader: str  # "pickle" (load_pickle_weights) or "npz" (load)
    write: Callable[[Path], None]  # writes the hostile file
    reason: str  # a regex the message must contain after the file's name
    limits: dict = field(default_factory=dict)

    @property
    def filename(self):
        return re.sub(r"\W+", "_", self.name) + (".npz" if self.loader == "npz" else ".pkl")


def bytes_of(data):
    return lambda path: path.write_bytes(data)


def pickle_of(value, protocol=2):
    return bytes_of(pickle.dumps(value, protocol=protocol))


def np_save(value, **options):
    def write(path):
        with open(path, "wb") as file:
            np.save(file, value, **options)
    return write


F8 = dtype("f8")
OBJECT_DTYPE = dtype("O8", dtype_state("|", flags=63))
PWNED = "__import__('os').system('touch PWNED')"


def memo_bomb(levels=40, width=4):
    """Lists each holding `width` references to the one before, through the pickle memo: 4**39 entries expanded."""
    body = pickle.EMPTY_LIST + pickle.BINPUT + b"\x00"
    for level in range(1, levels):
        previous = pickle.BINGET + bytes([level - 1])
        body += pickle.MARK + previous * width + pickle.LIST + pickle.BINPUT + bytes([level])
    return pickled(body)


def nested_lists(depth):
    return pickled(pickle.MARK * depth + pickle.EMPTY_LIST + pickle.LIST * depth)


def truncated(data, keep):
    """The file of data's first `keep` bytes."""
    return bytes_of(data[:keep])


def cut_short(write, n_bytes):
    """write, then remove the file's last n_bytes."""
    def write_cut(path):
        write(path)
        path.write_bytes(path.read_bytes()[:-n_bytes])
    return write_cut


def npz_of(**arrays):
    def write(path):
        with open(path, "wb") as file:
            np.savez(file, **arrays)
    return write


def npy_bytes(array):
    file = io.BytesIO()
    np.save(file, array)
    return file.getvalue()


def npy_header(shape, descr="<f8"):
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": descr, "fortran_order": False, "shape": shape})
    return header.getvalue()


def patched_zip(write, **fields):
    """write, then overwrite zip header fields: file_size (local and central headers) or end_count (end record)."""
    offsets = {"file_size": [(b"PK\x03\x04", 22, "<I"), (b"PK\x01\x02", 24, "<I")],
               "end_count": [(b"PK\x05\x06", 8, "<H"), (b"PK\x05\x06", 10, "<H")]}

    def patch(path):
        write(path)
        data = bytearray(path.read_bytes())
        for name, value in fields.items():
            for signature, offset, layout in offsets[name]:
                struct.pack_into(layout, data, data.rfind(signature) + offset, value)
        path.write_bytes(bytes(data))
    return patch


def deflated_zeros_npz(n_bytes):
    """An npz whose one member, a few KiB deflated, is an honest .npy of n_bytes of float64 zeros."""
    def write(path):
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive, archive.open("w.npy", "w") as member:
            member.write(npy_header((n_bytes // 8,)))
            for _ in range(n_bytes // MiB):
                member.write(bytes(MiB))
    return write


def zip_of(members):
    def write(path):
        with zipfile.ZipFile(path, "w") as archive:
            for name, data in members.items():
                archive.writestr(name, data)
    return write


WEIGHTS = pickle.dumps({"W0": np.arange(100.0), "b0": np.zeros(3, np.float32)}, protocol=2)
PY2_WEIGHTS = pickled(dict_(W0=ndarray((2,), F8, raw(bytes(16)))))
NOT_PLAIN = "is not a plain bool/int/uint/float dtype"

CASES = [
    # arrays built from forged parts: each of these crashed or read wild memory inside NumPy
    Case("object dtype over raw bytes", "pickle", bytes_of(pickled(ndarray((4,), OBJECT_DTYPE, raw(b"A" * 32)))),
         r"file: the dtype 'O8' " + NOT_PLAIN),
    Case("ndarray(shape, object dtype, buffer=bytes)", "pickle",
         bytes_of(pickled(call(global_("numpy", "ndarray"), tuple_(integer(4)), OBJECT_DTYPE, raw(b"A" * 32)))),
         "the name numpy.ndarray cannot be called"),
    Case("a 0-d ndarray(object dtype, buffer=bytes)", "pickle",
         bytes_of(pickled(call(global_("numpy", "ndarray"), tuple_(), OBJECT_DTYPE, raw(b"A" * 8)))),
         "the name numpy.ndarray cannot be called"),
    Case("object dtype with its flags cleared", "pickle",
         bytes_of(pickled(ndarray((4,), dtype("O8", dtype_state("|")), raw(b"A" * 32)))), "'O8' " + NOT_PLAIN),
    Case("float dtype with an object field", "pickle", bytes_of(pickled(ndarray((1,), dtype("f8", dtype_state(
        names=tuple_(text("a")), fields=dict_(a=tuple_(OBJECT_DTYPE, integer(0))), elsize=8, flags=63)),
        raw(b"A" * 8)))),
        "the dtype 'f8' has a state NumPy does not write"),
    Case("overlapping object and int fields", "pickle", bytes_of(pickled(ndarray((1,), dtype("V8", dtype_state(
        "|", names=tuple_(text("a"), text("b")),
        fields=dict_(a=tuple_(OBJECT_DTYPE, integer(0)), b=tuple_(dtype("i8"), integer(0))), elsize=8, flags=63)),
        raw(b"A" * 8)))), "'V8' " + NOT_PLAIN),
    Case("a field past the item's end", "pickle", bytes_of(pickled(ndarray((1,), dtype("f8", dtype_state(
        names=tuple_(text("a")), fields=dict_(a=tuple_(F8, integer(100))), elsize=8)), raw(b"A" * 8)))),
        "has a state NumPy does not write"),
    Case("NEWOBJ ndarray.__new__ (uninitialised memory)", "pickle",
         bytes_of(pickled(global_("numpy", "ndarray") + tuple_(tuple_(integer(MiB))) + pickle.NEWOBJ)),
         "opcode NEWOBJ at byte 26 is not used by weight files"),
    Case("a huge shape over 8 bytes", "pickle", bytes_of(pickled(ndarray((1 << 30, 1 << 30), F8, raw(bytes(8))))),
         r"shape \(1073741824, 1073741824\) and dtype float64 needs 9,223,372,036,854,775,808 bytes, the file gives 8"),
    Case("a negative size", "pickle", bytes_of(pickled(ndarray((-1,), F8, raw(b"")))), "shape must be a tuple"),
    Case("data that is not bytes (a foreign buffer)", "pickle", bytes_of(pickled(ndarray((2,), F8, integer(5)))),
         "raw data must be bytes, not 5"),
    Case("an array given its state twice", "pickle",
         bytes_of(pickled(ndarray((2,), F8, raw(bytes(16))) + tuple_() + pickle.BUILD)), "given its state twice"),
    Case("a state for the name numpy.dtype itself", "pickle",
         bytes_of(pickled(global_("numpy", "dtype") + pickle.EMPTY_DICT + pickle.BUILD)),
         "the name numpy.dtype cannot be given a state"),
    Case("_reconstruct of something else than ndarray", "pickle", bytes_of(pickled(call(
        global_("numpy.core.multiarray", "_reconstruct"), global_("numpy", "dtype"), tuple_(integer(0)), raw(b"b")))),
        "can rebuild only numpy.ndarray, not the name numpy.dtype"),
    Case("a scalar of object dtype", "pickle",
         bytes_of(pickled(call(global_("numpy.core.multiarray", "scalar"), OBJECT_DTYPE, text("x")))), NOT_PLAIN),
    # trees that explode, loop or nest
    Case("lists reusing each other through the memo", "pickle", bytes_of(memo_bomb()),
         "number of entries .* more than max_entries=100,000"),
    Case("a memo slot at 2**28 (the memo table would take 4 GiB)", "pickle",
         bytes_of(pickled(pickle.EMPTY_LIST + pickle.LONG_BINPUT + struct.pack("<I", 1 << 28))),
         "LONG_BINPUT opcode at byte 3 stores to a memo slot beyond the 3 opcodes before it"),
    Case("a text memo slot at 10**9", "pickle", bytes_of(b"(lp1000000000\n."), "PUT opcode at byte 2 stores"),
    Case("a frame longer than the file", "pickle", bytes_of(b"\x80\x04\x95" + struct.pack("<Q", 1 << 40) + b"N."),
         "FRAME opcode at byte 2 claims more bytes than the file holds"),
    Case("a list holding itself", "pickle",
         bytes_of(pickled(pickle.EMPTY_LIST + pickle.BINPUT + b"\0" + pickle.BINGET + b"\0" + pickle.APPEND)),
         r"file\[0\]: a container holds itself \(a cycle\)"),
    Case("a dict holding itself", "pickle", bytes_of(pickled(
        pickle.EMPTY_DICT + pickle.BINPUT + b"\0" + text("self") + pickle.BINGET + b"\0" + pickle.SETITEM)),
        r"file\['self'\]: a container holds itself"),
    Case("20,000 nested lists", "pickle", bytes_of(nested_lists(20_000)), "nested more than MAX_DEPTH=100 deep"),
    Case("more opcodes than max_entries", "pickle", bytes_of(nested_lists(20_000)), "number of pickle opcodes",
         {"max_entries": 1000}),
    Case("an int dict key", "pickle", pickle_of({1: np.zeros(2)}), "file: dict keys must be strings, found 1"),
    Case("a bytes dict key", "pickle", pickle_of({"a": {b"W0": np.zeros(2)}}),
         r"file\['a'\]: dict keys must be strings, found b'W0'"),
    Case("a set", "pickle", pickle_of({"a": {1, 2}}, protocol=4), "opcode EMPTY_SET"),
    Case("a complex number", "pickle", pickle_of({"a": 1j}), "refusing to load (__builtin__|builtins).complex"),
    # code execution: nothing may run (the PWNED file must not appear)
    *[Case(f"os.system, protocol {protocol}", "pickle", pickle_of({"W0": np.zeros(2), "x": RunsAShellCommand()},
                                                               protocol), "refusing to load (posix|os).system")
      for protocol in (0, 2, 5)],
    Case("builtins.eval", "pickle", bytes_of(pickled(call(global_("builtins", "eval"), text(PWNED)))),
         "refusing to load builtins.eval"),
    Case("Python 2 __builtin__.eval", "pickle", bytes_of(pickled(call(global_("__builtin__", "eval"), text(PWNED)))),
         "refusing to load __builtin__.eval"),
    Case("eval through STACK_GLOBAL", "pickle", bytes_of(b"\x80\x04" + text("builtins") + text("eval")
                                                         + pickle.STACK_GLOBAL + text(PWNED) + pickle.TUPLE1
                                                         + pickle.REDUCE + pickle.STOP),
         "refusing to load builtins.eval"),
    Case("os.system as _reconstruct's subtype", "pickle", bytes_of(pickled(call(
        global_("numpy.core.multiarray", "_reconstruct"), global_("os", "system"), tuple_(text("touch PWNED")),
        raw(b"b")))), "refusing to load os.system"),
    Case("an extension-registry opcode", "pickle", bytes_of(pickled(pickle.EXT1 + b"\x01")), "opcode EXT1"),
    Case("object .npy holding os.system", "pickle",
         np_save(np.array({"conv1": RunsAShellCommand()}, dtype=object), allow_pickle=True), "refusing to load"),
    # damaged or mistaken files
    Case("a truncated pickle", "pickle", truncated(WEIGHTS, len(WEIGHTS) // 2), "the pickle is truncated"),
    Case("a truncated Python 2 pickle", "pickle", truncated(PY2_WEIGHTS, 40), "the pickle is truncated"),
    Case("an empty file", "pickle", bytes_of(b""), "the file is empty"),
    Case("an HTML page", "pickle", bytes_of(b"<html>404</html>"), "not a readable weights pickle"),
    Case("an object .npy of shape (2,)", "pickle", np_save(np.array([{}, {}], dtype=object), allow_pickle=True),
         r"object arrays of shape \(2,\) are not weights"),
    Case("an object .npy header over a dict pickle", "pickle", bytes_of(npy_object_header() + WEIGHTS),
         "must be one 0-d object array"),
    Case("a truncated plain .npy", "pickle", truncated(npy_bytes(np.arange(100.0)), 500),
         "header promises 800 bytes of data .* but it holds 372"),
    Case("a pickle larger than max_bytes", "pickle", bytes_of(WEIGHTS), "file's size in bytes is .*, more than "
         r"max_bytes=100; if you trust the file, pass max_bytes= or set tinynet.io.MAX_BYTES", {"max_bytes": 100}),
    # npz archives
    Case("a member claiming 2 GiB", "npz", patched_zip(npz_of(w=np.zeros(4)), file_size=1 << 31),
         "the members' total size in bytes is 2,147,483,648, more than max_bytes=1,073,741,824"),
    Case("a 64 MiB deflate bomb claiming 200 bytes", "npz", patched_zip(deflated_zeros_npz(64 * MiB), file_size=200),
         "not a readable weights .npz: BadZipFile: Bad CRC-32 for file 'w.npy'"),
    Case("a 64 MiB deflate bomb above max_bytes", "npz", deflated_zeros_npz(64 * MiB),
         "members' total size in bytes is 67,108,992, more than max_bytes=8,388,608", {"max_bytes": 8 * MiB}),
    Case("a header promising 2**40 floats", "npz", zip_of({"w.npy": npy_header((1 << 40,)) + bytes(16)}),
         "member 'w.npy': its header promises 8,796,093,022,208 bytes of data"),
    Case("more members than max_entries", "npz", npz_of(**{f"w{i}": np.zeros(1) for i in range(11)}),
         "zip directory can hold is .*, more than max_entries=10", {"max_entries": 10}),
    Case("a directory larger than its end record says", "npz",
         patched_zip(npz_of(**{f"w{i}": np.zeros(1) for i in range(200)}), end_count=1),
         "zip directory can hold is .*, more than max_entries=100", {"max_entries": 100}),
    Case("an object member holding os.system", "npz", npz_of(w=np.array([RunsAShellCommand()], dtype=object)),
         f"member 'w.npy': dtype object {NOT_PLAIN}"),
    Case("a complex member", "npz", npz_of(w=np.zeros(2, complex)), f"dtype complex128 {NOT_PLAIN}"),
    Case("a string member", "npz", npz_of(w=np.array(["a"])), f"dtype <U1 {NOT_PLAIN}"),
    Case("a structured member", "npz", npz_of(w=np.zeros(2, [("a", "f8"), ("b", "i4")])), NOT_PLAIN),
    Case("a datetime member", "npz", npz_of(w=np.zeros(2, "datetime64[s]")), NOT_PLAIN),
    Case("a pickle inside a zip (like PyTorch's .pt)", "npz", zip_of({"archive/data.pkl": WEIGHTS}),
         "member 'archive/data.pkl' is not an .npy array"),
    Case("a truncated npz", "npz", cut_short(npz_of(w=np.zeros(100)), 30), "no end-of-central-directory record"),
    Case("a plain .npy", "npz", np_save(np.zeros(3)), r"this is a .npy file .* np.load\(path\)"),
    Case("a pickle", "npz", bytes_of(WEIGHTS), "this is a pickle, not an .npz: .* tinynet.load_pickle_weights"),
]

CHILD = """
import json, resource, sys
resource.setrlimit(resource.RLIMIT_AS, ({address_space}, {address_space}))
resource.setrlimit(resource.RLIMIT_CPU, (120, 120))
import tinynet
for case in json.loads(sys.argv[1]):
    print(json.dumps({{"started": case["name"]}}), flush=True)
    load = tinynet.load if case["loader"] == "npz" else tinynet.load_pickle_weights
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    try:
        load(case["path"], **case["limits"])
        outcome = "loaded without an error"
    except tinynet.UnsafeWeightsError as error:
        outcome = f"UnsafeWeightsError: {{error}}"
    except BaseException as error:
        outcome = f"{{type(error).__name__}}: {{error}}"
    growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    print(json.dumps({{"case": case["name"], "outcome": outcome, "peak_rss_growth_kib": growth}}), flush=True)
"""


def child_environment():
    """This process's environment with the project first on PYTHONPATH, so the child imports this tinynet."""
    project = Path(__file__).resolve().parents[1]
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(project), os.environ.get("PYTHONPATH", "")])}


@dataclass
class ChildRun:
    folder: Path
    returncode: int
    outcomes: dict
    last_started: str
    stderr: str


@pytest.fixture(scope="module")
def child_run(tmp_path_factory):
    """Write every hostile file, then load them all in one rlimited child process (cwd: their folder)."""
    folder = tmp_path_factory.mktemp("hostile")
    for case in CASES:
        case.write(folder / case.filename)
    cases = [{"name": case.name, "loader": case.loader, "path": str(folder / case.filename), "limits": case.limits}
             for case in CASES]
    child = subprocess.run([sys.executable, "-c", CHILD.format(address_space=CHILD_ADDRESS_SPACE), json.dumps(cases)],
                           cwd=folder, env=child_environment(), capture_output=True, text=True)
    lines = [json.loads(line) for line in child.stdout.splitlines()]
    return ChildRun(folder, child.returncode, {line["case"]: line for line in lines if "case" in line},
                    ([line["started"] for line in lines if "started" in line] or ["none"])[-1], child.stderr)


def test_case_names_are_distinct():
    assert len({case.filename for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_hostile_file_is_refused_clearly_with_bounded_memory(case, child_run):
    assert child_run.returncode == 0, (f"the loading process died (exit code {child_run.returncode}) in case "
                                       f"{child_run.last_started!r}: {child_run.stderr[-3000:]}")
    result = child_run.outcomes[case.name]
    assert result["outcome"].startswith(f"UnsafeWeightsError: {child_run.folder / case.filename}"), result["outcome"]
    assert re.search(case.reason, result["outcome"]), result["outcome"]
    assert result["peak_rss_growth_kib"] * 1024 < PEAK_RSS_GROWTH_LIMIT
    assert not (child_run.folder / "PWNED").exists()


FUZZ_CHILD = """
import json, random, resource, sys
resource.setrlimit(resource.RLIMIT_AS, ({address_space}, {address_space}))
resource.setrlimit(resource.RLIMIT_CPU, (120, 120))
import tinynet
seeds, path, rounds = [open(seed, "rb").read() for seed in sys.argv[1:-2]], sys.argv[-2], int(sys.argv[-1])
rng, outcomes = random.Random(0), {{}}
for _ in range(rounds):
    data = bytearray(rng.choice(seeds))
    for _ in range(rng.randint(1, 4)):
        at = rng.randrange(len(data))
        data[at:at + rng.randint(0, 4)] = rng.randbytes(rng.randint(0, 4))
    open(path, "wb").write(data)
    load = tinynet.load if path.endswith(".npz") else tinynet.load_pickle_weights
    try:
        load(path)
        outcome = "loaded"
    except tinynet.UnsafeWeightsError:
        outcome = "UnsafeWeightsError"
    except BaseException as error:
        outcome = f"{{type(error).__name__}}: {{error}}"[:200]
    outcomes[outcome] = outcomes.get(outcome, 0) + 1
print(json.dumps(outcomes))
"""


@pytest.mark.parametrize("kind", ["pickle", "npz"])
def test_mutated_weight_files_load_or_are_refused_never_crash(tmp_path, kind):
    """Random byte edits of good files (seeded): each loads or raises UnsafeWeightsError, in a child that must live."""
    tree = {"W": np.arange(6, dtype=np.float32).reshape(2, 3), "F": np.asfortranarray(np.ones((2, 3), np.int16)),
            "layers": [np.ones(2), (np.float32(1.5), "relu")]}
    if kind == "pickle":
        seeds = [pickle.dumps(tree, protocol=protocol) for protocol in range(pickle.HIGHEST_PROTOCOL + 1)]
        seeds.append(pickled(dict_(W0=py2_ndarray(np.arange(4.0)))))
    else:
        seeds = []
        for save in (np.savez, np.savez_compressed):
            file = io.BytesIO()
            save(file, W=tree["W"], F=tree["F"])
            seeds.append(file.getvalue())
    for i, seed in enumerate(seeds):
        (tmp_path / f"seed{i}").write_bytes(seed)
    child = subprocess.run([sys.executable, "-c", FUZZ_CHILD.format(address_space=CHILD_ADDRESS_SPACE),
                            *[str(tmp_path / f"seed{i}") for i in range(len(seeds))],
                            str(tmp_path / f"mutant.{'npz' if kind == 'npz' else 'pkl'}"), "1500"],
                           env=child_environment(), capture_output=True, text=True)
    assert child.returncode == 0, child.stderr[-3000:]
    outcomes = json.loads(child.stdout)
    assert set(outcomes) <= {"loaded", "UnsafeWeightsError"}, outcomes
    assert outcomes.get("UnsafeWeightsError", 0) > 500, "the mutations should mostly break the files"
