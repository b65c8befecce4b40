"""dlib's face-recognition ResNet-34 (via face-api.js), rebuilt with tinynet ops.

Input: (N, 3, 150, 150) RGB images with values 0..255. Output: (N, 128) face descriptors;
two photos of the same person are usually closer than 0.6 (Euclidean), different people
farther. The weights file (the course data's folder pretrained/) and the architecture are
described in the course data's README.md: a 7x7 stride-2 stem, then residual blocks at 32,
64, 128 and 256 channels, global average pooling and a 256 -> 128 linear map without bias.
"""
import json
from pathlib import Path

import numpy as np

from .. import functional as F
from .. import nn
from ..grad_mode import is_grad_enabled
from ..nn.module import Module, Parameter
from . import holding

MEAN_RGB = np.array([122.782, 117.001, 104.298], dtype=np.float32)
INPUT_SIZE = 150
BLOCKS = ["conv32_1", "conv32_2", "conv32_3", "conv64_down", "conv64_1", "conv64_2", "conv64_3",
          "conv128_down", "conv128_1", "conv128_2", "conv256_down", "conv256_1", "conv256_2", "conv256_down_out"]


def input_from_crops(images):
    """Face crops (N, 150, 150, 3) RGB in [0, 1] -> the network's input (N, 3, 150, 150), 0..255, float32."""
    return np.ascontiguousarray(np.asarray(images, dtype=np.float32).transpose(0, 3, 1, 2) * 255)


def load_weights(directory) -> dict:
    """Decode the face-api weight manifest in `directory`: {name: float32 array in its manifest shape}.

    Quantized entries are uint8 values q stored as q * scale + min; filters are HWIO.
    """
    directory = Path(directory)
    (group,) = json.loads((directory / "face_recognition_model-weights_manifest.json").read_text())
    raw = (directory / group["paths"][0]).read_bytes()
    weights, offset = {}, 0
    for entry in group["weights"]:
        count = int(np.prod(entry["shape"]))
        quantization = entry.get("quantization")
        if quantization:
            if quantization["dtype"] != "uint8":
                raise ValueError(f"{entry['name']}: unsupported quantization {quantization['dtype']}")
            values = np.frombuffer(raw, np.uint8, count, offset) * quantization["scale"] + quantization["min"]
            offset += count
        else:
            values = np.frombuffer(raw, np.float32, count, offset)
            offset += 4 * count
        weights[entry["name"]] = values.astype(np.float32).reshape(entry["shape"])
    if offset != len(raw):
        raise ValueError(f"weights file has {len(raw)} bytes but the manifest describes {offset}")
    return weights


class ConvScale(Module):
    """nn.Conv2d (with bias), then dlib's affine 'scale' layer: out = conv(x) * gamma + beta, per channel.

    When none of the four parameters wants a gradient (the frozen pretrained network of parts 7-9, or under
    tn.no_grad), the layer
    runs as one convolution with the scale folded in: conv(x, weight * gamma) + (bias * gamma + beta), the same
    function (to float rounding) without two more passes over every output value. The folded weight and bias
    are made again whenever one of the four parameters is replaced or written in place (their versions).
    """

    _folded = _folded_from = None  # (weight, bias) folded, and [(array, version count)] of the four they came from

    def __init__(self, weights, prefix, stride, padding):
        filters = weights[f"{prefix}/conv/filters"]  # (kh, kw, in, out)
        conv = nn.Conv2d(filters.shape[2], filters.shape[3], filters.shape[:2], stride, padding)
        self.conv = holding(conv, filters.transpose(3, 2, 0, 1), weights[f"{prefix}/conv/bias"])  # HWIO -> OIHW
        self.gamma = Parameter(weights[f"{prefix}/scale/weights"].reshape(1, -1, 1, 1))
        self.beta = Parameter(weights[f"{prefix}/scale/biases"].reshape(1, -1, 1, 1))

    def forward(self, x):
        parameters = (self.conv.weight, self.conv.bias, self.gamma, self.beta)
        if is_grad_enabled() and any(p.requires_grad for p in parameters):
            return self.conv(x) * self.gamma + self.beta
        weight, bias = self.folded(parameters)
        return F.conv2d(x, weight, bias, self.conv.stride, self.conv.padding)

    def folded(self, parameters):
        """(weight * gamma (O, C, kh, kw), bias * gamma + beta (O,)) as arrays, remade when a parameter changed."""
        current = [(p._data, p.version.count) for p in parameters]
        if self._folded_from is None or any(array is not kept or count != kept_count for (array, count), (
                kept, kept_count) in zip(current, self._folded_from)):
            weight, bias, gamma, beta = (p._data for p in parameters)
            self._folded = weight * gamma.reshape(-1, 1, 1, 1), bias * gamma.ravel() + beta.ravel()
            self._folded_from = current
        return self._folded


