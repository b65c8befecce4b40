"""Writing a file so that nobody ever reads half of it: atomic_write for any file, write_atomically for text;
locked, so that of several processes only one makes a cached file and the others read it."""
import fcntl
import os
import secrets
from contextlib import contextmanager
from pathlib import Path

TEMPORARY_SUFFIX = ".tmp"  # atomic_write's temporary files are named .<name>.<random>.tmp


@contextmanager
def atomic_write(path, mode="wb"):
    """Yield a file object open for writing ('wb' or 'w') on a temporary file beside `path`.

    When the block ends without an error, the temporary file is renamed to `path` in one step
    (os.replace), so readers see the old file or the whole new one, never a part; when it
    raises, the temporary file is deleted. A process killed inside the block leaves at most one
    `.<name>.<random>.tmp` file in the folder. Text mode writes newlines as given (newline="").
    The file gets the permissions open() would give it (0o666 minus the umask), not mkstemp's 0o600.
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"mode must be 'wb' or 'w', got {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.parent / f".{path.name}.{secrets.token_hex(8)}{TEMPORARY_SUFFIX}"
    # O_EXCL: never open someone else's file; 0o666: the kernel applies the umask, as open() does.
    handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(handle, mode, **({"newline": ""} if mode == "w" else {})) as file:
            yield file
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def write_atomically(path, text: str):
    """Write text to path (UTF-8) through atomic_write: never half-written."""
    with atomic_write(path) as file:
        file.write(text.encode())


@contextmanager
def locked(path):
    """Hold an exclusive lock on the file `path` (created empty if missing) while the block runs.

    Another process entering locked(path) waits until this block ends, so a cache file can be
    checked for and made in the block by one process at a time: the next one finds it made. The
    lock (fcntl.flock) goes with the open file, so the kernel releases it when its holder dies.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as file:
        fcntl.flock(file, fcntl.LOCK_EX)
        yield
