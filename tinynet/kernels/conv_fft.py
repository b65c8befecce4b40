"""2-D convolution (stride 1, dilation 1) by real FFTs: products of spectra instead of sliding windows.

Zero-pad every image and kernel to one transform size (Fh, Fw) at least the padded input's
(Hp, Wp); then no circular wrap-around reaches the outputs kept, and per frequency f

  forward      out_f[n, o]   = sum_c x_f[n, c] * conj(w_f[o, c])        (a correlation)
  input grad   gx_f[n, c]    = sum_o g_f[n, o] * w_f[o, c]              (a full convolution)
  weight grad  gw_f[o, c]    = sum_n conj(g_f[n, o]) * x_f[n, c]        (a correlation)

each one complex matrix product per group and frequency (np.matmul, batched over both); the
transforms are scipy.fft's. A kxk kernel costs O(log(Fh*Fw)) per pixel for the transforms instead
of O(k^2): tinynet.kernels.conv_choice picks this for large kernels. Rounding differs from the
direct sum (within 1e-10 relative in float64, 1e-4 in float32: tests/kernels/test_conv_algorithms.py
compares it with the loop reference, tinynet.kernels.conv.conv2d_reference).
"""
import numpy as np

from .conv import pad_image

# Threads per transform call: SciPy's FFT (2-3x faster than NumPy's on many small transforms)
# splits the batch of images among them.
FFT_WORKERS = 2


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


def spectra(images, size, groups, group_axis):
    """rfft2 of images (A, B, h, w) zero-padded to size -> (G, F, A', B') with F = Fh * (Fw // 2 + 1).

    Axis group_axis (0 or 1) of images is split into G groups (A' = A/G or B' = B/G); frequencies
    lead so that np.matmul runs one small matrix product per group and frequency.
    """
    a, b = images.shape[:2]
    frequencies = size[0] * (size[1] // 2 + 1)  # explicit sizes (no -1): empty batches reshape too
    spectrum = scipy_fft().rfft2(images, s=size, workers=FFT_WORKERS)
    if group_axis == 0:
        spectrum = spectrum.reshape(groups, a // groups, b, frequencies).transpose(0, 3, 1, 2)
    else:
        spectrum = spectrum.reshape(a, groups, b // groups, frequencies).transpose(1, 3, 0, 2)
    return np.ascontiguousarray(spectrum)


def images_of(spectrum, size, group_axis, crop_hw, offset_hw=(0, 0)):
    """The inverse of spectra: (G, F, A', B') -> images (A, B, h, w) cropped to crop_hw from offset_hw."""
    groups, _, a, b = spectrum.shape
    if group_axis == 0:
        spectrum = spectrum.transpose(0, 2, 3, 1).reshape(groups * a, b, size[0], size[1] // 2 + 1)
    else:
        spectrum = spectrum.transpose(2, 0, 3, 1).reshape(a, groups * b, size[0], size[1] // 2 + 1)
    (top, left), (height, width) = offset_hw, crop_hw
    planes = scipy_fft().irfft2(spectrum, s=size, workers=FFT_WORKERS)
    return np.ascontiguousarray(planes[:, :, top:top + height, left:left + width])


def padded_hw(x_shape, pads):
    return tuple(size + before + after for size, (before, after) in zip(x_shape[2:], pads))


def conv2d_forward(x, weight, stride, pads, dilation, groups):
    """Convolve x (N, C, H, W) with weight (O, C/G, kh, kw) -> out (N, O, Ho, Wo); stride and dilation must be 1."""
    x_padded = pad_image(x, pads)
    size = transform_size(x_padded.shape[2:])
    out_hw = tuple(p - k + 1 for p, k in zip(x_padded.shape[2:], weight.shape[2:]))
    product = spectra(x_padded, size, groups, 1) @ spectra(weight, size, groups, 0).conj().transpose(0, 1, 3, 2)
    return images_of(product, size, 1, out_hw)


def conv2d_input_grad(grad_out, x_shape, weight, stride, pads, dilation, groups):
    """grad_x (N, C, H, W) from grad_out (N, O, Ho, Wo): the full convolution of grad_out with weight, cropped."""
    size = transform_size(padded_hw(x_shape, pads))
    product = spectra(grad_out, size, groups, 1) @ spectra(weight, size, groups, 0)  # (G, F, N, C/G)
    return images_of(product, size, 1, x_shape[2:], (pads[0][0], pads[1][0]))


def conv2d_weight_grad(grad_out, x, weight_shape, stride, pads, dilation, groups):
    """grad_weight (O, C/G, kh, kw): the correlation of the padded x with grad_out, summed over the batch."""
    x_padded = pad_image(x, pads)
    size = transform_size(x_padded.shape[2:])
    product = spectra(grad_out, size, groups, 1).conj().transpose(0, 1, 3, 2) @ spectra(x_padded, size, groups, 1)
    return images_of(product, size, 0, weight_shape[2:])  # (G, F, O/G, C/G) -> (O, C/G, kh, kw)
