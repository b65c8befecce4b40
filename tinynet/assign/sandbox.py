"""Run a grading child that executes a student's code: confined by whatever this platform offers.

The parent (the grader) calls `run_confined`; the child (tinynet/assign/harness.py) calls
`confine` first thing, before it reads or imports anything of the student's. Layers, each used
when the machine has it (`isolation()` says which are in force; `check` prints it):

- namespaces (util-linux `unshare`): a network namespace with no interfaces but loopback (no
  connection out); a PID namespace whose first process is the child, so that killing it kills
  everything it started, and it sees no process of the grader's; a mount namespace in which its
  scratch folder is a tmpfs of bounded size that vanishes with it;
- Landlock (Linux >= 5.13): the child may read only Python's own installation (not its
  site-packages' other projects), system libraries and the task's grading tree, and write only
  its scratch folder; from ABI 4 on it cannot connect or bind TCP, from ABI 6 on it cannot
  signal processes outside itself;
- no root: when the grader runs as root, the child becomes nobody where nobody can run this
  Python, else stays uid 0 with every capability dropped; no_new_privs either way;
- resource limits: address space, CPU seconds, file size, open files, no core dumps, and a
  cgroup of its own that bounds its processes and threads (a fork bomb), where one can be made;
- always: an environment with nothing of the grader's, a fresh HOME and TMPDIR in the scratch
  folder, and a wall-clock limit enforced by the parent, which kills the child's process group.
"""
import contextlib
import ctypes
import functools
import os
import resource
import secrets
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

NOBODY = 65534
# Packages of this project's that a site-packages folder may hold: never readable by a child.
PROJECT_PACKAGES = ("tinynet", "coursedata", "facescrub", "experiments", "benchmarks", "__editable__")
SYSTEM_LIBRARIES = ("/lib", "/lib64", "/usr/lib", "/usr/lib64", "/etc/ld.so.cache", "/etc/localtime")
DEVICES = ("/dev/null", "/dev/zero", "/dev/urandom")
# What Python, NumPy and Numba read about the machine (CPU count and features, memory).
MACHINE_FILES = ("/proc/cpuinfo", "/proc/meminfo", "/proc/stat", "/sys/devices/system/cpu")


@dataclass(frozen=True)
class Limits:
    """What one grading child may use: wall-clock and CPU seconds, memory (address space), bytes per
    file and in all in its scratch folder (where the machine can mount a tmpfs), bytes of output,
    open files, and processes and threads at once (where the machine has a cgroup pids controller)."""

    seconds: float = 60.0
    memory_bytes: int = 1 << 30
    file_bytes: int = 64 << 20
    scratch_bytes: int = 256 << 20
    output_bytes: int = 64 << 20
    open_files: int = 256
    processes: int = 64


@dataclass
class Outcome:
    """How a child ended: its exit code (negative: killed by that signal), whether the wall clock ran
    out, and what it wrote to stdout (None when that was over the limit)."""

    returncode: int
    timed_out: bool
    output: bytes = None


# ---- Landlock, by its system calls (linux/landlock.h) ------------------------------------------
_SYS_CREATE_RULESET, _SYS_ADD_RULE, _SYS_RESTRICT_SELF = 444, 445, 446
_RULE_PATH_BENEATH, _CREATE_RULESET_VERSION = 1, 1
_PR_SET_NO_NEW_PRIVS, _PR_CAPBSET_DROP, _CAPABILITY_VERSION_3 = 38, 24, 0x20080522
_EXECUTE, _WRITE_FILE, _READ_FILE, _READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
_FILE_ONLY = _EXECUTE | _WRITE_FILE | _READ_FILE | (1 << 14) | (1 << 15)  # + TRUNCATE, IOCTL_DEV
_SCOPE_ABSTRACT_UNIX_SOCKET, _SCOPE_SIGNAL = 1 << 0, 1 << 1
_NET_BIND_TCP, _NET_CONNECT_TCP = 1 << 0, 1 << 1


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64)]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def _libc():
    return ctypes.CDLL(None, use_errno=True)


