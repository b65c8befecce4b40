"""2-D convolution (cross-correlation, as in every deep-learning library) by im2col + BLAS.

im2col copies every receptive field into a column, so the convolution of one group becomes
one matrix product: weight (C_out/G, C_in/G * kh * kw) @ columns (C_in/G * kh * kw, N * Ho * Wo).
Their shapes come from tinynet.kernels.windows (the callers check the arguments there).
The backward pass is two more matrix products and col2im, which adds columns back into
the image. im2col/col2im are Numba kernels, parallel over the rows of the columns and over the
(image, channel) planes of the image respectively, so that no two threads write the same element.
The batch goes through in chunks whose columns fit COLUMNS_BUDGET_BYTES, and the weight gradient
makes the columns again rather than keeping them from the forward pass.
It is the default algorithm of tinynet.kernels.conv_choice (it runs every setting; the others run
where its cost model expects them faster): NAME, MARGIN, unsupported, forward_seconds and Plan are
what the chooser reads. benchmarks/README.md has its speed against plain NumPy and PyTorch CPU.
"""
import math
import threading
import weakref

import numpy as np
from numba import prange

from .compile import Kernel
from .threads import map_chunks, matmul, split, workers
from .windows import output_shape

NAME = "im2col"
MARGIN = 1.0  # the default: the cost model measures the other algorithms against it

# Throughputs on the course's 2-core machine, two threads: BLAS matrix products as im2col makes them (flops per
# second, 2 flops per multiply-add, by dtype itemsize) and the im2col copy (elements per second). The other
# algorithms' cost models use them for their own products and copies. Fitted to the forward times of the
# algorithms on the course's stride-1 shapes: what matters is the ratio of two algorithms' times.
# How and when they were measured: benchmarks/README.md, "Measurements behind the kernels' constants".
GEMM_RATE = {4: 150e9, 8: 75e9}
COPY_RATE = 0.5e9

# The most bytes of im2col columns made at once: a larger batch goes through in chunks of images
# (the columns of a 10x10 conv over 46x46 images with 32 channels are 27 MB per float32 image).
COLUMNS_BUDGET_BYTES = 128 << 20
# Below this many bytes of columns in a layer, the batch goes in one piece (a chunk's hand-over costs ~50 us); from it
# on, in a chunk per core at least (the face ResNet's 1x1 layers at batch 32 hold 295 kB).
SPLIT_BYTES = 1 << 18
_scratch = threading.local()  # .buffers: this thread's reused buffers, by use (see scratch)
_every_thread_buffers = weakref.WeakSet()  # every thread's Buffers, for release_scratch (gone with its thread)


class Buffers:
    """One thread's reused buffers: by_use {use: array}."""

    def __init__(self):
        self.by_use = {}


def im2col(columns, x_padded, kernel_h, kernel_w, stride_h, stride_w, dilation_h, dilation_w):
    """Fill columns (C*kh*kw, N, Ho, Wo) from x_padded (N, C, Hp, Wp).

    columns[(c*kh + i)*kw + j, n, y, x] = x_padded[n, c, y*sh + i*dh, x*sw + j*dw].
    """
    channels = x_padded.shape[1]
    n_images, out_h, out_w = columns.shape[1], columns.shape[2], columns.shape[3]
    for row in prange(channels * kernel_h * kernel_w):  # rows, not channels: a 1-channel image has kh*kw of them
        c, i, j = row // (kernel_h * kernel_w), row // kernel_w % kernel_h, row % kernel_w
        for n in range(n_images):
            for y in range(out_h):
                source_y = y * stride_h + i * dilation_h
                for x in range(out_w):
                    columns[row, n, y, x] = x_padded[n, c, source_y, x * stride_w + j * dilation_w]


def col2im(grad_x_padded, columns, kernel_h, kernel_w, stride_h, stride_w, dilation_h, dilation_w):
    """The adjoint of im2col: add every entry of columns (C*kh*kw, N, Ho, Wo) back into grad_x_padded (N, C, Hp, Wp)."""
    channels = grad_x_padded.shape[1]
    n_images, out_h, out_w = columns.shape[1], columns.shape[2], columns.shape[3]
    for plane in prange(n_images * channels):  # each (image, channel) plane is written by one thread
        n, c = plane // channels, plane % channels
        for i in range(kernel_h):
            for j in range(kernel_w):
                row = (c * kernel_h + i) * kernel_w + j
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


