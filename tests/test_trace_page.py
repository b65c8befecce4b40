"""The backward stepper page in a real headless Chromium: loads offline, steps, ends on the leaf gradients."""
import re

import numpy as np

import tinynet as tn
from tinynet import functional as F
from tinynet.memory import megabytes


def xor_trace():
    """The README's XOR network, traced: 16 backward steps over 18 tensors."""
    rng = np.random.default_rng(0)
    model = tn.nn.Sequential(tn.nn.Linear(2, 16, rng=rng), tn.nn.Tanh(), tn.nn.Linear(16, 2, rng=rng))
    x = rng.standard_normal((64, 2))
    with tn.tracing(names=dict(model.named_parameters())) as trace:
        loss = F.cross_entropy(model(x), (x[:, 0] * x[:, 1] > 0).astype(np.int64))
        loss.backward()
    return trace, model


def test_the_page_references_nothing_outside_itself(tmp_path):
    trace, _ = xor_trace()
    trace.save_html(tmp_path / "xor.html")
    page = (tmp_path / "xor.html").read_text()
    assert not re.search(r"https?:|//[a-z]|src=|href=|@import|url\(", page)


def test_stepping_moves_the_highlight_and_the_last_step_shows_the_leaf_gradients(tmp_path, browser_page):
    trace, model = xor_trace()
    trace.save_html(tmp_path / "xor.html")
    page = browser_page
    page.goto((tmp_path / "xor.html").as_uri())
    assert page.locator(".node").count() == len(trace.nodes) and page.locator(".node.current").count() == 0
    page.click("#next")
    first = page.get_attribute(".node.current", "data-id")
    assert first == str(trace.steps[0].tensor)
    page.keyboard.press("ArrowRight")
    assert page.get_attribute(".node.current", "data-id") == str(trace.steps[1].tensor) != first
    assert "Step 2" in page.inner_text("#panel")
    page.click("#last")
    leaf_table = page.inner_text("#leaf-grads")
    bias = model.layers[2].bias.grad
    assert "layers.2.bias" in leaf_table and f"{bias[0]:.4g}" in leaf_table
    assert page.errors == [] and all(url.startswith("file://") for url in page.requests)


def test_the_page_shows_the_bytes_each_node_saved_and_what_backward_still_needs(tmp_path, browser_page):
    trace, _ = xor_trace()
    trace.save_html(tmp_path / "xor.html")
    page = browser_page
    page.goto((tmp_path / "xor.html").as_uri())
    total = trace.saved_bytes
    assert total > 0 and page.inner_text("#memory") == f"saved for backward: {megabytes(total)} of " \
                                                      f"{megabytes(total)} still needed"
    tanh = next(step for step in trace.steps if step.op == "Tanh")
    for _ in range(tanh.index):
        page.click("#next")
    assert page.inner_text("#panel .saved-bytes") == megabytes(trace.nodes[tanh.tensor]["saved_bytes"]) == "4.1 kB"
    assert page.inner_text("#memory").startswith(f"saved for backward: {megabytes(tanh.saved_bytes_needed)} of")
    page.click("#last")
    assert page.inner_text("#memory") == f"saved for backward: 0 B of {megabytes(total)} still needed"
    assert page.errors == []
