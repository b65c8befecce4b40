"""The seed's detect: an image's most face-like rectangles, after non-maximum suppression."""
import numpy as np
from scipy.special import expit

from .anchors import target2rect
from .boxes import nms

NMS_IOU = 0.3  # rectangles overlapping a better one by more than this are the same face


def detect(outputs, anchors, number_to_return, nms_iou=NMS_IOU):
    """The best rectangles (K, 4) of one image and their objectness (K,), K <= number_to_return.

    outputs: (H, W, A, 5) network outputs of one image (see head.rpn_outputs), anchors:
    (H, W, A, 4). Every anchor's regression output is decoded with target2rect; the
    rectangles are ranked by sigmoid(outputs[..., 4]) and thinned by NMS at nms_iou, as the
    Faster R-CNN paper does (the seed's detect is the same without NMS).
    """
    outputs = np.asarray(outputs)
    if outputs.shape[:-1] != anchors.shape[:-1] or outputs.shape[-1] != 5:
        raise ValueError(f"expected outputs of shape {anchors.shape[:-1] + (5,)}, got {outputs.shape}")
    rects = target2rect(outputs[..., :4], anchors).reshape(-1, 4)
    scores = expit(outputs[..., 4].astype(np.float64)).ravel()
    kept = nms(rects, scores, nms_iou, limit=number_to_return)
    return rects[kept], scores[kept]
