"""A content-addressed folder of original images: <sha256>.<ext>, written atomically.

File names come only from the SHA-256 of the bytes and an extension sniffed from their
first bytes, never from a server or a URL, so nothing can be written outside the folder.
A file appears only complete (temporary file + rename); temporary files left by a killed
run start with "." and end with ".tmp", and remove_temporary() clears them.
"""
import hashlib
import os
import re
import tempfile
from fnmatch import fnmatchcase
from pathlib import Path

from coursedata.files import TEMPORARY_SUFFIX, atomic_write

MAGIC = [(b"\xff\xd8\xff", "jpg"), (b"\x89PNG\r\n\x1a\n", "png"), (b"GIF87a", "gif"), (b"GIF89a", "gif"),
         (b"BM", "bmp"), (b"RIFF", "webp")]
EXTENSIONS = tuple(dict.fromkeys([ext for _, ext in MAGIC] + ["bin"]))
SHA256_NAME = re.compile(r"[0-9a-f]{64}")
TEMPORARY_PATTERN = f".*{TEMPORARY_SUFFIX}"
QUARANTINE = "quarantine"


def sniff_extension(data: bytes) -> str:
    """'jpg', 'png', ... from the magic bytes; 'bin' when the bytes are no known image type."""
    return next((ext for magic, ext in MAGIC if data.startswith(magic)), "bin")


def sha256_of(data: bytes) -> str:
    """The SHA-256 of data as 64 lowercase hex digits."""
    return hashlib.sha256(data).hexdigest()


def sha256_of_file(path) -> str:
    """The SHA-256 of the file's bytes (read in chunks) as 64 lowercase hex digits."""
    with open(path, "rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


class Store:
    """Originals named by their SHA-256 in one folder; read_only: never moved or written (a mirror)."""

    def __init__(self, folder, read_only=False):
        self.folder = Path(folder)
        self.read_only = read_only

    def find(self, sha256: str):
        """Path of the stored file with this hash, or None."""
        if not SHA256_NAME.fullmatch(sha256):
            raise ValueError(f"not a SHA-256 hex digest: {sha256!r}")
        return next((path for path in (self.folder / f"{sha256}.{ext}" for ext in EXTENSIONS) if path.exists()), None)

    def verified(self, sha256: str):
        """(path, None) if the file stored under sha256 still has those bytes; (None, None) if there is
        none; (None, why) if its bytes do not match its name: it is then quarantined (see module docstring)
        and `why` says where it went and how to get the image again."""
        path = self.find(sha256)
        if path is None or sha256_of_file(path) == sha256:
            return path, None
        why = f"{path}: its bytes do not match the SHA-256 in its name"
        if self.read_only:
            return None, f"{why}; not used"
        try:
            moved = self.quarantine(path)
        except OSError as error:
            return None, f"{why}; not used, and it could not be moved aside ({error.strerror})"
        return None, f"{why}; moved to {moved}; `python -m facescrub download` fetches it again"

    def verify_all(self) -> list:
        """Re-hash every stored file (see verified); return one line per file that did not match."""
        return [why for why in (self.verified(sha)[1] for sha in sorted(self.hashes())) if why]

    def quarantine(self, path) -> Path:
        """Move a stored file into <folder>/quarantine/ (a new name if one is taken there); return where it went."""
        folder = self.folder / QUARANTINE
        folder.mkdir(exist_ok=True)
        target, copies = folder / path.name, 0
        while target.exists():
            copies += 1
            target = folder / f"{path.name}.{copies}"
        os.replace(path, target)
        return target

    def hashes(self) -> set:
        """The SHA-256 of every stored file (from the names)."""
        return {path.stem for path in self.folder.glob("*.*") if SHA256_NAME.fullmatch(path.stem)}

    def add(self, data: bytes) -> Path:
        """Write data as <sha256>.<ext> (temporary file + rename: never half-written); return its path.

        An OSError (a full disk, a read-only folder) names the file it was writing.
        """
        path = self.folder / f"{sha256_of(data)}.{sniff_extension(data)}"
        if path.exists():
            return path
        try:
            with atomic_write(path) as file:
                file.write(data)
        except OSError as error:
            error.filename = error.filename or str(path)
            raise
        return path

    def check_writable(self):
        """Create the folder if needed; OSError naming the folder unless a file can be written in it."""
        self.folder.mkdir(parents=True, exist_ok=True)
        try:
            tempfile.TemporaryFile(dir=self.folder).close()
        except OSError as error:
            raise OSError(error.errno, error.strerror, str(self.folder)) from None

    def temporary_files(self) -> list:
        """Leftover temporary files (a run killed mid-write leaves one; a finished run none)."""
        return sorted(self.each_temporary_file())

    def each_temporary_file(self):
        """The leftover temporary files one at a time: the folder is read as a stream, never listed whole."""
        if not self.folder.is_dir():
            return
        with os.scandir(self.folder) as entries:
            yield from (Path(entry.path) for entry in entries if fnmatchcase(entry.name, TEMPORARY_PATTERN))

    def remove_temporary(self) -> int:
        """Delete leftover temporary files (do not run two downloads into one store); return how many."""
        removed = 0
        for path in self.each_temporary_file():
            path.unlink(missing_ok=True)
            removed += 1
        return removed
