"""gradcheck (float64) of conv2d with each algorithm forced, over random shapes and the seed-004 CNN's kernel."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinynet as tn
from kernels.test_kernels import conv_cases
from tinynet import functional as F
from tinynet.kernels.conv_choice import ALGORITHMS

# The algorithms that take any kernel size (winograd takes 3x3 only: its gradchecks are in test_conv_winograd.py)
ANY_KERNEL_ALGORITHMS = [name for name in sorted(ALGORITHMS) if name != "winograd"]


def gradcheck_conv(algorithm, x, weight, bias, stride, padding, dilation, groups, fast=False, atol=0.0):
    """gradcheck of F.conv2d on x, weight (and bias) with algorithm forced."""
    inputs = [tn.Tensor(array.astype(np.float64), requires_grad=True) for array in (x, weight, bias)
              if array is not None]

    def convolve(*tensors):
        with tn.force_conv_algorithm(algorithm):
            return F.conv2d(tensors[0], tensors[1], tensors[2] if bias is not None else None, stride, padding,
                            groups=groups, dilation=dilation)

    tn.gradcheck(convolve, inputs, fast=fast, atol=atol)


@pytest.mark.parametrize("algorithm", ANY_KERNEL_ALGORITHMS)
@given(data=st.data(), with_bias=st.booleans())
def test_conv2d_gradients_with_each_algorithm(algorithm, data, with_bias):
    case = conv_cases(unit_stride=algorithm == "fft", max_kernel=3 if algorithm == "im2col" else 5)
    x, weight, (stride, pads, dilation, groups), rng = data.draw(case)
    bias = rng.standard_normal(weight.shape[0]) if with_bias else None
    gradcheck_conv(algorithm, x, weight, bias, stride, pads, dilation, groups)


@pytest.mark.parametrize("algorithm", ANY_KERNEL_ALGORITHMS)
def test_seed_004_kernel_gradients_with_each_algorithm(algorithm):
    """A 10x10 'same' convolution as in the seed-004 CNN (on a smaller image), fast mode."""
    rng = np.random.default_rng(0)
    x, weight, bias = rng.standard_normal((2, 3, 19, 17)), rng.standard_normal((4, 3, 10, 10)), rng.standard_normal(4)
    gradcheck_conv(algorithm, x, weight, bias, 1, "same", 1, 1, fast=True)