@functools.cache
def landlock_abi() -> int:
    """The Landlock ABI version of the running kernel, 0 where it has none."""
    if not sys.platform.startswith("linux"):
        return 0
    version = _libc().syscall(_SYS_CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(_CREATE_RULESET_VERSION))
    return max(int(version), 0)


def _fs_rights(abi):
    """Every filesystem right this ABI can restrict (1: 13 rights; 2: + refer; 3: + truncate; 5: + ioctl)."""
    return (1 << {1: 13, 2: 14, 3: 15, 4: 15}.get(abi, 16)) - 1


def _landlock(readable, writable):
    """Restrict this process and its children to reading `readable` and reading/writing `writable`."""
    abi, libc = landlock_abi(), _libc()
    handled = _fs_rights(abi)
    attr = _RulesetAttr(handled, (_NET_BIND_TCP | _NET_CONNECT_TCP) if abi >= 4 else 0,
                        (_SCOPE_ABSTRACT_UNIX_SOCKET | _SCOPE_SIGNAL) if abi >= 6 else 0)
    size = ctypes.sizeof(ctypes.c_uint64) * (1 if abi < 4 else 2 if abi < 6 else 3)
    ruleset = libc.syscall(_SYS_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0))
    if ruleset < 0:
        raise OSError(ctypes.get_errno(), "landlock_create_ruleset failed")
    try:
        rules = [(path, _EXECUTE | _READ_FILE | _READ_DIR) for path in readable]
        rules += [(path, handled) for path in writable]
        for path, rights in rules:
            try:
                fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except OSError:
                continue  # a path this machine does not have
            try:
                if not os.path.isdir(path):
                    rights &= _FILE_ONLY
                rule = _PathBeneathAttr(rights & handled, fd)
                if libc.syscall(_SYS_ADD_RULE, ruleset, _RULE_PATH_BENEATH, ctypes.byref(rule), ctypes.c_uint32(0)):
                    raise OSError(ctypes.get_errno(), f"landlock_add_rule failed for {path}")
            finally:
                os.close(fd)
        if libc.syscall(_SYS_RESTRICT_SELF, ruleset, ctypes.c_uint32(0)):
            raise OSError(ctypes.get_errno(), "landlock_restrict_self failed")
    finally:
        os.close(ruleset)


def python_paths() -> list:
    """What Python and the packages the engine imports need to read: the standard library (without
    its site-packages), and each site-packages entry that is not one of this project's."""
    paths = set(SYSTEM_LIBRARIES) | set(DEVICES) | set(MACHINE_FILES)
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    site_dirs = {Path(p) for p in sys.path if p.endswith(("site-packages", "dist-packages")) and Path(p).is_dir()}
    for entry in stdlib.iterdir():
        if entry.name != "site-packages":
            paths.add(str(entry))
    for site in site_dirs:
        for entry in site.iterdir():
            if not entry.name.startswith(PROJECT_PACKAGES) and not entry.name.endswith(".pth"):
                paths.add(str(entry))
    paths.add(os.path.realpath(sys.executable))
    paths.update(str(p) for p in Path(sys.base_prefix, "lib").glob("libpython*"))
    return sorted(paths)


def confine(readable, writable, limits: Limits):
    """Confine the calling process (a grading child) before it touches the student's code.

    readable: folders and files it may read besides Python's own (python_paths); writable: its
    scratch folders. Irreversible; raises OSError when a layer the machine offers fails to apply.
    """
    memory = limits.memory_bytes
    for which, value in [(resource.RLIMIT_AS, memory), (resource.RLIMIT_CPU, int(limits.seconds) + 5),
                         (resource.RLIMIT_FSIZE, limits.file_bytes), (resource.RLIMIT_CORE, 0),
                         (resource.RLIMIT_NOFILE, limits.open_files)]:
        resource.setrlimit(which, (value, value))
    if sys.platform.startswith("linux") and _libc().prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0):
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")
    if landlock_abi():
        _landlock(python_paths() + [str(p) for p in readable], [str(p) for p in writable])
    if os.geteuid() == 0:
        _drop_root(writable)


