"""Max and average pooling over kh x kw windows of each (N, C) plane.

Padding is given explicitly as ((top, bottom), (left, right)); the output size comes from
tinynet.kernels.windows, where the callers check the arguments (each window must hold a real
pixel). Max pooling treats padded positions as -inf (they never win) and, like np.max, lets a
NaN win; average pooling divides by the number of real pixels
in the window (TensorFlow's rule; PyTorch calls it count_include_pad=False). The Numba kernels
work on (P, H, W) stacks of planes and are parallel over them: each thread reads and writes only its
own plane. The ops (tinynet.ops.pool) call the functions on NCHW arrays below them: max_pool2d,
max_unpool2d, avg_pool2d and avg_pool2d_transpose.
"""
import numpy as np

from .compile import Kernel, prange
from .windows import output_shape


def max_pool(out, argmax, x, kernel_h, kernel_w, stride_h, stride_w, top, left):
    """out, argmax: (P, Ho, Wo); x: (P, H, W) planes. argmax holds the flat index y*W + x of
    the winner in its plane (the first one on ties, row by row; the first NaN, if any, wins).

    Row by row, as max_pool_values: first each column's winner over the window's rows (the first of equal
    values, the first NaN), kept with its row, then each window's winner among its columns, where a tie goes
    to the smaller row, then the smaller column: 2-2.4x faster than trying every window element in turn.
    """
    planes, height, width = x.shape
    out_h, out_w = out.shape[1], out.shape[2]
    for p in prange(planes):
        rows_max = np.empty(width, dtype=x.dtype)  # per column: the winner over the current window's rows
        rows_arg = np.empty(width, dtype=np.int64)  # and its row
        for oy in range(out_h):
            y_start, y_stop = max(oy * stride_h - top, 0), min(oy * stride_h - top + kernel_h, height)
            for column in range(width):  # a loop, not rows_max[:] = x[p, y_start]: see compile.py
                rows_max[column] = x[p, y_start, column]
            rows_arg[:] = y_start
            for y in range(y_start + 1, y_stop):
                for column in range(width):
                    value, best = x[p, y, column], rows_max[column]
                    # A larger value or a NaN takes over, unless a NaN already holds: "not <=" is true for NaN.
                    if best == best and not value <= best:
                        rows_max[column], rows_arg[column] = value, y
            for ox in range(out_w):
                x_start, x_stop = max(ox * stride_w - left, 0), min(ox * stride_w - left + kernel_w, width)
                best, best_y, best_x = rows_max[x_start], rows_arg[x_start], x_start
                for column in range(x_start + 1, x_stop):
                    value, y = rows_max[column], rows_arg[column]
                    if value != value:  # a NaN wins over numbers, and over a NaN of a later row
                        takes_over = best == best or y < best_y
                    else:
                        takes_over = best == best and (value > best or value == best and y < best_y)
                    if takes_over:
                        best, best_y, best_x = value, y, column
                out[p, oy, ox] = best
                argmax[p, oy, ox] = best_y * width + best_x


def max_pool_values(out, x, kernel_h, kernel_w, stride_h, stride_w, top, left):
    """out (P, Ho, Wo): the max of each window of x (P, H, W), as max_pool's out, without the argmax.

    Row by row: the max of the window's rows over a whole output row's columns first (contiguous, so the loop
    runs in vector registers), then of each window's columns in that row; 3x faster than max_pool, which must
    also keep each window's first winner. A NaN wins as in max_pool.
    """
    planes, height, width = x.shape
    out_h, out_w = out.shape[1], out.shape[2]
    for p in prange(planes):
        rows_max = np.empty(width, dtype=x.dtype)  # the max over the current window's rows, per column
        for oy in range(out_h):
            y_start, y_stop = max(oy * stride_h - top, 0), min(oy * stride_h - top + kernel_h, height)
            for column in range(width):  # a loop, not rows_max[:] = x[p, y_start]: see compile.py
                rows_max[column] = x[p, y_start, column]
            for y in range(y_start + 1, y_stop):
                for column in range(width):
                    value, best = x[p, y, column], rows_max[column]
                    rows_max[column] = value if value > best or value != value else best
            for ox in range(out_w):
                x_start, x_stop = max(ox * stride_w - left, 0), min(ox * stride_w - left + kernel_w, width)
                best = rows_max[x_start]
                for column in range(x_start + 1, x_stop):
                    value = rows_max[column]
                    best = value if value > best or value != value else best
                out[p, oy, ox] = best


