"""Seed 003: face detection with a Faster R-CNN region-proposal head, on FaceScrub photos.

Each uncropped photo is letterboxed to 150 x 150 (the face ResNet's input) and run through
the pretrained face ResNet up to block conv64_3: a 17 x 17 x 64 feature map, feature stride
8 pixels. On it, the seed's head (3x3 conv 64 -> 128 + ReLU, 1x1 conv -> 9 anchors x 5) is
trained by gradient descent with momentum on the seed's loss (objectness BCE over all
anchors + regression MSE over the positive ones) with positives and negatives weighing half
each in the BCE, once per step size. The step size with the best validation AP is evaluated
on the test split (recall and precision of the top 1 and top 5 rectangles at IoU 0.5,
average precision), and trained once more with the seed's unbalanced BCE for comparison.
"""
import functools
import math
import os
import time

import numpy as np

import facescrub
import tinynet as tn
from coursedata.cli import run_main
from experiments.common.cli import experiment_parser
from experiments.common.plots import blank, plt
from experiments.common.results import Results
from experiments.common.training import minibatches, monitored, predict
from experiments.rpn.anchors import make_anchors, target
from experiments.rpn.boxes import corners, iou
from experiments.rpn.data import LAYERS, feature_maps, load_photos
from experiments.rpn.detect import NMS_IOU, detect
from experiments.rpn.head import RPNHead, rpn_loss, rpn_outputs
from experiments.rpn.metrics import IOU_THRESHOLD, detection_metrics, match
from facescrub.splits import split_of
from tinynet import optim

LAYER = LAYERS["conv64_3"]
SCALES = (32, 48, 72)  # anchor sides in pixels: FaceScrub faces are 23 to 79 pixels (5th-95th percentile)
RATIOS = (0.8, 1.0, 1.25)  # height / width; the boxes are all square, so the ratios stay near 1
STEP_SIZES = (0.01, 0.03, 0.1)
EPOCHS, BATCH_SIZE, MOMENTUM = 10, 32, 0.9
DETECTIONS_PER_IMAGE = 20  # pooled over the test split for the precision-recall curve and AP
METRIC_KEYS = ("recall@1", "precision@1", "recall@5", "precision@5", "average_precision")
QUICK = {"photos_per_split": 6, "epochs": 1, "step_sizes": (0.03, 0.1)}


def total_loss(head, features, targets, balanced):
    """The loss bce + mse of the head on all of features (N, C, H, W), without a graph."""
    bce, mse = rpn_loss(tn.Tensor(predict(head, features, batch_size=128)), targets, balanced)
    return bce.item() + mse.item()


def train_head(features, targets, val, step_size, epochs, seed, balanced=True, health=None):
    """Gradient descent with momentum on mini-batches; returns (head, curves).

    val: (features, targets) of the validation split. balanced: see rpn_loss; with the
    seed's unbalanced loss the objectness biases start at the fraction of positive anchors.
    curves: per epoch, the training loss (the mean over the epoch's mini-batches; at epoch 0
    over the whole split, untrained) and the validation loss at the end of the epoch.
    health: see training.train (e.g. Results.health); the loss is no classifier's, so no initial loss is recorded.
    """
    rng = np.random.default_rng(seed)
    head = RPNHead(features.shape[1], len(SCALES) * len(RATIOS), rng,
                   positive_fraction=None if balanced else float(targets[..., 4].mean()))
    optimizer = optim.SGD(head.parameters(), lr=step_size, momentum=MOMENTUM)
    curves = {"epoch": [0], "train_loss": [total_loss(head, features, targets, balanced)],
              "val_loss": [total_loss(head, *val, balanced)]}
    with monitored(head, optimizer, epochs * math.ceil(len(features) / BATCH_SIZE), health):
        for epoch in range(1, epochs + 1):
            losses = []
            for batch in minibatches(len(features), BATCH_SIZE, rng):
                optimizer.zero_grad()
                bce, mse = rpn_loss(head(tn.Tensor(features[batch])), targets[batch], balanced)
                loss = bce + mse
                loss.backward()
                optimizer.step()
                losses.append(loss.item() * len(batch))
            curves["epoch"].append(epoch)
            curves["train_loss"].append(sum(losses) / len(features))
            curves["val_loss"].append(total_loss(head, *val, balanced))
    return head, curves


