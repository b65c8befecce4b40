"""The faces as arrays for the experiments: cropped, resized, cached, and split.

Originals are looked up by SHA-256 in the download store (cache_dir()/facescrub/originals)
and then in the mirror (data_dir()/facescrub/images, the replay's genuine originals), so
this works offline. Every file is re-hashed before it is used: one whose bytes do not match
its name is never cropped (the store quarantines it, see store.py) and the next store is
looked at instead. There is one crop per list line (a photo listed with two faces gives
two), and crops are cached per size, color and set of faces as .npz, made by one process at a time.
"""
import contextlib
import hashlib
import math
import os
from collections import Counter
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from coursedata.files import atomic_write, locked
from coursedata.paths import cache_dir, data_dir

from .lists import ACTORS, read_lists
from .prepare import MAX_PIXELS, BadImage, CropSpec, face_region, resized_face
from .splits import DEFAULT_FRACTIONS, SPLITS, split_of
from .store import Store


def default_store():
    """Where `python -m facescrub download` stores originals by default."""
    return Store(cache_dir() / "facescrub" / "originals")


def default_mirror():
    """The replay's genuine originals in the data folder (read-only), used when nothing was downloaded."""
    return Store(data_dir() / "facescrub" / "images", read_only=True)


@dataclass(frozen=True, slots=True)
class Original:
    """An uncropped photo on disk, the face box in it, whose face it is, and its SHA-256."""

    path: object
    bbox: tuple
    actor: str
    sha256: str


@dataclass
class Split:
    """One row per face. x: (N, S, S) or (N, S, S, 3) float32 in [0, 1]; y: (N,) actor indices; sha256: (N,) str."""

    x: np.ndarray
    y: np.ndarray
    sha256: np.ndarray

    def take(self, rows):
        """The rows (indices or a boolean mask) of this split."""
        return Split(self.x[rows], self.y[rows], self.sha256[rows])


@dataclass
class FaceDataset:
    """Train/validation/test splits of face crops; label k means actors[k]. unreadable: {path: why}
    for each file not used (bytes not matching its name, or not an image that can be cropped)."""

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


def available_faces(actors=ACTORS, stores=None, lists=None):
    """Every list line of the actors whose original is on disk with the right bytes, as an Original, in list order.

    A photo with several listed faces (the same SHA-256 on several lines) gives one per face.
    lists: the list files (default: the course's two lists).
    """
    return verified_faces(actors, stores, lists)[0]


def verified_faces(actors=ACTORS, stores=None, lists=None):
    """(available_faces, {path: why} for the files whose bytes did not match their name; see Store.verified)."""
    stores = [store for store in (stores or [default_store(), default_mirror()]) if store.folder.exists()]
    found, paths, corrupted = [], {}, {}
    for face in read_lists(lists, actors=actors).faces:
        if face.sha256 not in paths:
            paths[face.sha256] = first_verified(stores, face.sha256, corrupted)
        if paths[face.sha256] is not None:
            found.append(Original(paths[face.sha256], face.bbox, face.actor, face.sha256))
    return found, corrupted


def first_verified(stores, sha256, corrupted):
    """The path of the first store's file with this SHA-256 and matching bytes, or None; adds a
    line to corrupted ({path: why}) for each file that did not match."""
    for store in stores:
        path = store.find(sha256)
        verified, why = store.verified(sha256)
        if why:
            corrupted[str(path)] = why
        if verified is not None:
            return verified
    return None


def originals(actors=ACTORS, stores=None):
    """The available originals of the actors, one per SHA-256 (with its first list line's box), list order."""
    unique = {}
    for photo in available_faces(actors, stores):
        unique.setdefault(photo.sha256, photo)
    return list(unique.values())


def crop_all(photos, specs, progress=True):
    """Crop every face at each of specs, decoding each photo once: ([images (N, S, S[, 3]) float32 for each spec],
    kept indices into photos (N,), {path: error} for the rest).

    An unreadable file (truncated, a decompression bomb, box outside the image) is reported
    and skipped; it does not stop the others. The crops are written into arrays made up
    front, so the peak memory is one copy of them.
    """
    images = [np.empty((len(photos), *spec.shape), np.float32) for spec in specs]
    kept, unreadable = [], {}
    names = ", ".join(spec.name for spec in specs)
    for i, photo in enumerate(tqdm(photos, desc=f"cropping {names}", mininterval=1.0, disable=not progress)):
        try:
            face = face_region(photo.path, photo.bbox)
        except BadImage as error:
            unreadable[str(photo.path)] = str(error)
            continue
        for spec_images, spec in zip(images, specs):
            spec_images[len(kept)] = resized_face(face, spec)
        kept.append(i)
    return [spec_images[:len(kept)] for spec_images in images], np.array(kept, int), unreadable


