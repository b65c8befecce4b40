"""The seed's two-layer region-proposal network and its loss, composed from tinynet ops.

The seed's forwardprop is `rpn_outputs`, its loss is `rpn_loss`; its backprop,
weight_gradient and weight_update are `loss.backward()` and an SGD step, whose gradients
the tests check against finite differences.
"""
import numpy as np

from tinynet import functional as F
from tinynet.nn import Conv2d, Module

HIDDEN = 128  # the seed's ND
OUTPUTS = 5  # per anchor: 4 regression outputs (dx, dy, log dw, log dh), then 1 objectness logit


def rpn_outputs(features, weight1, bias1, weight2, bias2, anchors_per_cell):
    """Outputs (N, H, W, A, 5) of features (N, C, H, W).

    hidden = relu(conv 3x3 'same'(features; weight1 (D, C, 3, 3), bias1 (D,)));
    out = conv 1x1(hidden; weight2 (A * 5, D, 1, 1), bias2 (A * 5,)), whose channel
    a * 5 + k becomes out[..., a, k]: k < 4 the regression of anchor a, k = 4 its objectness
    logit (the seed's sigmoid is applied by the loss and by detect, so the loss stays finite).
    """
    hidden = F.relu(F.conv2d(features, weight1, bias1, padding=1))
    out = F.conv2d(hidden, weight2, bias2)
    n, _, height, width = out.shape
    return F.transpose(F.reshape(out, (n, anchors_per_cell, OUTPUTS, height, width)), (0, 3, 4, 1, 2))


class RPNHead(Module):
    """The seed's network: features (N, C, H, W) -> outputs (N, H, W, A, 5), see rpn_outputs.

    Weights start small and random as in the seed. With positive_fraction p, the objectness
    biases start at log(p / (1 - p)), so that the untrained head already predicts the
    fraction of positive anchors (as RetinaNet does); otherwise the first epochs are spent
    pushing thousands of negative anchors from sigmoid 0.5 down to it.
    """

    def __init__(self, in_channels, anchors_per_cell, rng, hidden=HIDDEN, positive_fraction=None):
        self.anchors_per_cell = anchors_per_cell
        self.conv1 = Conv2d(in_channels, hidden, 3, padding=1, rng=rng)
        self.conv2 = Conv2d(hidden, anchors_per_cell * OUTPUTS, 1, rng=rng)
        if positive_fraction is not None:
            if not 0 < positive_fraction < 1:
                raise ValueError(f"positive_fraction must be in (0, 1), got {positive_fraction}")
            self.conv2.bias.data[OUTPUTS - 1::OUTPUTS] = np.log(positive_fraction / (1 - positive_fraction))

    def forward(self, features):
        return rpn_outputs(features, self.conv1.weight, self.conv1.bias, self.conv2.weight, self.conv2.bias,
                           self.anchors_per_cell)


def rpn_loss(outputs, targets, balanced=False):
    """The seed's loss terms (bce, mse) as scalar Tensors, for outputs and targets (N, H, W, A, 5).

    bce: binary cross-entropy of the objectness sigmoid(outputs[..., 4]) against
    targets[..., 4], averaged over all images, cells and anchors. With balanced, the
    positive and the negative anchors each weigh half, as the Faster R-CNN paper's 1:1
    sampling of anchors does: then the rare positives are not drowned out.
    mse: 0.5 * sum of ||outputs[..., :4] - targets[..., :4]||^2 over the positive anchors
    (targets[..., 4] == 1), divided by their number; 0 when there is none.
    """
    targets = np.asarray(targets, dtype=outputs.dtype)
    if targets.shape != outputs.shape:
        raise ValueError(f"targets of shape {targets.shape} do not match outputs of shape {outputs.shape}")
    positive = targets[..., 4:]
    positives = float(positive.sum())
    if balanced:
        negatives = positive.size - positives
        weights = positive[..., 0] / (2 * max(positives, 1)) + (1 - positive[..., 0]) / (2 * max(negatives, 1))
        bce = F.sum(weights * F.binary_cross_entropy_with_logits(outputs[..., 4], targets[..., 4], reduction="none"))
    else:
        bce = F.binary_cross_entropy_with_logits(outputs[..., 4], targets[..., 4])
    squared = F.sum(positive * (outputs[..., :4] - targets[..., :4]) ** 2)
    mse = squared * (0.5 / max(positives, 1.0))
    return bce, mse
