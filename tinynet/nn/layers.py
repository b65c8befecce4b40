"""Fully-connected layers, activations as Modules, Dropout, Sequential, Flatten."""
import numpy as np

from .. import functional as F
from .module import Module, Parameter


def uniform_parameter(shape, fan_in, rng, dtype):
    """A Parameter of shape drawn uniformly from [-1/sqrt(fan_in), 1/sqrt(fan_in)], PyTorch's default
    (all zeros when fan_in is 0: a layer without inputs)."""
    bound = 1 / np.sqrt(fan_in) if fan_in else 0.0
    return Parameter(rng.uniform(-bound, bound, shape), dtype=dtype)


class Linear(Module):
    """y = x @ weight^T + bias, x: (N, in_features) -> (N, out_features).

    weight: (out_features, in_features), bias: (out_features,), both drawn as PyTorch does:
    uniform in [-1/sqrt(in_features), 1/sqrt(in_features)]. rng: a numpy Generator.
    """

    def __init__(self, in_features, out_features, bias=True, rng=None, dtype=np.float32):
        rng = np.random.default_rng() if rng is None else rng
        self.in_features, self.out_features = in_features, out_features
        self.weight = uniform_parameter((out_features, in_features), in_features, rng, dtype)
        self.bias = uniform_parameter(out_features, in_features, rng, dtype) if bias else None

    def forward(self, x):
        if x.ndim != 2 or x.shape[1] != self.in_features:
            raise ValueError(f"expected input of shape (N, {self.in_features}), got {x.shape}")
        return F.linear(x, self.weight, self.bias)


class ReLU(Module):
    def forward(self, x): return F.relu(x)


class Tanh(Module):
    def forward(self, x): return F.tanh(x)


class Sigmoid(Module):
    def forward(self, x): return F.sigmoid(x)


class Flatten(Module):
    """(N, d1, d2, ...) -> (N, d1*d2*...)."""

    def forward(self, x): return F.flatten(x, 1)


class Dropout(Module):
    """Zeroes each input with probability p while training (scaled by 1/(1-p)); identity in eval."""

    def __init__(self, p=0.5, rng=None):
        self.p, self.rng = p, np.random.default_rng() if rng is None else rng

    def forward(self, x):
        return F.dropout(x, self.p, self.training, self.rng)


class Sequential(Module):
    """Modules applied in order; parameters are named 'layers.<i>.<name>'."""

    def __init__(self, *layers):
        self.layers = list(layers)

    def __getitem__(self, i):
        return self.layers[i]

    def __len__(self):
        return len(self.layers)

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x
