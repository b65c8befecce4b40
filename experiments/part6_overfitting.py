"""Seed 000, part 6: more hidden units and no regularization, until the network overfits,
and the hidden units that show it.

Networks: Linear(1024, H) -> ReLU -> Linear(H, 6) for growing H, L2 = 0, Adam, on 32x32 gray
crops in [0, 1] minus the training mean image, trained well past the point where the
training set is fit. Overfitting shows as the gap between training and validation accuracy
and as a validation loss that rises again. A unit that memorized one training photo has
incoming weights that look like that photo: for every unit of the largest network we find
the training image that activates it most and the correlation between the two.
"""
from dataclasses import asdict, replace

import numpy as np

from coursedata.cli import run_main
from experiments.common.cli import experiment_parser
from experiments.common.faces import Setting, as_images, final_accuracies, fit, gray_inputs, make_mlp
from experiments.common.plots import blank, plt
from experiments.common.results import Results
from experiments.common.training import predict

HIDDEN_SIZES = (30, 300, 1200)
BASE = Setting(hidden=HIDDEN_SIZES[0], lr=1e-3, l2=0.0, steps=1500)
SHOWN_UNITS = 6
SIZE = 32
VAL_LOSS_RISE = 1.2  # a final validation loss this many times its lowest is called rising
MEMORIZING_CORRELATION = 0.5  # a unit whose change correlates above this with one photo copies it
CHANCE_MARGIN = 0.05  # trained weights must beat the untrained ones' median correlation by this


def overfitting_figure(all_curves):
    """Train (dashed) and validation (solid) accuracy and loss against step, one color per size."""
    fig, (ax_acc, ax_loss) = plt.subplots(1, 2, figsize=(12, 4.2))
    for (hidden, curves), color in zip(all_curves.items(), plt.cm.viridis(np.linspace(0, 0.85, len(all_curves)))):
        for split, style in (("train", "--"), ("val", "-")):
            ax_acc.plot(curves["step"], curves[f"{split}_accuracy"], style, color=color, label=f"H={hidden} {split}")
            ax_loss.plot(curves["step"], curves[f"{split}_loss"], style, color=color, label=f"H={hidden} {split}")
    ax_acc.set(xlabel="iteration", ylabel="accuracy", title="train (dashed) vs validation (solid) accuracy")
    ax_loss.set(xlabel="iteration", ylabel="cross-entropy", yscale="log", title="train vs validation loss")
    for ax in (ax_acc, ax_loss):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return fig


def most_activating(layer, x_train):
    """Index (H,) of the training image (rows of x_train (N, D)) that drives each unit of a
    Linear layer highest."""
    return np.argmax(predict(layer, x_train), axis=0)


def row_correlations(weights, images):
    """Pearson correlation of each row of weights (H, D) with the same row of images (H, D): (H,)."""
    weights = weights - weights.mean(axis=1, keepdims=True)
    images = images - images.mean(axis=1, keepdims=True)
    return np.sum(weights * images, axis=1) / (np.linalg.norm(weights, axis=1) * np.linalg.norm(images, axis=1) + 1e-12)


def memorization(model, untrained, x_train):
    """How much each hidden unit of the trained model copies its most-activating training image.

    untrained: the same network before training (same seed). Returns the image index (H,)
    and the correlations (H,) of that image with the unit's weights, with what training
    changed in them (weights minus initial weights), and, as a baseline, of the untrained
    network's units with their own most-activating images.
    """
    trained, initial = model.layers[0].weight.data, untrained.layers[0].weight.data
    best = most_activating(model.layers[0], x_train)
    return best, {"weights": row_correlations(trained, x_train[best]),
                  "change": row_correlations(trained - initial, x_train[best]),
                  "untrained": row_correlations(initial, x_train[most_activating(untrained.layers[0], x_train)])}


def units_figure(model, untrained, x_train, best, correlation, actors, labels, count):
    """The `count` units whose learned change correlates most with their most-activating
    training image: the change, the weights, and the image, top to bottom."""
    units = np.argsort(-correlation["change"])[:count]
    trained, initial = model.layers[0].weight.data[units], untrained.layers[0].weight.data[units]
    rows = [(as_images(trained - initial, SIZE), "coolwarm", lambda u: f"unit {u}: change\nr = "
             f"{correlation['change'][u]:.2f}"),
            (as_images(trained, SIZE), "coolwarm", lambda u: f"unit {u}: weights\nr = {correlation['weights'][u]:.2f}"),
            (as_images(x_train[best[units]], SIZE), "gray",
             lambda u: f"train image {best[u]}\n{actors[labels[best[u]]]}")]
    fig, axes = plt.subplots(len(rows), count, figsize=(2.3 * count, 2.4 * len(rows)), squeeze=False)
    for row, (images, cmap, title) in enumerate(rows):
        for column, unit in enumerate(units):
            bound = np.abs(images[column]).max() if cmap == "coolwarm" else None
            shown = axes[row, column].imshow(images[column], cmap=cmap, vmin=-bound if bound else None, vmax=bound)
            fig.colorbar(shown, ax=axes[row, column], fraction=0.046, pad=0.04)
            axes[row, column].set_title(title(unit), fontsize=8)
            blank(axes[row, column])
    fig.suptitle("units that copy their most-activating training image: what training changed in the incoming "
                 "weights, the weights, and the image (minus the mean face)")
    fig.tight_layout()
    return fig