def max_pool_backward(grad_x, grad_out, argmax):
    """grad_x (P, H, W) += grad_out (P, Ho, Wo) routed to each window's winner."""
    planes, width = grad_x.shape[0], grad_x.shape[2]
    for p in prange(planes):
        for oy in range(grad_out.shape[1]):
            for ox in range(grad_out.shape[2]):
                index = argmax[p, oy, ox]
                grad_x[p, index // width, index % width] += grad_out[p, oy, ox]


def avg_pool(out, x, kernel_h, kernel_w, stride_h, stride_w, top, left):
    """out (P, Ho, Wo) = mean of the real (unpadded) pixels of each window of x (P, H, W)."""
    planes, height, width = x.shape
    for p in prange(planes):
        for oy in range(out.shape[1]):
            for ox in range(out.shape[2]):
                y0, x0 = max(oy * stride_h - top, 0), max(ox * stride_w - left, 0)
                y1, x1 = min(oy * stride_h - top + kernel_h, height), min(ox * stride_w - left + kernel_w, width)
                total = 0.0
                for y in range(y0, y1):
                    for x_ in range(x0, x1):
                        total += x[p, y, x_]
                out[p, oy, ox] = total / ((y1 - y0) * (x1 - x0))


def avg_pool_backward(grad_x, grad_out, kernel_h, kernel_w, stride_h, stride_w, top, left):
    """grad_x (P, H, W) += each window's grad_out shared equally by its real pixels."""
    planes, height, width = grad_x.shape
    for p in prange(planes):
        for oy in range(grad_out.shape[1]):
            for ox in range(grad_out.shape[2]):
                y0, x0 = max(oy * stride_h - top, 0), max(ox * stride_w - left, 0)
                y1, x1 = min(oy * stride_h - top + kernel_h, height), min(ox * stride_w - left + kernel_w, width)
                share = grad_out[p, oy, ox] / ((y1 - y0) * (x1 - x0))
                for y in range(y0, y1):
                    for x_ in range(x0, x1):
                        grad_x[p, y, x_] += share


max_pool_kernel = Kernel(max_pool)
max_pool_values_kernel = Kernel(max_pool_values)
max_pool_backward_kernel = Kernel(max_pool_backward)
avg_pool_kernel = Kernel(avg_pool)
avg_pool_backward_kernel = Kernel(avg_pool_backward)


def pooled_shape(shape, kernel, stride, pads):
    """(N, C, Ho, Wo) of pooling an (N, C, H, W) input."""
    return shape[:2] + output_shape(shape[2:], kernel, stride, (1, 1), pads)


def as_planes(x):
    """(N, C, H, W) -> (N*C, H, W), contiguous (a view where x is), for the plane-parallel kernels."""
    return np.ascontiguousarray(x).reshape(-1, *x.shape[2:])


def max_pool2d(x, kernel, stride, pads):
    """(out, argmax) of x (N, C, H, W): out (N, C, Ho, Wo) the max of each window (padding never wins; a NaN
    does, as in np.max), argmax (N, C, Ho, Wo) the flat index y*W + x of its first winner in its plane.

    kernel, stride: (h, w); pads: ((top, bottom), (left, right)).
    """
    shape = pooled_shape(x.shape, kernel, stride, pads)
    out, argmax = np.empty(shape, dtype=x.dtype), np.empty(shape, dtype=np.int64)
    max_pool_kernel(as_planes(out), as_planes(argmax), as_planes(x), *kernel, *stride, pads[0][0], pads[1][0],
                    work=x.size)
    return out, argmax


def max_pool2d_values(x, kernel, stride, pads):
    """max_pool2d's out alone (N, C, Ho, Wo), faster: for a forward whose gradient nobody wants."""
    out = np.empty(pooled_shape(x.shape, kernel, stride, pads), dtype=x.dtype)
    max_pool_values_kernel(as_planes(out), as_planes(x), *kernel, *stride, pads[0][0], pads[1][0], work=x.size)
    return out


def max_unpool2d(values, argmax, x_shape):
    """values (N, C, Ho, Wo) added into zeros of x_shape (N, C, H, W) at their planes' flat indices argmax:
    max_pool2d's VJP when values is grad_out."""
    out = np.zeros(x_shape, dtype=values.dtype)
    max_pool_backward_kernel(as_planes(out), as_planes(values), as_planes(argmax), work=out.size)
    return out


def avg_pool2d(x, kernel, stride, pads):
    """out (N, C, Ho, Wo): the mean of the real (unpadded) pixels of each window of x (N, C, H, W)."""
    out = np.empty(pooled_shape(x.shape, kernel, stride, pads), dtype=x.dtype)
    avg_pool_kernel(as_planes(out), as_planes(x), *kernel, *stride, pads[0][0], pads[1][0], work=x.size)
    return out


def avg_pool2d_transpose(grad_out, x_shape, kernel, stride, pads):
    """grad_x (N, C, H, W): grad_out (N, C, Ho, Wo) spread evenly over the real pixels of each window (the
    adjoint of avg_pool2d, so its VJP)."""
    grad_x = np.zeros(x_shape, dtype=grad_out.dtype)
    avg_pool_backward_kernel(as_planes(grad_x), as_planes(grad_out), *kernel, *stride, pads[0][0], pads[1][0],
                             work=grad_x.size)
    return grad_x


def window_views(x, kernel, stride, pads, fill):
    """(N, C, Ho, Wo, kh, kw) windows of x (N, C, H, W) padded with `fill` (a strided view)."""
    padded = np.pad(x, ((0, 0), (0, 0)) + tuple(pads), constant_values=fill)
    windows = np.lib.stride_tricks.sliding_window_view(padded, kernel, axis=(2, 3))
    return windows[:, :, ::stride[0], ::stride[1]]


def max_pool_reference(x, kernel, stride, pads):
    """NumPy reference: the max of each window, padding counted as -inf."""
    return window_views(x, kernel, stride, pads, -np.inf).max(axis=(4, 5))


def avg_pool_reference(x, kernel, stride, pads):
    """NumPy reference: window sums of x divided by window sums of a mask of real pixels."""
    sums = window_views(x, kernel, stride, pads, 0).sum(axis=(4, 5))
    counts = window_views(np.ones_like(x), kernel, stride, pads, 0).sum(axis=(4, 5))
    return sums / counts
