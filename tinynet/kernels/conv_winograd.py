"""2-D convolution with 3x3 kernels (stride 1, dilation 1) by Winograd's minimal filtering (Lavin & Gray, 2015).

F(m x m, 3x3) cuts the output into m x m tiles; each needs the t x t input patch d under it
(t = m + 2) and is, with the transforms' matrices B^T (t, t), G (t, 3) and A^T (m, t),

  out_tile = A^T [ sum over c of (G w[o, c] G^T) * (B^T d[c] B) ] A        (* elementwise)

so per tile position p of the t*t (and per group) the sum over input channels is one matrix
product, V[p] (tiles, C/G) @ U[p] (C/G, O/G), through BLAS: t*t multiplies per tile and pair of
channels against the 9*m*m of direct convolution. F(2x2) multiplies 2.25x fewer, F(4x4) 4x fewer
(less on images that are not a multiple of m: the last tiles are partly past the edge); `tile_size`
takes the one with fewer products. The forward is one Numba kernel, `convolve_tiles`, that works a
row of tiles of a few images at a time, so that the row's image rows, tiles V, products and output
tiles stay in the core's cache (written to memory and read back, as separate passes over the whole
batch, they took twice as long): the images lie side by side with their channels last, so that the
transforms' innermost loops (`sandwich`: M X M^T) run along a few hundred contiguous numbers. It
reads all of U for each block: where U is larger than FUSED_WEIGHT_BYTES (AlexNet's layers), the
whole chunk's tiles go through at once instead (`transform_tiles`, one product per position,
`inverse_transform_tiles`: U read once a chunk). The weight gradient's tiles come from
`transform_tiles` too. The batch goes through in chunks, one per core at least (kernels.threads).

The gradients use the same transforms:
  input grad   the full convolution of grad_out with the kernel rotated by 180 degrees and
               transposed (O <-> C within each group): a Winograd forward on grad_out shifted
               by (2 - top, 2 - left).
  weight grad  the adjoint of the forward in w: grad_w[o, c] = G^T [ sum over tiles of
               (A g A^T)[o] * (B^T d B)[c] ] G, with g the m x m tile of grad_out; per position p
               one matrix product (O/G, tiles) @ (tiles, C/G).

Rounding differs from the direct sum (the transforms' constants, F(4x4)'s up to 1/24, amplify it);
tests/kernels/test_conv_winograd.py holds it to 1e-4 (float32) and 1e-10 (float64) relative of the
loop reference. The products are many small BLAS calls where im2col makes one large one,
whose speed on two busy cores varies more than a cost model can foresee (forward_seconds is the
one tinynet.kernels.conv_choice uses). The measured rounding and speeds are in benchmarks/README.md,
"Measurements behind the kernels' constants".
"""
import math
from typing import NamedTuple

import numpy as np

from . import conv
from .compile import Helper, Kernel, prange
from .conv import COPY_RATE, GEMM_RATE, batch_chunks, scratch, sum_in_order
from .threads import map_chunks, matmul, take_the_cores
from .windows import output_shape

NAME = "winograd"
MARGIN = 1.0  # runs wherever the model expects it fastest

# Winograd's calls cost about this many seconds more than im2col's on small convolutions (its channels-last copies
# and weight transform; benchmarks/README.md says where the figure comes from).
WINOGRAD_OVERHEAD = 50e-6

KERNEL_SIZE = 3

# convolve_tiles works a row of tiles of several images at a time, at most as many images as this many bytes of
# transformed tiles hold, in blocks as even as they can be: their image rows, tiles and products then stay in the
# core's cache (benchmarks/README.md). With the transforms as formulas (session 8) the products gain more from longer
# blocks than the cache costs: 1 MB (blocks of 16 images in the face ResNet's layers at batch 32) against 640 kB
# (11-15) and 320 kB (7-8), one thread, each layer's kernel at 32 images: 6.50 / 6.10 / 4.54 ms against 6.64-7.13 /
# 6.49 / 4.77 for its 32, 64 and 128-channel layers, at 16 images 3.42 / 3.10 / 2.23 against 3.48-3.91 / 3.45-3.71 /
# 2.93 (a last block of one or two images cost the most).
BLOCK_BYTES = 1 << 20
# convolve_tiles reads all of the weight's transformed tiles (t*t, C, O/G) for each block: up to this many bytes (the
# face ResNet's 128 -> 128 layers: 2.4 MB, as fast as the whole chunks) that costs less than it saves. Larger ones
# (AlexNet's 3x3 layers: 7-14 MB, twice as slow in blocks) go through the whole chunk's tiles at once
# (transform_tiles, one product per position, inverse_transform_tiles), reading them once a chunk.
FUSED_WEIGHT_BYTES = 4 << 20


