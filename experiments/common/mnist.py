"""The course's MNIST files: mnist_all.mat (the digits) and snapshot50.pkl (initial weights).

mnist_all.mat holds train0..train9 and test0..test9, uint8 (n, 784) rows of 28x28 images
flattened row-major. snapshot50.pkl is a pickle, so it is read only through tinynet's
restricted unpickler, which refuses anything but arrays.
"""
from dataclasses import dataclass

import numpy as np
import scipy.io

from coursedata.paths import data_dir
from tinynet import nn
from tinynet.io import load_pickle_weights

MNIST_FILE = "mnist/mnist_all.mat"
SNAPSHOT_FILE = "mnist/snapshot50.pkl"
SIDE, PIXELS, DIGITS = 28, 784, 10
HIDDEN = 300  # the handout network's hidden units
SNAPSHOT_SHAPES = {"W0": (PIXELS, HIDDEN), "b0": (HIDDEN,), "W1": (HIDDEN, DIGITS), "b1": (DIGITS,)}


@dataclass(frozen=True)
class Mnist:
    """The digits as arrays: train_x (60000, 784) and test_x (10000, 784) uint8 in 0..255, C order (a row: an image),
    train_y and test_y (N,) int64 digits, rows grouped by digit (all 0s, then all 1s, ...)."""

    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray


def load_mnist(per_digit=None, path=None):
    """Read mnist_all.mat (default: the course data folder) into an Mnist.

    per_digit: keep only the first per_digit images of each digit in each split (for quick runs).
    """
    path = data_dir() / MNIST_FILE if path is None else path
    with open(path, "rb") as file:  # scipy names no file when a path is missing; open() does
        arrays = scipy.io.loadmat(file)
    splits = {}
    for split in ("train", "test"):
        images = []
        for digit in range(DIGITS):
            key = f"{split}{digit}"
            if key not in arrays or arrays[key].ndim != 2 or arrays[key].shape[1] != PIXELS:
                raise ValueError(f"{path}: expected {key} of shape (n, {PIXELS}), "
                                 f"got {getattr(arrays.get(key), 'shape', 'nothing')}")
            images.append(arrays[key][:per_digit])
        # C order: loadmat gives MATLAB's column-major arrays, and gathering a mini-batch's rows from one
        # costs about 35 times as much (part 1 spent a third of each step there).
        splits[f"{split}_x"] = np.ascontiguousarray(np.concatenate(images), dtype=np.uint8)
        splits[f"{split}_y"] = np.repeat(np.arange(DIGITS), [len(block) for block in images])
    return Mnist(**splits)


def unit_scale(images):
    """uint8 images (N, 784) in 0..255 -> float32 (N, 784) in [0, 1], as the course's handout feeds them."""
    return np.asarray(images, dtype=np.float32) / np.float32(255)


def load_snapshot50(path=None):
    """The handout's initial weights {W0: (784, 300), b0: (300,), W1: (300, 10), b1: (10,)} as float32.

    Read with the restricted unpickler (tinynet.io.load_pickle_weights): the file is a pickle.
    """
    path = data_dir() / SNAPSHOT_FILE if path is None else path
    stored = load_pickle_weights(path)
    if not isinstance(stored, dict):
        raise ValueError(f"{path}: expected a dict of arrays {sorted(SNAPSHOT_SHAPES)}, got {type(stored).__name__}")
    weights = {}
    for name, shape in SNAPSHOT_SHAPES.items():
        value = np.asarray(stored.get(name))
        if value.shape != shape:
            raise ValueError(f"{path}: expected {name} of shape {shape}, got {value.shape}")
        weights[name] = value.astype(np.float32)
    return weights


def handout_network(snapshot):
    """784 -> 300 tanh -> 10 logits holding the snapshot's weights (W0: (784, 300) is weight.T of layer 0)."""
    model = nn.Sequential(nn.Linear(PIXELS, HIDDEN), nn.Tanh(), nn.Linear(HIDDEN, DIGITS))
    return model.load_state_dict({"layers.0.weight": snapshot["W0"].T, "layers.0.bias": snapshot["b0"],
                                  "layers.2.weight": snapshot["W1"].T, "layers.2.bias": snapshot["b1"]})


def per_digit_batches(labels, per_digit, rng):
    """Endless mini-batches as the handout draws them: per_digit distinct random rows of each digit.

    labels: (N,) digits. Yields index arrays (10 * per_digit,) into labels, grouped by digit.
    """
    rows_of = [np.flatnonzero(labels == digit) for digit in range(DIGITS)]
    too_few = [digit for digit, rows in enumerate(rows_of) if len(rows) < per_digit]
    if too_few:
        raise ValueError(f"digits {too_few} have fewer than {per_digit} images: cannot draw a batch")
    while True:
        yield np.concatenate([rng.choice(rows, per_digit, replace=False) for rows in rows_of])
