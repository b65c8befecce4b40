"""Small heatmaps of image-shaped arrays, for the backward stepper page: a few planes, block-averaged, one byte each.

An array of shape (N, C, H, W) gives the planes of its first image's first MAX_PLANES channels; one of shape
(H, W) gives itself. Each plane is averaged over square blocks of `factor` x `factor` pixels (factor = the
smallest that fits the longer side in MAX_SIDE), then every value is stored as a signed byte, value / scale
* 127 rounded, with scale the largest |value| of the planes (so 0 stays 0 and the colours are comparable
across planes); a block that holds a NaN or an infinity is stored as -128. A heatmap is at most
MAX_PLANES * MAX_SIDE**2 bytes, whatever the array's size.
"""
import base64
import math

import numpy as np

MAX_SIDE = 20
MAX_PLANES = 3
NOT_FINITE = -128


def is_image_shaped(shape) -> bool:
    """True for (N, C, H, W) and (H, W) with H, W >= 2: the shapes drawn as heatmaps."""
    return len(shape) in (2, 4) and min(shape[-2:]) >= 2 and all(size > 0 for size in shape)


def block_means(plane: np.ndarray, factor: int) -> np.ndarray:
    """plane (H, W) averaged over factor x factor blocks -> (ceil(H / factor), ceil(W / factor)); edge blocks
    average the pixels they have."""
    starts_h, starts_w = np.arange(0, plane.shape[0], factor), np.arange(0, plane.shape[1], factor)
    sums = np.add.reduceat(np.add.reduceat(plane, starts_h, axis=0), starts_w, axis=1)
    counts = np.outer(np.diff(np.append(starts_h, plane.shape[0])), np.diff(np.append(starts_w, plane.shape[1])))
    return sums / counts


def heatmap(array) -> dict:
    """A JSON-ready heatmap of an image-shaped array, or None for other shapes.

    {"planes": [which plane of the array each one is, e.g. "image 0, channel 2"], "height", "width": of
    each downsampled plane, "factor": the block side, "scale": the largest |value| (one byte = scale / 127),
    "data": base64 of planes x height x width signed bytes, row-major}.
    """
    array = np.asarray(array)
    if not is_image_shaped(array.shape):
        return None
    if array.ndim == 4:
        channels = min(array.shape[1], MAX_PLANES)
        planes, names = array[0, :channels], [f"image 0, channel {c}" for c in range(channels)]
    else:
        planes, names = array[None], ["the whole array"]
    factor = math.ceil(max(array.shape[-2:]) / MAX_SIDE)
    with np.errstate(invalid="ignore", over="ignore"):  # inf - inf in a block: stored as NOT_FINITE below
        small = np.stack([block_means(plane.astype(np.float64), factor) for plane in planes])
    finite = np.isfinite(small)
    scale = float(np.abs(small[finite]).max()) if finite.any() else 0.0
    scaled = np.round(small / scale * 127) if scale > 0 else np.zeros_like(small)
    levels = np.where(finite, scaled, NOT_FINITE).astype(np.int8)
    return {"planes": names, "height": int(small.shape[1]), "width": int(small.shape[2]), "factor": factor,
            "scale": scale, "data": base64.b64encode(levels.tobytes()).decode("ascii")}
