"""Seed 003's region-proposal pieces on hand-made boxes: anchors, targets, IoU, NMS, detect,
metrics, the loss's known values and the gradients of head + loss against finite differences."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinynet as tn
from experiments.rpn.anchors import MAX_LOG_SCALE, make_anchors, rect2target, target, target2rect
from experiments.rpn.boxes import corners, from_corners, iou, nms
from experiments.rpn.detect import detect
from experiments.rpn.head import RPNHead, rpn_loss, rpn_outputs
from experiments.rpn.metrics import average_precision, detection_metrics, match


def test_anchors_sit_on_the_grid_with_the_asked_areas_and_ratios():
    anchors = make_anchors((3, 4), stride=8, offset=9, scales=(10, 20), ratios=(0.5, 1.0, 2.0))
    assert anchors.shape == (3, 4, 6, 4)
    assert np.allclose(anchors[2, 1, :, 0], 9 + 8 * 1) and np.allclose(anchors[2, 1, :, 1], 9 + 8 * 2)
    assert np.allclose(anchors[0, 0, :, 2] * anchors[0, 0, :, 3], [100, 100, 100, 400, 400, 400])
    assert np.allclose(anchors[0, 0, :, 3] / anchors[0, 0, :, 2], [0.5, 1, 2, 0.5, 1, 2])


def test_iou_of_hand_made_rectangles():
    a = np.array([[0.5, 0.5, 1, 1], [10, 10, 2, 2]])
    b = np.array([[0.5, 0.5, 1, 1], [1.0, 0.5, 1, 1], [5, 5, 1, 1]])
    assert np.allclose(iou(a, b), [[1, 1 / 3, 0], [0, 0, 0]])
    assert np.allclose(from_corners(corners(a)), a)


rects = st.tuples(st.floats(-50, 50), st.floats(-50, 50), st.floats(1, 80), st.floats(1, 80))


@given(rects, rects)
def test_target2rect_inverts_rect2target_within_the_clamp(rect, anchor):
    rect, anchor = np.array(rect), np.array(anchor)
    regression = rect2target(rect, anchor)
    decoded = target2rect(regression, anchor)
    assert np.allclose(decoded[:2], rect[:2])
    assert np.allclose(decoded[2:], np.minimum(rect[2:], 2 * anchor[2:]))


def test_target2rect_clamps_the_log_scale_at_log_2():
    anchor = np.array([10.0, 20.0, 4.0, 6.0])
    assert np.allclose(target2rect([0.5, -1.0, 5.0, np.log(0.5)], anchor), [12, 14, 8, 3])
    assert MAX_LOG_SCALE == pytest.approx(np.log(2))


def test_target_marks_anchors_over_the_threshold_and_codes_the_face():
    anchors = make_anchors((2, 2), stride=10, offset=5, scales=(10,), ratios=(1.0,))
    face = np.array([5.0, 5.0, 11.0, 11.0])  # IoU 100/121 with the anchor of cell (0, 0)
    targets = target(anchors, face[None])
    assert targets.shape == (2, 2, 1, 5)
    assert targets[..., 4].tolist() == [[[1], [0]], [[0], [0]]]
    assert np.allclose(targets[0, 0, 0, :4], [0, 0, np.log(1.1), np.log(1.1)])
    assert np.allclose(target2rect(targets[0, 0, 0, :4], anchors[0, 0, 0]), face)


def test_the_best_anchor_of_a_small_face_is_positive_only_when_asked():
    anchors = make_anchors((2, 2), stride=10, offset=5, scales=(10,), ratios=(1.0,))
    face = np.array([[13.0, 6.0, 6.0, 6.0]])  # best IoU 0.36, with the anchor of cell (0, 1)
    assert target(anchors, face, best_is_positive=False)[..., 4].sum() == 0
    positive = target(anchors, face)[..., 4]
    assert positive.sum() == 1 and positive[0, 1, 0] == 1
    assert not target(anchors, np.zeros((0, 4))).any()


def test_nms_keeps_the_best_of_overlapping_rectangles():
    rects = np.array([[10, 10, 10, 10], [11, 10, 10, 10], [40, 40, 10, 10], [41, 41, 10, 10]], dtype=float)
    scores = np.array([0.9, 0.95, 0.5, 0.4])
    assert nms(rects, scores, 0.3).tolist() == [1, 2]
    assert nms(rects, scores, 0.3, limit=1).tolist() == [1]
    assert nms(rects, scores, 0.99).tolist() == [1, 0, 2, 3]


def test_detect_decodes_the_most_confident_anchors():
    anchors = make_anchors((2, 2), stride=10, offset=5, scales=(10,), ratios=(1.0,))
    outputs = np.zeros((2, 2, 1, 5))
    outputs[..., 4] = -5
    outputs[1, 0, 0] = [0.5, 0, np.log(2), 0, 3]  # cell (row 1, col 0): anchor at (5, 15)
    outputs[0, 1, 0, 4] = 1
    rects, scores = detect(outputs, anchors, 2)
    assert np.allclose(rects, [[10, 15, 20, 10], [15, 5, 10, 10]])
    assert np.allclose(scores, 1 / (1 + np.exp([-3.0, -1.0])))
    with pytest.raises(ValueError, match="expected outputs of shape"):
        detect(outputs[..., :4], anchors, 2)


def test_match_counts_a_second_rectangle_on_the_same_face_as_false():
    faces = np.array([[10, 10, 10, 10], [50, 50, 10, 10]])
    rects = np.array([[10, 10, 10, 10], [10.5, 10, 10, 10], [50, 50, 10, 12], [90, 90, 5, 5]])
    assert match(rects, faces).tolist() == [True, False, True, False]
    assert match(np.zeros((0, 4)), faces).tolist() == []


def test_average_precision_of_a_hand_ranked_list():
    ap, precision, recall = average_precision(np.array([0.9, 0.8, 0.7]), np.array([True, False, True]), 2)
    assert np.allclose(precision, [1, 0.5, 2 / 3]) and np.allclose(recall, [0.5, 0.5, 1])
    assert ap == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)


def test_detection_metrics_of_top_k():
    faces = [np.array([[10, 10, 10, 10]]), np.array([[50, 50, 10, 10]])]
    found = [(np.array([[10, 10, 10, 10], [30, 30, 5, 5]]), np.array([0.9, 0.2])),
             (np.array([[0, 0, 5, 5], [50, 50, 10, 10]]), np.array([0.8, 0.7]))]
    metrics, _, _ = detection_metrics(found, faces, ks=(1, 2))
    assert metrics["recall@1"] == 0.5 and metrics["precision@1"] == 0.5
    assert metrics["recall@2"] == 1.0 and metrics["precision@2"] == 0.5
    assert metrics["average_precision"] == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)


def small_problem(rng, positives=((0, 1, 2, 0), (1, 3, 0, 1))):
    """features (2, 3, 4, 4), targets (2, 4, 4, 2, 5) with the given positive anchors, float64."""
    features = rng.standard_normal((2, 3, 4, 4))
    targets = np.zeros((2, 4, 4, 2, 5))
    targets[..., :4] = rng.standard_normal((2, 4, 4, 2, 4))
    for index in positives:
        targets[index + (4,)] = 1
    return features, targets


def test_head_output_layout_puts_channel_a_times_5_plus_k_at_anchor_a_output_k():
    head = RPNHead(3, 2, np.random.default_rng(0), hidden=4)
    head.conv2.weight.data[:] = 0
    head.conv2.bias.data[:] = np.arange(10)
    out = head(tn.Tensor(np.ones((1, 3, 2, 5), dtype=np.float32)))
    assert out.shape == (1, 2, 5, 2, 5)
    assert np.array_equal(out.data[0, 1, 3], np.arange(10).reshape(2, 5))


def test_objectness_prior_sets_the_untrained_probability():
    head = RPNHead(3, 2, np.random.default_rng(0), hidden=4, positive_fraction=0.01)
    assert np.allclose(head.conv2.bias.data[4::5], np.log(0.01 / 0.99))
    with pytest.raises(ValueError, match="positive_fraction"):
        RPNHead(3, 2, np.random.default_rng(0), positive_fraction=1.5)


def test_loss_known_values_follow_the_seed():
    _, targets = small_problem(np.random.default_rng(0))
    outputs = tn.Tensor(np.zeros_like(targets))
    bce, mse = rpn_loss(outputs, targets)
    positive = targets[..., 4] == 1
    assert bce.item() == pytest.approx(np.log(2))
    assert mse.item() == pytest.approx(0.5 * np.sum(targets[positive][:, :4] ** 2) / 2)
    balanced_bce, _ = rpn_loss(outputs, targets, balanced=True)
    assert balanced_bce.item() == pytest.approx(np.log(2))
    _, no_positive_mse = rpn_loss(outputs, np.where(np.arange(5) == 4, 0, targets))
    assert no_positive_mse.item() == 0
    with pytest.raises(ValueError, match="do not match"):
        rpn_loss(outputs, targets[..., :4])


def test_balanced_bce_weighs_positives_and_negatives_equally():
    _, targets = small_problem(np.random.default_rng(0))
    outputs = np.zeros_like(targets)
    outputs[..., 4] = np.where(targets[..., 4] == 1, 2.0, -1.0)
    bce, _ = rpn_loss(tn.Tensor(outputs), targets, balanced=True)
    assert bce.item() == pytest.approx(0.5 * np.log1p(np.exp(-2.0)) + 0.5 * np.log1p(np.exp(-1.0)))


@pytest.mark.parametrize("balanced", [False, True])
def test_head_and_loss_gradients_match_finite_differences(balanced):
    rng = np.random.default_rng(1)
    features, targets = small_problem(rng)
    head = RPNHead(3, 2, rng, hidden=5).to(np.float64)
    inputs = [tn.Tensor(features, requires_grad=True)] + [tn.Tensor(p.data.copy(), requires_grad=True)
                                                          for p in (head.conv1.weight, head.conv1.bias,
                                                                    head.conv2.weight, head.conv2.bias)]

    def loss(x, weight1, bias1, weight2, bias2):
        bce, mse = rpn_loss(rpn_outputs(x, weight1, bias1, weight2, bias2, 2), targets, balanced)
        return bce + mse

    reports = tn.gradcheck(loss, inputs)
    assert len(reports) == 5