def _drop_root(writable):
    """Stop being root: become nobody where nobody can run this Python (its folders are world-readable),
    else stay uid 0 with every capability dropped (no reading others' files, no raising limits)."""
    if nobody_can_run_python():
        for path in writable:
            for folder, _, files in os.walk(path):
                for name in [folder, *(os.path.join(folder, f) for f in files)]:
                    os.chown(name, NOBODY, NOBODY)
        os.setgroups([])
        os.setgid(NOBODY)
        os.setuid(NOBODY)
        return
    libc = _libc()
    for capability in range(64):
        libc.prctl(_PR_CAPBSET_DROP, capability, 0, 0, 0)  # EINVAL past the last one the kernel knows
    header, data = (ctypes.c_uint32 * 2)(_CAPABILITY_VERSION_3, 0), (ctypes.c_uint32 * 6)()
    if libc.capset(header, data):
        raise OSError(ctypes.get_errno(), "capset failed")


def nobody_can_run_python() -> bool:
    """True when every folder above Python's standard library lets other users in."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    return all(os.stat(folder).st_mode & 0o005 == 0o005 for folder in [stdlib, *stdlib.parents])


# Before the child starts: it joins its own cgroup ($1, where the machine has a pids controller) and,
# inside its namespaces, its scratch folder ($2) becomes a tmpfs of $3 bytes, which vanishes with
# the namespace (nothing a child writes outlives it or fills the grader's disk).
_PREPARE = ('set -e; [ -z "$1" ] || echo 0 > "$1/cgroup.procs"; '
            '[ -z "$2" ] || { mount -t tmpfs -o "size=$3,mode=0777" tinynet-scratch "$2"; cd "$2"; }; shift 3; '
            'exec "$@"')


@functools.cache
def _unshare() -> tuple:
    """The `unshare` command line for new network, PID and mount namespaces, or () where this machine
    refuses them (no util-linux, no user namespaces for a non-root grader)."""
    unshare = shutil.which("unshare")
    if unshare is None or not sys.platform.startswith("linux"):
        return ()
    prefix = (unshare, "--net", "--pid", "--fork", "--kill-child", "--mount-proc")
    if os.geteuid() != 0:
        prefix += ("--user", "--map-root-user")
    with tempfile.TemporaryDirectory() as folder:
        try:
            works = subprocess.run([*prefix, "/bin/sh", "-c", _PREPARE, "sh", "", folder, "1M", "true"],
                                   capture_output=True, timeout=10).returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            works = False
    return prefix if works else ()


def _pids_controller():
    """The folder under which a cgroup with a pids.max can be made (cgroup v1's pids hierarchy, or this
    process's cgroup v2 folder where it delegates the pids controller), or None."""
    v1 = Path("/sys/fs/cgroup/pids")
    if (v1 / "cgroup.procs").exists() and os.access(v1, os.W_OK):
        return v1
    try:
        own = Path("/proc/self/cgroup").read_text().splitlines()[-1].partition("::")[2]
        v2 = Path("/sys/fs/cgroup") / own.lstrip("/")
        delegated = "pids" in (v2 / "cgroup.subtree_control").read_text().split()
    except (OSError, IndexError):
        return None
    return v2 if delegated and os.access(v2, os.W_OK) else None


@contextlib.contextmanager
def _process_limit(limit: int):
    """A new cgroup allowing at most limit processes and threads (its path), removed afterwards; None
    where the machine offers none."""
    controller = _pids_controller()
    if controller is None:
        yield None
        return
    cgroup = controller / f"tinynet-grade-{os.getpid()}-{secrets.token_hex(4)}"
    try:
        cgroup.mkdir()
        (cgroup / "pids.max").write_text(str(limit))
    except OSError:
        yield None
        return
    try:
        yield cgroup
    finally:
        for _ in range(100):  # the processes of a killed namespace take a moment to go
            try:
                cgroup.rmdir()
                break
            except OSError:
                for pid in (cgroup / "cgroup.procs").read_text().split():
                    with contextlib.suppress(OSError):
                        os.kill(int(pid), signal.SIGKILL)
                time.sleep(0.01)


def namespaces_available() -> bool:
    """True when grading children get their own network, PID and mount namespaces here."""
    return bool(_unshare())


def confined_command(argv, scratch: Path, limits: Limits, cgroup) -> list:
    """argv in its own namespaces (where available) with scratch mounted as a tmpfs of
    limits.scratch_bytes, after joining cgroup (a path, or None)."""
    return [*_unshare(), "/bin/sh", "-c", _PREPARE, "sh", str(cgroup or ""), str(scratch) if _unshare() else "",
            str(limits.scratch_bytes), *argv]


def isolation() -> str:
    """One line saying which layers confine a grading child on this machine."""
    layers = ["own process, empty environment, wall-clock and memory limits"]
    if namespaces_available():
        layers.append("no network, own PID namespace, scratch in a bounded tmpfs")
    else:
        layers.append("NETWORK NOT CUT (no usable unshare)")
    if _pids_controller():
        layers.append("a cgroup bounds its processes")
    abi = landlock_abi()
    layers.append(f"Landlock ABI {abi}: reads Python and its task only, writes its scratch folder" if abi
                  else "NO FILE CONFINEMENT (no Landlock): run the grader in a container or throwaway account")
    if os.geteuid() == 0:
        layers.append("runs as nobody" if nobody_can_run_python() else "runs as root without capabilities")
    return "; ".join(layers)


def child_environment(scratch: Path) -> dict:
    """The whole environment of a grading child: nothing of the grader's but the locale and an
    OpenBLAS core type (older OpenBLAS builds crash on some processors without it)."""
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": str(scratch / "home"), "TMPDIR": str(scratch / "tmp"),
           "NUMBA_CACHE_DIR": str(scratch / "numba"), "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
           "MKL_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"}
    env.update({name: os.environ[name] for name in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if name in os.environ})
    return env


