"""2-D convolution (stride 1, dilation 1) by real FFTs: products of spectra instead of sliding windows.

Zero-pad every image and kernel to one transform size (Fh, Fw) at least the padded input's
(Hp, Wp); then no circular wrap-around reaches the outputs kept, and per frequency f

  forward      out_f[n, o]   = sum_c x_f[n, c] * conj(w_f[o, c])        (a correlation)
  input grad   gx_f[n, c]    = sum_o g_f[n, o] * w_f[o, c]              (a full convolution)
  weight grad  gw_f[o, c]    = sum_n conj(g_f[n, o]) * x_f[n, c]        (a correlation)

each one complex matrix product per frequency and group (np.matmul, batched over both). Spectra
are laid out frequencies first, (Fh, Fw//2 + 1, A, B), so that np.matmul takes them as they come:
scipy.fft transforms the images along their two leading axes. A kh x kw kernel is not padded and
transformed: its spectrum is two small DFT matrix products (kh rows, then Fh rows), and the weight
gradient's inverse transform makes only the kh x kw values kept. A Plan keeps the spectra one
layer's forward and gradients share (x's for the weight gradient, the weight's for the input
gradient, grad_out's for both). A kxk kernel costs O(log(Fh*Fw)) per pixel instead of O(k^2):
tinynet.kernels.conv_choice picks this for large kernels (forward_seconds is its cost model; MARGIN
why it must beat im2col by more than the others). Rounding differs from the direct sum
(within 1e-10 relative in float64, 1e-4 in float32: tests/kernels/test_conv_algorithms.py compares
it with the loop reference, tinynet.kernels.conv.conv2d_reference).
"""
import functools
import math

import numpy as np

from .compile import Kernel, prange
from .conv import COPY_RATE, batch_chunks
from .threads import in_worker, matmul, workers

NAME = "fft"

# FFT rounds differently from the direct sum and the model's rates are rough: it runs only where the
# model expects it at least this many times faster than im2col (the default algorithm).
MARGIN = 2.0

# Throughputs on the course's 2-core machine, two threads, by dtype itemsize (measured as conv.GEMM_RATE):
# a real 2-D FFT in 2.5 * F * log2(F) flops, and the batched small complex products (of spectra, and the
# kernels' DFT products) in 8 flops per complex multiply-add.
FFT_RATE = {4: 5e9, 8: 3.5e9}
SPECTRAL_PRODUCT_RATE = {4: 25e9, 8: 12e9}
# The side of transpose's square tiles, in elements: of 8, 16, 32 and 64, 8 was the fastest (2.4 ms for a
# (1426, 1024) complex64 matrix on one core; NumPy's transposed copy 7-11 ms).
TILE = 8


def fft_workers():
    """Threads per transform call: SciPy's FFT (2-3x faster than NumPy's on many small transforms) splits the batch
    of images among them; one per core (kernels.threads.workers), one inside a chunk's thread."""
    return 1 if in_worker() else workers()


def scipy_fft():
    """scipy.fft, imported at the first FFT convolution, not with tinynet: importing it adds a warnings
    filter (scipy.special's), and importing tinynet changes no process-wide setting (tests/test_import.py)."""
    import scipy.fft

    return scipy.fft


def fast_length(n):
    """The smallest 2^a * 3^b * 5^c >= n: lengths the FFT transforms fastest."""
    length = n
    while True:
        rest = length
        for factor in (2, 3, 5):
            while rest % factor == 0:
                rest //= factor
        if rest == 1:
            return length
        length += 1


def transform_size(padded_hw):
    """(Fh, Fw) for a padded input of size (Hp, Wp)."""
    return tuple(fast_length(size) for size in padded_hw)


def padded_hw(x_shape, pads):
    return tuple(size + before + after for size, (before, after) in zip(x_shape[2:], pads))


def complex_dtype(dtype):
    return np.result_type(dtype, np.complex64)


@functools.lru_cache(maxsize=64)
def dft_matrix(frequencies, samples, size, sign, dtype):
    """exp(sign * 2 pi i * f * t / size) for f < frequencies (rows), t < samples (columns), of complex dtype."""
    phase = np.outer(np.arange(frequencies), np.arange(samples)) % size  # exact integers: small angles
    matrix = np.exp(sign * 2j * np.pi * phase / size).astype(dtype)
    matrix.flags.writeable = False  # shared by every call (cached)
    return matrix


