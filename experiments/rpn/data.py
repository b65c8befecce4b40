"""FaceScrub photos letterboxed to the face ResNet's 150 x 150 input, and its feature maps.

A photo is scaled so that its longer side is 150 pixels and centered on a 150 x 150 canvas
of the network's mean color (zero after its mean subtraction); its face box is mapped the
same way. Both the letterboxed photos and the feature maps are cached under cache_dir().
EXIF orientation is ignored, as facescrub does: the boxes were drawn on the stored pixels.
"""
import hashlib
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image
from tqdm import tqdm

import facescrub
from coursedata.files import atomic_write
from coursedata.paths import cache_dir, data_dir
from experiments.common.features import FeatureNetwork
from facescrub.splits import split_of
from tinynet.models.face_resnet import INPUT_SIZE, MEAN_RGB, FaceResNet, input_from_crops

from .boxes import from_corners

MAX_PIXELS = 40_000_000  # refuse decompression bombs; the largest genuine original has about 12 MP


@dataclass(frozen=True)
class FeatureLayer:
    """A face ResNet layer as an RPN input: its map is (channels, grid, grid), cell (row, col)
    centered at input pixel (offset + stride * col, offset + stride * row)."""

    name: str
    channels: int
    grid: int
    stride: int
    offset: int


# Cell centers follow the 'valid' convolutions: the 7x7 stride-2 stem puts output j at pixel
# 2j + 3, the 3x3 stride-2 pool output k at 4k + 5, conv64_down's 3x3 stride-2 conv at 8m + 9,
# conv128_down at 16n + 17; the 'same' 3x3 convs between them keep centers in place.
LAYERS = {"conv64_3": FeatureLayer("conv64_3", 64, 17, 8, 9),
          "conv128_2": FeatureLayer("conv128_2", 128, 8, 16, 17)}


class BadPhoto(ValueError):
    """A photo that cannot be letterboxed: unreadable, too large, or its face box lies outside it."""


def letterbox(path, bbox, size=INPUT_SIZE):
    """(image (size, size, 3) uint8, face (4,) as (x_center, y_center, w, h) in its pixels).

    bbox: (x1, y1, x2, y2) in the photo's stored pixels, clipped to the photo.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            previous, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, MAX_PIXELS
            try:
                with Image.open(path) as photo:
                    width, height = photo.size
                    photo.draft("RGB", (size, size))  # JPEG: decode at a reduced scale, much faster
                    rgb = photo.convert("RGB")
            finally:
                Image.MAX_IMAGE_PIXELS = previous
    except (Image.DecompressionBombError, Image.DecompressionBombWarning, OSError, SyntaxError, ValueError) as error:
        raise BadPhoto(f"{path}: not a readable photo ({error})") from None
    x1, y1, x2, y2 = max(bbox[0], 0), max(bbox[1], 0), min(bbox[2], width), min(bbox[3], height)
    if x2 <= x1 or y2 <= y1:
        raise BadPhoto(f"{path}: face box {bbox} lies outside the {width}x{height} photo")
    scale = size / max(width, height)
    new_width, new_height = max(round(width * scale), 1), max(round(height * scale), 1)
    left, top = (size - new_width) // 2, (size - new_height) // 2
    canvas = Image.new("RGB", (size, size), tuple(int(round(c)) for c in MEAN_RGB))
    canvas.paste(rgb.resize((new_width, new_height), Image.BILINEAR), (left, top))
    sx, sy = new_width / width, new_height / height
    face = from_corners([x1 * sx + left, y1 * sy + top, x2 * sx + left, y2 * sy + top])
    return np.asarray(canvas, dtype=np.uint8), face


@dataclass
class Photos:
    """images (N, S, S, 3) uint8 letterboxed; faces (N, 4) one (x_center, y_center, w, h) each;
    sha256 (N,) str; split (N,) 'train', 'val' or 'test'."""

    images: np.ndarray
    faces: np.ndarray
    sha256: np.ndarray
    split: np.ndarray

    def take(self, rows):
        return Photos(self.images[rows], self.faces[rows], self.sha256[rows], self.split[rows])

    def of_split(self, name):
        """The photos of one split ('train', 'val' or 'test')."""
        return self.take(self.split == name)


def load_photos(originals=None, size=INPUT_SIZE):
    """Every readable original letterboxed (cached per list of originals and size), and the skipped ones.

    originals: facescrub Original records (default: facescrub.originals()). Returns
    (Photos, {path: reason} of the photos that could not be read).
    """
    originals = facescrub.originals() if originals is None else originals
    if not originals:
        raise FileNotFoundError("no FaceScrub originals found: run `python -m facescrub download` or set "
                                "TINYNET_DATA to a folder with facescrub/images")
    key = hashlib.sha256(repr([(o.sha256, tuple(o.bbox)) for o in originals]).encode()).hexdigest()[:16]
    cache = cache_dir() / "rpn" / f"photos-{size}-{key}.npz"
    if cache.exists():
        with np.load(cache, allow_pickle=False) as archive:
            kept, images, faces = archive["kept"], archive["images"], archive["faces"]
            skipped = dict(zip(archive["skipped_paths"], archive["skipped_reasons"]))
    else:
        images, faces, kept, skipped = [], [], [], {}
        for i, original in enumerate(tqdm(originals, desc="letterboxing photos", mininterval=1.0)):
            try:
                image, face = letterbox(original.path, original.bbox, size)
            except BadPhoto as error:
                skipped[str(original.path)] = str(error)
                continue
            images.append(image), faces.append(face), kept.append(i)
        images, faces, kept = np.stack(images), np.stack(faces), np.array(kept)
        with atomic_write(cache) as file:
            np.savez(file, kept=kept, images=images, faces=faces, skipped_paths=np.array(list(skipped), str),
                     skipped_reasons=np.array(list(skipped.values()), str))
    hashes = np.array([originals[i].sha256 for i in kept])
    return Photos(images, faces, hashes, np.array([split_of(h) for h in hashes])), skipped


def feature_maps(photos, layer):
    """Face ResNet feature maps (N, C, G, G) float32 of photos at a FeatureLayer, cached on disk."""
    network = FeatureNetwork(f"face_resnet_{layer.name}_letterbox{photos.images.shape[1]}", INPUT_SIZE,
                             FaceResNet.pretrained(data_dir() / "pretrained"), input_from_crops, layer.name)
    flat = network.features(photos.images.astype(np.float32) / 255, list(photos.sha256))
    return flat.reshape(len(flat), layer.channels, layer.grid, layer.grid)
