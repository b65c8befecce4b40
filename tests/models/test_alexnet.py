"""AlexNet with a synthetic weights file of bvlc_alexnet.npy's exact layout and dtypes."""
import numpy as np
import pytest

import tinynet as tn
from tinynet import functional as F
from tinynet import nn
from tinynet.models import holding
from tinynet.models.alexnet import AlexNet, expected_shapes, load_bvlc_weights, preprocess


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory):
    """A bvlc_alexnet.npy look-alike: a pickled dict {layer: [W, b]} of small random float32."""
    rng = np.random.default_rng(0)
    weights = {name: [(rng.standard_normal(w_shape) * 0.01).astype(np.float32),
                      (rng.standard_normal(b_shape) * 0.01).astype(np.float32)]
               for name, (w_shape, b_shape) in expected_shapes().items()}
    path = tmp_path_factory.mktemp("alexnet") / "bvlc_alexnet.npy"
    np.save(path, np.array(weights, dtype=object), allow_pickle=True)
    return path


def test_layout_matches_the_course_file():
    shapes = expected_shapes()
    assert shapes["conv1"] == ((11, 11, 3, 96), (96,))
    assert shapes["conv2"] == ((5, 5, 48, 256), (256,))
    assert shapes["conv4"] == ((3, 3, 192, 384), (384,))
    assert shapes["fc6"] == ((9216, 4096), (4096,))


def test_forward_shapes_through_the_restricted_loader(weights_file):
    model = AlexNet.from_file(weights_file)
    images = preprocess(np.random.default_rng(1).uniform(0, 255, (1, 227, 227, 3)))
    with tn.no_grad():
        assert model(tn.Tensor(images), until="conv1").shape == (1, 96, 57, 57)  # 11x11 stride 4 'SAME'
        conv4 = model(tn.Tensor(images), until="conv4")
        logits = model(tn.Tensor(images))
    assert conv4.shape == (1, 384, 13, 13) and conv4.size == 64896
    assert logits.shape == (1, 1000) and np.all(np.isfinite(logits.data))


def test_grouped_conv_equals_two_ungrouped_halves(weights_file):
    weight, bias = load_bvlc_weights(weights_file)["conv2"]
    weight = weight.transpose(3, 2, 0, 1)  # (256, 48, 5, 5)
    x = np.random.default_rng(2).standard_normal((1, 96, 27, 27)).astype(np.float32)
    grouped = F.conv2d(x, weight, bias, padding="same", groups=2).data
    halves = [F.conv2d(x[:, 48 * g:48 * (g + 1)], weight[128 * g:128 * (g + 1)], bias[128 * g:128 * (g + 1)],
                       padding="same").data for g in range(2)]
    np.testing.assert_allclose(grouped, np.concatenate(halves, axis=1), rtol=1e-5, atol=1e-6)


def test_wrong_layout_and_wrong_images_give_clear_errors(tmp_path):
    np.save(tmp_path / "bad.npy", np.array({"conv1": [np.zeros((3, 3), np.float32), np.zeros(96, np.float32)]},
                                           dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="conv1 has shapes"):
        load_bvlc_weights(tmp_path / "bad.npy")
    with pytest.raises(ValueError, match=r"expected images of shape \(N, 227, 227, 3\)"):
        preprocess(np.zeros((1, 3, 227, 227)))


def test_conv_layers_are_nn_conv2d_holding_the_file_weights(weights_file):
    model = AlexNet.from_file(weights_file)
    weight, bias = load_bvlc_weights(weights_file)["conv2"]
    assert isinstance(model.conv2, nn.Conv2d) and (model.conv2.stride, model.conv2.groups) == (1, 2)
    np.testing.assert_array_equal(model.conv2.weight.data, weight.transpose(3, 2, 0, 1))
    np.testing.assert_array_equal(model.conv2.bias.data, bias)
    assert not any(p.requires_grad for p in model.parameters())
    with pytest.raises(ValueError, match=r"Conv2d expects a weight of shape \(4, 1, 3, 3\), got \(3, 3, 1, 4\)"):
        holding(nn.Conv2d(1, 4, 3), np.zeros((3, 3, 1, 4)))
