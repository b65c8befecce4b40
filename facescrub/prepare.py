"""Cropping faces out of the originals, safely: any mode, size limits, clear per-file errors.

EXIF orientation is ignored on purpose: FaceScrub's boxes were drawn on the stored pixel
grid, so the crop uses the pixels as stored (applying the EXIF rotation would move the box
off the face). Only common web image formats are decoded, and an image whose header claims
more than MAX_PIXELS pixels is refused before its pixels are decoded (a decompression bomb:
a small file that expands to gigabytes).
"""
from dataclasses import dataclass

import numpy as np
from PIL import Image

MAX_PIXELS = 40_000_000  # more than any genuine original (the largest is about 12 MP)
FORMATS = ("JPEG", "PNG", "GIF", "BMP", "WEBP")


class BadImage(ValueError):
    """An original that cannot be cropped: unreadable, truncated, too large, or box outside it."""


@dataclass(frozen=True)
class CropSpec:
    """Output size (pixels per side) and color (RGB) or grayscale."""

    size: int = 32
    color: bool = False

    @property
    def name(self):
        return f"{self.size}x{self.size}-{'rgb' if self.color else 'gray'}"

    @property
    def shape(self):
        """One crop's array shape: (S, S) gray, (S, S, 3) RGB."""
        return (self.size, self.size, 3) if self.color else (self.size, self.size)


def clip_box(bbox, width, height):
    """(x1, y1, x2, y2) clipped to a width x height image; BadImage if nothing of the box is inside."""
    x1, y1, x2, y2 = max(bbox[0], 0), max(bbox[1], 0), min(bbox[2], width), min(bbox[3], height)
    if x2 <= x1 or y2 <= y1:
        raise BadImage(f"face box {tuple(bbox)} lies outside the {width}x{height} image")
    return x1, y1, x2, y2


def open_rgb(path) -> Image.Image:
    """The image at path decoded to RGB (first frame; any mode); BadImage naming the file if it cannot be."""
    try:
        with Image.open(path, formats=FORMATS) as image:
            if image.width * image.height > MAX_PIXELS:
                raise BadImage(f"{path}: refusing a decompression bomb: {image.width}x{image.height} pixels "
                               f"is more than {MAX_PIXELS}")
            image.load()
            return image.convert("RGB")
    except BadImage:
        raise
    except Image.DecompressionBombError as error:
        raise BadImage(f"{path}: refusing a decompression bomb ({error})") from None
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        raise BadImage(f"{path}: not a readable image ({type(error).__name__}: {error})") from None


def face_region(path, bbox) -> Image.Image:
    """The RGB face in bbox (clipped to the image), at the photo's resolution: decoded once for every crop of it."""
    rgb = open_rgb(path)
    return rgb.crop(clip_box(bbox, *rgb.size))


def resized_face(face: Image.Image, spec: CropSpec) -> np.ndarray:
    """A face_region resized to spec.size: an array of spec.shape, float32 in [0, 1].

    FaceScrub's boxes are square; a box clipped at the border is not, and is stretched to a square.
    """
    if not spec.color:
        face = face.convert("L")
    face = face.resize((spec.size, spec.size), Image.LANCZOS)
    return np.asarray(face, dtype=np.float32) / 255