def loss_along_gradient(features, targets, steps, seed):
    """The seed's check of the gradient: (bce, mse) (len(steps),) of the untrained head on one
    image after moving its weights by -step * gradient, for each step size in steps."""
    head = RPNHead(features.shape[1], len(SCALES) * len(RATIOS), np.random.default_rng(seed))
    x = tn.Tensor(features[:1])
    sum(rpn_loss(head(x), targets[:1], balanced=True)).backward()
    params = [head.conv1.weight, head.conv1.bias, head.conv2.weight, head.conv2.bias]
    losses = []
    with tn.no_grad():
        for step in steps:
            moved = [tn.Tensor(p.data - step * p.grad) for p in params]
            outputs = rpn_outputs(x, *moved, head.anchors_per_cell)
            losses.append([term.item() for term in rpn_loss(outputs, targets[:1], balanced=True)])
    return np.array(losses).T


def sweep_figure(sweep):
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for k, (step_size, run) in enumerate(sweep.items()):
        color = f"C{k}"
        ax.plot(run["curves"]["epoch"], run["curves"]["train_loss"], color=color, label=f"step {step_size}: train")
        ax.plot(run["curves"]["epoch"], run["curves"]["val_loss"], "--", color=color, label=f"step {step_size}: val")
    ax.set(xlabel="epoch", ylabel="loss (BCE + MSE)", yscale="log",
           title="gradient descent on the RPN loss, one curve per step size")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return fig


def show_photo(ax, image):
    """The photo alone on ax; rectangles drawn later are cut at its border."""
    ax.imshow(image)
    ax.set(xlim=(-0.5, image.shape[1] - 0.5), ylim=(image.shape[0] - 0.5, -0.5))
    blank(ax)


def draw_rect(ax, rect, color, label=None, width=2):
    x1, y1, x2, y2 = corners(rect)
    ax.add_patch(plt.Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, edgecolor=color, linewidth=width))
    if label:
        ax.text(x1, y1 - 1, label, color=color, fontsize=7, va="bottom")


def detections_figure(photos, found, count=12, cols=4):
    """Test photos with the annotated face (green) and the top 5 detections (red, best thickest)."""
    rows = -(-min(count, len(found)) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.4 * rows), squeeze=False)
    for k, ax in enumerate(axes.flat):
        blank(ax)
        if k >= min(count, len(found)):
            continue
        show_photo(ax, photos.images[k])
        draw_rect(ax, photos.faces[k], "lime", width=2.5)
        rects, scores = found[k]
        for rank, (rect, score) in enumerate(zip(rects[:5], scores[:5])):
            draw_rect(ax, rect, "red", f"{score:.2f}" if rank == 0 else None, width=2.5 if rank == 0 else 0.8)
        best = iou(rects[:1], photos.faces[k][None])[0, 0] if len(rects) else 0.0
        ax.set_title(f"test {k}: top-1 IoU {best:.2f}", fontsize=9)
    fig.suptitle("test photos: annotated face (green), top 5 detections (red; top 1 thick, with its objectness)")
    fig.tight_layout()
    return fig


def precision_recall_figure(precision, recall, ap):
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.plot(recall, precision)
    ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02),
           title=f"test precision-recall at IoU {IOU_THRESHOLD} (AP {ap:.3f})")
    ax.grid(alpha=0.3)
    return fig


