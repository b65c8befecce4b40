"""Figures the experiments share: learning curves and grids of images."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import numpy as np  # noqa: E402


def learning_curves(curves, title):
    """Accuracy and loss against step for every split in curves (see training.train)."""
    fig, (ax_acc, ax_loss) = plt.subplots(1, 2, figsize=(11, 4))
    splits = [key[:-len("_accuracy")] for key in curves if key.endswith("_accuracy")]
    for split in splits:
        ax_acc.plot(curves["step"], curves[f"{split}_accuracy"], label=split)
        ax_loss.plot(curves["step"], curves[f"{split}_loss"], label=split)
    ax_acc.set(xlabel="iteration", ylabel="accuracy", title=f"{title}: accuracy")
    ax_loss.set(xlabel="iteration", ylabel="loss", title=f"{title}: loss")
    for ax in (ax_acc, ax_loss):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    return fig


def blank(ax):
    """Turn ax's axis off, ticks included: tight_layout (and a tight bounding box) computes the ticks of every axes,
    drawn or not: the same PNG in about half the time (a 6 x 10 image grid with savefig 2.0 -> 1.1 CPU-s; issue 30)."""
    ax.axis("off")
    ax.set(xticks=[], yticks=[])


def image_grid(images, rows, cols, titles=None, cmap="gray", colorbar=False, suptitle=None, symmetric=False):
    """Show images (K, H, W) or (K, H, W, 3) in a rows x cols grid; optional titles and colorbars.

    symmetric: a diverging color scale centred on zero for each image (for weights).
    """
    fig, axes = plt.subplots(rows, cols, figsize=(1.6 * cols + (0.6 * cols if colorbar else 0), 1.7 * rows),
                             squeeze=False)
    for k, ax in enumerate(axes.flat):
        blank(ax)
        if k >= len(images):
            continue
        image = images[k]
        limits = {}
        if symmetric:
            bound = float(np.abs(image).max()) or 1.0
            limits = {"vmin": -bound, "vmax": bound}
        shown = ax.imshow(image, cmap=None if image.ndim == 3 else cmap, **limits)
        if titles is not None:
            ax.set_title(titles[k], fontsize=8)
        if colorbar:
            fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.04)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig
