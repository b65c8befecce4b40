"""Local response normalization across channels, with TensorFlow's definition:

  sqr_sum[n, c, y, x] = sum of x[n, c', y, x]^2 for c' in [c - r, c + r] (clipped to [0, C))
  out = x / (bias + alpha * sqr_sum) ** beta

(alpha is not divided by the window size, unlike PyTorch's LocalResponseNorm.)
"""
import numpy as np
from numba import prange

from . import Kernel


def channel_window_sum(out, values, radius):
    """out[n, c] = sum of values[n, c'] for |c' - c| <= radius; arrays (N, C, H, W).

    A running sum over channels: add the channel entering the window, drop the one leaving.
    """
    n_images, channels = values.shape[0], values.shape[1]
    for n in prange(n_images):
        running = np.zeros(values.shape[2:], dtype=values.dtype)
        for c in range(min(radius, channels)):
            running += values[n, c]
        for c in range(channels):
            if c + radius < channels:
                running += values[n, c + radius]
            if c - radius - 1 >= 0:
                running -= values[n, c - radius - 1]
            out[n, c] = running


channel_window_sum_kernel = Kernel(channel_window_sum)


def window_sum(values, radius):
    """channel_window_sum as a function returning a new array."""
    out = np.empty_like(values)
    channel_window_sum_kernel(out, np.ascontiguousarray(values), radius, work=values.size)
    return out


def lrn_forward(x, radius, bias, alpha, beta):
    """(out, denominator) for x (N, C, H, W); denominator = bias + alpha * sqr_sum."""
    denominator = bias + alpha * window_sum(x * x, radius)
    return x * denominator ** -beta, denominator


def lrn_backward(grad_out, x, denominator, radius, alpha, beta):
    """d/dx_j = g_j d_j^-beta - 2 alpha beta x_j * sum over |i - j| <= r of g_i x_i d_i^(-beta-1)."""
    scaled = grad_out * x * denominator ** (-beta - 1)
    return grad_out * denominator ** -beta - 2 * alpha * beta * x * window_sum(scaled, radius)


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
