"""How well detections find the annotated faces: recall and precision of the top k, and AP.

A detection is a true positive when its IoU with a face not yet matched by a better-scored
detection of the same image is at least the threshold (PASCAL VOC's rule), so a second
rectangle on the same face counts as a false positive.
"""
import numpy as np

from .boxes import iou

IOU_THRESHOLD = 0.5


def match(rects, faces, iou_threshold=IOU_THRESHOLD):
    """True-positive flags (K,) of rects (K, 4), given best score first, against faces (M, 4)."""
    rects, faces = np.asarray(rects).reshape(-1, 4), np.asarray(faces).reshape(-1, 4)
    hits = np.zeros(len(rects), dtype=bool)
    if len(rects) == 0 or len(faces) == 0:
        return hits
    overlaps = iou(rects, faces)
    free = np.ones(len(faces), dtype=bool)
    for k, row in enumerate(overlaps):
        candidates = np.where(free, row, -1.0)
        best = int(np.argmax(candidates))
        if candidates[best] >= iou_threshold:
            hits[k], free[best] = True, False
    return hits


def average_precision(scores, hits, faces_total):
    """(AP, precision (K,), recall (K,)) of detections pooled over images, ranked by score.

    scores, hits: (K,) every detection's score and true-positive flag (see match).
    AP is the area under the precision-recall curve with precision made non-increasing
    (PASCAL VOC's all-point interpolation); recall is relative to faces_total.
    """
    order = np.argsort(-np.asarray(scores), kind="stable")
    true_positives = np.cumsum(np.asarray(hits)[order])
    precision = true_positives / np.arange(1, len(order) + 1)
    recall = true_positives / max(faces_total, 1)
    envelope = np.maximum.accumulate(precision[::-1])[::-1]
    recall_steps = np.diff(np.concatenate([[0.0], recall]))
    return float(np.sum(recall_steps * envelope)), precision, recall


def detection_metrics(detections, faces, ks=(1, 5), iou_threshold=IOU_THRESHOLD):
    """Recall and precision of each image's top k for k in ks, and AP over all detections.

    detections: per image (rects (K, 4) best first, scores (K,)); faces: per image (M, 4).
    recall@k = faces matched by the top k / all faces; precision@k = matched rectangles in
    the top k / rectangles in the top k (at most 1/k per image with one annotated face).
    Returns ({"recall@1": ..., "precision@1": ..., ..., "average_precision": ...},
    pooled precision (K,), pooled recall (K,)).
    """
    faces_total = sum(len(np.asarray(f).reshape(-1, 4)) for f in faces)
    hits = [match(rects, f, iou_threshold) for (rects, _), f in zip(detections, faces)]
    metrics = {}
    for k in ks:
        found = sum(int(h[:k].sum()) for h in hits)
        returned = sum(len(h[:k]) for h in hits)
        metrics[f"recall@{k}"] = found / max(faces_total, 1)
        metrics[f"precision@{k}"] = found / max(returned, 1)
    scores = np.concatenate([s for _, s in detections]) if detections else np.zeros(0)
    ap, precision, recall = average_precision(scores, np.concatenate(hits) if hits else np.zeros(0, bool),
                                              faces_total)
    metrics["average_precision"] = ap
    return metrics, precision, recall