def anchors_figure(image, anchors):
    """The seed's anchor pictures: the 9 anchors of the central cell; the cell centers, with
    anchor 0 drawn at every fourth cell."""
    fig, (ax_center, ax_grid) = plt.subplots(1, 2, figsize=(9, 4.5))
    center = anchors.shape[0] // 2
    for ax in (ax_center, ax_grid):
        show_photo(ax, image)
    for a, rect in enumerate(anchors[center, center]):
        draw_rect(ax_center, rect, f"C{a // len(RATIOS)}", width=1.2)
    ax_grid.plot(anchors[..., 0, 0].ravel(), anchors[..., 0, 1].ravel(), ".", color="cyan", markersize=3)
    for rect in anchors[::4, ::4, 0].reshape(-1, 4):
        draw_rect(ax_grid, rect, "cyan", width=0.8)
    ax_center.set_title(f"the 9 anchors of cell ({center}, {center}): sides {SCALES}, h/w {RATIOS}", fontsize=9)
    ax_grid.set_title(f"centers of the {anchors.shape[0]}x{anchors.shape[1]} cells (stride {LAYER.stride}); "
                      "anchor 0 of every 4th", fontsize=9)
    fig.tight_layout()
    return fig


def line_search_figure(steps, losses):
    fig, (ax_bce, ax_mse) = plt.subplots(2, 1, figsize=(7, 6), sharex=True)
    ax_bce.plot(steps, losses[0], marker=".")
    ax_mse.plot(steps, losses[1], marker=".")
    ax_bce.set(ylabel="BCE (balanced)", title="untrained head, one training photo: loss after a step of "
                                              "-step size x gradient")
    ax_mse.set(xlabel="step size (negative: along the gradient)", ylabel="MSE")
    for ax in (ax_bce, ax_mse):
        ax.axvline(0, color="gray", linewidth=0.8)
        ax.grid(alpha=0.3)
    return fig


def center_prior(train_faces, test_faces):
    """Recall@1 of always answering the mean training face box: what the photo framing alone gives."""
    guess = train_faces.mean(axis=0)
    return float(np.mean(iou(test_faces, guess[None])[:, 0] >= IOU_THRESHOLD)), guess


def evaluate(head, features, faces, anchors):
    """(metrics, pooled precision, pooled recall, detections) of the head on photos with faces (N, 4)
    (see detection_metrics); detections: per photo the best DETECTIONS_PER_IMAGE (rects, scores)."""
    found = [detect(outputs, anchors, DETECTIONS_PER_IMAGE) for outputs in predict(head, features, batch_size=128)]
    return (*detection_metrics(found, faces[:, None]), found)


def metrics_table(rows):
    """Markdown rows 'name | recall@1 | precision@1 | recall@5 | precision@5 | AP' of {name: metrics}."""
    return "\n".join(f"| {name} | " + " | ".join(f"{m[key]:.3f}" for key in METRIC_KEYS) + " |"
                     for name, m in rows.items())


def fmt(value):
    return "n/a" if value is None else f"{value:.0f}"


