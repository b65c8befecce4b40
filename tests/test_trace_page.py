"""The backward stepper page in a real headless Chromium, loaded once for the module: it loads offline, steps, shows
each op's formulas, colours nodes by their gradient's norm, draws image-shaped gradients as heatmaps, writes an
accumulated gradient as the chain rule's sum, quizzes in predict mode, and ends on the leaf gradients."""
import base64
import re

import numpy as np
import pytest

import tinynet as tn
from tinynet import functional as F
from tinynet.memory import megabytes
from tinynet.ops.activation import Tanh
from tinynet.ops.conv import Conv2d
from tinynet.ops.elementwise import Add
from tinynet.ops.linear import Linear
from tinynet.ops.loss import CrossEntropy
from tinynet.ops.pool import MaxPool2d
from tinynet.ops.shape import Concatenate, Reshape


def teaching_trace():
    """A tiny CNN on two 6x6 images, traced: conv (its output feeds tanh and the residual add), max-pool, a
    concatenation with a second input (an op without formulas), a linear layer and cross-entropy."""
    rng = np.random.default_rng(0)
    conv, linear = tn.nn.Conv2d(1, 3, 3, rng=rng), tn.nn.Linear(14, 3, rng=rng)
    image = tn.Tensor(rng.standard_normal((2, 1, 6, 6)), requires_grad=True)
    extra = tn.Tensor(rng.standard_normal((2, 2)), requires_grad=True)
    names = {"image": image, "extra": extra, **{f"conv.{k}": v for k, v in conv.named_parameters()},
             **{f"linear.{k}": v for k, v in linear.named_parameters()}}
    with tn.tracing(names=names) as trace:
        features = conv(image)
        pooled = F.max_pool2d(F.tanh(features) + features, 2)
        logits = linear(F.concatenate([pooled.reshape(2, -1), extra], axis=1))
        F.cross_entropy(logits, np.array([0, 2])).backward()
    return trace, linear


@pytest.fixture(scope="module")
def stepper(tmp_path_factory, module_browser_page):
    """(the page, loaded once; the trace; the linear layer)."""
    trace, linear = teaching_trace()
    path = tmp_path_factory.mktemp("stepper") / "teaching.html"
    trace.save_html(path)
    module_browser_page.goto(path.as_uri())
    return module_browser_page, trace, linear


def at_step(page, index, predict=False):
    """Show step `index` (0: before backward), predict mode on or off, every earlier answer forgotten."""
    page.uncheck("#predict")
    if predict:
        page.check("#predict")
    page.click("#first")
    for _ in range(index):
        page.click("#next")


def step_of(trace, op):
    """The (first) step whose tensor op made."""
    return next(step for step in trace.steps if trace.nodes[step.tensor]["op"] == op)


def test_the_page_references_nothing_outside_itself(tmp_path):
    trace, _ = teaching_trace()
    trace.save_html(tmp_path / "page.html")
    page = (tmp_path / "page.html").read_text()
    assert not re.search(r"https?:|//[a-z]|src=|href=|@import|url\((?!#)", page)


def test_stepping_moves_the_highlight_shows_shapes_and_ends_on_the_leaf_gradients(stepper):
    page, trace, linear = stepper
    at_step(page, 0)
    assert page.locator(".node").count() == len(trace.nodes) and page.locator(".node.current").count() == 0
    shown = page.evaluate("Array.from(document.querySelectorAll('.node'), g => [g.dataset.id, "
                          "g.querySelector('text.shape').textContent])")
    assert dict(shown) == {str(k): "(" + ", ".join(map(str, node["shape"])) + ")" for k, node in trace.nodes.items()}
    page.click("#next")
    first = page.get_attribute(".node.current", "data-id")
    assert first == str(trace.steps[0].tensor)
    page.keyboard.press("ArrowRight")
    assert page.get_attribute(".node.current", "data-id") == str(trace.steps[1].tensor) != first
    assert "Step 2" in page.inner_text("#panel")
    page.click("#last")
    leaf_table = page.inner_text("#leaf-grads")
    assert "linear.bias" in leaf_table and f"{linear.bias.grad[0]:.4g}" in leaf_table
    assert page.errors == [] and all(url.startswith("file://") for url in page.requests)


def test_the_page_shows_the_bytes_each_node_saved_and_what_backward_still_needs(stepper):
    page, trace, _ = stepper
    at_step(page, 0)
    total = trace.saved_bytes
    assert total > 0 and page.inner_text("#memory") == f"saved for backward: {megabytes(total)} of " \
                                                      f"{megabytes(total)} still needed"
    tanh = step_of(trace, "Tanh")
    at_step(page, tanh.index)
    assert page.inner_text("#panel .saved-bytes") == megabytes(trace.nodes[tanh.tensor]["saved_bytes"]) == "768 B"
    assert page.inner_text("#memory").startswith(f"saved for backward: {megabytes(tanh.saved_bytes_needed)} of")
    page.click("#last")
    assert page.inner_text("#memory") == f"saved for backward: 0 B of {megabytes(total)} still needed"
    assert page.errors == []


def test_each_step_shows_the_formulas_of_the_op_that_ran(stepper):
    page, trace, _ = stepper
    ops = {op.__name__: op for op in (Conv2d, Add, Tanh, MaxPool2d, Reshape, Concatenate, Linear, CrossEntropy)}
    at_step(page, 0)
    seen = set()
    for step in trace.steps:
        page.click("#next")
        op = ops.get(trace.nodes[step.tensor]["op"])
        if not step.to_parents:
            assert page.locator("#sent").count() == 0
            continue
        names = list(op.vjp_formulas or {})
        expected = [f"{names[sent['input']]}: {op.vjp_formulas[names[sent['input']]]}" if names
                    else f"see {op.__name__}.backward" for sent in step.to_parents]
        assert page.locator("#sent td.formula").all_inner_texts() == expected, step.op
        seen.add(op.__name__)
    assert seen == set(ops)
    assert page.errors == []


