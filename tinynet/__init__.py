"""tinynet: a small NumPy + Numba neural-network engine with reverse-mode autodiff."""
from . import functional, nn, optim
from .anomaly import AnomalyError, detect_anomaly
from .gradcheck import GradcheckError, gradcheck
from .guided import guided_backprop
from .io import UnsafeWeightsError, load, load_pickle_weights, save
from .kernels.conv_choice import conv_algorithm, force_conv_algorithm
from .tensor import Tensor, is_grad_enabled, no_grad
from .trace import Trace, trace, tracing

__all__ = ["Tensor", "no_grad", "is_grad_enabled", "functional", "nn", "optim", "gradcheck", "GradcheckError",
           "guided_backprop", "trace", "tracing", "Trace", "detect_anomaly", "AnomalyError",
           "save", "load", "load_pickle_weights", "UnsafeWeightsError", "conv_algorithm", "force_conv_algorithm"]