def image_spectra(images, size, offset_hw=(0, 0)):
    """rfft2 of images (A, B, h, w), placed at offset_hw in zeros of size (Fh, Fw) -> (Fh, Fw//2 + 1, A, B)."""
    planes = np.zeros(size + images.shape[:2], images.dtype)
    (top, left), (height, width) = offset_hw, images.shape[2:]
    planes[top:top + height, left:left + width] = images.transpose(2, 3, 0, 1)
    return scipy_fft().rfftn(planes, axes=(0, 1), workers=fft_workers())


def images_of(spectrum, size, crop_hw, offset_hw=(0, 0)):
    """The inverse of image_spectra: (Fh, Fw//2 + 1, A, B) -> images (A, B, h, w) cropped to crop_hw from offset_hw.

    irfft2 is an inverse transform along H, then one along W. Along H first, in the spectrum's own layout, and
    only the h rows kept go on: through a tiled transpose (transpose_kernel) to (A, B, h, Fw//2 + 1), then along
    W. Half the time of NumPy's transpose of the whole spectrum and irfft2 (seed 004's second convolution's
    output at batch 16: 12 ms instead of 25, one core or two).
    """
    fft, workers = scipy_fft(), fft_workers()
    (top, left), (height, width) = offset_hw, crop_hw
    a, b, half = spectrum.shape[2], spectrum.shape[3], spectrum.shape[1]
    kept_rows = fft.ifft(spectrum, axis=0, workers=workers)[top:top + height]  # (h, Fw//2 + 1, A, B)
    rows = np.empty((a, b, height, half), spectrum.dtype)
    transpose_kernel(rows.reshape(a * b, height * half), kept_rows.reshape(height * half, a * b), work=rows.size)
    planes = fft.irfft(rows, n=size[1], axis=-1, workers=workers)
    return np.ascontiguousarray(planes[:, :, :, left:left + width])


