"""A content-addressed folder of original images: <sha256>.<ext>, written atomically.

File names come only from the SHA-256 of the bytes and an extension sniffed from their
first bytes, never from a server or a URL, so nothing can be written outside the folder.
A file appears only complete (temporary file + rename); temporary files left by a killed
run start with "." and end with ".tmp", and remove_temporary() clears them.
"""
import hashlib
import re
from pathlib import Path

from coursedata.files import TEMPORARY_SUFFIX, atomic_write

MAGIC = [(b"\xff\xd8\xff", "jpg"), (b"\x89PNG\r\n\x1a\n", "png"), (b"GIF87a", "gif"), (b"GIF89a", "gif"),
         (b"BM", "bmp"), (b"RIFF", "webp")]
EXTENSIONS = tuple(dict.fromkeys([ext for _, ext in MAGIC] + ["bin"]))
SHA256_NAME = re.compile(r"[0-9a-f]{64}")
TEMPORARY_PATTERN = f".*{TEMPORARY_SUFFIX}"


def sniff_extension(data: bytes) -> str:
    """'jpg', 'png', ... from the magic bytes; 'bin' when the bytes are no known image type."""
    return next((ext for magic, ext in MAGIC if data.startswith(magic)), "bin")


def sha256_of(data: bytes) -> str:
    """The SHA-256 of data as 64 lowercase hex digits."""
    return hashlib.sha256(data).hexdigest()


class Store:
    """Originals named by their SHA-256 in one folder."""

    def __init__(self, folder):
        self.folder = Path(folder)

    def find(self, sha256: str):
        """Path of the stored file with this hash, or None."""
        if not SHA256_NAME.fullmatch(sha256):
            raise ValueError(f"not a SHA-256 hex digest: {sha256!r}")
        return next((path for path in (self.folder / f"{sha256}.{ext}" for ext in EXTENSIONS) if path.exists()), None)

    def hashes(self) -> set:
        """The SHA-256 of every stored file (from the names)."""
        return {path.stem for path in self.folder.glob("*.*") if SHA256_NAME.fullmatch(path.stem)}

    def add(self, data: bytes) -> Path:
        """Write data as <sha256>.<ext> (temporary file + rename: never half-written); return its path."""
        path = self.folder / f"{sha256_of(data)}.{sniff_extension(data)}"
        if path.exists():
            return path
        with atomic_write(path) as file:
            file.write(data)
        return path

    def temporary_files(self) -> list:
        """Leftover temporary files (a run killed mid-write leaves one; a finished run none)."""
        return sorted(self.folder.glob(TEMPORARY_PATTERN))

    def remove_temporary(self) -> int:
        """Delete leftover temporary files (do not run two downloads into one store); return how many."""
        leftovers = self.temporary_files()
        for path in leftovers:
            path.unlink(missing_ok=True)
        return len(leftovers)