def run_confined(argv, scratch: Path, limits: Limits) -> Outcome:
    """Run argv (a grading child that calls `confine` itself) in namespaces where available, with the
    environment of child_environment(scratch) and cwd = scratch; kill it and all it started after
    limits.seconds of wall-clock time. What it writes to stdout (at most limits.output_bytes) is the
    outcome's output; its stderr is dropped (nothing the student's code says is shown)."""
    scratch.mkdir(exist_ok=True)
    with _process_limit(limits.processes) as cgroup:
        process = subprocess.Popen(confined_command(argv, scratch, limits, cgroup), cwd=scratch,
                                   env=child_environment(scratch), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                   stderr=subprocess.DEVNULL, start_new_session=True)
        output = bytearray()
        reader = threading.Thread(target=_read_at_most, args=(process.stdout, output, limits.output_bytes))
        reader.start()
        deadline = time.monotonic() + limits.seconds
        reader.join(limits.seconds)  # its stdout ends with it: waiting so sees its end at once, unlike polling
        try:
            returncode, timed_out = process.wait(max(deadline - time.monotonic(), 0)), False
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            returncode, timed_out = process.wait(), True
        reader.join()
        return Outcome(returncode, timed_out, bytes(output) if len(output) <= limits.output_bytes else None)


def _read_at_most(stream, into: bytearray, limit: int):
    """Read stream to its end, keeping its first limit + 1 bytes in into (so that more than limit shows)."""
    with stream:
        while chunk := stream.read(1 << 16):
            if len(into) <= limit:
                into += chunk[:limit + 1 - len(into)]
