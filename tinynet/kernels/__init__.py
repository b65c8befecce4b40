"""Numba kernels on plain NumPy arrays (NCHW), each with a plain NumPy reference for tests.

Nothing here knows about Tensor. One module per family of kernels:

  conv.py     conv2d forward and backward: im2col/col2im around one BLAS matmul per group
  pool.py     max and average pooling, forward and backward
  lrn.py      local response normalization across channels, forward and backward
  padding.py  'valid'/'same' padding and output sizes
  compile.py  Kernel: a Python function compiled serial and parallel (cached on disk); the
              threading layer, chosen when the first parallel kernel runs
"""
