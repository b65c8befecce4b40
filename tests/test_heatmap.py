"""Heatmaps of image-shaped arrays for the stepper page: which shapes, the block means, the byte scale, the bound."""
import base64

import numpy as np

from tinynet.heatmap import MAX_PLANES, MAX_SIDE, NOT_FINITE, block_means, heatmap, is_image_shaped


def levels(result) -> np.ndarray:
    """The heatmap's signed bytes as (planes, height, width)."""
    data = np.frombuffer(base64.b64decode(result["data"]), dtype=np.int8)
    return data.reshape(len(result["planes"]), result["height"], result["width"])


def test_images_and_matrices_are_image_shaped_vectors_and_scalars_are_not():
    assert is_image_shaped((2, 3, 8, 8)) and is_image_shaped((5, 4))
    assert not any(is_image_shaped(s) for s in [(), (7,), (1, 7), (2, 3, 4), (0, 3, 4, 4)])
    assert heatmap(np.ones(7)) is None


def test_block_means_average_each_block_and_the_edge_blocks_what_they_hold():
    plane = np.arange(15.0).reshape(3, 5)
    np.testing.assert_allclose(block_means(plane, 2), [[3.0, 5.0, 6.5], [10.5, 12.5, 14.0]])


def test_a_heatmap_keeps_the_first_images_first_channels_scaled_to_signed_bytes():
    x = np.zeros((3, 6, 4, 4))  # 6 channels: more than MAX_PLANES
    x[0, 1, 0, 0], x[0, 2, 3, 3], x[1] = 2.0, -1.0, 99.0  # image 1 is not drawn: its 99 must not set the scale
    result = heatmap(x)
    assert result["planes"] == [f"image 0, channel {c}" for c in range(MAX_PLANES)] and result["scale"] == 2.0
    drawn = levels(result)
    assert drawn.shape == (MAX_PLANES, 4, 4) and drawn[1, 0, 0] == 127 and drawn[2, 3, 3] == -64
    assert np.count_nonzero(drawn) == 2


def test_a_large_array_is_downsampled_to_a_bounded_heatmap_and_non_finite_blocks_are_marked():
    weight = np.ones((300, 784))
    weight[0, 0] = np.nan
    result = heatmap(weight)
    assert result["factor"] == 40 and (result["height"], result["width"]) == (8, 20)
    drawn = levels(result)
    assert drawn[0, 0, 0] == NOT_FINITE and np.all(drawn.ravel()[1:] == 127)
    assert len(base64.b64decode(heatmap(np.broadcast_to(1.0, (2, 64, 500, 700)))["data"])) <= MAX_PLANES * MAX_SIDE ** 2
