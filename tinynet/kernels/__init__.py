"""Numba kernels on plain NumPy arrays (NCHW), each with a plain NumPy reference for tests.

Nothing here knows about Tensor; an op calls its family's functions on arrays. One module per family:

  conv.py         conv2d by im2col/col2im around one BLAS matmul per group (the batch chunked
                  to a memory budget): forward, input gradient, weight gradient; the default algorithm
  conv_fft.py     the same three by real FFTs (stride 1, large kernels)
  conv_winograd.py  the same three by Winograd's minimal filtering (3x3 kernels, stride 1)
  conv_choice.py  the registry of convolution algorithms (each module above declares what it runs
                  and what it costs) and which one runs for a shape, and why; forcible for tests
  pool.py         max and average pooling and their VJPs
  select.py       np.where(condition, array, number) (a ReLU's VJP) without NumPy's mispredicted branches
  lrn.py          local response normalization across channels, forward and backward
  adam.py         Adam's update of a parameter in one pass over its elements
  windows.py      kernel, stride, dilation and padding checked, and the output-size formula
  compile.py      Kernel: a Python function compiled serial and parallel (cached on disk), Numba loaded at
                  the first kernel's call; the threading layer, chosen when the first parallel kernel runs
  threads.py      the cores: a batch in chunks side by side, large products and elementwise ops split
                  over them, NumPy's BLAS on one thread
"""
