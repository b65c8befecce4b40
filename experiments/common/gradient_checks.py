"""How the experiments show tinynet.gradcheck's results: markdown tables and the step-size "V" figure."""
import numpy as np

from experiments.common.plots import plt


def check_table(report, label="element") -> str:
    """Markdown table of a gradcheck InputReport, in its ranked() order."""
    lines = [f"| {label} | backward | finite difference | noise floor | abs error | verdict |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {e.index} | {e.analytic:.6e} | {e.numeric:.6e} | {e.noise_floor:.1e} | {e.error:.1e} | {e.label} |"
              for e in report.ranked()]
    return "\n".join(lines)


def relative_errors(analytic, numeric):
    """|numeric - analytic| / |analytic| for a step sweep: numeric (steps, k), analytic (k,) -> (steps, k)."""
    return np.abs(numeric - analytic) / np.maximum(np.abs(analytic), np.finfo(np.float64).tiny)


def step_sweep_table(steps, analytic, numeric, labels) -> str:
    """Markdown table: one row per step h, the relative error of the central difference for each element."""
    errors = relative_errors(analytic, numeric)
    lines = ["| step h | " + " | ".join(labels) + " |", "|---|" + "---|" * len(labels)]
    lines += [f"| {h:.0e} | " + " | ".join(f"{e:.1e}" for e in row) + " |" for h, row in zip(steps, errors)]
    return "\n".join(lines)


def step_sweep_figure(steps, analytic, numeric, roundoff, labels, title):
    """Relative error of the central difference against the step h, log-log: truncation falls as h²
    to the right, round-off rises as 1/h to the left (dashed: the checker's round-off estimate)."""
    errors = relative_errors(analytic, numeric)
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for k, label in enumerate(labels):
        line, = ax.loglog(steps, np.maximum(errors[:, k], 1e-17), "o-", label=label)
        ax.loglog(steps, roundoff[:, k] / max(abs(analytic[k]), np.finfo(np.float64).tiny), "--",
                  color=line.get_color(), alpha=0.5)
    ax.set(xlabel="step h", ylabel="|finite difference - backward| / |backward|", title=title)
    ax.invert_xaxis()
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, title="solid: measured; dashed: round-off estimate", title_fontsize=8)
    fig.tight_layout()
    return fig
