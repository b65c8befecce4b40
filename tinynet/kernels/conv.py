"""2-D convolution (cross-correlation, as in every deep-learning library) by im2col + BLAS.

im2col copies every receptive field into a column, so the convolution of one group becomes
one matrix product: weight (C_out/G, C_in/G * kh * kw) @ columns (C_in/G * kh * kw, N * Ho * Wo).
Their shapes come from tinynet.kernels.windows (the callers check the arguments there).
The backward pass is two more matrix products and col2im, which adds columns back into
the image. im2col/col2im are Numba kernels, parallel over the rows of the columns and over the
(image, channel) planes of the image respectively, so that no two threads write the same element.
The batch goes through in chunks whose columns fit COLUMNS_BUDGET_BYTES, and the weight gradient
makes the columns again rather than keeping them from the forward pass.

The forward pass, the one inference runs, goes a piece of the output at a time (forward_pieces: an image, or
a few small ones), its columns made and multiplied while they are in the cache and the product written straight
into the output: no transposed copy of the batch. It makes im2col's columns with two faster kernels, each a
copy of long runs of consecutive numbers that the compiler turns into vector instructions: im2col_same_width
where the output rows are as wide as the image (stride 1, 'same' padding; a window element's column is the image
shifted), else split_phases (the image padded and split by the stride's phases) and im2col_phases (each output row
then a run). A single image is shared out to the cores by groups, by output rows or by output
channels.

It is the default algorithm of tinynet.kernels.conv_choice (it runs every setting; the others run
where its cost model expects them faster): NAME, MARGIN, unsupported, forward_seconds and Plan are
what the chooser reads. benchmarks/README.md has its speed against plain NumPy and PyTorch CPU.
"""
import math
import threading
import weakref
from typing import NamedTuple

import numpy as np

from .compile import Helper, Kernel, prange
from .threads import SPLIT_MULTIPLY_ADDS, in_worker, map_chunks, matmul, one_per_worker, split, workers
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
# conv2d_forward multiplies images whose output has fewer pixels than this several at a time (one at a time, the
# products of the face ResNet's 8x8 layers were too narrow for BLAS's kernels),
PRODUCT_COLUMNS = 2048
# and images of fewer multiply-adds than this: a product has a cost of its own besides its arithmetic (the 1-channel
# 5x5 conv's 64 images of 32x32, 0.6M multiply-adds each, took 2.81 ms in products of 2048 columns, 2.18 in products
# of 16384, one thread; benchmarks/README.md).
PRODUCT_MULTIPLY_ADDS = 1 << 23
# From this many output pixels an image of such a piece has a product of its own, written straight into the output
# (one call multiplies them all); below, one product of the piece's columns is copied into place. One thread, 7 images
# of 289 pixels: 1.93 against 1.96 ms; 13 of 784 (1 channel, 5x5): 0.28 against 0.34; 32 of 64: 8.0 against 7.3.
OWN_PRODUCT_COLUMNS = 256
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


@Helper
def copy_run(target, start, stop, source, origin, step):
    """target[start + k] = source[origin + k*step] for k < stop - start, target and source flat arrays.

    The indices are unsigned: Numba then leaves out its wrap-around of negative indices, and at step 1 (a loop of
    its own: the compiler does not split one on the step's value) the compiler turns the loop into vector copies
    (AlexNet's columns 4-7x faster, benchmarks/README.md)."""
    if step == 1:
        shift = origin - start
        for p in range(start, stop):
            target[np.uint64(p)] = source[np.uint64(p + shift)]
    else:
        for k in range(stop - start):
            target[np.uint64(start + k)] = source[np.uint64(origin + k * step)]


@Helper
def zero_run(target, start, stop):
    """target[start:stop] = 0 for a flat array target (unsigned indices, as copy_run)."""
    for p in range(start, stop):
        target[np.uint64(p)] = 0