class Transform(NamedTuple):
    """F(m x m, 3x3): output tile m, input tile t = m + 2, and its three matrices."""
    m: int
    input_t: np.ndarray  # B^T (t, t): input patch d (t, t) -> B^T d B
    weight: np.ndarray  # G (t, 3): kernel w (3, 3) -> G w G^T
    output_t: np.ndarray  # A^T (m, t): products (t, t) -> A^T M A, the output tile


TRANSFORMS = {
    2: Transform(2,
                 np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], dtype=np.float64),
                 np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]]),
                 np.array([[1, 1, 1, 0], [0, 1, -1, -1]], dtype=np.float64)),
    4: Transform(4,
                 np.array([[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
                           [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]], dtype=np.float64),
                 np.array([[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6],
                           [1 / 24, 1 / 12, 1 / 6], [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]]),
                 np.array([[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]],
                          dtype=np.float64)),
}


class Grid(NamedTuple):
    """A grid of lane vectors in a 2-D array (rows of L lanes): its element (i, j) is row first + i*down + j*across."""
    first: int
    down: int
    across: int


class Rows(NamedTuple):
    """Rows first, first + step, first + 2*step, ... of a 2-D array (rows of L lanes)."""
    first: int
    step: int


# The transforms' matrices as formulas: each computes M x for a column x of rows (a vector of L lanes each) in one
# pass over the lanes, sharing the sums that rows of M have in common (Lavin & Gray's B^T and A^T). The tests check
# each against its matrix in TRANSFORMS. Loops over the nonzeros of M instead, one pass per coefficient, took twice
# as long (benchmarks/README.md, session 8).
# Their constants are float32 (and exact): a Python int times a float32 is a float64 in Numba, and float32 images
# were transformed in float64, half as many lanes to a vector instruction; float64 ones stay float64.
TWO, FOUR, FIVE, EIGHT = np.float32(2), np.float32(4), np.float32(5), np.float32(8)

@Helper
def four_rows(source, of, lane):
    """The lane's numbers in source's rows `of`, the first four."""
    return (source[of.first, lane], source[of.first + of.step, lane], source[of.first + 2 * of.step, lane],
            source[of.first + 3 * of.step, lane])


@Helper
def six_rows(source, of, lane):
    """The lane's numbers in source's rows `of`, the first six."""
    return four_rows(source, of, lane) + (source[of.first + 4 * of.step, lane], source[of.first + 5 * of.step, lane])


@Helper
def input_rows_2(target, to, source, of):
    """target's rows `to` = B^T (4, 4) of F(2x2, 3x3) times source's rows `of` (4 rows each), lane by lane."""
    for lane in range(source.shape[1]):
        d0, d1, d2, d3 = four_rows(source, of, lane)
        target[to.first, lane] = d0 - d2
        target[to.first + to.step, lane] = d1 + d2
        target[to.first + 2 * to.step, lane] = d2 - d1
        target[to.first + 3 * to.step, lane] = d1 - d3


@Helper
def input_rows_4(target, to, source, of):
    """target's rows `to` = B^T (6, 6) of F(4x4, 3x3) times source's rows `of` (6 rows each), lane by lane."""
    for lane in range(source.shape[1]):
        d0, d1, d2, d3, d4, d5 = six_rows(source, of, lane)
        even, odd = d4 - FOUR * d2, d3 - FOUR * d1  # rows 1 and 2: even + odd, even - odd
        even_half, odd_double = d4 - d2, TWO * (d3 - d1)  # rows 3 and 4
        target[to.first, lane] = FOUR * d0 - FIVE * d2 + d4
        target[to.first + to.step, lane] = even + odd
        target[to.first + 2 * to.step, lane] = even - odd
        target[to.first + 3 * to.step, lane] = even_half + odd_double
        target[to.first + 4 * to.step, lane] = even_half - odd_double
        target[to.first + 5 * to.step, lane] = FOUR * d1 - FIVE * d3 + d5


