"""A deterministic train/validation/test split that does not move when images come and go.

Each image's split depends only on its SHA-256: u = the first 8 bytes of sha256("split:" +
image hash) as a fraction of 2^64 is uniform in [0, 1); u < train goes to training,
u < train + val to validation, the rest to test. Adding or losing images never moves
another image, and two list lines with the same image always land in the same split.

Each image is placed on its own, so every actor gets the fractions in expectation rather
than exact counts: with the replay's 669 faces the six actors get 51-97 training, 8-14
validation and 19-31 test faces (the course asked for up to 70/10/20 images per actor; a
fixed count per actor would move images between splits whenever one is added or lost).
"""
import hashlib

SPLITS = ("train", "val", "test")
DEFAULT_FRACTIONS = (0.7, 0.1)  # train, validation; the remaining 0.2 is test (the course: 70/10/20)


def split_of(sha256: str, fractions=DEFAULT_FRACTIONS) -> str:
    """'train', 'val' or 'test' for the image with this SHA-256."""
    train, val = fractions
    if not (0 < train and 0 <= val and train + val < 1):
        raise ValueError(f"fractions must satisfy 0 < train, 0 <= val, train + val < 1; got {fractions}")
    u = int.from_bytes(hashlib.sha256(f"split:{sha256}".encode()).digest()[:8], "big") / 2**64
    return "train" if u < train else "val" if u < train + val else "test"
