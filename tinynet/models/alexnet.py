"""The course's AlexNet (Krizhevsky et al. 2012, as in the course's TensorFlow code), on tinynet.

Weights: `bvlc_alexnet.npy`, a pickled dict {layer: [W, b]} with conv filters as
(kh, kw, c_in / groups, c_out) and fully-connected weights as (in, out). It is loaded only
through the restricted unpickler. The network (NCHW here; the original is NHWC):

  conv1 96@11x11 stride 4 'SAME' -> ReLU -> LRN -> maxpool 3/2 'VALID'    (N, 96, 28, 28)
  conv2 256@5x5 groups 2 'SAME'  -> ReLU -> LRN -> maxpool 3/2 'VALID'    (N, 256, 13, 13)
  conv3 384@3x3 'SAME' -> ReLU; conv4 384@3x3 groups 2 -> ReLU             (N, 384, 13, 13)
  conv5 256@3x3 groups 2 -> ReLU -> maxpool 3/2 'VALID'                    (N, 256, 6, 6)
  fc6 9216 -> 4096 -> ReLU; fc7 4096 -> 4096 -> ReLU; fc8 4096 -> 1000 (logits)

fc6 was trained on the NHWC flattening (H, W, C order), so the feature map is moved to
NHWC before it is flattened.
"""
import numpy as np

from .. import functional as F
from .. import nn
from ..io import load_pickle_weights
from ..nn.module import Module, Parameter
from . import holding

INPUT_SIZE = 227
# name: (out channels, kernel, stride, groups, followed by LRN, followed by max pool)
CONV_LAYERS = {
    "conv1": (96, 11, 4, 1, True, True),
    "conv2": (256, 5, 1, 2, True, True),
    "conv3": (384, 3, 1, 1, False, False),
    "conv4": (384, 3, 1, 2, False, False),
    "conv5": (256, 3, 1, 2, False, True),
}
FC_LAYERS = {"fc6": (9216, 4096), "fc7": (4096, 4096), "fc8": (4096, 1000)}


def expected_shapes() -> dict:
    """{layer: (weight shape, bias shape)} as stored in bvlc_alexnet.npy."""
    shapes, in_channels = {}, 3
    for name, (out_channels, kernel, _, groups, _, _) in CONV_LAYERS.items():
        shapes[name] = ((kernel, kernel, in_channels // groups, out_channels), (out_channels,))
        in_channels = out_channels
    shapes.update({name: ((n_in, n_out), (n_out,)) for name, (n_in, n_out) in FC_LAYERS.items()})
    return shapes


def load_bvlc_weights(path) -> dict:
    """{layer: (W, b)} from a bvlc_alexnet.npy file, with every shape checked."""
    weights = load_pickle_weights(path)
    if not isinstance(weights, dict):
        raise ValueError(f"{path}: expected a dict of layers, got {type(weights).__name__}")
    checked = {}
    for name, shapes in expected_shapes().items():
        if name not in weights:
            raise ValueError(f"{path}: layer {name} is missing")
        weight, bias = (np.asarray(a, dtype=np.float32) for a in weights[name])
        if (weight.shape, bias.shape) != shapes:
            raise ValueError(f"{path}: {name} has shapes {weight.shape}, {bias.shape}; expected {shapes}")
        checked[name] = (weight, bias)
    return checked


def preprocess(images_rgb):
    """(N, 227, 227, 3) RGB 0..255 -> (N, 3, 227, 227) BGR minus each image's mean, as the course code.

    The Caffe weights were trained on BGR images, so the channels are swapped.
    """
    images = np.asarray(images_rgb, dtype=np.float32)
    if images.ndim != 4 or images.shape[1:] != (INPUT_SIZE, INPUT_SIZE, 3):
        raise ValueError(f"expected images of shape (N, {INPUT_SIZE}, {INPUT_SIZE}, 3), got {images.shape}")
    images = images - images.mean(axis=(1, 2, 3), keepdims=True)
    return np.ascontiguousarray(images[..., ::-1].transpose(0, 3, 1, 2))


class AlexNet(Module):
    """AlexNet: preprocessed images (N, 3, 227, 227) -> logits (N, 1000) or an inner feature map.

    conv1..conv5 are nn.Conv2d layers (weights (O, C/groups, kh, kw)); fc6..fc8 are (weight, bias)
    pairs of Parameters with the file's (in, out) weights, multiplied as x @ weight + bias. (Not
    nn.Linear: its x @ weight^T makes BLAS sum small batches in another order, and the features
    cached by earlier runs would differ in their last bits from new ones.)
    """

    def __init__(self, weights):
        in_channels = 3
        for name, (out_channels, kernel, stride, groups, _, _) in CONV_LAYERS.items():
            weight, bias = weights[name]
            conv = nn.Conv2d(in_channels, out_channels, kernel, stride, padding="same", groups=groups)
            setattr(self, name, holding(conv, weight.transpose(3, 2, 0, 1), bias))  # HWIO -> OIHW
            in_channels = out_channels
        for name in FC_LAYERS:
            weight, bias = weights[name]
            setattr(self, name, (Parameter(weight), Parameter(bias)))

    @classmethod
    def from_file(cls, path, trainable=False):
        """AlexNet with the weights of bvlc_alexnet.npy; frozen unless trainable."""
        model = cls(load_bvlc_weights(path))
        for p in model.parameters():
            p.requires_grad = trainable
        return model

    def forward(self, x, until=None):
        """Logits (N, 1000), or the output (after ReLU) of the layer named `until`, e.g. 'conv4'."""
        if until is not None and until not in CONV_LAYERS and until not in FC_LAYERS:
            raise ValueError(f"unknown layer {until!r}: use one of {list(CONV_LAYERS) + list(FC_LAYERS)}")
        for name, (_, _, _, _, lrn, pool) in CONV_LAYERS.items():
            x = F.relu(getattr(self, name)(x))
            if name == until:
                return x
            if lrn:
                x = F.local_response_norm(x, depth_radius=2, bias=1.0, alpha=2e-5, beta=0.75)
            if pool:
                x = F.max_pool2d(x, 3, 2)
        x = F.flatten(F.transpose(x, (0, 2, 3, 1)), 1)
        for name in FC_LAYERS:
            weight, bias = getattr(self, name)
            x = F.matmul(x, weight) + bias
            if name != "fc8":
                x = F.relu(x)
            if name == until:
                return x
        return x