def luminance(colour: str) -> float:
    """Relative brightness of '#rrggbb' (0 black, 1 white)."""
    red, green, blue = (int(colour[k:k + 2], 16) / 255 for k in (1, 3, 5))
    return 0.2126 * red + 0.7152 * green + 0.0722 * blue


def test_nodes_are_filled_darker_for_larger_gradient_norms_once_backward_reaches_them(stepper):
    page, trace, _ = stepper
    at_step(page, 0)
    assert all(page.get_attribute(f"#node-{s.tensor}", "data-fill") in (None, "") for s in trace.steps)
    at_step(page, 3)
    filled = [s.tensor for s in trace.steps if page.get_attribute(f"#node-{s.tensor}", "data-fill")]
    assert filled == [s.tensor for s in trace.steps[:3]]
    page.click("#last")
    by_norm = sorted(trace.steps, key=lambda s: s.grad_out["norm"])
    brightness = [luminance(page.get_attribute(f"#node-{s.tensor}", "data-fill")) for s in by_norm]
    assert brightness == sorted(brightness, reverse=True) and brightness[0] - brightness[-1] > 0.5
    norms = [s.grad_out["norm"] for s in trace.steps]
    legend = page.inner_text("#legend")
    assert f"1e{int(np.floor(np.log10(min(norms))))}" in legend and f"1e{int(np.ceil(np.log10(max(norms))))}" in legend


def test_an_image_and_its_gradient_are_drawn_as_heatmaps_red_where_positive(stepper):
    page, trace, _ = stepper
    image = next(step for step in trace.steps if step.op == "image")
    at_step(page, image.index)
    assert page.locator("#panel canvas").count() == 2  # the image, then its gradient
    for k, drawn in enumerate((trace.nodes[image.tensor]["heatmap"], image.heatmap)):
        levels = np.frombuffer(base64.b64decode(drawn["data"]), dtype=np.int8).reshape(6, 6)
        row, column = np.unravel_index(np.abs(levels.astype(int)).argmax(), levels.shape)
        pixel = page.evaluate("([k, x, y]) => Array.from(document.querySelectorAll('#panel canvas')[k]"
                              ".getContext('2d').getImageData(x, y, 1, 1).data)", [k, int(column), int(row)])
        assert pixel == ([255, 0, 0, 255] if levels[row, column] > 0 else [0, 0, 255, 255])
    at_step(page, step_of(trace, "CrossEntropy").index)
    assert page.locator("#panel canvas").count() == 0  # a scalar
    assert page.errors == []


def test_a_tensor_feeding_two_ops_shows_its_gradient_as_the_chain_rule_sum(stepper):
    page, trace, _ = stepper
    conv_out = next(step for step in trace.steps if len(step.contributions) == 2)
    at_step(page, conv_out.index)
    sum_line = page.inner_text("#chain-rule .formula")
    assert sum_line == trace.chain_rule_sum(conv_out)
    assert re.fullmatch(r"grad t\d+ = g from t\d+ \(Add, input b\) \+ g from t\d+ \(Tanh, input x\)", sum_line)
    assert page.locator("#chain-rule li").count() == 2 and page.errors == []


def test_predict_mode_hides_the_gradients_until_answered_and_says_right(stepper):
    page, trace, _ = stepper
    tanh = step_of(trace, "Tanh")
    at_step(page, tanh.index, predict=True)
    assert page.locator("#sent").count() == 0 and page.locator("#question .choice").count() == 4
    choices = page.locator("#question .choice")
    choices.nth(choices.all_inner_texts().index(Tanh.vjp_formulas["x"])).click()
    assert page.get_attribute("#feedback", "class") == "right" and "Right" in page.inner_text("#feedback")
    assert page.locator("#question").count() == 0 and page.locator("#sent td.formula").count() == 1
    page.click("#previous")
    page.click("#next")
    assert page.get_attribute("#feedback", "class") == "right"  # answered once: it stays revealed
    assert page.errors == []


def test_predict_mode_says_wrong_and_gives_the_answer(stepper):
    page, trace, _ = stepper
    at_step(page, step_of(trace, "Linear").index, predict=True)
    choices = page.locator("#question .choice")
    wrong = next(k for k, choice in enumerate(choices.all_inner_texts()) if choice != Linear.vjp_formulas["x"])
    wrong_text = choices.nth(wrong).inner_text()
    choices.nth(wrong).click()
    assert page.get_attribute("#feedback", "class") == "wrong"
    assert page.inner_text("#feedback") == f"Not quite: you answered {wrong_text}; the answer is " \
                                           f"{Linear.vjp_formulas['x']}."
    assert page.errors == []


@pytest.mark.parametrize("typed, verdict", [("2, 14", "wrong"), ("(2, 12)", "right")])
def test_predict_mode_asks_the_shape_for_an_op_without_formulas(stepper, typed, verdict):
    page, trace, _ = stepper
    at_step(page, step_of(trace, "Concatenate").index, predict=True)
    assert "What shape is the gradient Concatenate sends" in page.inner_text("#question")
    page.fill("#shape-answer", typed)
    page.keyboard.press("Enter")
    assert page.get_attribute("#feedback", "class") == verdict and "(2, 12)" in page.inner_text("#feedback")
    assert page.errors == [] and all(url.startswith("file://") for url in page.requests)