class ResidualBlock(Module):
    """relu(x + conv2(relu(conv1(x)))), both 3x3 'same'; a down block halves H and W.

    A down block's first conv has stride 2 'valid'; its shortcut is a 2x2 average pool of x
    zero-padded on the channel axis, and when the conv path comes out one pixel smaller it
    is zero-padded at the bottom and right.
    """

    def __init__(self, weights, name):
        self.down = name.endswith(("_down", "_down_out"))
        self.conv1 = ConvScale(weights, f"{name}/conv1", stride=2 if self.down else 1,
                               padding="valid" if self.down else "same")
        self.conv2 = ConvScale(weights, f"{name}/conv2", stride=1, padding="same")

    def forward(self, x):
        out = self.conv2(F.relu(self.conv1(x)))
        shortcut = x
        if self.down:
            shortcut = F.avg_pool2d(x, 2, 2)
            extra_channels = out.shape[1] - shortcut.shape[1]
            shortcut = F.pad(shortcut, ((0, 0), (0, extra_channels), (0, 0), (0, 0)))
            missing_rows, missing_cols = shortcut.shape[2] - out.shape[2], shortcut.shape[3] - out.shape[3]
            out = F.pad(out, ((0, 0), (0, 0), (0, missing_rows), (0, missing_cols)))
        return F.relu(out + shortcut)


class FaceResNet(Module):
    """The dlib face ResNet: images (N, 3, 150, 150), 0..255 RGB -> descriptors (N, 128)."""

    def __init__(self, weights):
        self.stem = ConvScale(weights, "conv32_down", stride=2, padding="valid")
        self.blocks = [ResidualBlock(weights, name) for name in BLOCKS]
        self.fc = Parameter(weights["fc"])  # (256, 128) as in the file, x @ fc: not nn.Linear, see AlexNet

    @classmethod
    def pretrained(cls, directory, trainable=False):
        """The network with the pretrained weights in `directory`; frozen (no weight gradients) unless trainable."""
        model = cls(load_weights(directory))
        for p in model.parameters():
            p.requires_grad = trainable
        return model

    def forward(self, images, until=None):
        """Descriptors (N, 128), or the feature map right after the block named `until`.

        images: (N, 3, 150, 150) RGB, values 0..255. `until` is 'stem' or one of BLOCKS,
        e.g. 'conv128_2' gives (N, 128, 8, 8) and 'conv256_2' gives (N, 256, 4, 4).
        """
        if images.ndim != 4 or images.shape[1:] != (3, INPUT_SIZE, INPUT_SIZE):
            raise ValueError(f"expected images of shape (N, 3, {INPUT_SIZE}, {INPUT_SIZE}), got {images.shape}")
        if until is not None and until != "stem" and until not in BLOCKS:
            raise ValueError(f"unknown layer {until!r}: use 'stem' or one of {BLOCKS}")
        x = (images - MEAN_RGB.reshape(1, 3, 1, 1)) / 256
        x = F.max_pool2d(F.relu(self.stem(x)), 3, 2)
        if until == "stem":
            return x
        for name, block in zip(BLOCKS, self.blocks):
            x = block(x)
            if name == until:
                return x
        return F.matmul(F.mean(x, axis=(2, 3)), self.fc)