@Helper
def output_rows_2(target, to, source, of):
    """target's rows `to` = A^T (2, 4) of F(2x2, 3x3) times source's rows `of` (2 and 4 rows), lane by lane."""
    for lane in range(source.shape[1]):
        p0, p1, p2, p3 = four_rows(source, of, lane)
        target[to.first, lane] = p0 + p1 + p2
        target[to.first + to.step, lane] = p1 - p2 - p3


@Helper
def output_rows_4(target, to, source, of):
    """target's rows `to` = A^T (4, 6) of F(4x4, 3x3) times source's rows `of` (4 and 6 rows), lane by lane."""
    for lane in range(source.shape[1]):
        p0, p1, p2, p3, p4, p5 = six_rows(source, of, lane)
        sum12, difference12 = p1 + p2, p1 - p2
        sum34, difference34 = p3 + p4, p3 - p4
        target[to.first, lane] = p0 + sum12 + sum34
        target[to.first + to.step, lane] = difference12 + TWO * difference34
        target[to.first + 2 * to.step, lane] = sum12 + FOUR * sum34
        target[to.first + 3 * to.step, lane] = difference12 + EIGHT * difference34 + p5


@Helper
def transform_rows(m, inverse, target, to, source, of):
    """target's rows `to` = M times source's rows `of`, lane by lane: M = A^T (m, m + 2) of F(m x m, 3x3) if
    inverse, else its B^T (m + 2, m + 2)."""
    if inverse:
        if m == 2:
            output_rows_2(target, to, source, of)
        else:
            output_rows_4(target, to, source, of)
    elif m == 2:
        input_rows_2(target, to, source, of)
    else:
        input_rows_4(target, to, source, of)


@Helper
def sandwich(result, result_grid, patch, patch_grid, m, inverse, left_columns):
    """The grid result_grid of result (rows of L lanes) = M P M^T lane by lane, for P the grid patch_grid of patch
    and M the F(m x m, 3x3) matrix of transform_rows: B^T (t x t from t x t, t = m + 2), or A^T if inverse (m x m
    from t x t).

    left_columns (t*t rows of L lanes) is scratch for M P, its (i, b) in row i*t + b. The innermost loops run
    along the L lanes (several images' channels side by side: one image's 32 channels are too short a loop for the
    compiler's vectors, see benchmarks/README.md). (Rows of contiguous 2-D arrays: the compiler vectorizes slices of
    3-D views worse.)
    """
    size_t = m + 2
    size_out = m if inverse else size_t
    for b in range(size_t):  # column b of M P
        transform_rows(m, inverse, left_columns, Rows(b, size_t), patch,
                       Rows(patch_grid.first + b * patch_grid.across, patch_grid.down))
    for i in range(size_out):  # row i of (M P) M^T
        transform_rows(m, inverse, result, Rows(result_grid.first + i * result_grid.down, result_grid.across),
                       left_columns, Rows(i * size_t, 1))


