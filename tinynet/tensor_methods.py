"""Tensor's operators and PyTorch-style methods: each calls the tinynet.functional function that does it.

They are written here and attached to Tensor at the end, not written in tensor.py's class body,
because the arrows between the engine's modules point one way: tensor.py (Tensor, the reverse pass)
is the bottom, function.py records ops on Tensors, the ops build on function.py, functional on the
ops, and this module on functional (tests/test_import.py fails on an import circle). `import
tinynet` attaches them, so every Tensor has them.
"""
import numpy as np

from . import functional as F
from .tensor import Tensor


class TensorMethods:
    """Read as part of Tensor's class body: every function here becomes a method of Tensor."""

    def __add__(self, other): return F.add(self, other)
    def __radd__(self, other): return F.add(other, self)
    def __sub__(self, other): return F.sub(self, other)
    def __rsub__(self, other): return F.sub(other, self)
    def __mul__(self, other): return F.mul(self, other)
    def __rmul__(self, other): return F.mul(other, self)
    def __truediv__(self, other): return F.div(self, other)
    def __rtruediv__(self, other): return F.div(other, self)
    def __neg__(self): return F.neg(self)
    def __pow__(self, exponent): return F.pow(self, exponent)
    def __rpow__(self, base): return F.pow(base, self)
    def __abs__(self): return F.abs(self)
    def __matmul__(self, other): return F.matmul(self, other)
    def __rmatmul__(self, other): return F.matmul(other, self)
    def __getitem__(self, index): return F.getitem(self, index)

    def pow(self, exponent): return F.pow(self, exponent)
    def matmul(self, other): return F.matmul(self, other)

    # reductions take axis=/keepdims= or PyTorch's dim=/keepdim=; max and min over a dim give (values, indices)
    def sum(self, *args, **kwargs): return F.sum(self, *args, **kwargs)
    def mean(self, *args, **kwargs): return F.mean(self, *args, **kwargs)
    def var(self, *args, **kwargs): return F.var(self, *args, **kwargs)
    def std(self, *args, **kwargs): return F.std(self, *args, **kwargs)
    def max(self, *args, **kwargs): return F.max(self, *args, **kwargs)
    def min(self, *args, **kwargs): return F.min(self, *args, **kwargs)
    def amax(self, *args, **kwargs): return F.amax(self, *args, **kwargs)
    def amin(self, *args, **kwargs): return F.amin(self, *args, **kwargs)
    def argmax(self, *args, **kwargs): return F.argmax(self, *args, **kwargs)
    def argmin(self, *args, **kwargs): return F.argmin(self, *args, **kwargs)
    def softmax(self, *args, **kwargs): return F.softmax(self, *args, **kwargs)
    def log_softmax(self, *args, **kwargs): return F.log_softmax(self, *args, **kwargs)

    # shape: like PyTorch's methods, these take sizes or axes one by one or as one sequence
    def reshape(self, *shape): return F.reshape(self, one_or_many(shape))
    def view(self, *shape): return F.reshape(self, one_or_many(shape))  # a tinynet view never needs contiguity
    def expand(self, *shape): return F.expand(self, one_or_many(shape))
    def transpose(self, *dims): return F.transpose(self, *dims)  # swaps two dims, as PyTorch's (see functional)
    def permute(self, *dims): return F.permute(self, one_or_many(dims))
    def unsqueeze(self, dim): return F.unsqueeze(self, dim)
    def squeeze(self, dim=None): return F.squeeze(self, dim)
    def flatten(self, start_dim=0, end_dim=-1): return F.flatten(self, start_dim, end_dim)
    @property
    def T(self): return F.transpose(self)

    def t(self):
        """The transpose of a matrix (a tensor of at most 2 dimensions)."""
        if self.ndim > 2:
            raise ValueError(f"t() takes a tensor of at most 2 dimensions, got shape {self.shape}: use transpose(axes)")
        return F.transpose(self)

    # elementwise
    def exp(self): return F.exp(self)
    def log(self): return F.log(self)
    def abs(self): return F.abs(self)
    def sqrt(self): return F.sqrt(self)
    def clamp(self, min=None, max=None): return F.clamp(self, min, max)
    def relu(self): return F.relu(self)
    def tanh(self): return F.tanh(self)
    def sigmoid(self): return F.sigmoid(self)

    # dtype and copies
    def float(self): return F.cast(self, np.float32)
    def double(self): return F.cast(self, np.float64)
    def clone(self): return F.cast(self, self.dtype)
    def to(self, dtype): return F.cast(self, dtype)


def one_or_many(values: tuple) -> tuple:
    """(2, 3) from both x.reshape(2, 3) and x.reshape((2, 3)), as PyTorch's methods take them."""
    return tuple(values[0]) if len(values) == 1 and not np.isscalar(values[0]) else values


for name, method in vars(TensorMethods).items():
    if callable(method) or isinstance(method, property):  # not the class's own __doc__, __dict__, ...
        setattr(Tensor, name, method)