def findings(metrics):
    """What the summary concludes about the largest network, each a named value."""
    largest, memo = metrics["sizes"][-1], metrics["memorization"]
    return {
        "val_loss_rises": largest["val_loss_final"] > VAL_LOSS_RISE * largest["val_loss_min"],
        "units_memorize": memo["change_max"] > MEMORIZING_CORRELATION
        and memo["weights_median"] > memo["untrained_median"] + CHANCE_MARGIN,
    }


def summary(metrics):
    rows = "\n".join(f"| {r['hidden']} | {r['train_accuracy']:.3f} | {r['val_accuracy']:.3f} | "
                     f"{r['test_accuracy']:.3f} | {r['gap']:.3f} | {r['val_loss_min']:.3f} | "
                     f"{r['val_loss_final']:.3f} |" for r in metrics["sizes"])
    largest, memo = metrics["sizes"][-1], metrics["memorization"]
    found = findings(metrics)
    lowest, final = largest["val_loss_min"], largest["val_loss_final"]
    loss = (f"Its validation loss falls to {lowest:.3f} and then rises to {final:.3f} while the training loss keeps "
            "falling (`overfitting.png`): past that point the network grows more confident on the training faces and "
            "more wrongly confident on new ones." if found["val_loss_rises"] else
            f"Its validation loss ends at {final:.3f}, near its lowest value {lowest:.3f}: the gap shows overfitting "
            "in accuracy more than in loss.")
    units = ("Units like these have become templates of single training photos: with far more units than the six "
             "actors need, gradient descent dedicates units to individual faces, which fits the training set "
             "(including what is peculiar to that one photo: lighting, pose, background) without describing the "
             "actor." if found["units_memorize"] else
             "Training did not make the units much more like single photos than chance: the overfitting here is "
             "spread over many units rather than concentrated in units that copy one face.")
    return f"""# Part 6: overfitting with many hidden units and no regularization

{metrics['steps']} Adam steps (lr {metrics['lr']:g}, batch {metrics['batch_size']}), L2 = 0, 32x32 gray.

| hidden units | train | validation | test | train - val gap | lowest val loss | final val loss |
|---|---|---|---|---|---|---|
{rows}

With {largest['hidden']} hidden units and no regularization the network reaches
{largest['train_accuracy']:.1%} training but {largest['val_accuracy']:.1%} validation accuracy, a gap of
{largest['gap']:.1%}. {loss}

To find units where this is visible, we took for each of its units the training image that
drives it highest and correlated that image (as fed to the network, minus the mean face) with the
unit's incoming weights, and with what training changed in them (weights minus their random
initial values, which otherwise hide what was learned). The change correlates with the image by
{memo['change_median']:.2f} at the median and up to {memo['change_max']:.2f}; {memo['units_change_above_0.5']} of
{memo['hidden']} units exceed {MEMORIZING_CORRELATION}. The full weights correlate by {memo['weights_median']:.2f} at
the median (up to {memo['weights_max']:.2f}) against {memo['untrained_median']:.2f} (up to
{memo['untrained_max']:.2f}) for the same network before training (`memorizing_units.png`). {units}
"""


def main(argv=None):
    parser = experiment_parser("part6_overfitting", __doc__)
    args = parser.parse_args(argv)
    base, dataset, splits = gray_inputs(args, BASE, SIZE)
    classes = len(dataset.actors)
    with Results(args.out, args, base=asdict(base), hidden_sizes=HIDDEN_SIZES) as results:
        all_curves, rows = {}, []
        for hidden in HIDDEN_SIZES:
            model, all_curves[hidden] = fit(splits, classes, replace(base, hidden=hidden), args.seed,
                                            health=results.health if hidden == HIDDEN_SIZES[-1] else None)
            curves = all_curves[hidden]
            row = {"hidden": hidden, **final_accuracies(curves), "val_loss_min": min(curves["val_loss"]),
                   "val_loss_final": curves["val_loss"][-1]}
            row["gap"] = row["train_accuracy"] - row["val_accuracy"]
            rows.append(row)
            print(f"H={hidden}: train {row['train_accuracy']:.3f}, val {row['val_accuracy']:.3f}, gap {row['gap']:.3f}")
        results.figure(overfitting_figure(all_curves), "overfitting")
        x_train = splits["train"][0]
        untrained = make_mlp(x_train.shape[1], HIDDEN_SIZES[-1], classes, np.random.default_rng(args.seed),
                             base.activation)
        best, correlation = memorization(model, untrained, x_train)
        results.figure(units_figure(model, untrained, x_train, best, correlation, dataset.actors, dataset.train.y,
                                    SHOWN_UNITS), "memorizing_units")
        memo = {"hidden": HIDDEN_SIZES[-1],
                "units_change_above_0.5": int(np.sum(correlation["change"] > MEMORIZING_CORRELATION))}
        for name, values in correlation.items():
            memo.update({f"{name}_median": float(np.median(values)), f"{name}_max": float(values.max())})
        results.metrics.update(sizes=rows, steps=base.steps, lr=base.lr, batch_size=base.batch_size,
                               test_accuracy=rows[-1]["test_accuracy"], memorization=memo)
        results.summary(summary(results.metrics))


if __name__ == "__main__":
    run_main(main)
