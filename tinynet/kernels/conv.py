"""2-D convolution (cross-correlation, as in every deep-learning library) by im2col + matrix products.

im2col copies every receptive field into a column, so the convolution of one group becomes
one matrix product: weight (C_out/G, C_in/G * kh * kw) @ columns (C_in/G * kh * kw, N * Ho * Wo).
The backward pass is two more matrix products and col2im, which adds columns back into
the image. im2col/col2im are Numba kernels, parallel over input channels (each channel owns
its own rows of the columns and its own plane of the image, so no two threads write the
same element).

When a window holds few numbers (C_in/G * kh * kw <= SMALL_WINDOW, e.g. one input channel and
a 5x5 kernel), the BLAS matrix product is short and wide and the copies around it cost more
than the arithmetic: `conv2d_small_window` then does the products itself, image by image, in
a loop that writes the output in place. benchmarks/README.md has the measurements behind both
choices.
"""
import numpy as np
from numba import njit, prange

from . import Kernel

# Largest C_in/G * kh * kw computed by conv2d_small_window instead of im2col + BLAS (measured in
# benchmarks/README.md).
SMALL_WINDOW = 32


@njit(cache=True)
def output_shape(x_padded_shape, kernel_h, kernel_w, stride_h, stride_w, dilation_h, dilation_w):
    """(Ho, Wo): the number of window positions down and across an image of shape (..., Hp, Wp)."""
    out_h = (x_padded_shape[-2] - (kernel_h - 1) * dilation_h - 1) // stride_h + 1
    out_w = (x_padded_shape[-1] - (kernel_w - 1) * dilation_w - 1) // stride_w + 1
    return out_h, out_w


@njit(cache=True)
def channel_to_columns(columns, image, channel, first_column, kernel_h, kernel_w, stride_h, stride_w,
                       dilation_h, dilation_w):
    """Copy the windows of one channel of image (C, Hp, Wp) into its kh*kw rows of columns:

    columns[(channel*kh + i)*kw + j, first_column + y*Wo + x] = image[channel, y*sh + i*dh, x*sw + j*dw].
    """
    out_h, out_w = output_shape(image.shape, kernel_h, kernel_w, stride_h, stride_w, dilation_h, dilation_w)
    for i in range(kernel_h):
        for j in range(kernel_w):
            row = (channel * kernel_h + i) * kernel_w + j
            for y in range(out_h):
                source_y = y * stride_h + i * dilation_h
                base = first_column + y * out_w
                for x in range(out_w):
                    columns[row, base + x] = image[channel, source_y, x * stride_w + j * dilation_w]


def im2col(columns, x_padded, kernel_h, kernel_w, stride_h, stride_w, dilation_h, dilation_w):
    """Fill columns (C*kh*kw, N*Ho*Wo) from x_padded (N, C, Hp, Wp).

    columns[(c*kh + i)*kw + j, (n*Ho + y)*Wo + x] = x_padded[n, c, y*sh + i*dh, x*sw + j*dw].
    """
    n_images, channels = x_padded.shape[0], x_padded.shape[1]
    out_h, out_w = output_shape(x_padded.shape, kernel_h, kernel_w, stride_h, stride_w, dilation_h, dilation_w)
    for c in prange(channels):
        for n in range(n_images):
            channel_to_columns(columns, x_padded[n], c, n * out_h * out_w, kernel_h, kernel_w, stride_h, stride_w,
                               dilation_h, dilation_w)


def col2im(grad_x_padded, columns, kernel_h, kernel_w, stride_h, stride_w, dilation_h, dilation_w):
    """The adjoint of im2col: add every column entry back into grad_x_padded (N, C, Hp, Wp)."""
    n_images, channels = grad_x_padded.shape[0], grad_x_padded.shape[1]
    out_h, out_w = output_shape(grad_x_padded.shape, kernel_h, kernel_w, stride_h, stride_w, dilation_h, dilation_w)
    for c in prange(channels):
        for i in range(kernel_h):
            for j in range(kernel_w):
                row = (c * kernel_h + i) * kernel_w + j
                for n in range(n_images):
                    for y in range(out_h):
                        target_y = y * stride_h + i * dilation_h
                        base = (n * out_h + y) * out_w
                        for x in range(out_w):
                            grad_x_padded[n, c, target_y, x * stride_w + j * dilation_w] += columns[row, base + x]