def summary(m):
    sweep, sides = m["sweep"], m["test_face_side_median"]
    losses = sweep[m["step_size"]]["curves"]["train_loss"]
    trend = losses[-1] / losses[-2] - 1
    sweep_rows = "\n".join(f"| {s} | {r['final_train_loss']:.4f} | {r['final_val_loss']:.4f} | "
                           f"{r['val']['average_precision']:.3f} | {r['train_seconds']:.0f} |"
                           for s, r in sweep.items())
    table = metrics_table({f"trained, balanced BCE, step size {m['step_size']}": m["test"],
                           f"trained, the seed's unbalanced BCE, step size {m['step_size']}": m["seed_loss"]["test"],
                           "untrained head": m["untrained"]})
    return f"""# Face detection with a Faster R-CNN region-proposal head (seed 003)

{m['photos']['train']} training, {m['photos']['val']} validation and {m['photos']['test']} test FaceScrub
photos (one annotated face each), letterboxed to 150 x 150. Features: the pretrained face ResNet
up to {LAYER.name}, a {LAYER.grid} x {LAYER.grid} x {LAYER.channels} map, feature stride {LAYER.stride} pixels.
Anchors: sides {SCALES} pixels x height/width {RATIOS}, 9 per cell, {m['anchors']} per photo;
positive when IoU > 0.7 with the face, or the face's best anchor.
Head: 3x3 conv {LAYER.channels} -> 128 + ReLU, 1x1 conv -> 9 x 5, trained {m['epochs']} epochs by
gradient descent with momentum {MOMENTUM} (batch {BATCH_SIZE}) per step size.

## Test split (IoU >= {IOU_THRESHOLD}; AP over the top {DETECTIONS_PER_IMAGE} per photo after NMS at {NMS_IOU})

| head | recall@1 | precision@1 | recall@5 | precision@5 | AP |
|---|---|---|---|---|---|
{table}

Always answering one fixed box (the mean training face) finds {m['center_prior_recall@1']:.3f} of the test faces.

## Step-size sweep (balanced BCE; the best validation AP is tested)

| step size | final train loss | final val loss | val AP | training seconds |
|---|---|---|---|---|
{sweep_rows}

Feature extraction took {m['feature_seconds']:.0f} s in this run (maps cached by an earlier run are
loaded, not recomputed); training took {m['train_seconds']:.0f} s in all on {m['cpus']} cores.

## What limits these numbers

- The seed's BCE averages over all {m['anchors']} anchors of a photo, of which about
  {m['positives_per_photo']:.1f} are positive, so the faces' share of the objectness gradient is tiny:
  trained on it, the head reaches a test AP of {m['seed_loss']['test']['average_precision']:.3f}, against
  {m['test']['average_precision']:.3f} when positives and negatives weigh half each, as the Faster R-CNN
  paper's 1:1 sampling of anchors makes them.
- One face is annotated per photo. Photos with several people have honest detections that
  count as false positives, and precision of the top 5 is at most 0.2 by construction.
- The feature grid is coarse: with stride {LAYER.stride} at 150 x 150 only
  {m['faces_with_anchor_over_0.7']:.0%} of the faces have an anchor with IoU > 0.7 (the seed's positive
  threshold) and {m['faces_with_anchor_over_0.5']:.0%} one with IoU >= 0.5; small faces depend on the regression.
  The test faces the top 5 miss have a median side of {fmt(sides['missed_by_top5'])} pixels, those it finds
  {fmt(sides['found_in_top5'])}.
- {m['photos']['train']} training photos and {m['epochs']} epochs on 2 shared cores; the training loss of the
  chosen step size changed by {trend:+.1%} over the last epoch.
- The face ResNet was trained on aligned face crops, not whole photos, and FaceScrub was part
  of its training data, so its features may know these very faces.
"""


