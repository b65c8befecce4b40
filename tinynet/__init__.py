"""tinynet: a small NumPy + Numba neural-network engine with reverse-mode autodiff."""
from . import func, functional, nn, optim, tensor_methods  # noqa: F401  (tensor_methods gives Tensor its operators)
from .anomaly import AnomalyError, detect_anomaly
from .checkpoint import Checkpointed, checkpoint
from .functional import hessian, hvp
from .grad_mode import enable_grad, is_grad_enabled, no_grad
from .gradcheck import GradcheckError, gradcheck, gradgradcheck
from .gradient_comparison import compare_gradients
from .guided import guided_backprop
from .io import UnsafeWeightsError, load, load_pickle_weights, save
from .kernels.conv_choice import conv_algorithm, conv_benchmark, force_conv_algorithm
from .memory import memory_report, saved_in_float16, saved_on_disk
from .monitor import Monitor, monitor
from .saved_hooks import saved_tensors_hooks
from .tensor import Tensor, grad
from .trace import Trace, trace, tracing

__all__ = ["Tensor", "no_grad", "enable_grad", "is_grad_enabled", "grad", "hvp", "hessian", "func", "functional", "nn",
           "optim",
           "gradcheck", "gradgradcheck", "GradcheckError",
           "guided_backprop", "trace", "tracing", "Trace", "detect_anomaly", "AnomalyError", "monitor", "Monitor",
           "save", "load", "load_pickle_weights", "UnsafeWeightsError", "conv_algorithm", "conv_benchmark",
           "force_conv_algorithm", "memory_report", "saved_tensors_hooks", "saved_in_float16", "saved_on_disk",
           "checkpoint", "Checkpointed", "compare_gradients"]
