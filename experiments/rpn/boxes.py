"""Rectangles as (x_center, y_center, width, height), as the seed writes them; IoU and NMS."""
import numpy as np


def corners(rects):
    """(..., 4) rectangles (x_center, y_center, w, h) -> (..., 4) corners (x1, y1, x2, y2)."""
    rects = np.asarray(rects, dtype=np.float64)
    half = rects[..., 2:] / 2
    return np.concatenate([rects[..., :2] - half, rects[..., :2] + half], axis=-1)


def from_corners(boxes):
    """(..., 4) corners (x1, y1, x2, y2) -> (..., 4) rectangles (x_center, y_center, w, h)."""
    boxes = np.asarray(boxes, dtype=np.float64)
    return np.concatenate([(boxes[..., :2] + boxes[..., 2:]) / 2, boxes[..., 2:] - boxes[..., :2]], axis=-1)


def iou(a, b):
    """Intersection over union of every rectangle in a (..., 4) with every one in b (K, 4): (..., K).

    Rectangles are (x_center, y_center, w, h); a pair that does not overlap, or whose union
    is empty, has IoU 0.
    """
    a, b = corners(a)[..., None, :], corners(b)
    width = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    height = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    intersection = width * height
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    union = area_a + area_b - intersection
    return np.divide(intersection, union, out=np.zeros_like(union), where=union > 0)


def nms(rects, scores, iou_threshold, limit=None):
    """Greedy non-maximum suppression: indices of the kept rectangles, best score first.

    rects: (K, 4), scores: (K,). Repeatedly keep the best remaining rectangle and drop every
    remaining one whose IoU with it exceeds iou_threshold; stop after `limit` kept ones.
    """
    order = np.argsort(-np.asarray(scores), kind="stable")
    kept = []
    while order.size and (limit is None or len(kept) < limit):
        best = order[0]
        kept.append(best)
        order = order[1:][iou(rects[order[1:]], rects[best][None])[:, 0] <= iou_threshold]
    return np.array(kept, dtype=np.int64)
