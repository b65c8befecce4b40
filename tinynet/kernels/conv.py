"""2-D convolution (cross-correlation, as in every deep-learning library) by im2col + BLAS.

im2col copies every receptive field into a column, so the convolution of one group becomes
one matrix product: weight (C_out/G, C_in/G * kh * kw) @ columns (C_in/G * kh * kw, N * Ho * Wo).
Their shapes come from tinynet.kernels.windows (the callers check the arguments there).
The backward pass is two more matrix products and col2im, which adds columns back into
the image. im2col/col2im are Numba kernels, parallel over input channels (each channel owns
its own rows of the columns and its own plane of the image, so no two threads write the
same element). benchmarks/README.md has its speed against plain NumPy and PyTorch CPU.
"""
import math

import numpy as np
from numba import prange

from .compile import Kernel
from .windows import output_shape


def im2col(columns, x_padded, kernel_h, kernel_w, stride_h, stride_w, dilation_h, dilation_w):
    """Fill columns (C*kh*kw, N, Ho, Wo) from x_padded (N, C, Hp, Wp).

    columns[(c*kh + i)*kw + j, n, y, x] = x_padded[n, c, y*sh + i*dh, x*sw + j*dw].
    """
    channels = x_padded.shape[1]
    n_images, out_h, out_w = columns.shape[1], columns.shape[2], columns.shape[3]
    for c in prange(channels):
        for i in range(kernel_h):
            for j in range(kernel_w):
                row = (c * kernel_h + i) * kernel_w + j
                for n in range(n_images):
                    for y in range(out_h):
                        source_y = y * stride_h + i * dilation_h
                        for x in range(out_w):
                            columns[row, n, y, x] = x_padded[n, c, source_y, x * stride_w + j * dilation_w]


def col2im(grad_x_padded, columns, kernel_h, kernel_w, stride_h, stride_w, dilation_h, dilation_w):
    """The adjoint of im2col: add every entry of columns (C*kh*kw, N, Ho, Wo) back into grad_x_padded (N, C, Hp, Wp)."""
    channels = grad_x_padded.shape[1]
    n_images, out_h, out_w = columns.shape[1], columns.shape[2], columns.shape[3]
    for c in prange(channels):
        for i in range(kernel_h):
            for j in range(kernel_w):
                row = (c * kernel_h + i) * kernel_w + j
                for n in range(n_images):
                    for y in range(out_h):
                        target_y = y * stride_h + i * dilation_h
                        for x in range(out_w):
                            grad_x_padded[n, c, target_y, x * stride_w + j * dilation_w] += columns[row, n, y, x]


im2col_kernel = Kernel(im2col)
col2im_kernel = Kernel(col2im)


def pad_image(x, pads):
    """x (N, C, H, W) zero-padded by pads = ((top, bottom), (left, right))."""
    if pads == ((0, 0), (0, 0)):
        return np.ascontiguousarray(x)
    return np.pad(x, ((0, 0), (0, 0)) + tuple(pads))


