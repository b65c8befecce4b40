"""Parts 7, 8 and 9 of seed 000 chained as a student runs them, on a few faces per actor."""
import json

import numpy as np
import pytest

import tinynet as tn
from conftest import require_data
from experiments import part7_features, part8_gradients, part9_guided_backprop
from experiments.common.features import FeatureNetwork, make_head


@pytest.fixture(scope="module")
def part7_out(tmp_path_factory):
    """Part 7 --quick: features of a few crops per actor and a head saved for parts 8 and 9."""
    require_data("facescrub/images")
    require_data("pretrained/face_recognition_model.bin")
    out = tmp_path_factory.mktemp("part7")
    part7_features.main(["--quick", "--out", str(out)])
    return out


def test_part7_trains_a_head_on_face_descriptors(part7_out):
    metrics = json.loads((part7_out / "metrics.json").read_text())
    network = metrics["networks"]["face_resnet"]
    assert network["feature_dimension"] == 128
    assert 0 <= network["test_accuracy"] <= 1
    assert (part7_out / "head_face_resnet.npz").exists()
    assert (part7_out / "learning_curves_face_resnet.png").exists() and (part7_out / "health_face_resnet.png").exists()
    assert metrics["health"]["face_resnet"]["shapes"]["layers.0.weight"][0] == network["hidden"]


def test_part8_input_gradient_agrees_with_finite_differences(part7_out, tmp_path):
    part8_gradients.main(["--quick", "--out", str(tmp_path), "--head", str(part7_out / "head_face_resnet.npz")])
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["passed"] and metrics["failures"] == 0 and metrics["pixels_checked"] == 6
    assert metrics["model"].startswith("face_resnet + part 7's head")
    assert {"gradient.png", "step_sweep.png"} <= {p.name for p in tmp_path.iterdir()}
    assert "| verdict |" in (tmp_path / "summary.md").read_text()
    memory = json.loads((tmp_path / "memory_report.json").read_text())
    assert any(row["op"] == "Conv2d" and "face_resnet.py" in row["call_site"] for row in memory["rows"])


@pytest.mark.parametrize("seed, actor", [(1, "Lorraine Bracco"), (2, "Peri Gilpin")])
def test_part8_passes_bare_without_part7_head_and_without_dither(seed, actor, tmp_path):
    """Issue 15: a fresh run (no part-7 head, photo not dithered) must not cry wolf."""
    part8_gradients.main(["--quick", "--seed", str(seed), "--actor", actor, "--out", str(tmp_path / "out"),
                          "--head", str(tmp_path / "no_head.npz")])
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["passed"] and metrics["dither"] == 0
    assert metrics["model"] == "face_resnet + a head trained by this script (part 7 has not been run)"


def test_part8_edge_row_that_no_filter_reads_has_zero_gradient_and_passes():
    """Row 149 of the 150-pixel image is never read by the 7x7 stride-2 stem: its gradient is exactly 0,
    which must pass against the finite difference's round-off (the false alarm of a fresh run)."""
    require_data("pretrained/face_recognition_model.bin")
    rng = np.random.default_rng(0)
    network = FeatureNetwork.face_resnet()
    network.model.to(np.float64)
    score = part8_gradients.actor_score(network, make_head(128, 8, 6, rng).to(np.float64), actor_index=0)
    image = tn.Tensor(rng.uniform(0, 255, (1, 3, 150, 150)), requires_grad=True)
    pixels = part8_gradients.sampled_pixels((3, 150, 150), "all-rows", rng)
    assert [row for _, row, _ in pixels] == list(range(150))
    (report,) = tn.gradcheck(score, [image], eps=1e-3, elements=[(0, *pixel) for pixel in pixels[-1:] + pixels[:2]])
    assert report.elements[0].analytic == 0 and report.passed


def test_part9_guided_gradient_is_sparser_than_plain(part7_out, tmp_path):
    part9_guided_backprop.main(["--quick", "--out", str(tmp_path), "--head", str(part7_out / "head_face_resnet.npz")])
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    rows = [row for actor_rows in metrics["actors"].values() for row in actor_rows]
    assert rows and all(row["zero_fraction_guided"] >= row["zero_fraction_plain"] for row in rows)
    assert len(list(tmp_path.glob("guided_*.png"))) == 2