@Helper
def transformed_row(image, m, offset_h, offset_w, ty, first, count, tiles_w):
    """The tiles (t*t*tw, count*C) of row ty of tiles of images first..first+count of image (n, H, W, C): B^T d B
    of F(m x m, 3x3) for each t x t patch d (t = m + 2), which starts at row ty*m - offset_h, column tx*m - offset_w,
    zero outside the image; position (i, j) of tile tx is row (i*t + j)*tw + tx.

    The image rows under the row of tiles are copied first, with the images side by side: rows[a*width + x, k*C + c].
    """
    size_t = m + 2
    height, width, channels = image.shape[1:]
    rows_width = (tiles_w - 1) * m + size_t
    rows = np.empty((size_t * rows_width, count * channels), dtype=image.dtype)
    for a in range(size_t):
        y = ty * m - offset_h + a
        for column in range(rows_width):
            x = column - offset_w
            target = rows[a * rows_width + column]
            if 0 <= y < height and 0 <= x < width:
                for k in range(count):
                    source = image[first + k, y, x]
                    for c in range(channels):
                        target[k * channels + c] = source[c]
            else:
                target[:] = 0.0
    tiles = np.empty((size_t * size_t * tiles_w, count * channels), dtype=image.dtype)
    left_columns = np.empty((size_t * size_t, count * channels), dtype=image.dtype)
    for tx in range(tiles_w):
        sandwich(tiles, Grid(tx, size_t * tiles_w, tiles_w), rows, Grid(tx * m, rows_width, 1), m, False,
                 left_columns)
    return tiles


@Helper
def write_output_row(out, products, m, ty, first, count, tiles_w):
    """Write row ty of output tiles of images first..first+count into out (n, Ho, Wo, O): A^T P A of F(m x m, 3x3)
    for each tile's products P in products (t*t*tw, count*O), position p of tile tx in row p*tw + tx; the last tiles
    are cut at out's edges."""
    size_t = m + 2
    height, width, out_channels = out.shape[1:]
    row = np.empty((m * tiles_w * m, count * out_channels), dtype=out.dtype)  # out's rows, images side by side
    left_columns = np.empty((size_t * size_t, count * out_channels), dtype=out.dtype)
    for tx in range(tiles_w):
        sandwich(row, Grid(tx * m, tiles_w * m, 1), products, Grid(tx, size_t * tiles_w, tiles_w), m, True,
                 left_columns)
    for i in range(min(m, height - ty * m)):
        for x in range(width):
            source = row[i * tiles_w * m + x]
            for k in range(count):
                target = out[first + k, ty * m + i, x]
                for o in range(out_channels):
                    target[o] = source[k * out_channels + o]


def transform_tiles(tiles, image, matrix, step, offset_h, offset_w, tiles_h, tiles_w):
    """Fill tiles (t*t, N*tiles_h*tiles_w, C) with L d L^T for every s x s patch d of image (N, H, W, C).

    L = matrix (t, s); the patch of tile (ty, tx) starts at row ty*step - offset_h, column
    tx*step - offset_w, and is zero outside the image: tiles[i*t + j, (n*tiles_h + ty)*tiles_w + tx, c].
    Channels last, so that the innermost loops run along contiguous channels; parallel over rows of tiles.
    """
    size_t, size_s = matrix.shape
    n_images, height, width, channels = image.shape
    for row in prange(n_images * tiles_h):
        n, ty = row // tiles_h, row % tiles_h
        left_columns = np.empty((size_t, size_s, channels), dtype=tiles.dtype)  # L d of the current patch
        for tx in range(tiles_w):
            left_columns[:] = 0.0
            for a in range(size_s):
                y = ty * step - offset_h + a
                for b in range(size_s):
                    x = tx * step - offset_w + b
                    if 0 <= y < height and 0 <= x < width:
                        for i in range(size_t):
                            coefficient = matrix[i, a]
                            if coefficient != 0.0:
                                for c in range(channels):
                                    left_columns[i, b, c] += coefficient * image[n, y, x, c]
            index = row * tiles_w + tx
            for i in range(size_t):
                for j in range(size_t):
                    tiles[i * size_t + j, index] = 0.0
                    for b in range(size_s):
                        coefficient = matrix[j, b]
                        if coefficient != 0.0:
                            for c in range(channels):
                                tiles[i * size_t + j, index, c] += coefficient * left_columns[i, b, c]


