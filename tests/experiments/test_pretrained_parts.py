"""Parts 7, 8 and 9 of seed 000 chained as a student runs them, on a few faces per actor."""
import json

import pytest

from conftest import require_data
from experiments import part7_features, part8_gradients, part9_guided_backprop


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
    assert (part7_out / "learning_curves_face_resnet.png").exists()


def test_part8_input_gradient_agrees_with_finite_differences(part7_out, tmp_path):
    part8_gradients.main(["--quick", "--out", str(tmp_path), "--head", str(part7_out / "head_face_resnet.npz")])
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["passed"] and metrics["max_relative_error"] <= metrics["tolerance"]
    assert metrics["model"].startswith("face_resnet + part 7's head")
    assert (tmp_path / "gradient.png").exists()


def test_part9_guided_gradient_is_sparser_than_plain(part7_out, tmp_path):
    part9_guided_backprop.main(["--quick", "--out", str(tmp_path), "--head", str(part7_out / "head_face_resnet.npz")])
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    rows = [row for actor_rows in metrics["actors"].values() for row in actor_rows]
    assert rows and all(row["zero_fraction_guided"] >= row["zero_fraction_plain"] for row in rows)
    assert len(list(tmp_path.glob("guided_*.png"))) == 2