def available_memory():
    """Bytes of memory this process can still get: MemAvailable from /proc/meminfo, else free pages."""
    try:
        with open("/proc/meminfo") as meminfo:
            return next(int(line.split()[1]) * 1024 for line in meminfo if line.startswith("MemAvailable:"))
    except (OSError, StopIteration, ValueError):
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def check_memory(count, specs):
    """ValueError before any work if `count` crops at each of specs would not fit in memory.

    The crops of a spec are float32 in one array (the splits are slices of it), plus one decoded original
    (at most MAX_PIXELS RGB pixels, as bytes and as a crop source).
    """
    needed = count * sum(math.prod(spec.shape) for spec in specs) * 4 + 2 * 3 * MAX_PIXELS
    available = available_memory()
    if needed > available:
        names = ", ".join(spec.name for spec in specs)
        raise ValueError(f"{count} crops of {names} need about {needed / 2**30:.1f} GB of memory and "
                         f"{available / 2**30:.1f} GB is available: choose a smaller --size (or leave out --color)")


def load_faces(size=32, color=False, actors=ACTORS, fractions=DEFAULT_FRACTIONS, stores=None, lists=None):
    """Face crops (one per available list line) of the actors, split by SHA-256 (see splits.py).

    Cached as .npz per size, color and set of faces in cache_dir()/facescrub. Lines sharing an
    image share its split, so no photo is in both training and test. The faces are cropped in
    split order (list order within a split), so that each split is a slice of one array, not a copy.
    """
    [dataset] = load_face_sets([CropSpec(size, color)], actors, fractions, stores, lists)
    return dataset


def load_face_sets(specs, actors=ACTORS, fractions=DEFAULT_FRACTIONS, stores=None, lists=None):
    """load_faces at each CropSpec of specs: [FaceDataset for each spec]. The sets not cached yet are cropped in one
    pass over the photos, each decoded once (the decoding was nine tenths of a set's cropping: 3.3 s of the
    course's 669 faces at one size)."""
    actors = list(actors)
    photos, corrupted = verified_faces(actors, stores, lists)
    photos.sort(key=lambda photo: SPLITS.index(split_of(photo.sha256, fractions)))
    if not photos:
        raise FileNotFoundError("no FaceScrub originals found: run `python -m facescrub download` or set "
                                "TINYNET_DATA to a folder with facescrub/images")
    key = hashlib.sha256(repr([(p.sha256, p.bbox, p.actor) for p in photos]).encode()).hexdigest()[:16]
    caches = {spec: cache_dir() / "facescrub" / f"faces-{spec.name}-{key}.npz" for spec in specs}
    with contextlib.ExitStack() as locks:  # experiments run side by side crop each set once
        for cache in sorted(caches.values()):  # always in one order: no two processes each wait for the other's lock
            locks.enter_context(locked(cache.with_name(cache.name + ".lock")))
        missing = [spec for spec, cache in caches.items() if not cache.exists()]
        made = {}
        if missing:
            check_memory(len(photos), missing)
            cropped, kept, unreadable = crop_all(photos, missing)
            for spec, images in zip(missing, cropped):
                made[spec] = images, kept, unreadable
                with atomic_write(caches[spec]) as file:
                    np.savez(file, images=images, kept=kept, unreadable_paths=np.array(list(unreadable), str),
                             unreadable_errors=np.array(list(unreadable.values()), str))
        crops = [made[spec] if spec in made else read_crops(caches[spec]) for spec in specs]
    return [face_dataset(photos, actors, fractions, corrupted, *set_crops) for set_crops in crops]


def read_crops(cache):
    """(images, kept, unreadable) as load_face_sets cached them."""
    with np.load(cache, allow_pickle=False) as archive:
        unreadable = dict(zip(archive["unreadable_paths"].tolist(), archive["unreadable_errors"].tolist()))
        return archive["images"], archive["kept"], unreadable


def face_dataset(photos, actors, fractions, corrupted, images, kept, unreadable):
    """The FaceDataset of the crops (images (N, ...), of photos[kept], which are in split order) of the actors."""
    kept_photos = [photos[i] for i in kept]
    labels = np.array([actors.index(p.actor) for p in kept_photos], dtype=np.int64)
    hashes = np.array([p.sha256 for p in kept_photos], dtype=str)
    counts = Counter(split_of(h, fractions) for h in hashes)
    ends = np.cumsum([counts[name] for name in SPLITS])
    train, val, test = (Split(images[start:end], labels[start:end], hashes[start:end])
                        for start, end in zip([0, *ends[:-1]], ends))
    return FaceDataset(train, val, test, actors, {**corrupted, **unreadable})