def inverse_transform_tiles(out, products, matrix, tiles_h, tiles_w):
    """Fill out (N, Ho, Wo, O) tile by tile with L M L^T, M (t, t) gathered from products (t*t, G, P, O/G).

    P = N*tiles_h*tiles_w; L = matrix (m, t); tile (ty, tx) of image n is out[n, ty*m:(ty+1)*m, tx*m:(tx+1)*m],
    cut at the edge.
    Channels last and parallel over rows of tiles, as transform_tiles.
    """
    size_m, size_t = matrix.shape
    n_images, height, width, channels = out.shape
    groups, per_group = products.shape[1], products.shape[3]
    for row in prange(n_images * tiles_h):
        n, ty = row // tiles_h, row % tiles_h
        left_columns = np.empty((size_m, size_t, channels), dtype=out.dtype)  # L M of the current tile
        for tx in range(tiles_w):
            index = row * tiles_w + tx
            left_columns[:] = 0.0
            for i in range(size_m):
                for a in range(size_t):
                    coefficient = matrix[i, a]
                    if coefficient != 0.0:
                        for b in range(size_t):
                            for g in range(groups):
                                for k in range(per_group):
                                    left_columns[i, b, g * per_group + k] += coefficient * products[a * size_t + b, g,
                                                                                                    index, k]
            for i in range(min(size_m, height - ty * size_m)):
                for j in range(min(size_m, width - tx * size_m)):
                    target = out[n, ty * size_m + i, tx * size_m + j]
                    target[:] = 0.0
                    for b in range(size_t):
                        coefficient = matrix[j, b]
                        if coefficient != 0.0:
                            for c in range(channels):
                                target[c] += coefficient * left_columns[i, b, c]


