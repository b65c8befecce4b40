"""Convolution, pooling and normalization layers for NCHW images."""
import numpy as np

from .. import functional as F
from ..kernels.windows import checked_int, pair
from .layers import uniform_parameter
from .module import Module


class Conv2d(Module):
    """conv2d with weight (out_channels, in_channels/groups, kh, kw) and bias (out_channels,).

    Initialized as PyTorch does: uniform in +-1/sqrt(fan_in), fan_in = in_channels/groups*kh*kw.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, *, groups=1, dilation=1,
                 bias=True, rng=None, dtype=np.float32):
        if in_channels % checked_int(groups, "groups") or out_channels % groups:
            raise ValueError(f"in_channels {in_channels} and out_channels {out_channels} must be divisible by "
                             f"groups {groups}")
        rng = np.random.default_rng() if rng is None else rng
        kernel_h, kernel_w = pair(kernel_size, "kernel_size")
        fan_in = in_channels // groups * kernel_h * kernel_w
        self.weight = uniform_parameter((out_channels, in_channels // groups, kernel_h, kernel_w), fan_in, rng, dtype)
        self.bias = uniform_parameter(out_channels, fan_in, rng, dtype) if bias else None
        self.stride, self.padding, self.groups, self.dilation = stride, padding, groups, dilation

    def forward(self, x):
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, groups=self.groups,
                        dilation=self.dilation)


class _Pool2d(Module):
    """What both pooling layers are given: the window, its stride (None: the window) and padding as in conv2d."""

    def __init__(self, kernel_size, stride=None, padding=0):
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding


class MaxPool2d(_Pool2d):
    """The maximum of each window: (N, C, H, W) -> (N, C, Ho, Wo)."""

    def forward(self, x):
        return F.max_pool2d(x, self.kernel_size, self.stride, self.padding)


class AvgPool2d(_Pool2d):
    """The mean of each window: (N, C, H, W) -> (N, C, Ho, Wo); the padding's zeros count unless
    count_include_pad=False (see F.avg_pool2d)."""

    def __init__(self, kernel_size, stride=None, padding=0, count_include_pad=True):
        super().__init__(kernel_size, stride, padding)
        self.count_include_pad = count_include_pad

    def forward(self, x):
        return F.avg_pool2d(x, self.kernel_size, self.stride, self.padding, self.count_include_pad)


class LocalResponseNorm(Module):
    """TensorFlow's local response normalization (alpha not divided by the window size); keyword settings
    only, as F.local_response_norm (a PyTorch-style LocalResponseNorm(size) raises saying how to translate it)."""

    def __init__(self, *positional, depth_radius=2, bias=1.0, alpha=2e-5, beta=0.75, **other):
        if positional or other:
            raise TypeError(F.LRN_ARGUMENTS)
        self.depth_radius, self.bias, self.alpha, self.beta = depth_radius, bias, alpha, beta

    def forward(self, x):
        return F.local_response_norm(x, depth_radius=self.depth_radius, bias=self.bias, alpha=self.alpha,
                                     beta=self.beta)
