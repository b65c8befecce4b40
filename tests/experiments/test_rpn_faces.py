"""Seed 003 on FaceScrub: letterboxing maps the face box with the pixels, the feature layers
have the grids they claim, and a --quick run of experiments/rpn_faces.py writes its results."""
import json

import numpy as np
import pytest
from PIL import Image

import tinynet as tn
from conftest import require_data
from experiments import rpn_faces
from experiments.rpn.data import LAYERS, BadPhoto, letterbox
from tinynet.models.face_resnet import MEAN_RGB, FaceResNet


def test_letterbox_scales_centers_and_maps_the_face_box(tmp_path):
    pixels = np.zeros((150, 300, 3), dtype=np.uint8)
    pixels[50:100, 100:150] = (255, 0, 0)  # the "face": a red square
    path = tmp_path / "photo.png"
    Image.fromarray(pixels).save(path)
    image, face = letterbox(path, (100, 50, 150, 100), size=150)
    assert image.shape == (150, 150, 3) and image.dtype == np.uint8
    assert np.allclose(face, [62.5, 37 + 37.5, 25, 25])  # scale 1/2, 75 rows centered from row 37
    x1, y1 = int(face[0] - 12), int(face[1] - 12)
    assert np.all(image[y1 + 2:y1 + 23, x1 + 2:x1 + 23] == (255, 0, 0))
    assert np.allclose(image[0, 0], np.round(MEAN_RGB))  # padding is the network's mean color
    with pytest.raises(BadPhoto, match="outside"):
        letterbox(path, (400, 10, 500, 60))
    (tmp_path / "junk.jpg").write_bytes(b"<html>not found</html>")
    with pytest.raises(BadPhoto, match="not a readable photo"):
        letterbox(tmp_path / "junk.jpg", (0, 0, 10, 10))


def test_feature_layers_have_the_grid_they_claim():
    require_data("pretrained/face_recognition_model.bin")
    network = FaceResNet.pretrained(require_data("pretrained"))
    for layer in LAYERS.values():
        with tn.no_grad():
            out = network(tn.Tensor(np.zeros((1, 3, 150, 150), dtype=np.float32)), until=layer.name)
        assert out.shape == (1, layer.channels, layer.grid, layer.grid), layer.name
        assert layer.offset + layer.stride * (layer.grid - 1) < 150


def test_quick_run_writes_metrics_figures_and_summary(tmp_path):
    require_data("facescrub/images")
    require_data("pretrained/face_recognition_model.bin")
    rpn_faces.main(["--quick", "--out", str(tmp_path), "--seed", "1"])
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["photos"] == {"train": 6, "val": 6, "test": 6}
    assert set(metrics["sweep"]) == {str(s) for s in rpn_faces.QUICK["step_sizes"]}
    for result in (metrics["test"], metrics["seed_loss"]["test"], metrics["untrained"]):
        assert all(0 <= result[key] <= 1 for key in rpn_faces.METRIC_KEYS)
        assert result["precision@5"] <= 0.2 + 1e-9  # one annotated face per photo
    assert metrics["step_size"] in rpn_faces.QUICK["step_sizes"]
    assert {"step_size_sweep.png", "loss_along_gradient.png", "test_detections.png", "precision_recall.png",
            "anchors.png", "summary.md", "config.json", "health_step_size_0.03.png", "health_step_size_0.1.png"} <= {
        p.name for p in tmp_path.iterdir()}
    assert list(metrics["health"]["step_size_0.1"]["update_ratios"]) == ["conv1.weight", "conv1.bias", "conv2.weight",
                                                                      "conv2.bias"]
    summary = (tmp_path / "summary.md").read_text()
    assert f"| untrained head | {metrics['untrained']['recall@1']:.3f} |" in summary
