"""Adam's update of one parameter (tinynet.optim.Adam), in one pass over its elements.

  m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;
  value -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)

In NumPy (adam_step_reference) that is a dozen passes over the parameter, each a ufunc call over the whole array:
part 3's (100, 1024) float32 weight took 190 us a step and part 1's (300, 784) one 440 us on one core, a third of
part 3's training. The kernel reads and writes each element once: 35 and 76 us. It rounds as the reference does,
to the bit: every operation in the parameter's dtype, the hyperparameters cast to it (NumPy's rule for Python
numbers), except the division by sqrt(1 - b2^t), which NumPy does in float64 (that square root is a NumPy float64).
"""
import numpy as np

from .compile import Kernel, prange


def adam(value, m, v, grad, beta1, one_minus_beta1, beta2, one_minus_beta2, root_bias2, eps, step_size):
    """value, m, v, grad (n,) of one dtype; value, m and v updated in place. beta1 ... eps and step_size
    (lr / (1 - b1^t)) in that dtype, root_bias2 = sqrt(1 - b2^t) in float64."""
    for i in prange(value.size):
        g = grad[i]
        m[i] = m[i] * beta1 + one_minus_beta1 * g
        v[i] = v[i] * beta2 + one_minus_beta2 * g * g
        denominator = value.dtype.type(np.sqrt(v[i]) / root_bias2) + eps
        value[i] -= step_size * m[i] / denominator


# error_model="numpy": the division is not checked for zero, so LLVM vectorizes it (5x faster than when checked).
adam_kernel = Kernel(adam, error_model="numpy")


def adam_step_reference(value, m, v, grad, lr, betas, eps, step):
    """Adam's t-th update (t = step) of value from grad, with its moments m and v, all of value's shape, in place."""
    beta1, beta2 = betas
    m *= beta1
    m += (1 - beta1) * grad
    v *= beta2
    v += (1 - beta2) * grad * grad
    # As PyTorch: lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps), the same as the formula above.
    denominator = np.sqrt(v)
    denominator /= np.sqrt(1 - beta2 ** step)
    denominator += eps
    value -= np.divide(lr / (1 - beta1 ** step) * m, denominator, out=denominator)


def adam_step(value, m, v, grad, lr, betas, eps, step):
    """adam_step_reference by the kernel where value, m, v and grad are floats of one dtype and value, m and v
    C-contiguous (grad is copied to C order if it is not: a Linear's weight gradient may be a transpose), else by
    the reference; the same numbers either way."""
    if value.dtype.kind != "f" or any(a.dtype != value.dtype for a in (m, v, grad)) or not all(
            a.flags.c_contiguous for a in (value, m, v)):
        adam_step_reference(value, m, v, grad, lr, betas, eps, step)
        return
    arrays = (value, m, v, np.ascontiguousarray(grad))
    (beta1, beta2), cast = betas, value.dtype.type
    adam_kernel(*(a.reshape(-1) for a in arrays), cast(beta1), cast(1 - beta1), cast(beta2), cast(1 - beta2),
                np.sqrt(1 - beta2 ** step), cast(eps), cast(lr / (1 - beta1 ** step)), work=value.size)