@Helper
def inside(offset, step, size, count):
    """(first, stop): the positions k < count whose source k*step + offset lies in range(size) are first..stop-1."""
    first = min(count, max(0, (step - 1 - offset) // step))
    return first, min(count, max(first, (size - 1 - offset) // step + 1))


def im2col_same_width(columns, x, kernel_h, kernel_w, dilation_h, dilation_w, top, left):
    """im2col at stride 1 where the output rows are as wide as x's (Wo == W: 'same' padding): fill columns
    (C*kh*kw, N, Ho, W) from x (N, C, H, W) zero-padded by top and left,

      columns[(c*kh + i)*kw + j, n, y, x_] = x[n, c, y + i*dh - top, x_ + j*dw - left] (0 outside x).

    Each row of columns is then x's plane shifted by i*dh - top rows and j*dw - left columns, so one run of
    consecutive numbers (im2col's runs are one output row, Wo numbers: 13 in AlexNet's conv3-5, too short for the
    compiler's vector loops); the numbers the shift brings in from past the left or right edge are set to 0 by
    the mask inside_x[j], whether an output's source column lies in x.
    """
    channels, height, width = x.shape[1], x.shape[2], x.shape[3]
    n_images, out_h = columns.shape[1], columns.shape[2]
    plane = out_h * width
    inside_x = np.empty((kernel_w, plane), np.bool_)  # (filled by loops: an array expression would be a
    for j in range(kernel_w):                          # parallel loop of its own in the parallel compilation)
        first_x, stop_x = inside(j * dilation_w - left, 1, width, width)
        for p in range(plane):
            inside_x[j, p] = first_x <= p % width < stop_x
    source, target = x.reshape(-1), columns.reshape(-1)
    for row in prange(channels * kernel_h * kernel_w):
        c, i, j = row // (kernel_h * kernel_w), row // kernel_w % kernel_h, row % kernel_w
        offset_y, offset_x = i * dilation_h - top, j * dilation_w - left
        first_y, stop_y = inside(offset_y, 1, height, out_h)
        first_x, stop_x = inside(offset_x, 1, width, width)
        keep = inside_x[j]
        for n in range(n_images):
            first = (row * n_images + n) * plane  # columns[row, n, 0, 0]
            if first_y == stop_y or first_x == stop_x:
                zero_run(target, first, first + plane)
                continue
            start, stop = first_y * width + first_x, (stop_y - 1) * width + stop_x  # the first and last source in x
            shift = (n * channels + c) * height * width + offset_y * width + offset_x - first
            zero_run(target, first, first + start)
            for p in range(first + start, first + stop):
                target[np.uint64(p)] = source[np.uint64(p + shift)] if keep[np.uint64(p - first)] else 0
            zero_run(target, first + stop, first + plane)


def split_phases(phases, x, top, left):
    """Fill phases (N, C, sh, sw, Hs, Ws) with x (N, C, H, W) zero-padded by top and left, split by the stride's
    phases: phases[n, c, a, b, y, x_] = x[n, c, y*sh + a - top, x_*sw + b - left] (0 outside x).

    A window element's column of a strided convolution then reads consecutive numbers (im2col_phases), where on
    the padded image it reads every sh-th row and sw-th number; at stride 1 phases is the padded image.
    """
    n_images, channels, stride_h, stride_w, size_h, size_w = phases.shape
    height, width = x.shape[2], x.shape[3]
    source, target = x.reshape(-1), phases.reshape(-1)
    for plane in prange(n_images * channels):
        for a in range(stride_h):
            first_y, stop_y = inside(a - top, stride_h, height, size_h)
            for b in range(stride_w):
                first_x, stop_x = inside(b - left, stride_w, width, size_w)
                first = ((plane * stride_h + a) * stride_w + b) * size_h * size_w  # phases[n, c, a, b, 0, 0]
                zero_run(target, first, first + first_y * size_w)
                for y in range(first_y, stop_y):
                    start = first + y * size_w
                    zero_run(target, start, start + first_x)
                    copy_run(target, start + first_x, start + stop_x, source,
                             (plane * height + y * stride_h + a - top) * width + first_x * stride_w + b - left,
                             stride_w)
                    zero_run(target, start + stop_x, start + size_w)
                zero_run(target, first + stop_y * size_w, first + size_h * size_w)


def im2col_phases(columns, phases, kernel_h, kernel_w, dilation_h, dilation_w):
    """im2col from split_phases' phases (N, C, sh, sw, Hs, Ws): fill columns (C*kh*kw, N, Ho, Wo) with

      columns[(c*kh + i)*kw + j, n, y, x] = phases[n, c, i*dh % sh, j*dw % sw, y + i*dh // sh, x + j*dw // sw],

    i.e. x_padded[n, c, y*sh + i*dh, x*sw + j*dw]: each output row's Wo numbers are consecutive in phases.
    """
    n_images, channels, stride_h, stride_w, size_h, size_w = phases.shape
    out_h, out_w = columns.shape[2], columns.shape[3]
    source, target = phases.reshape(-1), columns.reshape(-1)
    for row in prange(channels * kernel_h * kernel_w):
        c, i, j = row // (kernel_h * kernel_w), row // kernel_w % kernel_h, row % kernel_w
        phase_h, phase_w = i * dilation_h % stride_h, j * dilation_w % stride_w
        for n in range(n_images):
            first = (row * n_images + n) * out_h * out_w  # columns[row, n, 0, 0]
            origin = ((((n * channels + c) * stride_h + phase_h) * stride_w + phase_w) * size_h
                      + i * dilation_h // stride_h) * size_w + j * dilation_w // stride_w
            for y in range(out_h):
                copy_run(target, first + y * out_w, first + (y + 1) * out_w, source, origin + y * size_w, 1)


im2col_kernel = Kernel(im2col)
col2im_kernel = Kernel(col2im)
im2col_same_width_kernel = Kernel(im2col_same_width)
split_phases_kernel = Kernel(split_phases)
im2col_phases_kernel = Kernel(im2col_phases)


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


class Piece(NamedTuple):
    """A part of a convolution's output whose columns conv2d_forward makes and multiplies at once: images, groups,
    output rows and, within each group, output channels (slices)."""
    images: slice
    groups: slice
    rows: slice
    channels: slice


def forward_pieces(n_images, groups, group_channels, out_hw, bytes_per_image, multiply_adds_per_image):
    """The Pieces of conv2d_forward's output, in workers() lists (fewer when there is little to share out), for
    groups of group_channels output channels each.

    A piece is one image (its product written straight into the output), or as many as PRODUCT_COLUMNS of
    output pixels or PRODUCT_MULTIPLY_ADDS hold where images are small (their product then copied into place),
    within the thread's share of COLUMNS_BUDGET_BYTES of columns; as many pieces for every core. A single image
    of threads.SPLIT_MULTIPLY_ADDS or more (below, as for a product, waking the other core cost more than the half it
    saved: part 8's face ResNet at batch 1 took 36.8-37.2 ms on one worker, 39.9-41.8 on two with its 10.6M
    multiply-add layers cut), when the cores share it, is cut into one piece per core: by groups where there are
    enough; else, where its output has PRODUCT_COLUMNS pixels or more, by output rows (each core the columns of its
    own rows); else by output channels (each core all of the columns, cheap for so small an output, and a product
    of their full width: AlexNet conv3's 169 columns cut in two ran 2.46 ms at two threads, its 384 channels cut in
    two 2.17).
    """
    parallel = n_images * bytes_per_image >= SPLIT_BYTES and workers() > 1 and not in_worker()
    per_piece = max(1, min(max(PRODUCT_COLUMNS // max(math.prod(out_hw), 1),
                               PRODUCT_MULTIPLY_ADDS // max(multiply_adds_per_image, 1)),
                           COLUMNS_BUDGET_BYTES // workers() // max(bytes_per_image, 1)))
    if parallel:  # as many pieces for every core
        count = math.ceil(math.ceil(n_images / per_piece) / workers()) * workers()
        per_piece = max(1, math.ceil(n_images / max(count, 1)))
    every = Piece(slice(None), slice(0, groups), slice(0, out_hw[0]), slice(0, group_channels))
    pieces = [every._replace(images=images) for images in split(n_images, per_piece, parallel)]
    if parallel and len(pieces) < workers() and n_images * multiply_adds_per_image >= SPLIT_MULTIPLY_ADDS:
        if groups >= workers():
            pieces = [piece._replace(groups=part) for piece in pieces for part in one_per_worker(groups)]
        elif math.prod(out_hw) >= PRODUCT_COLUMNS:
            pieces = [piece._replace(rows=part) for piece in pieces for part in one_per_worker(out_hw[0])]
        else:
            pieces = [piece._replace(channels=part) for piece in pieces for part in one_per_worker(group_channels)]
    return [pieces[part] for part in one_per_worker(len(pieces))] if parallel else [pieces]


def piece_columns(x, kernel_hw, stride, dilation, top_left, out_hw):
    """The im2col columns (C*kh*kw, n, Ho, Wo) of x (n, C, H, W) zero-padded by top_left = (top, left), in this
    thread's reused buffer: im2col_same_width where it applies, else split_phases and im2col_phases."""
    shape = (x.shape[1] * kernel_hw[0] * kernel_hw[1], x.shape[0], *out_hw)
    columns = scratch(shape, x.dtype)
    if stride == (1, 1) and out_hw[1] == x.shape[3]:
        im2col_same_width_kernel(columns, x, *kernel_hw, *dilation, *top_left, work=columns.size)
    else:
        phases = scratch(phases_shape(x.shape, kernel_hw, stride, dilation, out_hw), x.dtype, "phases")
        split_phases_kernel(phases, x, *top_left, work=phases.size)
        im2col_phases_kernel(columns, phases, *kernel_hw, *dilation, work=columns.size)
    return columns


def phases_shape(x_shape, kernel_hw, stride, dilation, out_hw):
    """(N, C, sh, sw, Hs, Ws): the phases of x (N, C, H, W) that im2col_phases reads for an output (Ho, Wo)."""
    size_hw = [out + (kernel - 1) * step // s for out, kernel, step, s in zip(out_hw, kernel_hw, dilation, stride)]
    return (*x_shape[:2], *stride, *size_hw)


def conv2d_forward(x, weight, stride, pads, dilation, groups):
    """Convolve x (N, C, H, W) with weight (O, C/G, kh, kw) -> out (N, O, Ho, Wo).

    stride, dilation: (h, w) pairs; pads: ((top, bottom), (left, right)). The output goes in pieces (forward_pieces:
    an image at a time, or a few small ones), each piece's columns made and multiplied by the weight while they are
    in the cache, the product written straight into out where the piece is one image or images of
    OWN_PRODUCT_COLUMNS output pixels or more.
    """
    x = np.ascontiguousarray(x)
    n_images, (out_channels, group_channels) = x.shape[0], weight.shape[:2]
    kernel_hw = weight.shape[2:]
    out_hw = output_shape(x.shape[2:], kernel_hw, stride, dilation, pads)
    out = np.empty((n_images, out_channels, *out_hw), dtype=x.dtype)
    weights = grouped(weight, groups)  # (G, O/G, C/G*kh*kw)
    by_group = out.reshape(n_images, groups, out_channels // groups, math.prod(out_hw))
    (top, _), (left, _) = pads

    def convolve(piece):
        images, piece_groups, rows, channels = piece
        source = x[images, piece_groups.start * group_channels:piece_groups.stop * group_channels]
        columns = piece_columns(source, kernel_hw, stride, dilation, (top - rows.start * stride[0], left),
                                (rows.stop - rows.start, out_hw[1]))
        columns = grouped(columns, piece_groups.stop - piece_groups.start)  # (G', C/G*kh*kw, n*rows*Wo)
        n_piece = images.stop - images.start
        if n_piece == 1:
            matmul(weights[piece_groups, channels], columns,
                   out=by_group[images.start, piece_groups, channels, rows.start * out_hw[1]:rows.stop * out_hw[1]])
        elif math.prod(out_hw) >= OWN_PRODUCT_COLUMNS:  # every group and row, each image's (G, C/G*kh*kw, Ho*Wo)
            matmul(weights, columns.reshape(groups, columns.shape[1], n_piece, math.prod(out_hw)).transpose(2, 0, 1, 3),
                   out=by_group[images])
        else:  # every group and row: (G, O/G, n*Ho*Wo) to (n, O, Ho, Wo)
            product = matmul(weights, columns, out=scratch((groups, out_channels // groups, columns.shape[2]),
                                                           x.dtype, "product"))
            out[images] = product.reshape(out_channels, n_piece, *out_hw).transpose(1, 0, 2, 3)

    bytes_per_image = columns_bytes_per_image(x.shape, kernel_hw, out_hw, x.dtype)
    multiply_adds_per_image = out_channels * weights.shape[2] * math.prod(out_hw)
    map_chunks(lambda pieces: [convolve(piece) for piece in pieces],
               forward_pieces(n_images, groups, out_channels // groups, out_hw, bytes_per_image,
                              multiply_adds_per_image))
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


def source_indices(out_size, kernel, stride, dilation, before):
    """(kernel, out_size): along one axis, the source position o*stride + k*dilation - before of window element k
    at output position o (the caller sees which lie inside the input)."""
    return np.arange(kernel)[:, None] * dilation + np.arange(out_size)[None, :] * stride - before


def columns_reference(x, kernel_hw, stride, dilation, top_left, out_hw):
    """Plain NumPy: the im2col columns (C*kh*kw, N, Ho, Wo) of x (N, C, H, W) zero-padded by top_left = (top, left)
    (negative: rows or columns of x left out) and with zeros past its other edges,
    columns[(c*kh + i)*kw + j, n, y, x_] = x[n, c, y*sh + i*dh - top, x_*sw + j*dw - left] (0 outside x)."""
    rows = source_indices(out_hw[0], kernel_hw[0], stride[0], dilation[0], top_left[0])  # (kh, Ho)
    cols = source_indices(out_hw[1], kernel_hw[1], stride[1], dilation[1], top_left[1])  # (kw, Wo)
    rows, cols = rows[:, None, :, None], cols[None, :, None]  # broadcast to (kh, kw, Ho, Wo)
    inside = (rows >= 0) & (rows < x.shape[2]) & (cols >= 0) & (cols < x.shape[3])
    values = x[:, :, np.clip(rows, 0, x.shape[2] - 1), np.clip(cols, 0, x.shape[3] - 1)]
    columns = np.where(inside, values, 0).astype(x.dtype)  # (N, C, kh, kw, Ho, Wo)
    return columns.transpose(1, 2, 3, 0, 4, 5).reshape(x.shape[1] * math.prod(kernel_hw), x.shape[0], *out_hw)


def split_phases_reference(x, stride, top_left, size_hw):
    """Plain NumPy: split_phases' phases (N, C, sh, sw, Hs, Ws) of x (N, C, H, W) zero-padded by top_left,
    phases[n, c, a, b, y, x_] = x[n, c, y*sh + a - top, x_*sw + b - left] (0 outside x): the columns of a
    1 x 1 window at the stride, for each phase (a, b)."""
    phases = np.zeros((*x.shape[:2], *stride, *size_hw), x.dtype)
    for a, b in np.ndindex(*stride):
        phases[:, :, a, b] = columns_reference(x, (1, 1), stride, (1, 1), (top_left[0] - a, top_left[1] - b),
                                               size_hw).reshape(x.shape[1], x.shape[0], *size_hw).transpose(1, 0, 2, 3)
    return phases


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
