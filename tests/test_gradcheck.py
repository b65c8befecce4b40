"""gradcheck itself: it must catch a wrong VJP, in full and in fast mode."""
import numpy as np
import pytest

import tinynet as tn
from tinynet.function import Function
from tinynet.tensor import apply


class SquareWithWrongGradient(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.x = x
        return x * x

    @staticmethod
    def backward(ctx, grad_out):
        return (grad_out * ctx.x,)  # should be 2 x


@pytest.mark.parametrize("fast", [False, True])
def test_gradcheck_catches_a_wrong_vjp_and_names_input_and_values(fast):
    x = tn.Tensor(np.array([[1.0, 2.0], [3.0, 4.0]]), requires_grad=True)
    with pytest.raises(tn.GradcheckError, match="input 0 is wrong at index .*analytic .* numeric"):
        tn.gradcheck(lambda t: apply(SquareWithWrongGradient, t), [x], fast=fast)


def test_gradcheck_reports_tiny_errors_for_a_correct_op_and_keeps_existing_grads():
    x = tn.Tensor(np.array([0.5, -1.5]), requires_grad=True)
    x.grad = np.array([7.0, 7.0])
    (report,) = tn.gradcheck(lambda t: t * t, [x])
    assert report.max_abs_error < 1e-8 and report.input_index == 0
    np.testing.assert_array_equal(x.grad, [7.0, 7.0])


def test_gradcheck_refuses_float32_and_non_leaf_inputs():
    with pytest.raises(ValueError, match="float64"):
        tn.gradcheck(lambda t: t * 2, [tn.Tensor([1.0], requires_grad=True)])
    x = tn.Tensor(np.ones(2), requires_grad=True)
    with pytest.raises(ValueError, match="leaf"):
        tn.gradcheck(lambda t: t * 2, [x * 2])
