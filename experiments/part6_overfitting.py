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

from experiments.common.cli import experiment_parser
from experiments.common.faces import Setting, as_images, final_accuracies, fit, gray_inputs, make_mlp
from experiments.common.plots import plt
from experiments.common.results import Results
from experiments.common.training import predict

HIDDEN_SIZES = (30, 300, 1200)
BASE = Setting(hidden=HIDDEN_SIZES[0], lr=1e-3, l2=0.0, steps=1500)
SHOWN_UNITS = 6
SIZE = 32


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


def memorization(model, x_train):
    """For each hidden unit: the training image that activates it most (N,) and the Pearson
    correlation between the unit's incoming weights and that (centered) image (H,)."""
    first = model.layers[0]
    activations = predict(first, x_train)
    best = np.argmax(activations, axis=0)
    weights = first.weight.data
    correlation = np.array([np.corrcoef(weights[j], x_train[best[j]])[0, 1] for j in range(len(weights))])
    return best, correlation


def units_figure(model, x_train, best, correlation, actors, labels, count):
    """The `count` units most correlated with their most-activating training image, each above that image."""
    units = np.argsort(-correlation)[:count]
    fig, axes = plt.subplots(2, count, figsize=(2.3 * count, 4.8), squeeze=False)
    weights = as_images(model.layers[0].weight.data[units], SIZE)
    images = as_images(x_train[best[units]], SIZE)
    for column, unit in enumerate(units):
        bound = np.abs(weights[column]).max()
        shown = axes[0, column].imshow(weights[column], cmap="coolwarm", vmin=-bound, vmax=bound)
        fig.colorbar(shown, ax=axes[0, column], fraction=0.046, pad=0.04)
        axes[0, column].set_title(f"unit {unit}\nr = {correlation[unit]:.2f}", fontsize=8)
        shown = axes[1, column].imshow(images[column], cmap="gray")
        fig.colorbar(shown, ax=axes[1, column], fraction=0.046, pad=0.04)
        axes[1, column].set_title(f"train image {best[unit]}\n{actors[labels[best[unit]]]}", fontsize=8)
    for ax in axes.flat:
        ax.axis("off")
    fig.suptitle("units most like their most-activating training image (top: incoming weights; bottom: the image "
                 "minus the mean face)")
    fig.tight_layout()
    return fig


def summary(metrics):
    rows = "\n".join(f"| {r['hidden']} | {r['train_accuracy']:.3f} | {r['val_accuracy']:.3f} | {r['test_accuracy']:.3f} "
                     f"| {r['gap']:.3f} | {r['val_loss_min']:.3f} | {r['val_loss_final']:.3f} |"
                     for r in metrics["sizes"])
    largest, memo = metrics["sizes"][-1], metrics["memorization"]
    rising = largest["val_loss_final"] > 1.2 * largest["val_loss_min"]
    memorizes = memo["trained_median"] > memo["untrained_median"] + 0.05
    return f"""# Part 6: overfitting with many hidden units and no regularization

{metrics['steps']} Adam steps (lr {metrics['lr']:g}, batch {metrics['batch_size']}), L2 = 0, 32x32 gray.

| hidden units | train | validation | test | train - val gap | lowest val loss | final val loss |
|---|---|---|---|---|---|---|
{rows}

With {largest['hidden']} hidden units and no regularization the network reaches
{largest['train_accuracy']:.1%} training but {largest['val_accuracy']:.1%} validation accuracy, a gap of
{largest['gap']:.1%}. {'Its validation loss falls to ' + format(largest['val_loss_min'], '.3f') + ' and then rises to ' + format(largest['val_loss_final'], '.3f') + ' while the training loss keeps falling (`overfitting.png`): past that point the network grows more confident on the training faces and more wrongly confident on new ones.' if rising else 'Its validation loss ends at ' + format(largest['val_loss_final'], '.3f') + ', near its lowest value ' + format(largest['val_loss_min'], '.3f') + ': the gap shows overfitting in accuracy more than in loss.'}

To find units where this is visible, we took for each of its units the training image that
activates it most and correlated the unit's incoming weights with that image (as fed to the
network, minus the mean face). The median correlation is {memo['trained_median']:.2f} after training against
{memo['untrained_median']:.2f} for the same network before training, and the highest is {memo['trained_max']:.2f}
(`memorizing_units.png`). {'Some units have become templates of single training photos: with far more units than needed, gradient descent can dedicate units to individual faces, which fits the training set without describing the actor.' if memorizes else 'Training did not make the units much more like single photos than chance: the overfitting here is spread over many units rather than concentrated in units that copy one face.'}
"""


def main(argv=None):
    parser = experiment_parser("part6_overfitting", __doc__)
    args = parser.parse_args(argv)
    base, dataset, splits = gray_inputs(args, BASE, SIZE)
    classes = len(dataset.actors)
    with Results(args.out, args, base=asdict(base), hidden_sizes=HIDDEN_SIZES) as results:
        all_curves, rows = {}, []
        for hidden in HIDDEN_SIZES:
            model, all_curves[hidden] = fit(splits, classes, replace(base, hidden=hidden), args.seed)
            curves = all_curves[hidden]
            row = {"hidden": hidden, **final_accuracies(curves), "val_loss_min": min(curves["val_loss"]),
                   "val_loss_final": curves["val_loss"][-1]}
            row["gap"] = row["train_accuracy"] - row["val_accuracy"]
            rows.append(row)
            print(f"H={hidden}: train {row['train_accuracy']:.3f}, val {row['val_accuracy']:.3f}, gap {row['gap']:.3f}")
        results.figure(overfitting_figure(all_curves), "overfitting")
        x_train = splits["train"][0]
        best, correlation = memorization(model, x_train)
        untrained = make_mlp(x_train.shape[1], HIDDEN_SIZES[-1], classes, np.random.default_rng(args.seed))
        _, untrained_correlation = memorization(untrained, x_train)
        results.figure(units_figure(model, x_train, best, correlation, dataset.actors, dataset.train.y, SHOWN_UNITS),
                       "memorizing_units")
        results.metrics.update(
            sizes=rows, steps=base.steps, lr=base.lr, batch_size=base.batch_size,
            test_accuracy=rows[-1]["test_accuracy"],
            memorization={"hidden": HIDDEN_SIZES[-1], "trained_median": float(np.median(correlation)),
                          "trained_max": float(correlation.max()),
                          "untrained_median": float(np.median(untrained_correlation)),
                          "untrained_max": float(untrained_correlation.max()),
                          "units_above_0.5": int(np.sum(correlation > 0.5))})
        results.summary(summary(results.metrics))


if __name__ == "__main__":
    main()
