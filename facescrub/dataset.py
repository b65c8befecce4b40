"""The faces as arrays for the experiments: cropped, resized, cached, and split.

Originals are looked up by SHA-256 in the download store (cache_dir()/facescrub/originals)
and then in the mirror (data_dir()/facescrub/images, the replay's genuine originals), so
this works offline. Prepared arrays are cached per size and color as .npz.
"""
import hashlib
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from tinynet.paths import cache_dir, data_dir

from .lists import ACTORS, read_lists
from .prepare import BadImage, CropSpec, crop_face
from .splits import DEFAULT_FRACTIONS, split_of
from .store import Store


def default_store():
    return Store(cache_dir() / "facescrub" / "originals")


def default_mirror():
    return Store(data_dir() / "facescrub" / "images")


@dataclass(frozen=True)
class Original:
    """An uncropped photo on disk, the face box in it, whose face it is, and its SHA-256."""

    path: object
    bbox: tuple
    actor: str
    sha256: str


@dataclass
class Split:
    """x: (N, S, S) or (N, S, S, 3) float32 in [0, 1]; y: (N,) actor indices; sha256: (N,) str."""

    x: np.ndarray
    y: np.ndarray
    sha256: np.ndarray

    def take(self, rows):
        return Split(self.x[rows], self.y[rows], self.sha256[rows])


@dataclass
class FaceDataset:
    """Train/validation/test splits of face crops; label k means actors[k]."""

    train: Split
    val: Split
    test: Split
    actors: list
    unreadable: dict

    def subset(self, per_actor):
        """The first per_actor images of each actor in each split (for quick smoke runs)."""
        def first(split):
            rows = np.concatenate([np.flatnonzero(split.y == k)[:per_actor] for k in range(len(self.actors))])
            return split.take(np.sort(rows))
        return FaceDataset(first(self.train), first(self.val), first(self.test), self.actors, self.unreadable)


def originals(actors=ACTORS, stores=None):
    """The available originals of the actors, one per SHA-256 (the first list line's box), list order."""
    stores = stores or [default_store(), default_mirror()]
    found, seen = [], set()
    for face in read_lists(actors=actors).faces:
        if face.sha256 in seen:
            continue
        path = next((p for p in (store.find(face.sha256) for store in stores if store.folder.exists()) if p), None)
        if path is not None:
            seen.add(face.sha256)
            found.append(Original(path, face.bbox, face.actor, face.sha256))
    return found


def _crops(photos, spec):
    """Crop every original: (images (N, ...), kept row indices, {path: error} for unreadable ones)."""
    images, kept, unreadable = [], [], {}
    for i, photo in enumerate(tqdm(photos, desc=f"cropping {spec.name}", mininterval=1.0)):
        try:
            images.append(crop_face(photo.path, photo.bbox, spec))
            kept.append(i)
        except BadImage as error:
            unreadable[str(photo.path)] = str(error)
    return np.stack(images), kept, unreadable


def load_faces(size=32, color=False, actors=ACTORS, fractions=DEFAULT_FRACTIONS, stores=None):
    """Face crops of the actors, split by SHA-256 (see splits.py), cached per size and color."""
    actors = list(actors)
    photos = originals(actors, stores)
    if not photos:
        raise FileNotFoundError("no FaceScrub originals found: run `python -m facescrub download` or set "
                                "TINYNET_DATA to a folder with facescrub/images")
    spec = CropSpec(size, color)
    key = hashlib.sha256(repr([(p.sha256, p.bbox, p.actor) for p in photos]).encode()).hexdigest()[:16]
    cache = cache_dir() / "facescrub" / f"faces-{spec.name}-{key}.npz"
    if cache.exists():
        with np.load(cache, allow_pickle=False) as archive:
            images, kept = archive["images"], archive["kept"]
            unreadable = dict(zip(archive["unreadable_paths"], archive["unreadable_errors"]))
    else:
        images, kept, unreadable = _crops(photos, spec)
        cache.parent.mkdir(parents=True, exist_ok=True)
        temporary = cache.with_name(f".{cache.name}.tmp.npz")
        np.savez(temporary, images=images, kept=np.array(kept), unreadable_paths=np.array(list(unreadable), str),
                 unreadable_errors=np.array(list(unreadable.values()), str))
        temporary.replace(cache)
    kept_photos = [photos[i] for i in kept]
    labels = np.array([actors.index(p.actor) for p in kept_photos])
    hashes = np.array([p.sha256 for p in kept_photos])
    which = np.array([split_of(h, fractions) for h in hashes])
    splits = {name: Split(images[which == name], labels[which == name], hashes[which == name])
              for name in ("train", "val", "test")}
    return FaceDataset(splits["train"], splits["val"], splits["test"], actors, unreadable)
