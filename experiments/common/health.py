"""The training-health panel: what a tn.monitor recorded while an experiment trained, in one figure.

Four views (see tinynet/monitor.py for why each matters): the first loss against ln(classes); the
activation statistics of each layer over training; each weight's gradient histogram at the first,
middle and last recorded step; each weight's update-to-data ratio over training against the 1e-3
guide line. Biases are in the metrics but not drawn: many start at zero, where the ratio has no scale.
"""
import numpy as np
from matplotlib.ticker import MaxNLocator

from experiments.common.plots import plt

GUIDE_RATIO = 1e-3  # Karpathy's rule of thumb for std(update) / std(parameter)


def weight_names(health):
    """The parameters of the panel: those with two or more dimensions (weights, filters), in model order."""
    return [name for name, shape in health["shapes"].items() if len(shape) >= 2]


def as_numbers(values):
    """A list with None (not recorded) as NaN, which matplotlib leaves as a gap."""
    return np.array([np.nan if v is None else v for v in values], dtype=float)


def initial_loss_view(ax, health):
    """Bars: the first training loss and ln(classes), the loss of a classifier that starts out unbiased."""
    if health["initial_loss"] is None:
        ax.text(0.5, 0.5, "no initial loss recorded:\nln(classes) is a check of a classifier's cross-entropy",
                ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return
    values = [health["initial_loss"], health["expected_initial_loss"]]
    ax.bar(["first loss", f"ln {health['classes']}"], values, color=["tab:blue", "tab:gray"])
    for k, value in enumerate(values):
        ax.annotate(f"{value:.3g}", (k, value), ha="center", va="bottom")
    ax.set(ylabel="loss", title="initial loss vs ln(classes)")


def activation_view(ax, health):
    """Per activation layer over the recorded steps: % saturated (tanh, sigmoid), % dead units and,
    dotted, % zero outputs (ReLU)."""
    if not health["activations"]:
        ax.text(0.5, 0.5, "no nn.Tanh, nn.Sigmoid or nn.ReLU modules\n(functional calls such as F.relu are not "
                "watched)", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return
    for k, (layer, statistics) in enumerate(health["activations"].items()):
        for statistic, values in statistics.items():
            ax.plot(health["steps"], 100 * as_numbers(values), ":" if statistic == "zero" else "-", color=f"C{k}",
                    marker=".", label=f"{layer}: {statistic}")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set(xlabel="step", ylabel="% of the layer", ylim=(-3, 103),
           title="activations: saturated |t| > 0.97 / dead ReLU units / zero outputs")
    ax.legend(fontsize=7, loc="upper right")
    ax.grid(alpha=0.3)


def gradient_views(fig, cell, health):
    """One small axes per weight in the grid cell: its gradient histogram at the first, middle and last
    recorded step, as the fraction of its values per bin."""
    names = weight_names(health)
    axes = cell.subgridspec(1, max(len(names), 1), wspace=0.35).subplots(squeeze=False)[0]
    for ax, name in zip(axes, names):
        histograms = health["gradient_histograms"][name]
        recorded = len(histograms["steps"])
        shown = sorted({0, recorded // 2, recorded - 1}) if recorded else []
        for k, index in enumerate(shown):
            counts, bound = np.array(histograms["counts"][index]), histograms["bounds"][index]
            ax.stairs(counts / counts.sum(), np.linspace(-bound, bound, len(counts) + 1), color=f"C{k}",
                      label=f"step {histograms['steps'][index]}")
        ax.set_title(f"{name} gradient", fontsize=8)
        ax.tick_params(labelsize=6)
        ax.ticklabel_format(axis="x", style="sci", scilimits=(-2, 2))
        if shown:
            ax.legend(fontsize=6, loc="upper right")
    axes[0].set_ylabel("fraction of values")


def update_ratio_view(ax, health):
    """std(update) / std(weight) of each weight over the recorded steps, log scale, with the 1e-3 guide."""
    for name in weight_names(health):
        ax.plot(health["steps"], as_numbers(health["update_ratios"][name]), marker=".", label=name)
    ax.axhline(GUIDE_RATIO, color="black", linestyle="--", linewidth=1, label="1e-3 guide")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set(xlabel="step", ylabel="std(update) / std(weight)", yscale="log", title="update-to-data ratio")
    ax.legend(fontsize=7, loc="upper right")
    ax.grid(alpha=0.3)


def health_panel(health, title):
    """The four views of a monitor's record `health` (Monitor.to_json()) in one figure headed by title."""
    fig = plt.figure(figsize=(13, 8.5), layout="constrained")
    grid = fig.add_gridspec(2, 2, width_ratios=(1, 2))
    initial_loss_view(fig.add_subplot(grid[0, 0]), health)
    activation_view(fig.add_subplot(grid[0, 1]), health)
    update_ratio_view(fig.add_subplot(grid[1, 0]), health)
    gradient_views(fig, grid[1, 1], health)
    fig.suptitle(f"{title}: training health (recorded every {health['every']} steps)")
    return fig
