"""Anchor rectangles on a feature-map grid, and the seed's regression coding relative to them.

A target for anchor (x_a, y_a, w_a, h_a) and a face (x, y, w, h) is
(dx, dy, log dw, log dh) = ((x - x_a) / w_a, (y - y_a) / h_a, log(w / w_a), log(h / h_a)),
as in the Faster R-CNN paper. Arrays of anchors are (H, W, A, 4): grid row, grid column,
anchor, rectangle (x_center, y_center, w, h) in input pixels.
"""
import numpy as np

from .boxes import iou

MAX_LOG_SCALE = np.log(2)  # the seed's clamp: a decoded rectangle is at most twice its anchor's size


def make_anchors(grid_size, stride, offset, scales, ratios):
    """Anchors (H, W, len(scales) * len(ratios), 4) centered on each cell of an H x W grid.

    grid_size: (H, W). Cell (row, col) is centered at pixel (offset + stride * col,
    offset + stride * row). Anchor a = scale index * len(ratios) + ratio index has area
    scale**2 and height / width = ratio, so anchor 0 is the smallest.
    """
    rows, cols = grid_size
    shapes = np.array([(scale / np.sqrt(ratio), scale * np.sqrt(ratio)) for scale in scales for ratio in ratios])
    anchors = np.empty((rows, cols, len(shapes), 4))
    anchors[..., 0] = offset + stride * np.arange(cols)[None, :, None]
    anchors[..., 1] = offset + stride * np.arange(rows)[:, None, None]
    anchors[..., 2:] = shapes
    return anchors


def rect2target(rects, anchors):
    """Regression targets (..., 4) = (dx, dy, log dw, log dh) of rects (..., 4) relative to anchors (..., 4)."""
    rects, anchors = np.asarray(rects, dtype=np.float64), np.asarray(anchors, dtype=np.float64)
    return np.concatenate([(rects[..., :2] - anchors[..., :2]) / anchors[..., 2:],
                           np.log(rects[..., 2:] / anchors[..., 2:])], axis=-1)


def target2rect(regression, anchors):
    """Rectangles (..., 4) decoded from regression outputs (..., 4) relative to anchors (..., 4).

    Inverts rect2target, except that log dw and log dh are clamped at log(2) as in the seed,
    so that a wild network output never gives a rectangle more than twice its anchor's size.
    """
    regression, anchors = np.asarray(regression, dtype=np.float64), np.asarray(anchors, dtype=np.float64)
    return np.concatenate([regression[..., :2] * anchors[..., 2:] + anchors[..., :2],
                           np.exp(np.minimum(regression[..., 2:], MAX_LOG_SCALE)) * anchors[..., 2:]], axis=-1)


def target(anchors, rects, threshold=0.7, best_is_positive=True):
    """Training targets (H, W, A, 5) of anchors (H, W, A, 4) for the faces rects (K, 4).

    [..., 4]: 1 where the anchor's IoU with some face exceeds threshold (the seed's 0.7),
    else 0. With best_is_positive, the anchor(s) of highest IoU with each face are positive
    too, as in the Faster R-CNN paper: small faces between grid cells have no anchor above
    0.7 and would otherwise never be learned. [..., :4]: rect2target of the face the anchor
    overlaps most (meaningful where [..., 4] is 1; the loss ignores it elsewhere).
    """
    rects = np.asarray(rects, dtype=np.float64).reshape(-1, 4)
    targets = np.zeros(anchors.shape[:-1] + (5,))
    if len(rects) == 0:
        return targets
    overlaps = iou(anchors, rects)
    nearest = overlaps.argmax(axis=-1)
    positive = overlaps.max(axis=-1) > threshold
    if best_is_positive:
        best = overlaps.max(axis=(0, 1, 2))
        positive |= ((overlaps == best) & (best > 0)).any(axis=-1)
    targets[..., :4] = rect2target(rects[nearest], anchors)
    targets[..., 4] = positive
    return targets