def batch_chunks(n_images, bytes_per_image):
    """Slices of the batch, each as many images as fit in the thread's share of COLUMNS_BUDGET_BYTES of columns (at
    least one); one per core at least where the columns are large enough to share out (kernels.threads)."""
    per_chunk = COLUMNS_BUDGET_BYTES // workers() // max(bytes_per_image, 1)
    return split(n_images, per_chunk, parallel=n_images * bytes_per_image >= SPLIT_BYTES)


def image_columns(x_padded, kernel_hw, stride, dilation, out_hw):
    """im2col of x_padded (n, C, Hp, Wp) -> columns (C*kh*kw, n, Ho, Wo), in this thread's reused buffer."""
    shape = (x_padded.shape[1] * kernel_hw[0] * kernel_hw[1], x_padded.shape[0], *out_hw)
    columns = scratch(shape, x_padded.dtype)
    im2col_kernel(columns, x_padded, *kernel_hw, *stride, *dilation, work=columns.size)
    return columns


def scratch(shape, dtype, use="columns"):
    """An uninitialised array (shape) in a buffer this thread reuses for `use` while it stays within
    COLUMNS_BUDGET_BYTES.

    im2col into fresh memory took about twice as long as into a reused buffer (first-touch page
    faults, see benchmarks/README.md); a buffer is only ever used within one call, each use (columns,
    Winograd's tiles and products) has its own.
    """
    size = math.prod(shape)
    buffers = thread_buffers().by_use
    buffer = buffers.get(use)
    if buffer is None or buffer.dtype != dtype or buffer.size < size:
        buffer = np.empty(size, dtype)
        if buffer.nbytes <= COLUMNS_BUDGET_BYTES:
            buffers[use] = buffer
    return buffer[:size].reshape(shape)


def thread_buffers():
    """This thread's Buffers (made at its first use)."""
    buffers = getattr(_scratch, "buffers", None)
    if buffers is None:
        buffers = _scratch.buffers = Buffers()
        _every_thread_buffers.add(buffers)
    return buffers


def release_scratch():
    """Let go of every thread's reused buffers: each is made again at its next use.

    For a program that goes on to other work after large convolutions: `python -m benchmarks` after each
    case (AlexNet's batch of 32 left ~170 MB in two threads' buffers through every later case; issue 30).
    A buffer in use stays alive until its call returns.
    """
    for buffers in list(_every_thread_buffers):
        buffers.by_use.clear()


def columns_bytes_per_image(x_shape, kernel_hw, out_hw, dtype):
    """Bytes of the im2col columns of one image."""
    return x_shape[1] * kernel_hw[0] * kernel_hw[1] * out_hw[0] * out_hw[1] * np.dtype(dtype).itemsize


