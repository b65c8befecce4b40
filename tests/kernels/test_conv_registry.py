"""The convolution algorithms' registry: every registered module declares the same things and keeps its word, and
an algorithm added as one module and one registry line is chosen where the model expects it cheapest, and runs."""
import math
import types

import numpy as np
import pytest

import tinynet as tn
from kernels.test_conv_algorithms import recording_plans
from kernels.test_kernels import (  # noqa: F401 (kernel_mode: serial and parallel runs)
    assert_close_relative,
    check_against_reference,
    kernel_mode,
)
from tinynet import functional as F
from tinynet.kernels import conv, conv_choice, conv_fft, conv_winograd
from tinynet.kernels.conv import conv2d_reference
from tinynet.kernels.windows import sliding_window

REGISTERED = list(conv_choice.ALGORITHMS.values())

# (x_shape, weight_shape, stride, padding, dilation, groups): together, something each algorithm can run and cannot
SETTINGS = [((2, 4, 9, 8), (6, 2, 3, 3), 1, "same", 1, 2),
            ((2, 3, 12, 12), (4, 3, 5, 5), 1, 2, 1, 1),
            ((3, 2, 6, 7), (2, 2, 1, 1), 1, 0, 1, 1),
            ((1, 2, 9, 9), (3, 2, 3, 3), 2, 1, 1, 1),
            ((1, 2, 9, 9), (3, 2, 3, 3), 1, 0, 2, 1)]


def checked(x_shape, weight_shape, stride, padding, dilation, groups):
    """The settings (x_shape, weight_shape, stride, pads, dilation, groups) as the op gives them to the chooser."""
    _, stride, pads, dilation, _ = sliding_window(x_shape[2:], weight_shape[2:], stride, padding, dilation)
    return x_shape, weight_shape, stride, pads, dilation, groups


def runnable_settings(algorithm):
    """The SETTINGS (checked) that algorithm says it can run; at least one."""
    runnable = [checked(*arguments) for arguments in SETTINGS if algorithm.unsupported(*checked(*arguments)) is None]
    assert runnable, f"{algorithm.NAME} runs none of SETTINGS: add one it runs"
    return runnable


@pytest.mark.parametrize("algorithm", REGISTERED, ids=list(conv_choice.ALGORITHMS))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_every_registered_algorithm_agrees_with_the_loop_reference_wherever_it_says_it_can_run(algorithm, dtype):
    rng = np.random.default_rng(0)
    for x_shape, weight_shape, *settings_ in runnable_settings(algorithm):
        x, weight = rng.standard_normal(x_shape).astype(dtype), rng.standard_normal(weight_shape).astype(dtype)
        for needs_grad in [(False, False), (True, False), (False, True), (True, True)]:
            check_against_reference(algorithm.Plan(*needs_grad), x, weight, settings_, rng)


@pytest.mark.parametrize("algorithm", REGISTERED, ids=list(conv_choice.ALGORITHMS))
def test_every_registered_algorithm_says_why_it_cannot_run_a_setting(algorithm):
    for arguments in SETTINGS:
        reason = algorithm.unsupported(*checked(*arguments))
        assert reason is None or isinstance(reason, str) and reason.startswith(f"{algorithm.NAME} needs")
    assert conv_choice.ALGORITHMS[algorithm.NAME] is algorithm


@pytest.mark.parametrize("algorithm", REGISTERED, ids=list(conv_choice.ALGORITHMS))
def test_every_registered_algorithm_estimates_a_time_that_grows_with_the_batch(algorithm):
    for x_shape, *rest in runnable_settings(algorithm):
        for itemsize in (4, 8):
            one, double = (algorithm.forward_seconds((n, *x_shape[1:]), *rest, itemsize) for n in (1, 2))
            assert 0 < one < double < math.inf


def test_the_default_runs_every_setting():
    default = conv_choice.ALGORITHMS[conv_choice.DEFAULT]
    assert all(default.unsupported(*checked(*arguments)) is None for arguments in SETTINGS)


def test_a_module_that_is_not_a_conv_algorithm_is_named_with_what_it_lacks():
    module = types.ModuleType("half_done")
    module.NAME, module.Plan = "half_done", conv.Plan
    with pytest.raises(TypeError, match="half_done is not a conv algorithm module: it has no unsupported, "
                                        "forward_seconds, MARGIN"):
        conv_choice.registry(conv, module)


@pytest.fixture
def pointwise(monkeypatch):
    """A new algorithm for 1x1 kernels that the model expects nearly free (it runs im2col's functions), registered
    as a new module would be: one more line in ALGORITHMS. Each of its Plans records its calls in .calls."""
    module = types.ModuleType("conv_pointwise")
    module.NAME, module.MARGIN, module.Plan, module.calls = "pointwise", 1.0, conv.Plan, []
    module.unsupported = lambda x_shape, weight_shape, *rest: (
        None if weight_shape[2:] == (1, 1) else f"pointwise needs a 1x1 kernel, got {weight_shape[2:]}")
    module.forward_seconds = lambda *settings: 1e-9
    recording_plans(monkeypatch, module, module.calls)
    monkeypatch.setattr(conv_choice, "ALGORITHMS", conv_choice.registry(conv, conv_fft, conv_winograd, module))
    conv_choice.modelled_choice.cache_clear()
    yield module
    conv_choice.modelled_choice.cache_clear()


def test_an_algorithm_added_by_one_registry_line_is_chosen_where_cheapest_and_runs(pointwise):
    choice = tn.conv_algorithm((2, 3, 8, 8), (4, 3, 1, 1))
    assert choice.algorithm == "pointwise" and choice.module is pointwise
    assert choice.reason.startswith("pointwise: estimated forward im2col") and "pointwise 1e-06 ms" in choice.reason
    choice = tn.conv_algorithm((2, 3, 8, 8), (4, 3, 3, 3))
    assert choice.algorithm != "pointwise" and "pointwise" not in choice.estimates
    x = tn.Tensor(np.random.default_rng(0).standard_normal((2, 3, 8, 8)), requires_grad=True)
    weight = tn.Tensor(np.random.default_rng(1).standard_normal((4, 3, 1, 1)), requires_grad=True)
    out = F.conv2d(x, weight)
    out.backward(np.ones(out.shape))
    assert pointwise.calls == ["conv2d_forward", "conv2d_input_grad", "conv2d_weight_grad"]
    assert_close_relative(out.data, conv2d_reference(x.data, weight.data, (1, 1), ((0, 0), (0, 0)), (1, 1), 1))
    with tn.force_conv_algorithm("pointwise"), pytest.raises(ValueError, match="pointwise needs a 1x1 kernel"):
        tn.conv_algorithm((2, 3, 8, 8), (4, 3, 3, 3))


def test_an_added_algorithm_runs_only_where_expected_its_margin_times_faster_than_the_default(pointwise):
    settings_ = ((2, 3, 8, 8), (4, 3, 1, 1))
    default_seconds = tn.conv_algorithm(*settings_).estimates[conv_choice.DEFAULT]
    pointwise.MARGIN = default_seconds / 1e-9 * 1.01
    conv_choice.modelled_choice.cache_clear()
    assert tn.conv_algorithm(*settings_).algorithm != "pointwise"
    pointwise.MARGIN = default_seconds / 1e-9 * 0.99
    conv_choice.modelled_choice.cache_clear()
    choice = tn.conv_algorithm(*settings_)
    assert choice.algorithm == "pointwise" and "pointwise runs when at least" in choice.reason
