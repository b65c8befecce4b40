"""The 'how backprop works' experiment: its traces, text and pages, and the accumulation page in Chromium."""
import json

from conftest import require_data
from experiments import backprop_steps
from experiments.common.mnist import MNIST_FILE, SNAPSHOT_FILE


def test_quick_run_writes_a_page_and_a_text_trace_per_computation(tmp_path, browser_page):
    require_data(MNIST_FILE)
    require_data(SNAPSHOT_FILE)
    backprop_steps.main(["--quick", "--out", str(tmp_path)])
    metrics = json.loads((tmp_path / "metrics.json").read_text())["traces"]
    assert metrics["accumulation"] == {"tensors": 4, "steps": 4, "leaves": 1,
                                       "page_bytes": (tmp_path / "accumulation.html").stat().st_size}
    assert metrics["mnist"]["leaves"] == 4 and metrics["xor"]["leaves"] == 4
    for name in metrics:
        assert (tmp_path / f"{name}.html").exists() and (tmp_path / f"{name}.txt").exists()
    assert "sent at step 3 (2 times)" in (tmp_path / "summary.md").read_text()
    browser_page.goto((tmp_path / "accumulation.html").as_uri())
    for _ in range(4):
        browser_page.keyboard.press("ArrowRight")
    panel = browser_page.inner_text("#panel")
    assert "Step 4: t0 a" in panel and "sum of 2 contributions" in panel and "[8.000, 16.00]" in panel
    # a + a: one op sends a two terms
    assert browser_page.inner_text("#chain-rule .formula") == "grad t0 = g from t1 (Add, input a) + g from t1 (Add, " \
                                                              "input b)"
    assert browser_page.errors == []