def conv2d_forward(x, weight, stride, pads, dilation, groups):
    """Convolve x (N, C, H, W) with weight (O, C/G, kh, kw) -> out (N, O, Ho, Wo).

    stride, dilation: (h, w) pairs; pads: ((top, bottom), (left, right)). The batch goes
    through in chunks whose columns fit COLUMNS_BUDGET_BYTES.
    """
    n_images, out_channels = x.shape[0], weight.shape[0]
    kernel_hw = weight.shape[2:]
    out_hw = output_shape(x.shape[2:], kernel_hw, stride, dilation, pads)
    out = np.empty((n_images, out_channels, *out_hw), dtype=x.dtype)

    def convolve(chunk):
        columns = grouped(image_columns(pad_image(x[chunk], pads), kernel_hw, stride, dilation, out_hw), groups)
        product = matmul(grouped(weight, groups), columns,  # (G, O/G, n*Ho*Wo)
                            out=scratch((groups, out_channels // groups, columns.shape[2]), x.dtype, "product"))
        out[chunk] = product.reshape(out_channels, chunk.stop - chunk.start, *out_hw).transpose(1, 0, 2, 3)

    map_chunks(convolve, batch_chunks(n_images, columns_bytes_per_image(x.shape, kernel_hw, out_hw, x.dtype)))
    return out


def conv2d_input_grad(grad_out, x_shape, weight, stride, pads, dilation, groups):
    """grad_x (N, C, H, W) of conv2d_forward from grad_out (N, O, Ho, Wo): W^T @ grad_out, then col2im."""
    (top, bottom), (left, right) = pads
    n_images, channels, height, width = x_shape
    kernel_hw, out_hw = weight.shape[2:], grad_out.shape[2:]
    grad_x_padded = np.zeros((n_images, channels, height + top + bottom, width + left + right), dtype=grad_out.dtype)
    weight_t = grouped(weight, groups).transpose(0, 2, 1)  # (G, C/G*kh*kw, O/G)

    def convolve_back(chunk):
        grad_rows = grouped(grad_out[chunk].transpose(1, 0, 2, 3), groups)  # (G, O/G, n*Ho*Wo)
        grad_columns = matmul(weight_t, grad_rows, out=scratch((groups, weight_t.shape[1], grad_rows.shape[2]),
                                                                 grad_out.dtype))
        grad_columns = grad_columns.reshape(channels * kernel_hw[0] * kernel_hw[1], chunk.stop - chunk.start, *out_hw)
        col2im_kernel(grad_x_padded[chunk], grad_columns, *kernel_hw, *stride, *dilation, work=grad_columns.size)

    map_chunks(convolve_back, batch_chunks(n_images, columns_bytes_per_image(x_shape, kernel_hw, out_hw,
                                                                             grad_out.dtype)))
    return np.ascontiguousarray(grad_x_padded[:, :, top:top + height, left:left + width])


def conv2d_weight_grad(grad_out, x, weight_shape, stride, pads, dilation, groups):
    """grad_weight (O, C/G, kh, kw) of conv2d_forward: grad_out @ columns^T, the columns recomputed per chunk."""
    kernel_hw, out_hw = weight_shape[2:], grad_out.shape[2:]

    def chunk_grad_weight(chunk):
        columns = image_columns(pad_image(x[chunk], pads), kernel_hw, stride, dilation, out_hw)
        grad_rows = grouped(grad_out[chunk].transpose(1, 0, 2, 3), groups)  # (G, O/G, n*Ho*Wo)
        return matmul(grad_rows, grouped(columns, groups).transpose(0, 2, 1))  # (G, O/G, C/G*kh*kw)

    chunks = batch_chunks(x.shape[0], columns_bytes_per_image(x.shape, kernel_hw, out_hw, x.dtype))
    return sum_in_order(map_chunks(chunk_grad_weight, chunks), (groups, weight_shape[0] // groups,
                                                        math.prod(weight_shape[1:])), grad_out.dtype).reshape(
        weight_shape)


def sum_in_order(parts, shape, dtype):
    """The sum of the arrays parts (each of shape), added in their order (the same sums at every run); zeros of
    shape and dtype when there are none (an empty batch)."""
    total = np.zeros(shape, dtype)
    for part in parts:
        total += part
    return total


class Plan:
    """One layer's im2col convolution: conv2d_forward, conv2d_input_grad and conv2d_weight_grad, the functions
    every algorithm's Plan has (tinynet.kernels.conv_choice). im2col keeps nothing between the calls, so a
    plan is the module's functions whatever gradients the layer wants."""

    def __init__(self, x_needs_grad=False, weight_needs_grad=False):
        """x_needs_grad, weight_needs_grad: the gradients the layer will want (an algorithm keeps what they reuse)."""

    conv2d_forward = staticmethod(conv2d_forward)
    conv2d_input_grad = staticmethod(conv2d_input_grad)
    conv2d_weight_grad = staticmethod(conv2d_weight_grad)


def unsupported(x_shape, weight_shape, stride, pads, dilation, groups):
    """None: im2col runs every setting (checked ones: the window fits, the channels divide into groups)."""
    return None


def forward_seconds(x_shape, weight_shape, stride, pads, dilation, groups, itemsize):
    """Estimated seconds of conv2d_forward on the course's machine: the copy into columns and the matrix products."""
    out_channels, group_channels, kernel_h, kernel_w = weight_shape
    out_hw = output_shape(x_shape[2:], weight_shape[2:], stride, dilation, pads)
    windows = x_shape[0] * out_hw[0] * out_hw[1]
    column_elements = x_shape[1] * kernel_h * kernel_w * windows
    flops = 2.0 * out_channels * group_channels * kernel_h * kernel_w * windows
    return column_elements / COPY_RATE + flops / GEMM_RATE[itemsize]


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