def main(argv=None):
    parser = experiment_parser("rpn_faces", __doc__)
    args = parser.parse_args(argv)
    epochs = QUICK["epochs"] if args.quick else EPOCHS
    step_sizes = QUICK["step_sizes"] if args.quick else STEP_SIZES
    with Results(args.out, args, layer=LAYER.name, feature_stride=LAYER.stride, scales=SCALES, ratios=RATIOS,
                 step_sizes=step_sizes, epochs=epochs, batch_size=BATCH_SIZE, momentum=MOMENTUM, positive_iou=0.7,
                 nms_iou=NMS_IOU) as results:
        originals = facescrub.originals()
        if args.quick:  # letterbox only the photos the quick run uses
            originals = [o for name in ("train", "val", "test")
                         for o in [o for o in originals if split_of(o.sha256) == name][:QUICK["photos_per_split"]]]
        photos, skipped = load_photos(originals)
        splits = {name: photos.of_split(name) for name in ("train", "val", "test")}
        started = time.perf_counter()
        features = {name: feature_maps(split, LAYER) for name, split in splits.items()}
        feature_seconds = time.perf_counter() - started
        anchors = make_anchors((LAYER.grid, LAYER.grid), LAYER.stride, LAYER.offset, SCALES, RATIOS)
        targets = {name: np.stack([target(anchors, face[None]) for face in split.faces])
                   for name, split in splits.items()}
        best_overlap = np.concatenate([iou(anchors, split.faces).max(axis=(0, 1, 2)) for split in splits.values()])
        m = results.metrics
        m.update(photos={name: len(split.faces) for name, split in splits.items()}, unreadable=len(skipped),
                 anchors=int(anchors[..., 0].size), feature_seconds=feature_seconds, epochs=epochs,
                 cpus=os.cpu_count(), positives_per_photo=float(targets["train"][..., 4].sum(axis=(1, 2, 3)).mean()),
                 **{"faces_with_anchor_over_0.7": float(np.mean(best_overlap > 0.7)),
                    "faces_with_anchor_over_0.5": float(np.mean(best_overlap >= 0.5))})
        untrained = RPNHead(LAYER.channels, len(SCALES) * len(RATIOS), np.random.default_rng(args.seed))
        bce, mse = rpn_loss(tn.Tensor(predict(untrained, features["test"])), targets["test"])
        m["untrained"] = {"bce": bce.item(), "mse": mse.item(),
                          **evaluate(untrained, features["test"], splits["test"].faces, anchors)[0]}
        steps = np.linspace(-1, 1, 21) * max(step_sizes)
        results.figure(line_search_figure(steps, loss_along_gradient(features["train"], targets["train"], steps,
                                                                     args.seed)), "loss_along_gradient")
        val = (features["val"], targets["val"])
        sweep, heads = {}, {}
        for step_size in step_sizes:
            started = time.perf_counter()
            heads[step_size], curves = train_head(features["train"], targets["train"], val, step_size, epochs,
                                                  args.seed, health=functools.partial(
                                                      results.health, run=f"step_size_{step_size:g}"))
            seconds = time.perf_counter() - started
            sweep[step_size] = {"curves": curves, "final_train_loss": curves["train_loss"][-1],
                                "final_val_loss": curves["val_loss"][-1], "train_seconds": seconds,
                                "val": evaluate(heads[step_size], features["val"], splits["val"].faces, anchors)[0]}
            print(f"step size {step_size}: train loss {curves['train_loss'][-1]:.4f}, val loss "
                  f"{curves['val_loss'][-1]:.4f}, val AP {sweep[step_size]['val']['average_precision']:.3f} "
                  f"({seconds:.0f} s)")
        step_size = max(sweep, key=lambda s: sweep[s]["val"]["average_precision"])
        test, precision, recall, found = evaluate(heads[step_size], features["test"], splits["test"].faces, anchors)
        started = time.perf_counter()
        seed_head, seed_curves = train_head(features["train"], targets["train"], val, step_size, epochs, args.seed,
                                            balanced=False)
        m["seed_loss"] = {"curves": seed_curves, "train_seconds": time.perf_counter() - started,
                          "test": evaluate(seed_head, features["test"], splits["test"].faces, anchors)[0]}
        prior_recall, prior_box = center_prior(splits["train"].faces, splits["test"].faces)
        sides = np.sqrt(splits["test"].faces[:, 2] * splits["test"].faces[:, 3])
        in_top5 = np.array([match(rects[:5], face[None]).any()
                            for (rects, _), face in zip(found, splits["test"].faces)])
        m["test_face_side_median"] = {"found_in_top5": float(np.median(sides[in_top5])) if in_top5.any() else None,
                                      "missed_by_top5": float(np.median(sides[~in_top5])) if (~in_top5).any() else None}
        m.update(step_size=step_size, test=test, sweep=sweep, center_prior_box=prior_box,
                 train_seconds=sum(r["train_seconds"] for r in sweep.values()) + m["seed_loss"]["train_seconds"],
                 **{"center_prior_recall@1": prior_recall})
        print("test: " + ", ".join(f"{key} {value:.3f}" for key, value in test.items()))
        print("test, the seed's unbalanced loss: " + ", ".join(f"{key} {value:.3f}"
                                                             for key, value in m["seed_loss"]["test"].items()))
        results.figure(sweep_figure(sweep), "step_size_sweep")
        results.figure(detections_figure(splits["test"], found, count=4 if args.quick else 12), "test_detections")
        results.figure(precision_recall_figure(precision, recall, test["average_precision"]), "precision_recall")
        results.figure(anchors_figure(splits["test"].images[0], anchors), "anchors")
        results.summary(summary(m))


if __name__ == "__main__":
    run_main(main)