def convolve_tiles(out, image, weight_tiles_t, m, offset_h, offset_w, tiles_h, tiles_w, per_block):
    """Winograd's correlation, a row of tiles of per_block images at a time, each in the core's cache:
    out (n, Ho, Wo, O) from image (n, H, W, C) and the weight's tiles U (t*t, G, C/G, O/G), each transposed:
    weight_tiles_t (t*t, G, O/G, C/G) (as transformed_weight makes them: no copy).

    Per row and block: the input tiles V of F(m x m, 3x3) (transformed_row), per position p and group the product
    V[p] (tw*count, C/G) @ U[p] (C/G, O/G) through BLAS (np.dot), then out's tiles A^T P A (write_output_row); the
    last tiles are cut at out's edges. Parallel over rows of tiles and blocks of images.
    """
    size_t = m + 2
    n_images, out_channels = out.shape[0], out.shape[3]
    groups, per_group, group_channels = weight_tiles_t.shape[1:]
    n_blocks = -(-n_images // per_block)
    for work in prange(tiles_h * n_blocks):
        ty, first = work // n_blocks, work % n_blocks * per_block
        count = min(per_block, n_images - first)
        tiles = transformed_row(image, m, offset_h, offset_w, ty, first, count, tiles_w)
        products = np.empty((size_t * size_t * tiles_w, count * out_channels), dtype=out.dtype)
        for p in range(size_t * size_t):
            inputs = tiles[p * tiles_w:(p + 1) * tiles_w].reshape(tiles_w * count, groups * group_channels)
            outputs = products[p * tiles_w:(p + 1) * tiles_w].reshape(tiles_w * count, out_channels)
            if groups == 1:
                np.dot(inputs, weight_tiles_t[p, 0].T, outputs)
            else:
                for g in range(groups):
                    product = np.dot(np.ascontiguousarray(inputs[:, g * group_channels:(g + 1) * group_channels]),
                                     weight_tiles_t[p, g].T)
                    for r in range(tiles_w * count):  # a loop, not a slice assignment: see compile.py
                        for k in range(per_group):
                            outputs[r, g * per_group + k] = product[r, k]
        write_output_row(out, products, m, ty, first, count, tiles_w)


transform_tiles_kernel = Kernel(transform_tiles)
inverse_transform_tiles_kernel = Kernel(inverse_transform_tiles)
convolve_tiles_kernel = Kernel(convolve_tiles)


def images_per_block(n_images, tile_bytes_per_image):
    """How many of n_images convolve_tiles takes side by side: the fewest blocks in which each holds at most
    BLOCK_BYTES of transformed tiles (one image at least), as even as they can be."""
    blocks = -(-n_images // max(1, BLOCK_BYTES // max(tile_bytes_per_image, 1)))
    return max(1, -(-n_images // max(blocks, 1)))


def transform_tiles_reference(image, matrix, step, offsets, tiles_hw):
    """Plain NumPy: tiles (t*t, N*th*tw, C) of L d L^T for each patch d of image (N, H, W, C), as transform_tiles."""
    size_t, size_s = matrix.shape
    n_images, height, width, channels = image.shape
    tiles = np.empty((size_t, size_t, n_images, *tiles_hw, channels), dtype=image.dtype)
    for ty, tx in np.ndindex(*tiles_hw):
        patch = np.zeros((n_images, size_s, size_s, channels), dtype=image.dtype)
        for a, b in np.ndindex(size_s, size_s):
            y, x = ty * step - offsets[0] + a, tx * step - offsets[1] + b
            if 0 <= y < height and 0 <= x < width:
                patch[:, a, b] = image[:, y, x]
        tiles[:, :, :, ty, tx] = np.einsum("ia,nabc,jb->ijnc", matrix, patch, matrix)
    return tiles.reshape(size_t * size_t, n_images * tiles_hw[0] * tiles_hw[1], channels)


def inverse_transform_tiles_reference(products, matrix, out_shape, tiles_hw):
    """Plain NumPy: out (N, Ho, Wo, O) of L M L^T per tile, as inverse_transform_tiles fills it."""
    size_m, size_t = matrix.shape
    n_images, height, width, channels = out_shape
    gathered = products.transpose(0, 2, 1, 3).reshape(size_t, size_t, n_images, *tiles_hw, channels)
    blocks = np.einsum("ia,abnyxc,jb->nyixjc", matrix, gathered, matrix)  # (N, th, m, tw, m, O)
    whole = blocks.reshape(n_images, tiles_hw[0] * size_m, tiles_hw[1] * size_m, channels)
    return np.ascontiguousarray(whole[:, :height, :width])


def convolve_tiles_reference(image, weight_tiles, transform, offsets, out_hw):
    """Plain NumPy: out (n, Ho, Wo, O) of convolve_tiles: the input tiles of transform_tiles_reference, their
    products with weight_tiles (t*t, G, C/G, O/G) per position and group, and inverse_transform_tiles_reference."""
    tiles_hw = tile_counts(out_hw, transform.m)
    tiles = transform_tiles_reference(image, transform.input_t, transform.m, offsets, tiles_hw)  # (t*t, P, C)
    products = by_group(tiles, weight_tiles.shape[1]) @ weight_tiles  # (t*t, G, P, O/G)
    return inverse_transform_tiles_reference(products, transform.output_t,
                                             (image.shape[0], *out_hw, products.shape[1] * products.shape[3]), tiles_hw)


def tile_size(out_hw):
    """m of the Transform with the fewest products for an output (Ho, Wo): (m+2)^2 per tile of m x m."""
    return min(TRANSFORMS, key=lambda m: (m + 2) ** 2 * math.ceil(out_hw[0] / m) * math.ceil(out_hw[1] / m))


def tile_counts(out_hw, m):
    """(th, tw): the m x m tiles that cover an output (Ho, Wo)."""
    return math.ceil(out_hw[0] / m), math.ceil(out_hw[1] / m)


def tiling(out_hw, channels, out_channels, itemsize):
    """The Transform for an output (Ho, Wo), its tile counts (th, tw), and the bytes per image of its
    transformed tiles (C channels in, O out): the batch goes through in chunks of at most COLUMNS_BUDGET_BYTES."""
    transform = TRANSFORMS[tile_size(out_hw)]
    tiles_hw = tile_counts(out_hw, transform.m)
    return transform, tiles_hw, (transform.m + 2) ** 2 * (channels + out_channels) * math.prod(tiles_hw) * itemsize


def channels_last(image, use):
    """image (n, C, H, W) copied to (n, H, W, C), in this thread's scratch buffer for `use`."""
    copy = scratch(image.shape[:1] + image.shape[2:] + image.shape[1:2], image.dtype, use + ", channels last")
    copy[...] = image.transpose(0, 2, 3, 1)
    return copy


def transformed_tiles(image, matrix, step, offsets, tiles_hw, use="tiles"):
    """transform_tiles of image (n, C, H, W) -> (t*t, n*th*tw, C), in this thread's scratch buffer for `use`."""
    size_t = matrix.shape[0]
    tiles = scratch((size_t * size_t, image.shape[0] * tiles_hw[0] * tiles_hw[1], image.shape[1]), image.dtype, use)
    transform_tiles_kernel(tiles, channels_last(image, use), matrix, step, *offsets, *tiles_hw, work=tiles.size)
    return tiles


def by_group(tiles, groups):
    """tiles (t*t, P, R) as (t*t, G, P, R/G), a view: one matrix per position and group."""
    size, n_tiles, channels = tiles.shape
    return tiles.reshape(size, n_tiles, groups, channels // groups).transpose(0, 2, 1, 3)


def transformed_weight(weight, transform, groups):
    """U = G w G^T of weight (O, C/G, 3, 3) -> (t*t, G, C/G, O/G)."""
    out_channels, group_channels = weight.shape[:2]
    g = transform.weight.astype(weight.dtype)
    product = np.kron(g, g) @ weight.reshape(out_channels * group_channels, KERNEL_SIZE ** 2).T  # (t*t, O*C/G)
    return product.reshape(len(product), groups, out_channels // groups, group_channels).transpose(0, 1, 3, 2)


def correlate(x, weight, offsets, out_hw, groups):
    """out (N, O, Ho, Wo): out[n, o, y, x] = sum of x[n, c, y + i - top, x + j - left] * weight[o, c, i, j]
    over c in o's group and i, j < 3.

    x (N, C, H, W) is zero outside its edges; offsets = (top, left) may be negative (then rows and
    columns of x are skipped).
    """
    (n_images, channels), out_channels = x.shape[:2], weight.shape[0]
    transform, tiles_hw, tile_bytes = tiling(out_hw, channels, out_channels, x.itemsize)
    input_t, output_t = transform.input_t.astype(x.dtype), transform.output_t.astype(x.dtype)
    weight_tiles = transformed_weight(weight, transform, groups)
    out = np.empty((n_images, out_channels, *out_hw), dtype=x.dtype)
    take_the_cores()  # the kernels' products run on BLAS's one thread
    in_the_cache = weight_tiles.nbytes <= FUSED_WEIGHT_BYTES
    row_tile_bytes = (transform.m + 2) ** 2 * tiles_hw[1] * channels * x.itemsize  # an image's row of tiles

    def convolve(chunk):
        result = scratch((chunk.stop - chunk.start, *out_hw, out_channels), x.dtype, "out")
        if in_the_cache:
            convolve_tiles_kernel(result, channels_last(x[chunk], "image"), weight_tiles.transpose(0, 1, 3, 2),
                                  transform.m, *offsets, *tiles_hw,
                                  images_per_block(chunk.stop - chunk.start, row_tile_bytes),
                                  work=result.size)  # (batch 1, 35 x 35 x 32: serial is faster)
        else:
            tiles = by_group(transformed_tiles(x[chunk], input_t, transform.m, offsets, tiles_hw), groups)
            products = matmul(tiles, weight_tiles, out=scratch(tiles.shape[:3] + weight_tiles.shape[3:], x.dtype,
                                                                   "products"))  # (t*t, G, n*th*tw, O/G)
            inverse_transform_tiles_kernel(result, products, output_t, *tiles_hw, work=products.size)
        out[chunk] = result.transpose(0, 3, 1, 2)

    copies = x.itemsize * (math.prod(x.shape[1:]) + out_channels * math.prod(out_hw))  # per image (channels last)
    bytes_per_image = copies if in_the_cache else tile_bytes
    map_chunks(convolve, batch_chunks(n_images, bytes_per_image))
    return out


def conv2d_forward(x, weight, stride, pads, dilation, groups):
    """Convolve x (N, C, H, W) with weight (O, C/G, 3, 3) -> out (N, O, Ho, Wo); stride and dilation must be 1."""
    (top, bottom), (left, right) = pads
    out_hw = (x.shape[2] + top + bottom - 2, x.shape[3] + left + right - 2)
    return correlate(x, weight, (top, left), out_hw, groups)


def conv2d_input_grad(grad_out, x_shape, weight, stride, pads, dilation, groups):
    """grad_x (N, C, H, W) from grad_out (N, O, Ho, Wo): grad_out correlated with the rotated, transposed kernel."""
    out_channels, group_channels = weight.shape[:2]
    per_group = weight.reshape(groups, out_channels // groups, group_channels, KERNEL_SIZE, KERNEL_SIZE)
    rotated = per_group.transpose(0, 2, 1, 3, 4)[:, :, :, ::-1, ::-1].reshape(
        groups * group_channels, out_channels // groups, KERNEL_SIZE, KERNEL_SIZE)
    (top, _), (left, _) = pads
    return correlate(grad_out, np.ascontiguousarray(rotated), (2 - top, 2 - left), x_shape[2:], groups)


def conv2d_weight_grad(grad_out, x, weight_shape, stride, pads, dilation, groups):
    """grad_weight (O, C/G, 3, 3) = G^T [ sum over tiles of (A g A^T) * (B^T d B) ] G, per group."""
    out_channels, group_channels = weight_shape[:2]
    transform, tiles_hw, bytes_per_image = tiling(grad_out.shape[2:], x.shape[1], out_channels, x.itemsize)
    size_t = transform.m + 2
    input_t = transform.input_t.astype(x.dtype)
    output = np.ascontiguousarray(transform.output_t.T, dtype=x.dtype)  # (C order: the kernel's one compilation)
    (top, _), (left, _) = pads

    def chunk_sums(chunk):
        tiles = transformed_tiles(x[chunk], input_t, transform.m, (top, left), tiles_hw)
        grad_tiles = transformed_tiles(grad_out[chunk], output, transform.m, (0, 0), tiles_hw, "grad tiles")
        return matmul(by_group(grad_tiles, groups).transpose(0, 1, 3, 2), by_group(tiles, groups))

    sums = sum_in_order(map_chunks(chunk_sums, batch_chunks(x.shape[0], bytes_per_image)),
                        (size_t * size_t, groups, out_channels // groups, group_channels), x.dtype)
    g = transform.weight.astype(x.dtype)
    grad_weight = sums.reshape(size_t * size_t, out_channels * group_channels).T @ np.kron(g, g)  # (O*C/G, 9)
    return grad_weight.reshape(weight_shape)


class Plan(conv.Plan):
    """One layer's Winograd convolution: like im2col's Plan, it keeps nothing between the calls."""

    conv2d_forward = staticmethod(conv2d_forward)
    conv2d_input_grad = staticmethod(conv2d_input_grad)
    conv2d_weight_grad = staticmethod(conv2d_weight_grad)


def unsupported(x_shape, weight_shape, stride, pads, dilation, groups):
    """Why Winograd cannot run these settings (its transforms are for 3x3 kernels at stride 1), or None."""
    if stride != (1, 1) or dilation != (1, 1):
        return f"{NAME} needs stride 1 and dilation 1, got stride {stride}, dilation {dilation}"
    if tuple(weight_shape[2:]) != (KERNEL_SIZE, KERNEL_SIZE):
        return f"{NAME} needs a 3x3 kernel, got {tuple(weight_shape[2:])}"
    return None


def forward_seconds(x_shape, weight_shape, stride, pads, dilation, groups, itemsize):
    """Estimated seconds of conv2d_forward on the course's machine: the tile transforms (input, weight and output
    tiles, at im2col's copy rate: they measured within 20% of it), the products of the transformed tiles, and
    WINOGRAD_OVERHEAD."""
    out_hw = output_shape(x_shape[2:], weight_shape[2:], stride, dilation, pads)
    m = tile_size(out_hw)
    tiles = x_shape[0] * math.prod(tile_counts(out_hw, m))
    out_channels, group_channels = weight_shape[:2]
    transformed = (m + 2) ** 2 * (tiles * (x_shape[1] + out_channels) + out_channels * group_channels)
    flops = 2.0 * (m + 2) ** 2 * tiles * group_channels * out_channels
    return WINOGRAD_OVERHEAD + transformed / COPY_RATE + flops / GEMM_RATE[itemsize]