def transpose(out, matrix):
    """out (m, n) = matrix (n, m) transposed, TILE x TILE elements at a time, so that both the rows read and the
    rows written stay in cache while a tile is copied (NumPy's copy of a transposed view walks one of them a whole
    row apart at every element: 3-4x slower on the spectra here)."""
    rows, columns = matrix.shape
    for tile_row in prange((rows + TILE - 1) // TILE):
        first_row = tile_row * TILE
        for first_column in range(0, columns, TILE):
            for column in range(first_column, min(first_column + TILE, columns)):
                for row in range(first_row, min(first_row + TILE, rows)):
                    out[column, row] = matrix[row, column]


transpose_kernel = Kernel(transpose)


def kernel_spectra(weight, size, groups):
    """conj(rfft2) of weight (O, C/G, kh, kw) zero-padded to size -> (Fh * (Fw//2 + 1), G, C/G, O/G).

    Only the kh x kw values are transformed: along W by a (Fw//2 + 1, kw) DFT matrix, then along H
    by a (Fh, kh) one (the conjugate spectrum is the transform with the opposite sign).
    """
    out_channels, group_channels, kernel_h, kernel_w = weight.shape
    dtype, half, kernels = complex_dtype(weight.dtype), size[1] // 2 + 1, out_channels * group_channels
    taps = weight.reshape(groups, out_channels // groups, group_channels, kernel_h, kernel_w).transpose(3, 4, 0, 2, 1)
    along_w = dft_matrix(half, kernel_w, size[1], 1, dtype) @ taps.reshape(kernel_h, kernel_w, kernels)
    along_h = matmul(dft_matrix(size[0], kernel_h, size[0], 1, dtype), along_w.reshape(kernel_h, half * kernels))
    return along_h.reshape(size[0] * half, groups, group_channels, out_channels // groups)


def kernel_of(spectrum, size, kernel_hw):
    """The inverse of rfft2 for the first kernel_hw values only: spectrum (Fh * (Fw//2 + 1), G, O/G, C/G)
    -> kernels (O, C/G, kh, kw), by two DFT matrix products (along H keeping kh rows, then along W)."""
    _, groups, group_out, group_channels = spectrum.shape
    half, kernels = size[1] // 2 + 1, groups * group_out * group_channels
    along_h = matmul(dft_matrix(kernel_hw[0], size[0], size[0], 1, spectrum.dtype),
                     spectrum.reshape(size[0], half * kernels))
    # irfft2's weights: 1 / (Fh * Fw), twice for the frequencies between 0 and Fw/2 (they stand for their conjugates)
    weights = np.full(half, 2.0 / (size[0] * size[1]), spectrum.real.dtype)
    weights[0] /= 2
    if size[1] % 2 == 0:
        weights[-1] /= 2
    inverse_w = dft_matrix(kernel_hw[1], half, size[1], 1, spectrum.dtype) * weights
    planes = (inverse_w @ along_h.reshape(kernel_hw[0], half, kernels)).real  # (kh, kw, G * O/G * C/G)
    return np.ascontiguousarray(planes.reshape(*kernel_hw, groups * group_out, group_channels).transpose(2, 3, 0, 1))


def conjugated(spectrum):
    """spectrum conjugated in place (a fresh array: no copy)."""
    return np.conjugate(spectrum, out=spectrum)


def by_group(spectrum, groups):
    """(Fh, Fw//2 + 1, A, B) -> a (F, G, A, B/G) view: np.matmul's batch of one matrix per frequency and group."""
    a, b = spectrum.shape[2:]
    return spectrum.reshape(spectrum.shape[0] * spectrum.shape[1], a, groups, b // groups).transpose(0, 2, 1, 3)


def ungrouped(product, size):
    """(F, G, A, B/G) -> (Fh, Fw//2 + 1, A, B), the layout of image_spectra (a copy only with several groups)."""
    groups, a, b = product.shape[1:]
    return product.transpose(0, 2, 1, 3).reshape(size[0], size[1] // 2 + 1, a, groups * b)


def spectra_bytes_per_image(channels, out_channels, size, dtype):
    """Bytes of one image's input and output spectra and output planes in the forward."""
    spectra = (channels + out_channels) * size[0] * (size[1] // 2 + 1) * np.dtype(complex_dtype(dtype)).itemsize
    return spectra + out_channels * size[0] * size[1] * np.dtype(dtype).itemsize


def out_of_spectra(x_f, weight_f, size, out_hw, groups):
    """The forward's output (N, O, Ho, Wo) from x's spectra (Fh, Fw//2 + 1, N, C) and the weight's (kernel_spectra)."""
    return images_of(ungrouped(matmul(by_group(x_f, groups), weight_f), size), size, out_hw)


class Plan:
    """One convolution layer's FFT algorithm: conv2d_forward, conv2d_input_grad and conv2d_weight_grad
    (the functions every algorithm's Plan has), sharing the spectra they compute.

    It keeps the spectra the gradients wanted will reuse: the weight's for the input gradient
    (x_needs_grad), x's for the weight gradient (weight_needs_grad), grad_out's for the other gradient
    (both). An array is recognised by identity: it must not change in place between the calls, as
    for every array saved for backward. The module's functions are a Plan that keeps nothing.
    """

    def __init__(self, x_needs_grad=False, weight_needs_grad=False):
        self.keep = {"weight": x_needs_grad, "x": weight_needs_grad, "grad_out": x_needs_grad and weight_needs_grad}
        self.kept = {}  # role -> (array, its spectrum)

    def spectra(self, role, array, compute):
        """compute(array), or the spectrum kept for this very array in this role."""
        array_kept, spectrum = self.kept.get(role, (None, None))
        if array_kept is not array:
            spectrum = compute(array)
            if self.keep[role]:
                self.kept[role] = (array, spectrum)
        return spectrum

    def x_spectra(self, x, pads):
        """x (N, C, H, W) padded by pads -> (Fh, Fw//2 + 1, N, C)."""
        size = transform_size(padded_hw(x.shape, pads))
        return self.spectra("x", x, lambda x: image_spectra(x, size, (pads[0][0], pads[1][0])))

    def weight_spectra(self, weight, size, groups):
        """weight (O, C/G, kh, kw) -> conj(rfft2) (Fh * (Fw//2 + 1), G, C/G, O/G), as kernel_spectra."""
        return self.spectra("weight", weight, lambda weight: kernel_spectra(weight, size, groups))

    def grad_out_spectra(self, grad_out, size):
        """conj(rfft2) of grad_out (N, O, Ho, Wo) -> (Fh, Fw//2 + 1, N, O): both gradients use the conjugate."""
        return self.spectra("grad_out", grad_out, lambda grad_out: conjugated(image_spectra(grad_out, size)))

    def conv2d_forward(self, x, weight, stride, pads, dilation, groups):
        """Convolve x (N, C, H, W) with weight (O, C/G, kh, kw) -> out (N, O, Ho, Wo); stride and dilation must be 1.

        When x's spectra are not kept (no weight gradient wanted, e.g. under tn.no_grad), the batch goes
        through in chunks whose spectra fit COLUMNS_BUDGET_BYTES: seed 004's evaluation batch of 1000
        images would otherwise hold 1.4 GB of spectra at once.
        """
        size = transform_size(padded_hw(x.shape, pads))
        out_hw = tuple(p - k + 1 for p, k in zip(padded_hw(x.shape, pads), weight.shape[2:]))
        weight_f = self.weight_spectra(weight, size, groups)
        if self.keep["x"]:
            return out_of_spectra(self.x_spectra(x, pads), weight_f, size, out_hw, groups)
        out = np.empty((x.shape[0], weight.shape[0], *out_hw), x.dtype)
        for chunk in batch_chunks(x.shape[0], spectra_bytes_per_image(x.shape[1], weight.shape[0], size, x.dtype)):
            out[chunk] = out_of_spectra(image_spectra(x[chunk], size, (pads[0][0], pads[1][0])), weight_f, size,
                                        out_hw, groups)
        return out

    def conv2d_input_grad(self, grad_out, x_shape, weight, stride, pads, dilation, groups):
        """grad_x (N, C, H, W) from grad_out (N, O, Ho, Wo): the full convolution of grad_out with weight, cropped.

        conj(g_f) @ conj(w_f)^T is the conjugate of the spectrum wanted (conjugated back in place).
        """
        size = transform_size(padded_hw(x_shape, pads))
        product = matmul(by_group(self.grad_out_spectra(grad_out, size), groups), self.weight_spectra(
            weight, size, groups).swapaxes(2, 3))
        return images_of(ungrouped(conjugated(product), size), size, x_shape[2:], (pads[0][0], pads[1][0]))

    def conv2d_weight_grad(self, grad_out, x, weight_shape, stride, pads, dilation, groups):
        """grad_weight (O, C/G, kh, kw): the correlation of the padded x with grad_out, summed over the batch."""
        size = transform_size(padded_hw(x.shape, pads))
        grad_out_f = by_group(self.grad_out_spectra(grad_out, size), groups).swapaxes(2, 3)  # (F, G, O/G, N)
        return kernel_of(matmul(grad_out_f, by_group(self.x_spectra(x, pads), groups)), size, weight_shape[2:])


def unsupported(x_shape, weight_shape, stride, pads, dilation, groups):
    """Why FFT cannot run these settings (it slides the window one pixel at a time), or None."""
    if stride != (1, 1) or dilation != (1, 1):
        return f"{NAME} needs stride 1 and dilation 1, got stride {stride}, dilation {dilation}"
    return None


def forward_seconds(x_shape, weight_shape, stride, pads, dilation, groups, itemsize):
    """Estimated seconds of conv2d_forward on the course's machine: the transforms of every image and output
    plane, the kernels' DFT products, the products of spectra, and the spectra written and read (a complex
    number as two elements copied, at im2col's copy rate)."""
    n_images, channels = x_shape[:2]
    out_channels, group_channels, kernel_h, kernel_w = weight_shape
    size_h, size_w = transform_size(padded_hw(x_shape, pads))
    half = size_w // 2 + 1
    planes = n_images * (channels + out_channels)
    transform_flops = 2.5 * size_h * size_w * math.log2(max(size_h * size_w, 2)) * planes
    kernel_flops = 8.0 * out_channels * group_channels * half * kernel_h * (kernel_w + size_h)
    product_flops = 8.0 * size_h * half * n_images * group_channels * out_channels
    spectra_elements = size_h * half * (planes + out_channels * group_channels)
    return (transform_flops / FFT_RATE[itemsize] + (kernel_flops + product_flops) / SPECTRAL_PRODUCT_RATE[itemsize]
            + 2 * spectra_elements / COPY_RATE)


_keeps_nothing = Plan()
conv2d_forward = _keeps_nothing.conv2d_forward
conv2d_input_grad = _keeps_nothing.conv2d_input_grad
conv2d_weight_grad = _keeps_nothing.conv2d_weight_grad
