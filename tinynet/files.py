"""Writing a file so that nobody ever reads half of it."""
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

TEMPORARY_SUFFIX = ".tmp"  # atomic_write's temporary files are named .<name>.<random>.tmp
_UMASK = os.umask(0o022)  # read the process's umask (the only way is to set it) and put it back
os.umask(_UMASK)


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
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMPORARY_SUFFIX)
    try:
        os.chmod(temporary, 0o666 & ~_UMASK)
        with os.fdopen(handle, mode, **({"newline": ""} if mode == "w" else {})) as file:
            yield file
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise
