"""Splits and the arrays the experiments load: stable per image, no photo in two splits, a stable API."""
import inspect
import shutil

import numpy as np
import pytest

import facescrub
from conftest import require_data
from facescrub import dataset as dataset_module
from facescrub.__main__ import main
from facescrub.dataset import FaceDataset, Split, available_faces
from facescrub.prepare import CropSpec
from facescrub.splits import split_of
from facescrub.store import Store
from tests.coursedata.test_files import lock_is_free

ACTOR_PAIR = ["Peri Gilpin", "Michael Vartan"]  # Michael Vartan has photos listed with two faces


@pytest.fixture
def empty_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYNET_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_split_fractions_and_validation():
    hashes = [f"{i:064x}" for i in range(20_000)]
    shares = {name: sum(split_of(h) == name for h in hashes) / len(hashes) for name in ("train", "val", "test")}
    assert shares == pytest.approx({"train": 0.7, "val": 0.1, "test": 0.2}, abs=0.015)
    assert sum(split_of(h, (0.5, 0.25)) == "val" for h in hashes) / len(hashes) == pytest.approx(0.25, abs=0.015)
    with pytest.raises(ValueError, match="train \\+ val < 1"):
        split_of(hashes[0], (0.8, 0.2))


def test_load_faces_splits_by_image_and_caches(empty_cache, monkeypatch):
    mirror = Store(require_data("facescrub/images"))
    faces = available_faces(ACTOR_PAIR, [mirror])
    data = facescrub.load_faces(32, actors=ACTOR_PAIR, stores=[mirror])
    splits = {"train": data.train, "val": data.val, "test": data.test}
    assert data.actors == ACTOR_PAIR and data.unreadable == {}
    assert sum(len(s.y) for s in splits.values()) == len(faces) == 88 + 139
    for split in splits.values():
        assert split.x.shape == (len(split.y), 32, 32) and split.x.dtype == np.float32
        assert 0 <= split.x.min() and split.x.max() <= 1 and len(split.sha256) == len(split.y)
    assert [sum((s.y == k).sum() for s in splits.values()) for k in (0, 1)] == [88, 139]
    names = {name: set(split.sha256) for name, split in splits.items()}
    assert not (names["train"] & names["test"] or names["train"] & names["val"] or names["val"] & names["test"])
    shared = {face.sha256 for face in faces if sum(other.sha256 == face.sha256 for other in faces) > 1}
    assert len(shared) >= 2
    assert all(sum(sha in split.sha256 for split in splits.values()) == 1 for sha in shared)
    assert all((split.sha256 == sha).sum() >= 2 for sha in shared for split in splits.values() if sha in split.sha256)

    def no_cropping(*args, **kwargs):
        raise AssertionError("load_faces cropped again instead of reading its cache")

    monkeypatch.setattr(dataset_module, "crop_all", no_cropping)
    again = facescrub.load_faces(32, actors=ACTOR_PAIR, stores=[mirror])
    np.testing.assert_array_equal(again.test.x, data.test.x)
    assert len(list(empty_cache.rglob("*.npz"))) == 1 and not list(empty_cache.rglob("*.tmp*"))


def test_subset_takes_the_first_images_of_each_actor():
    def split(labels):
        labels = np.array(labels)
        rows = np.arange(len(labels))
        return Split(rows[:, None].astype(np.float32), labels, rows.astype(str))

    data = FaceDataset(split([0, 1, 0, 0, 1]), split([1]), split([]), ["A", "B"], {})
    small = data.subset(per_actor=2)
    assert small.train.x[:, 0].tolist() == [0, 1, 2, 4] and small.val.y.tolist() == [1] and len(small.test.y) == 0


def test_public_api_the_experiments_use():
    assert facescrub.ACTORS == ("Gerard Butler", "Daniel Radcliffe", "Michael Vartan", "Lorraine Bracco", "Peri Gilpin",
                                "Angie Harmon")
    assert list(inspect.signature(facescrub.load_faces).parameters)[:3] == ["size", "color", "actors"]
    assert list(inspect.signature(facescrub.originals).parameters)[:1] == ["actors"]
    assert list(Split.__dataclass_fields__) == ["x", "y", "sha256"]
    assert {"train", "val", "test", "actors"} <= set(FaceDataset.__dataclass_fields__)


def test_load_faces_crops_under_a_lock_beside_its_cache(empty_cache, monkeypatch):
    """Experiments run side by side by `make report`: while one crops a set of faces, another asking for the
    same set waits for the lock and then reads the cache (no two crop the same set at once)."""
    mirror, cropped_under_lock = Store(require_data("facescrub/images")), []
    crop_all = dataset_module.crop_all

    def crop_all_checking_the_lock(*args, **kwargs):
        [lock] = empty_cache.rglob("faces-*.lock")
        cropped_under_lock.append(not lock_is_free(lock))
        return crop_all(*args, **kwargs)

    monkeypatch.setattr(dataset_module, "crop_all", crop_all_checking_the_lock)
    facescrub.load_faces(32, actors=ACTOR_PAIR[:1], stores=[mirror])
    assert cropped_under_lock == [True]
    [lock] = empty_cache.rglob("faces-*.lock")
    assert lock_is_free(lock)


def test_face_sets_decode_each_photo_once_and_equal_their_one_size_loads(empty_cache, monkeypatch):
    mirror, decoded = Store(require_data("facescrub/images")), []
    face_region = dataset_module.face_region

    def counted(path, bbox):
        decoded.append(path)
        return face_region(path, bbox)

    monkeypatch.setattr(dataset_module, "face_region", counted)
    specs = [CropSpec(16), CropSpec(8, color=True)]
    alone = [facescrub.load_faces(spec.size, spec.color, actors=ACTOR_PAIR[:1], stores=[mirror]) for spec in specs]
    decoded_alone = len(decoded)
    for cache in empty_cache.rglob("faces-*.npz"):
        cache.unlink()
    together = facescrub.load_face_sets(specs, actors=ACTOR_PAIR[:1], stores=[mirror])
    assert len(decoded) - decoded_alone == decoded_alone / 2 > 0
    assert together[0].train.x.shape[1:] == (16, 16) and together[1].train.x.shape[1:] == (8, 8, 3)
    for one, both in zip(alone, together):
        for split in ("train", "val", "test"):
            np.testing.assert_array_equal(getattr(one, split).x, getattr(both, split).x)
            np.testing.assert_array_equal(getattr(one, split).sha256, getattr(both, split).sha256)


def test_cli_prepare_and_stats_use_the_given_store(empty_cache, tmp_path, capsys):
    images = require_data("facescrub/images")
    photos = facescrub.originals(["Peri Gilpin"], [Store(images)])[:5]
    store = tmp_path / "store"
    store.mkdir()
    for photo in photos:
        shutil.copy(photo.path, store)
    main(["stats", "--store", str(store), "--actors", "Peri Gilpin"])
    assert "Peri Gilpin        listed faces  195   available    5" in capsys.readouterr().out
    main(["prepare", "--store", str(store), "--actors", "Peri Gilpin", "--size", "16", "--color"])
    out = capsys.readouterr().out
    counts = [int(word) for word in out.splitlines()[1].split()[2:] if word.isdigit()]
    assert out.startswith("16x16 RGB crops per actor:") and sum(counts) == 5
    with pytest.raises(SystemExit):
        main(["stats", "--actors", "Nobody Atall"])


def test_a_corrupted_original_is_quarantined_and_never_cropped(empty_cache, tmp_path):
    photos = facescrub.originals(["Peri Gilpin"], [Store(require_data("facescrub/images"))])[:3]
    store, mirror = Store(tmp_path / "store"), Store(tmp_path / "mirror", read_only=True)
    for photo in photos:
        for folder in (store.folder, mirror.folder):
            folder.mkdir(exist_ok=True)
            shutil.copy(photo.path, folder)
    corrupted = bytearray(photos[0].path.read_bytes())
    corrupted[len(corrupted) // 2] ^= 0xFF  # one flipped byte: still decodes as a photo, but not this one
    stored = store.find(photos[0].sha256)
    stored.write_bytes(bytes(corrupted))
    (mirror.folder / stored.name).write_bytes(bytes(corrupted))

    data = facescrub.load_faces(16, actors=["Peri Gilpin"], stores=[store])
    assert photos[0].sha256 not in np.concatenate([data.train.sha256, data.val.sha256, data.test.sha256])
    quarantined = store.folder / "quarantine" / stored.name
    assert "moved to" in data.unreadable[str(stored)] and quarantined.read_bytes() == bytes(corrupted)

    data = facescrub.load_faces(16, actors=["Peri Gilpin"], stores=[store, mirror])
    assert data.unreadable == {str(mirror.folder / stored.name): f"{mirror.folder / stored.name}: its bytes do not "
                                                                  "match the SHA-256 in its name; not used"}
    assert (mirror.folder / stored.name).read_bytes() == bytes(corrupted)
