# %% [markdown]
# # 3. Convolution backward: im2col, col2im, and why the weight gradient is a correlation
#
# tinynet computes conv2d as one matrix product: im2col copies every k x k window of the input
# into a column, and the filters multiply all columns at once. Backward is two more matrix
# products, and col2im adds the window gradients back into the image. Here we do it by hand on
# a tiny example and compare with `tinynet.functional.conv2d`.

# %%
import numpy as np
import scipy.signal

import tinynet as tn
from tinynet import functional as F

rng = np.random.default_rng(0)
image = rng.standard_normal((5, 5))      # one channel, 5 x 5
kernel = rng.standard_normal((3, 3))     # one 3 x 3 filter
k, out_side = 3, 5 - 3 + 1               # 'valid' convolution, stride 1: a 3 x 3 output

# %% [markdown]
# ## Forward: im2col, then one matrix product
#
# Column j of `columns` is the window under output pixel j, flattened: shape (k*k, 9).

# %%
def im2col(x, k):
    """(H, W) -> (k*k, Ho*Wo): every k x k window of x as a column, windows in row-major order."""
    side = x.shape[0] - k + 1
    return np.stack([x[i:i + k, j:j + k].ravel() for i in range(side) for j in range(side)], axis=1)


columns = im2col(image, k)
out = (kernel.ravel() @ columns).reshape(out_side, out_side)
x = tn.Tensor(image[None, None], requires_grad=True)
w = tn.Tensor(kernel[None, None], requires_grad=True)
y = F.conv2d(x, w)
print("by hand:\n", out.round(4), "\ntinynet:\n", y.data[0, 0].round(4))
assert np.allclose(out, y.data[0, 0])

# %% [markdown]
# Deep-learning "convolution" does not flip the kernel: it is a *cross-correlation*, which
# scipy calls `correlate2d`.

# %%
assert np.allclose(out, scipy.signal.correlate2d(image, kernel, mode="valid"))

# %% [markdown]
# ## Backward
#
# Let g = d loss / d out (3 x 3). Since out = kernel_row @ columns:
#
# - d loss / d kernel = g_row @ columnsᵀ: each weight collects, over all windows, the input
#   pixel it multiplied times that window's gradient. That is the correlation of the **image**
#   with **g**.
# - d loss / d columns = kernel_colᵀ @ g_row; col2im adds each column back onto its window,
#   so pixels covered by several windows add several contributions.

# %%
grad_out = rng.standard_normal((out_side, out_side))
grad_kernel = (grad_out.ravel() @ columns.T).reshape(k, k)
print("weight gradient = correlate(image, grad_out):",
      np.allclose(grad_kernel, scipy.signal.correlate2d(image, grad_out, mode="valid")))


def col2im(grad_columns, k, side):
    """(k*k, Ho*Wo) -> (H, W): add each column back onto the window it came from."""
    grad = np.zeros((side, side))
    windows = side - k + 1
    for j, column in enumerate(grad_columns.T):
        row, col = divmod(j, windows)
        grad[row:row + k, col:col + k] += column.reshape(k, k)
    return grad


grad_image = col2im(np.outer(kernel.ravel(), grad_out.ravel()), k, 5)
print("input gradient = full convolution of grad_out with the kernel:",
      np.allclose(grad_image, scipy.signal.convolve2d(grad_out, kernel, mode="full")))

# %% [markdown]
# ## tinynet agrees
#
# The same gradients from tinynet's backward (its im2col/col2im are Numba kernels in
# `tinynet/kernels/conv.py`, each beside a plain NumPy reference).

# %%
y.backward(grad_out[None, None])
assert np.allclose(w.grad[0, 0], grad_kernel) and np.allclose(x.grad[0, 0], grad_image)
print("tinynet's backward matches both hand-written gradients")

# %% [markdown]
# And the gradient check, in float64, over every pixel and weight:

# %%
for report in tn.gradcheck(F.conv2d, [x, w]):
    print(f"input {report.input_index}: {len(report.elements)} checked, {len(report.failures)} failed")
