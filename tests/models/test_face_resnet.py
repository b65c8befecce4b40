"""The pretrained face ResNet: decoded weights match the manifest; descriptors recognize people."""
import json

import numpy as np
import pytest
from PIL import Image

import tinynet as tn
from conftest import require_data
from tinynet.models.face_resnet import FaceResNet, load_weights


@pytest.fixture(scope="module")
def model():
    require_data("pretrained/face_recognition_model.bin")
    return FaceResNet.pretrained(require_data("pretrained"))


def test_decoded_weights_match_the_manifest_shapes():
    directory = require_data("pretrained")
    (group,) = json.loads((directory / "face_recognition_model-weights_manifest.json").read_text())
    weights = load_weights(directory)
    assert [(name, w.shape) for name, w in weights.items()] == [(e["name"], tuple(e["shape"]))
                                                                for e in group["weights"]]
    quantized = group["weights"][0]["quantization"]
    assert weights["conv32_down/conv/filters"].min() == pytest.approx(quantized["min"], abs=1e-6)


def face_crops(actor, count):
    """The first `count` genuine originals of an actor, face box cropped, (count, 3, 150, 150) 0..255."""
    folder = require_data("facescrub")
    lists = (folder / "subset_actors.txt").read_text(errors="replace") + \
        (folder / "subset_actresses.txt").read_text(errors="replace")
    crops = []
    for line in lists.splitlines():
        fields = line.split("\t")
        if len(fields) != 6 or fields[0] != actor:
            continue
        matches = list((folder / "images").glob(fields[5] + ".*"))
        if matches:
            x1, y1, x2, y2 = map(int, fields[4].split(","))
            image = Image.open(matches[0]).convert("RGB").crop((x1, y1, x2, y2)).resize((150, 150))
            crops.append(np.asarray(image).transpose(2, 0, 1))
        if len(crops) == count:
            return np.stack(crops).astype(np.float32)
    raise AssertionError(f"found only {len(crops)} originals of {actor}")


def test_descriptors_recognize_actors(model):
    actors = ["Gerard Butler", "Angie Harmon", "Daniel Radcliffe"]
    images = np.concatenate([face_crops(actor, 5) for actor in actors])
    labels = np.repeat(np.arange(len(actors)), 5)
    with tn.no_grad():
        descriptors = model(tn.Tensor(images)).data
    distances = np.linalg.norm(descriptors[:, None] - descriptors[None], axis=2)
    same = distances[(labels[:, None] == labels[None]) & ~np.eye(len(labels), dtype=bool)]
    different = distances[labels[:, None] != labels[None]]
    assert np.median(same) < 0.6 < np.median(different)  # dlib's threshold
    np.fill_diagonal(distances, np.inf)
    nearest_neighbour_accuracy = np.mean(labels[distances.argmin(axis=1)] == labels)
    assert nearest_neighbour_accuracy >= 0.9


def test_intermediate_feature_maps_and_input_checks(model):
    images = tn.Tensor(np.full((1, 3, 150, 150), 128, np.float32))
    with tn.no_grad():
        assert model(images, until="stem").shape == (1, 32, 35, 35)
        assert model(images, until="conv128_2").shape == (1, 128, 8, 8)
        assert model(images, until="conv256_2").shape == (1, 256, 4, 4)
    with pytest.raises(ValueError, match=r"expected images of shape \(N, 3, 150, 150\)"):
        model(tn.Tensor(np.zeros((1, 150, 150, 3))))
    with pytest.raises(ValueError, match="unknown layer"):
        model(images, until="conv7")


def test_input_gradient_flows_to_the_image_but_not_to_frozen_weights(model):
    image = tn.Tensor(np.random.default_rng(0).uniform(0, 255, (1, 3, 150, 150)), requires_grad=True)
    model(image)[0, 0].backward()
    assert image.grad.shape == (1, 3, 150, 150) and np.abs(image.grad).sum() > 0
    assert all(p.grad is None for p in model.parameters())


def test_a_frozen_network_folds_each_scale_layer_into_its_conv_and_computes_the_same(model):
    """Frozen: conv(x, weight * gamma) + bias * gamma + beta, one op; trainable: conv, then * gamma + beta. The two
    agree to rounding, in the descriptors and in the input gradient; the fold follows in-place changes."""
    images = face_crops("Angie Harmon", 2)
    trainable = FaceResNet.pretrained(require_data("pretrained"), trainable=True)

    def descriptors_and_input_gradient(network, dtype=np.float32):
        x = tn.Tensor(images.astype(dtype), requires_grad=True)
        out = network(x)
        out.backward(np.linspace(-1, 1, out.size, dtype=dtype).reshape(out.shape))
        return out.data, x.grad
    (folded, folded_gradient), (plain, plain_gradient) = map(descriptors_and_input_gradient, (model, trainable))
    assert model.stem._folded is not None and trainable.stem._folded is None
    np.testing.assert_allclose(folded, plain, atol=1e-5 * np.abs(plain).max())
    # in float32 a ReLU whose input rounds to the other side of 0, or a max-pool window whose two largest values
    # round into the other order, sends the gradient another way: the gradients agree as a whole (~1% here);
    # in float64, element by element
    assert np.linalg.norm(folded_gradient - plain_gradient) < 3e-2 * np.linalg.norm(plain_gradient)
    frozen64 = FaceResNet.pretrained(require_data("pretrained")).to(np.float64)
    (_, folded_gradient), (_, plain_gradient) = (descriptors_and_input_gradient(network, np.float64) for network in
                                                 (frozen64, trainable.to(np.float64)))
    np.testing.assert_allclose(folded_gradient, plain_gradient, atol=1e-10 * np.abs(plain_gradient).max())

    gamma = model.blocks[0].conv1.gamma
    kept = gamma.data.copy()
    try:
        gamma.data[...] *= 2  # written in place: the next forward folds again
        with tn.no_grad():
            doubled = model(tn.Tensor(images)).data
        trainable.to(np.float32).blocks[0].conv1.gamma.data = kept * 2  # replaced
        with tn.no_grad():  # no gradient wanted: folded as well
            expected = trainable(tn.Tensor(images)).data
        assert np.abs(doubled - folded).max() > 1e-2
        np.testing.assert_allclose(doubled, expected, atol=1e-5 * np.abs(expected).max())
    finally:
        gamma.data[...] = kept