def grouped(rows, groups):
    """rows (R, ...) as (G, R/G, product of the other axes): the matrix of each group of rows.

    The sizes are explicit (no -1), so empty batches and layers without channels reshape too.
    """
    return rows.reshape(groups, rows.shape[0] // groups, math.prod(rows.shape[1:]))


def conv2d_forward(x, weight, stride, pads, dilation, groups):
    """Convolve x (N, C, H, W) with weight (O, C/G, kh, kw) -> (out (N, O, Ho, Wo), columns).

    stride, dilation: (h, w) pairs; pads: ((top, bottom), (left, right)). columns is kept
    for the backward pass.
    """
    n_images, channels = x.shape[:2]
    out_channels, _, kernel_h, kernel_w = weight.shape
    out_h, out_w = output_shape(x.shape[2:], weight.shape[2:], stride, dilation, pads)
    columns = np.empty((channels * kernel_h * kernel_w, n_images, out_h, out_w), dtype=x.dtype)
    im2col_kernel(columns, pad_image(x, pads), kernel_h, kernel_w, *stride, *dilation, work=columns.size)
    out = np.matmul(grouped(weight, groups), grouped(columns, groups))  # (G, O/G, N*Ho*Wo)
    out = out.reshape(out_channels, n_images, out_h, out_w).transpose(1, 0, 2, 3)
    return np.ascontiguousarray(out), columns


def conv2d_backward(grad_out, columns, x_shape, weight, stride, pads, dilation, groups, need_x=True,
                    need_weight=True):
    """Gradients (grad_x (N, C, H, W) or None, grad_weight (O, C/G, kh, kw) or None)."""
    kernel_h, kernel_w = weight.shape[2:]
    grad_rows = grouped(grad_out.transpose(1, 0, 2, 3), groups)  # (G, O/G, N*Ho*Wo)
    grad_weight = None
    if need_weight:
        grad_weight = np.matmul(grad_rows, grouped(columns, groups).transpose(0, 2, 1)).reshape(weight.shape)
    grad_x = None
    if need_x:
        grad_columns = np.matmul(grouped(weight, groups).transpose(0, 2, 1), grad_rows).reshape(columns.shape)
        (top, bottom), (left, right) = pads
        n_images, channels, height, width = x_shape
        grad_x_padded = np.zeros((n_images, channels, height + top + bottom, width + left + right), dtype=columns.dtype)
        col2im_kernel(grad_x_padded, grad_columns, kernel_h, kernel_w, *stride, *dilation, work=grad_columns.size)
        grad_x = np.ascontiguousarray(grad_x_padded[:, :, top:top + height, left:left + width])
    return grad_x, grad_weight


def conv2d_reference(x, weight, stride, pads, dilation, groups):
    """Plain loops: out[n, o, y, x] = sum over the window of group(o) of x * weight."""
    n_images, channels = x.shape[:2]
    out_channels, group_channels, kernel_h, kernel_w = weight.shape
    x_padded = pad_image(x, pads)
    out_h, out_w = output_shape(x.shape[2:], weight.shape[2:], stride, dilation, pads)
    out = np.zeros((n_images, out_channels, out_h, out_w), dtype=x.dtype)
    per_group = out_channels // groups
    for n in range(n_images):
        for o in range(out_channels):
            first = (o // per_group) * group_channels
            for y in range(out_h):
                for x_ in range(out_w):
                    window = x_padded[n, first:first + group_channels,
                                      y * stride[0]:y * stride[0] + (kernel_h - 1) * dilation[0] + 1:dilation[0],
                                      x_ * stride[1]:x_ * stride[1] + (kernel_w - 1) * dilation[1] + 1:dilation[1]]
                    out[n, o, y, x_] = np.sum(window * weight[o])
    return out


def conv2d_backward_reference(grad_out, x, weight, stride, pads, dilation, groups):
    """Plain loops: every output gradient flows back to the window and the weights it used."""
    out_channels, group_channels, kernel_h, kernel_w = weight.shape
    x_padded = pad_image(x, pads)
    grad_x_padded = np.zeros_like(x_padded)
    grad_weight = np.zeros_like(weight)
    per_group = out_channels // groups
    for n, o, y, x_ in np.ndindex(*grad_out.shape):
        first = (o // per_group) * group_channels
        window = (n, slice(first, first + group_channels),
                  slice(y * stride[0], y * stride[0] + (kernel_h - 1) * dilation[0] + 1, dilation[0]),
                  slice(x_ * stride[1], x_ * stride[1] + (kernel_w - 1) * dilation[1] + 1, dilation[1]))
        grad_x_padded[window] += grad_out[n, o, y, x_] * weight[o]
        grad_weight[o] += grad_out[n, o, y, x_] * x_padded[window]
    (top, bottom), (left, right) = pads
    height, width = x.shape[2:]
    return grad_x_padded[:, :, top:top + height, left:left + width], grad_weight