def conv2d_small_window(out, x_padded, weight_rows, kernel_h, kernel_w, stride_h, stride_w, dilation_h, dilation_w):
    """out (N, O, Ho*Wo) = x_padded (N, C, Hp, Wp) convolved with weight_rows (O, C/G * kh*kw), image by image.

    Each image's columns (C*kh*kw, Ho*Wo) stay in the cache, and out[n, o] is summed in place
    over the rows k of o's group: weight_rows[o, k] * columns[first row of the group + k], a loop
    over contiguous numbers that the compiler turns into vector instructions. Parallel over images.
    """
    n_images, channels = x_padded.shape[0], x_padded.shape[1]
    out_channels, group_rows = weight_rows.shape
    rows = channels * kernel_h * kernel_w
    per_group = out_channels * group_rows // rows  # output channels per group: O / G, with G = rows / group_rows
    for n in prange(n_images):
        columns = np.empty((rows, out.shape[2]), dtype=out.dtype)
        for c in range(channels):
            channel_to_columns(columns, x_padded[n], c, 0, kernel_h, kernel_w, stride_h, stride_w, dilation_h,
                               dilation_w)
        for o in range(out_channels):
            first_row = (o // per_group) * group_rows
            out_row = out[n, o]
            out_row[:] = 0
            for k in range(group_rows):
                weight_value = weight_rows[o, k]
                column_row = columns[first_row + k]
                for p in range(out_row.shape[0]):
                    out_row[p] += weight_value * column_row[p]


im2col_kernel = Kernel(im2col)
col2im_kernel = Kernel(col2im)
conv2d_small_window_kernel = Kernel(conv2d_small_window)


def pad_image(x, pads):
    """x (N, C, H, W) zero-padded by pads = ((top, bottom), (left, right))."""
    if pads == ((0, 0), (0, 0)):
        return np.ascontiguousarray(x)
    return np.pad(x, ((0, 0), (0, 0)) + tuple(pads))


def image_columns(x_padded, kernel_h, kernel_w, stride, dilation):
    """im2col of x_padded (N, C, Hp, Wp): a new array (C*kh*kw, N*Ho*Wo)."""
    n_images, channels = x_padded.shape[:2]
    out_h, out_w = output_shape(x_padded.shape, kernel_h, kernel_w, *stride, *dilation)
    columns = np.empty((channels * kernel_h * kernel_w, n_images * out_h * out_w), dtype=x_padded.dtype)
    im2col_kernel(columns, x_padded, kernel_h, kernel_w, *stride, *dilation, work=columns.size)
    return columns


def conv2d_forward(x, weight, stride, pads, dilation, groups):
    """Convolve x (N, C, H, W) with weight (O, C/G, kh, kw) -> out (N, O, Ho, Wo).

    stride, dilation: (h, w) pairs; pads: ((top, bottom), (left, right)).
    """
    n_images = x.shape[0]
    out_channels, _, kernel_h, kernel_w = weight.shape
    x_padded = pad_image(x, pads)
    out_h, out_w = output_shape(x_padded.shape, kernel_h, kernel_w, *stride, *dilation)
    weight_rows = np.ascontiguousarray(weight.reshape(out_channels, -1))  # (O, C/G * kh * kw)
    if weight_rows.shape[1] <= SMALL_WINDOW:
        out = np.empty((n_images, out_channels, out_h * out_w), dtype=x.dtype)
        conv2d_small_window_kernel(out, x_padded, weight_rows, kernel_h, kernel_w, *stride, *dilation,
                                   work=out.size * weight_rows.shape[1])
        return out.reshape(n_images, out_channels, out_h, out_w)
    columns = image_columns(x_padded, kernel_h, kernel_w, stride, dilation)
    grouped_columns = columns.reshape(groups, -1, columns.shape[1])
    out = np.matmul(weight_rows.reshape(groups, out_channels // groups, -1), grouped_columns)  # (G, O/G, N*Ho*Wo)
    return np.ascontiguousarray(out.reshape(out_channels, n_images, out_h, out_w).transpose(1, 0, 2, 3))


def conv2d_backward(grad_out, x, weight, stride, pads, dilation, groups, need_x=True, need_weight=True):
    """Gradients (grad_x (N, C, H, W) or None, grad_weight (O, C/G, kh, kw) or None) of the
    convolution of x (N, C, H, W) with weight, given grad_out (N, O, Ho, Wo).

    The columns of x are computed again here rather than kept from the forward pass: that
    costs one im2col, and spares memory (AlexNet's conv1 at batch 32 has 150 MB of them).
    """
    out_channels, _, kernel_h, kernel_w = weight.shape
    grad_rows = grad_out.transpose(1, 0, 2, 3).reshape(groups, out_channels // groups, -1)  # (G, O/G, N*Ho*Wo)
    grad_weight = None
    if need_weight:
        columns = image_columns(pad_image(x, pads), kernel_h, kernel_w, stride, dilation)
        grouped_columns = columns.reshape(groups, -1, columns.shape[1])
        grad_weight = np.matmul(grad_rows, grouped_columns.transpose(0, 2, 1)).reshape(weight.shape)
    grad_x = None
    if need_x:
        grouped_weight = weight.reshape(groups, out_channels // groups, -1)
        grad_columns = np.matmul(grouped_weight.transpose(0, 2, 1), grad_rows)  # (G, C/G * kh * kw, N*Ho*Wo)
        (top, bottom), (left, right) = pads
        n_images, channels, height, width = x.shape
        grad_x_padded = np.zeros((n_images, channels, height + top + bottom, width + left + right), dtype=x.dtype)
        col2im_kernel(grad_x_padded, np.ascontiguousarray(grad_columns.reshape(channels * kernel_h * kernel_w, -1)),
                      kernel_h, kernel_w, *stride, *dilation, work=grad_columns.size)
        grad_x = np.ascontiguousarray(grad_x_padded[:, :, top:top + height, left:left + width])
    return grad_x, grad_weight


def conv2d_reference(x, weight, stride, pads, dilation, groups):
    """Plain loops: out[n, o, y, x] = sum over the window of group(o) of x * weight."""
    n_images, channels = x.shape[:2]
    out_channels, group_channels, kernel_h, kernel_w = weight.shape
    x_padded = pad_image(x, pads)
    out_h = (x_padded.shape[2] - (kernel_h - 1) * dilation[0] - 1) // stride[0] + 1
    out_w = (x_padded.shape[3] - (kernel_w - 1) * dilation[1] - 1) // stride[1] + 1
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
