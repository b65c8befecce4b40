"""tinynet: a small NumPy + Numba neural-network engine with reverse-mode autodiff."""
from . import functional, nn, optim
from .gradcheck import GradcheckError, gradcheck
from .io import UnsafeWeightsError, load, load_pickle_weights, save
from .ops.activation import guided_backprop
from .tensor import Tensor, is_grad_enabled, no_grad

__all__ = ["Tensor", "no_grad", "is_grad_enabled", "functional", "nn", "optim", "gradcheck", "GradcheckError",
           "guided_backprop", "save", "load", "load_pickle_weights", "UnsafeWeightsError"]
