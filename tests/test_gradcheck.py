"""gradcheck itself: it must pass round-off, report kinks, and catch (and locate) a wrong VJP of any size."""
import numpy as np
import pytest

import tinynet as tn
from tinynet import functional as F
from tinynet.function import Function
from tinynet.gradcheck import check_op, first_disagreeing_op, step_sweep
from tinynet.ops.activation import Tanh

ULP_OF_FOUR = float(np.spacing(4.0))  # 8.9e-16: one unit in the last place of a score near 4


class SquareWithWrongGradient(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.x = x
        return x * x

    @staticmethod
    def backward(ctx, grad_out):
        return (grad_out * ctx.x,)  # should be 2 x


class MatrixProductWithTransposedGradient(Function):
    """x @ weight whose backward forgets to transpose the (square) weight."""

    @staticmethod
    def forward(ctx, x, weight):
        ctx.weight = weight
        return x @ weight

    @staticmethod
    def backward(ctx, grad_out):
        return grad_out @ ctx.weight, None  # should be grad_out @ weight.T


class OneUlpStep(Function):
    """4 + (one ulp of 4 where x > 0): the derivative is 0 almost everywhere, yet a finite
    difference across the step sees ulp / 2h, as part 8 saw at a pixel that no filter reads."""

    @staticmethod
    def forward(ctx, x):
        return 4.0 + ULP_OF_FOUR * (x > 0)

    @staticmethod
    def backward(ctx, grad_out):
        return (np.zeros_like(grad_out),)


@pytest.mark.parametrize("fast", [False, True])
def test_gradcheck_catches_a_wrong_vjp_and_names_input_values_and_op(fast):
    x = tn.Tensor(np.array([[1.0, 2.0], [3.0, 4.0]]), requires_grad=True)
    with pytest.raises(tn.GradcheckError, match=r"(?s)input 0 is wrong .*backward .* finite difference .*"
                                                r"first op that disagrees: SquareWithWrongGradient"):
        tn.gradcheck(lambda t: SquareWithWrongGradient.apply(t), [x], fast=fast)


def test_gradcheck_reports_tiny_errors_for_a_correct_op_and_keeps_existing_grads():
    x = tn.Tensor(np.array([0.5, -1.5]), requires_grad=True)
    x.grad = np.array([7.0, 7.0])
    (report,) = tn.gradcheck(lambda t: t * t, [x])
    assert report.passed and report.max_abs_error < 1e-8 and report.input_index == 0
    np.testing.assert_array_equal(x.grad, [7.0, 7.0])


def test_gradcheck_refuses_float32_and_non_leaf_inputs():
    with pytest.raises(ValueError, match="float64"):
        tn.gradcheck(lambda t: t * 2, [tn.Tensor([1.0], requires_grad=True)])
    x = tn.Tensor(np.ones(2), requires_grad=True)
    with pytest.raises(ValueError, match="leaf"):
        tn.gradcheck(lambda t: t * 2, [x * 2])


def test_zero_gradient_against_one_ulp_of_round_off_passes():
    """Part 8's false alarm: backward 0, finite difference 4.44e-13 = ulp(4) / 2h, other gradients ~1e-9."""
    pixels = tn.Tensor(np.array([0.3, -0.2, 0.0]), requires_grad=True)

    def score(x):
        return OneUlpStep.apply(x[2]) + 1e-9 * x[:2].sum()

    (report,) = tn.gradcheck(score, [pixels], eps=1e-3)
    unread = report.elements[2]
    assert unread.analytic == 0 and unread.numeric == pytest.approx(ULP_OF_FOUR / 2e-3, rel=1e-6)
    assert report.passed and [e.verdict for e in report.elements] == ["ok"] * 3
    assert unread.noise_floor > unread.error


def test_tiny_but_correct_gradients_pass_and_tiny_wrong_ones_fail():
    x = tn.Tensor(np.array([0.7, -1.2, 2.0]), requires_grad=True)
    (report,) = tn.gradcheck(lambda t: 1e-12 * t * t + t, [x])
    assert report.passed
    with pytest.raises(tn.GradcheckError, match="SquareWithWrongGradient"):
        tn.gradcheck(lambda t: 1e-9 * SquareWithWrongGradient.apply(t), [x])


@pytest.mark.parametrize("planted", ["scaled", "transposed"])
def test_a_planted_bug_inside_a_network_is_found_and_its_op_named(planted, monkeypatch):
    rng = np.random.default_rng(0)
    x = tn.Tensor(rng.standard_normal((4, 3)), requires_grad=True)
    weight = rng.standard_normal((3, 3))
    if planted == "scaled":
        correct = Tanh.backward
        monkeypatch.setattr(Tanh, "backward", staticmethod(lambda ctx, g: (2 * correct(ctx, g)[0],)))
        network, culprit = (lambda t: F.tanh(t @ weight).sum(axis=1)), "Tanh"
        ratio = "backward is 2x the finite difference"
    else:
        network, culprit = (lambda t: F.tanh(MatrixProductWithTransposedGradient.apply(t, weight))), \
            "MatrixProductWithTransposedGradient"
        ratio = "input 0: backward"
    with pytest.raises(tn.GradcheckError) as failure:
        tn.gradcheck(network, [x])
    message = str(failure.value)
    assert f"first op that disagrees: {culprit} (called at test_gradcheck.py:" in message and ratio in message


def test_when_every_op_agrees_the_diagnosis_says_so():
    x = tn.Tensor(np.array([1.0, 2.0]), requires_grad=True)
    assert "every op's own VJP agrees" in first_disagreeing_op(lambda t: F.tanh(t) * t, [x])


def test_relu_within_a_step_of_zero_is_a_kink_crossing_not_a_failure():
    x = tn.Tensor(np.array([3e-7, -2e-7, 0.0, 0.5, -0.5]), requires_grad=True)
    (report,) = tn.gradcheck(F.relu, [x])
    assert report.passed
    assert [e.verdict for e in report.elements] == ["kink", "kink", "kink", "ok", "ok"]
    assert all(e.crossed_kinks == ["ReLU"] for e in report.kinks)
    assert "kink (ReLU)" in str(report)


def test_max_pool_ties_are_kink_crossings():
    image = np.zeros((1, 1, 4, 4))
    image[0, 0, :2, :2] = 1.0
    (report,) = tn.gradcheck(lambda t: F.max_pool2d(t, 2), [tn.Tensor(image, requires_grad=True)])
    assert report.passed and len(report.kinks) == 16
    assert {name for e in report.kinks for name in e.crossed_kinks} == {"MaxPool2d"}

def test_max_shares_a_tie_equally_which_is_what_the_central_difference_sees():
    (report,) = tn.gradcheck(lambda t: F.amax(t, 0), [tn.Tensor(np.array([2.0, 2.0, 1.0]), requires_grad=True)])
    assert report.passed and [e.crossed_kinks for e in report.elements] == [["Max"], ["Max"], []]


def test_a_wrong_gradient_next_to_a_kink_elsewhere_still_fails():
    x = tn.Tensor(np.array([1.0, 2.0]), requires_grad=True)
    with pytest.raises(tn.GradcheckError):
        tn.gradcheck(lambda t: SquareWithWrongGradient.apply(t) + F.relu(t - 1.0), [x])


def test_elements_selects_what_is_checked():
    x = tn.Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    (report,) = tn.gradcheck(lambda t: t * t, [x], elements=[(1, 2), (0, 0)])
    assert [e.index for e in report.elements] == [(1, 2), (0, 0)]
    assert report.elements[0].analytic == pytest.approx(2 * 5.0 * report.elements[0].numeric / 10.0)


def test_elements_outside_the_input_are_refused_clearly():
    x = tn.Tensor(np.zeros((2, 3)), requires_grad=True)
    with pytest.raises(ValueError, match=r"element \(2, 0\) is not an index of input 0, whose shape is \(2, 3\)"):
        tn.gradcheck(lambda t: t * t, [x], elements=[(2, 0)])
    with pytest.raises(ValueError, match="only inputs \\[0\\] have requires_grad"):
        tn.gradcheck(lambda t: t * t, [x], elements={1: [(0, 0)]})


def test_step_sweep_shows_truncation_at_large_steps_and_round_off_at_small_ones():
    x = tn.Tensor(np.array([0.4, -0.9]), requires_grad=True)
    steps = (1e-1, 1e-5, 1e-11)
    analytic, numeric, roundoff = step_sweep(F.tanh, [x], [(0,), (1,)], steps=steps)
    errors = np.abs(numeric - analytic).max(axis=1)
    assert errors[1] < errors[0] and errors[1] < errors[2]
    assert errors[0] > 1e-4 and roundoff[2].min() > roundoff[1].max() * 1e5


@pytest.mark.parametrize("op, values, name", [
    (F.abs, [2e-7, -1.0], "Abs"), (lambda t: F.clamp(t, -0.5, 0.5), [0.5 - 1e-7, 0.0], "Where"),
    (lambda t: F.leaky_relu(t, 0.1), [2e-7, 1.0], "Where"), (lambda t: F.amin(t, 0), [1.0, 1.0, 3.0], "Max")])
def test_every_kinked_op_reports_its_kink(op, values, name):
    """Ops built from a condition on x (clamp, leaky_relu) or on max (min) report their kinks too."""
    (report,) = tn.gradcheck(op, [tn.Tensor(np.array(values), requires_grad=True)])
    assert report.passed and name in report.elements[0].crossed_kinks


class Doubling(Function):
    """2 x: the forward of the ops below, whose backwards are wrong in different ways."""

    @staticmethod
    def forward(ctx, x):
        ctx.size = x.size
        return 2 * x


class GradientOfWrongShape(Doubling):
    @staticmethod
    def backward(ctx, grad_out):
        return (np.ones(ctx.size + 1),)


class BroadcastingBugInBackward(Doubling):
    @staticmethod
    def backward(ctx, grad_out):
        return (grad_out * np.ones(ctx.size + 1),)  # NumPy raises: shapes (2,) and (3,) do not broadcast


class DoubleBackwardDiffers(Doubling):
    """Right on arrays (the plain backward), 1.5 times too large on Tensors (create_graph)."""

    @staticmethod
    def backward(ctx, grad_out):
        return (grad_out * 2,) if isinstance(grad_out, np.ndarray) else (grad_out * 3,)


@pytest.mark.parametrize("op, error", [(GradientOfWrongShape, "RuntimeError: GradientOfWrongShape returned a gradient "
                                                              r"of shape \(3,\)"),
                                       (BroadcastingBugInBackward, "ValueError: operands could not be broadcast")])
@pytest.mark.parametrize("check", [tn.gradcheck, tn.gradgradcheck])
def test_a_backward_that_raises_fails_the_check_naming_the_op(op, error, check):
    x = tn.Tensor(np.array([0.5, -1.5]), requires_grad=True)
    network = lambda t: F.tanh(op.apply(t * t))  # noqa: E731
    with pytest.raises(tn.GradcheckError, match=rf"backward itself failed in {op.__name__}: {error}"):
        check(network, [x])
    (report,) = check(network, [x], raise_on_failure=False)
    assert not report.passed and report.elements == [] and op.__name__ in report.backward_failure
    assert str(report).startswith("input 0: not checked: backward itself failed in " + op.__name__)


def test_an_exception_in_the_forward_propagates_as_it_is():
    def broken(t):
        raise KeyError("forward bug")

    for check in (tn.gradcheck, tn.gradgradcheck):
        with pytest.raises(KeyError, match="forward bug"):
            check(broken, [tn.Tensor(np.ones(2), requires_grad=True)], raise_on_failure=False)


def test_gradgradcheck_requires_create_graph_to_agree_with_the_plain_backward():
    x = tn.Tensor(np.array([0.5, -1.5]), requires_grad=True)
    with pytest.raises(tn.GradcheckError, match=r"(?s)the create_graph backward disagrees with the plain backward.*"
                                                r"first op that disagrees: DoubleBackwardDiffers"):
        tn.gradgradcheck(lambda t: DoubleBackwardDiffers.apply(t) * t, [x])
    (report,) = tn.gradgradcheck(lambda t: DoubleBackwardDiffers.apply(t) * t, [x], raise_on_failure=False)
    assert not report.passed and "create_graph backward disagrees" in report.backward_failure


# ---- the op locator re-checks each op as it ran -----------------------------------------------------------


def test_the_op_locator_reruns_a_convolution_with_the_algorithm_that_ran(monkeypatch):
    """A Winograd-only bug in conv's input gradient: the cost model would pick im2col for the re-check."""
    winograd = tn.kernels.conv_choice.ALGORITHMS["winograd"]
    right = winograd.Plan.conv2d_input_grad
    monkeypatch.setattr(winograd.Plan, "conv2d_input_grad", staticmethod(lambda *args: 2 * right(*args)))

    def network(x, weight):
        with tn.force_conv_algorithm("winograd"):
            return F.tanh(F.conv2d(x, weight, padding=1))

    rng = np.random.default_rng(0)
    x = tn.Tensor(rng.standard_normal((1, 2, 4, 4)), requires_grad=True)
    weight = tn.Tensor(rng.standard_normal((2, 2, 3, 3)))
    assert tn.conv_algorithm(x.shape, weight.shape, padding=1, dtype=np.float64).algorithm != "winograd"
    with pytest.raises(tn.GradcheckError, match=r"first op that disagrees: Conv2d \(ran winograd; called at "
                                                r"test_gradcheck.py:\d+ in network\), input 0: backward is 2x"):
        tn.gradcheck(network, [x, weight], fast=True)


def test_the_op_locator_keeps_the_inputs_memory_layout(monkeypatch):
    """A bug in MatMul's branch for a column-major operand (x @ w.T): a C-ordered re-check would never run it."""
    from tinynet.ops import linear

    right = linear.product_laid_out_as

    def wrong_for_column_major(column_major, left, right_operand):
        product = right(column_major, left, right_operand)
        return -product if column_major else product

    monkeypatch.setattr(linear, "product_laid_out_as", wrong_for_column_major)
    rng = np.random.default_rng(1)
    x = tn.Tensor(rng.standard_normal((3, 4)))
    weight = tn.Tensor(rng.standard_normal((2, 4)), requires_grad=True)
    with pytest.raises(tn.GradcheckError, match="first op that disagrees: MatMul .*input 1"):
        tn.gradcheck(lambda w: F.tanh(x @ w.T), [weight], fast=True)


class DoublingBackward(Function):
    """grad_out -> 2 grad_out, Doubling's VJP as an op; its own VJP is wrong (3 instead of 2)."""

    @staticmethod
    def forward(ctx, grad_out):
        return 2 * grad_out

    @staticmethod
    def backward(ctx, grad_grad):
        return (3 * grad_grad,)


class DoublingWithWrongSecondOrder(Doubling):
    @staticmethod
    def backward(ctx, grad_out):
        return (DoublingBackward.apply(grad_out) if isinstance(grad_out, tn.Tensor) else 2 * grad_out,)


def test_the_second_order_op_locator_varies_grad_out():
    """The wrong rule only shows when grad_out depends on the inputs: a re-check with a constant grad_out
    would find nothing wrong with DoublingWithWrongSecondOrder, and blame no op."""
    x = tn.Tensor(np.array([0.5, -1.5, 0.25]), requires_grad=True)
    network = lambda t: DoublingWithWrongSecondOrder.apply(t) ** 3  # noqa: E731
    tn.gradcheck(network, [x])
    with pytest.raises(tn.GradcheckError, match="(?s)second derivatives.*first op that disagrees: "
                                                "DoublingWithWrongSecondOrder"):
        tn.gradgradcheck(network, [x])


def test_without_raising_a_failed_report_carries_the_op_locators_diagnosis():
    x = tn.Tensor(np.array([0.5, -1.5]), requires_grad=True)
    (report,) = tn.gradgradcheck(lambda t: DoubleBackwardDiffers.apply(t) * t, [x], raise_on_failure=False)
    assert "create_graph backward disagrees" in report.backward_failure
    assert report.diagnosis.startswith("first op that disagrees: DoubleBackwardDiffers") and report.diagnosis in str(
        report)
    (report,) = tn.gradcheck(lambda t: SquareWithWrongGradient.apply(t), [x], raise_on_failure=False)
    assert report.diagnosis.startswith("first op that disagrees: SquareWithWrongGradient")
    assert report.diagnosis in str(report)
    (report,) = tn.gradcheck(lambda t: t * t, [x], raise_on_failure=False)
    assert report.passed and report.diagnosis == ""


class ReturnsTwoGradients(Doubling):
    @staticmethod
    def backward(ctx, grad_out):
        return 2 * grad_out, 2 * grad_out


@pytest.mark.parametrize("op, found", [
    (GradientOfWrongShape, r"GradientOfWrongShape.backward returned a gradient of shape \(3,\) for its input 0 of "
                           r"shape \(2,\)"),
    (BroadcastingBugInBackward, "backward itself failed in BroadcastingBugInBackward: ValueError: operands could "
                                "not be broadcast"),
    (ReturnsTwoGradients, "ReturnsTwoGradients.backward returned 2 gradients for 1 inputs")])
def test_check_op_fails_naming_the_op_when_its_backward_fails(op, found):
    x = tn.Tensor(np.array([0.5, -1.5]), requires_grad=True)
    with pytest.raises(tn.GradcheckError, match=found):
        check_op(op, [x])
    (report,) = check_op(op, [x], raise_on_failure=False)
    assert not report.passed and report.elements == [] and op.__name__ in report.backward_failure


def test_a_bug_in_the_graph_cores_unbroadcast_is_not_blamed_on_an_op(monkeypatch):
    """An unbroadcast that averages instead of summing: gradcheck sums its own way when it re-checks an op, so
    Add's VJP agrees and the failure is pinned on how gradients are combined."""
    from tinynet import tensor

    def averaging(grad, shape):
        return grad if grad.shape == shape else grad.mean(axis=tensor.broadcast_axes(grad.shape, shape),
                                                          keepdims=True).reshape(shape)

    monkeypatch.setattr(tensor, "unbroadcast", averaging)
    a = tn.Tensor(np.array([[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]]))
    b = tn.Tensor(np.array([0.1, 0.2, 0.3]), requires_grad=True)
    with pytest.raises(tn.GradcheckError, match=r"every op's own VJP agrees .*\(the graph core sums gradients back"):
        tn.gradcheck(lambda t: F.tanh(a + t), [b])


# ---- check_forward: forward mode against the same differences and against backward -----------------------


class SquareWithWrongJvp(Function):
    """x * x: the VJP is right (2 x g), the JVP forgets the 2."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, grad_out):
        (x,) = ctx.saved_tensors
        return (2 * grad_out * x,)

    @staticmethod
    def jvp(ctx, tangent):
        (x,) = ctx.saved_tensors
        return tangent * x


def test_check_forward_passes_forward_mode_through_a_small_network():
    rng = np.random.default_rng(2)
    x = tn.Tensor(rng.standard_normal((1, 2, 5, 5)), requires_grad=True)
    weight = tn.Tensor(rng.standard_normal((3, 2, 3, 3)), requires_grad=True)
    network = lambda t, w: F.log_softmax(F.max_pool2d(F.tanh(F.conv2d(t, w, padding=1)), 2).reshape(1, -1), axis=1)  # noqa: E731
    for report in tn.gradcheck(network, [x, weight], fast=True, check_forward=True):
        assert report.passed and len(report.forward) == 1


def test_check_forward_catches_a_wrong_jvp_that_backward_does_not_see_and_names_the_op():
    x = tn.Tensor(np.array([0.5, -1.5, 2.0]), requires_grad=True)
    network = lambda t: F.tanh(SquareWithWrongJvp.apply(t))  # noqa: E731
    tn.gradcheck(network, [x])
    expected = (r"(?s)the forward-mode derivative \(jvp\) of input 0 is wrong .*backward gives .*"
                r"first op that disagrees: SquareWithWrongJvp .*input 0: its JVP is 0.5x the finite difference")
    with pytest.raises(tn.GradcheckError, match=expected):
        tn.gradcheck(network, [x], check_forward=True)
    (report,) = tn.gradcheck(network, [x], check_forward=True, raise_on_failure=False)
    assert not report.failures and len(report.forward_failures) == 3
    assert report.diagnosis.startswith("first op that disagrees: SquareWithWrongJvp") and "forward mode" in str(report)


def test_the_forward_op_locator_blames_no_op_when_every_jvp_agrees():
    x = tn.Tensor(np.array([0.5, -1.5]))
    assert "every op's own JVP agrees" in first_disagreeing_op(lambda t: F.tanh(t) * t, [x.requires_grad_()],
                                                               mode="forward")
