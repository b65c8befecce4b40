"""Local response normalization across channels, with TensorFlow's definition:

  sqr_sum[n, c, y, x] = sum of x[n, c', y, x]^2 for c' in [c - r, c + r] (clipped to [0, C))
  out = x / (bias + alpha * sqr_sum) ** beta

(alpha is not divided by the window size, unlike PyTorch's LocalResponseNorm.)
"""
import math

import numpy as np

from .compile import Helper, Kernel, prange


@Helper
def negative_power(d, beta):
    """d^-beta, by square roots for AlexNet's beta = 0.75 and for 0.5: several times faster than pow."""
    if beta == 0.75:
        return 1.0 / math.sqrt(d * math.sqrt(d))
    if beta == 0.5:
        return 1.0 / math.sqrt(d)
    return d ** -beta


def local_response_norm(out, scale, denominator, x, radius, bias, alpha, beta):
    """out, scale, denominator (N, C, H, W) from x (N, C, H, W):

    denominator[n, c] = bias + alpha * sum of x[n, c']^2 over |c' - c| <= radius (clipped to [0, C)),
    scale = denominator^-beta, out = x * scale. Parallel over the N*H image rows: each thread
    owns its rows.
    """
    n_images, channels, height, width = x.shape
    for row in prange(n_images * height):
        n, y = row // height, row % height
        for c in range(channels):
            first, last = max(c - radius, 0), min(c + radius + 1, channels)
            for i in range(width):
                squares = 0.0
                for k in range(first, last):
                    squares += x[n, k, y, i] * x[n, k, y, i]
                d = bias + alpha * squares
                denominator[n, c, y, i] = d
                scale[n, c, y, i] = negative_power(d, beta)
                out[n, c, y, i] = x[n, c, y, i] * scale[n, c, y, i]


def local_response_norm_backward(grad_x, grad_out, x, scale, denominator, radius, alpha, beta):
    """grad_x (N, C, H, W) of local_response_norm, from what its forward saved (s = scale, d = denominator):

    grad_x[c] = grad_out[c] s[c] - 2 alpha beta x[c] * sum over |c' - c| <= radius of
    grad_out[c'] x[c'] s[c'] / d[c']   (s / d = d^(-beta-1)). Parallel over the N*H image rows.
    """
    n_images, channels, height, width = x.shape
    for row in prange(n_images * height):
        n, y = row // height, row % height
        weighted = np.empty((channels, width), dtype=np.float64)  # grad_out x d^(-beta-1) along this row
        for c in range(channels):
            for i in range(width):
                weighted[c, i] = grad_out[n, c, y, i] * x[n, c, y, i] * scale[n, c, y, i] / denominator[n, c, y, i]
        for c in range(channels):
            first, last = max(c - radius, 0), min(c + radius + 1, channels)
            for i in range(width):
                window = 0.0
                for k in range(first, last):
                    window += weighted[k, i]
                grad_x[n, c, y, i] = (grad_out[n, c, y, i] * scale[n, c, y, i]
                                      - 2 * alpha * beta * x[n, c, y, i] * window)


local_response_norm_kernel = Kernel(local_response_norm)
local_response_norm_backward_kernel = Kernel(local_response_norm_backward)


def lrn_forward(x, radius, bias, alpha, beta):
    """(out, saved) for x (N, C, H, W); saved = (scale, denominator) for lrn_backward."""
    x = np.ascontiguousarray(x)
    out, scale, denominator = np.empty_like(x), np.empty_like(x), np.empty_like(x)
    local_response_norm_kernel(out, scale, denominator, x, radius, float(bias), float(alpha), float(beta),
                               work=x.size * (2 * radius + 1))
    return out, (scale, denominator)


def lrn_backward(grad_out, x, saved, radius, alpha, beta):
    """grad_x (N, C, H, W) of lrn_forward, from the `saved` it returned."""
    grad_x = np.empty_like(x)
    local_response_norm_backward_kernel(grad_x, np.ascontiguousarray(grad_out), np.ascontiguousarray(x), *saved,
                                        radius, float(alpha), float(beta), work=x.size * (2 * radius + 1))
    return grad_x


def channel_window_sum_reference(values, radius):
    """Plain loop over channels: sum values over the clipped channel window."""
    out = np.zeros_like(values)
    channels = values.shape[1]
    for c in range(channels):
        out[:, c] = values[:, max(c - radius, 0):min(c + radius + 1, channels)].sum(axis=1)
    return out


def lrn_reference(x, radius, bias, alpha, beta):
    """TensorFlow's formula, evaluated with the plain loop window sum."""
    return x / (bias + alpha * channel_window_sum_reference(x * x, radius)) ** beta


def lrn_backward_reference(grad_out, x, radius, bias, alpha, beta):
    """Plain loops over channel pairs: grad_x[:, j] = sum over i of grad_out[:, i] * d out[:, i] / d x[:, j].

    With d_i = bias + alpha * sum of x_k^2 over |k - i| <= r, for |i - j| <= r:
    d out_i / d x_j = [i == j] d_i^-beta - 2 alpha beta x_i x_j d_i^(-beta-1), and 0 otherwise.
    """
    channels = x.shape[1]
    denominator = bias + alpha * channel_window_sum_reference(x * x, radius)
    grad_x = np.zeros_like(x)
    for i in range(channels):
        for j in range(max(i - radius, 0), min(i + radius + 1, channels)):
            jacobian = -2 * alpha * beta * x[:, i] * x[:, j] * denominator[:, i] ** (-beta - 1)
            if i == j:
                jacobian += denominator[:, i] ** -beta
            grad_x[:, j] += grad_out[:, i] * jacobian
    return grad_x
