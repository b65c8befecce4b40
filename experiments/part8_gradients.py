"""Seed 000, part 8: the gradient of an actor's score with respect to the input photo.

The network is part 7's: dlib's face ResNet (frozen) followed by the trained head. For one
test photo of the actor, tinynet's backward gives d score / d image for all 150x150x3
pixels; the figure shows the photo and the positive part of that gradient. Then
tinynet.gradcheck checks it against central finite differences in float64 on a sample of
pixels (--pixels 50 random ones, or --pixels all-rows: one in every row, edges included).
Each pixel gets a verdict against the noise floor of its finite difference (what a step of
--eps can resolve, see tinynet/finite_differences.py): ok, kink, or FAIL. The table is
printed and saved; the script exits non-zero only when a pixel really disagrees.

Kinks: the photo's 8-bit pixels make flat regions whose equal activations tie in the stem's
max-pool. Moving one pixel by +-eps breaks such a tie one way or the other, so the central
difference averages two slopes where backward takes one: the checker sees the pool's winner
change and reports a kink crossing, naming the op. `--dither 0.01` adds seeded noise of
+-0.01 gray levels, invisible in the picture, that moves the photo off those ties: the kinks
disappear.

The step sweep: for three pixels, the error of the central difference for steps h from 1e-1
to 1e-10 (step_sweep.png): truncation shrinks as h² to the right, round-off grows as 1/h to
the left.

Run it with no arguments: it uses part 7's saved head when present, and otherwise trains
the head first (cached features make that a few seconds).
"""
import argparse
import sys
from pathlib import Path

import numpy as np

import facescrub
import tinynet as tn
from coursedata.cli import bounded, run_main
from experiments.common.cli import experiment_parser
from experiments.common.features import HEAD_FILE, face_network_and_head
from experiments.common.gradient_checks import check_table, relative_errors, step_sweep_figure, step_sweep_table
from experiments.common.plots import blank, plt
from experiments.common.results import Results
from tinynet.gradcheck import SWEEP_STEPS, step_sweep
from tinynet.models.face_resnet import input_from_crops

SWEEP_PIXELS = 3


def pixel_count(text):
    """--pixels: a positive number of random pixels, or 'all-rows'."""
    if text == "all-rows":
        return text
    try:
        count = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number or 'all-rows', got {text!r}") from None
    if count < 1:
        raise argparse.ArgumentTypeError(f"expected a positive number of pixels, got {count}")
    return count


def sampled_pixels(shape, how_many, rng):
    """(channel, row, column) positions of an image of shape (3, H, W) to check.

    how_many: a count of distinct random pixels, or 'all-rows' for one random pixel (random
    channel and column) in every row, so the edge rows are checked too.
    """
    channels, rows, columns = shape
    if how_many == "all-rows":
        return [(int(rng.integers(channels)), row, int(rng.integers(columns))) for row in range(rows)]
    flat = rng.choice(int(np.prod(shape)), size=min(how_many, int(np.prod(shape))), replace=False)
    return [tuple(int(i) for i in np.unravel_index(k, shape)) for k in flat]


def gradient_figure(photo, gradient, actor):
    """The photo, the positive part of the gradient combined over channels, and per channel."""
    positive = np.maximum(gradient, 0)
    fig, axes = plt.subplots(1, 5, figsize=(17, 3.6))
    axes[0].imshow(photo)
    axes[0].set_title(f"input: {actor}")
    combined = positive.transpose(1, 2, 0)
    axes[1].imshow(combined / max(combined.max(), 1e-12))
    axes[1].set_title("positive gradient (RGB)")
    for c, (ax, color) in enumerate(zip(axes[2:], ["Reds", "Greens", "Blues"])):
        shown = ax.imshow(positive[c], cmap=color)
        ax.set_title(f"positive gradient, {'RGB'[c]} channel")
        fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.04)
    for ax in axes:
        blank(ax)
    fig.tight_layout()
    return fig


def actor_score(network, head, actor_index):
    """image (1, 3, 150, 150) Tensor -> the actor's pre-softmax score, a scalar Tensor."""
    return lambda image: head(network(image))[0, actor_index]


def check_pixels(score, image, pixels, eps, swept=SWEEP_PIXELS):
    """gradcheck of d score / d image at the pixels, and the step sweep at `swept` of them.

    Returns (the InputReport, the sweep's pixels, (analytic, numeric, roundoff) of the sweep).
    """
    (report,) = tn.gradcheck(score, [image], eps=eps, elements=[(0, *p) for p in pixels], raise_on_failure=False)
    largest = [e.index for e in sorted(report.elements, key=lambda e: -abs(e.analytic))[:swept]]
    return report, [index[1:] for index in largest], step_sweep(score, [image], largest)


def findings(report, eps, dither):
    """The check's numbers for metrics.json."""
    judged = [e for e in report.elements if e.verdict != "kink"]
    return {"pixels_checked": len(report.elements), "failures": len(report.failures), "kinks": len(report.kinks),
            "passed": report.passed, "eps": eps, "dither": dither,
            "max_error_over_tolerance": max((e.excess() for e in judged), default=0.0),
            "max_relative_error_above_noise_floor": max(
                (e.error / abs(e.numeric) for e in judged if abs(e.numeric) > e.noise_floor), default=0.0),
            "kink_pixels": [{"pixel": e.index[1:], "ops": e.crossed_kinks} for e in report.kinks],
            "failed_pixels": [e.index[1:] for e in report.failures]}


def sweep_figure(sweep_pixels, sweep):
    labels = [f"pixel {p}" for p in sweep_pixels]
    return step_sweep_figure(SWEEP_STEPS, *sweep, labels, "d score / d pixel: central difference vs backward")


def summary(metrics, table, sweep_table):
    m = metrics
    verdict = ("every checked pixel agrees with its finite difference within the noise floor"
               if m["passed"] else f"{m['failures']} pixels DISAGREE beyond the noise floor")
    kinks = (f"{m['kinks']} pixels crossed a kink (their step changed a max-pool or ReLU winner); they are listed, "
             "not judged." if m["kinks"] else "No pixel crossed a kink.")
    dithered = f"photo dithered by +-{m['dither']:g} gray levels" if m["dither"] else "photo as it is (no dither)"
    return f"""# Part 8: input gradient of {m['actor']}'s score

Model: {m['model']}.

The gradient of the pre-softmax score for {m['actor']} with respect to the 150x150x3 input was computed
by tinynet's backward pass; its positive part is shown in `gradient.png`.

## Finite-difference check

tinynet.gradcheck, float64, step {m['eps']:g} in 0..255 units, {m['pixels_checked']} pixels, {dithered}:
{verdict}. {kinks} The largest error is {m['max_error_over_tolerance']:.2f}
of its tolerance (noise floor + 1e-3 x |finite difference|); where the gradient is above the noise
floor, the largest relative error is {m['max_relative_error_above_noise_floor']:.1e}.

{table}

## Step size

The relative error of the central difference against the step h for the checked pixels with the
largest gradient (`step_sweep.png`): large steps suffer truncation (falls as h²), small steps
round-off (grows as 1/h).

{sweep_table}
"""


def main(argv=None):
    parser = experiment_parser("part8_gradients", __doc__)
    parser.add_argument("--actor", default="Gerard Butler", choices=facescrub.ACTORS)
    parser.add_argument("--pixels", type=pixel_count,
                        help="pixels checked by finite differences: a number (default 50, 6 with --quick) or all-rows")
    parser.add_argument("--eps", type=bounded(float, high=1, above=0), default=1e-3,
                        help="finite-difference step, in 0..255 pixel units")
    parser.add_argument("--head", type=Path, default=HEAD_FILE, help="part 7's saved head")
    parser.add_argument("--dither", type=bounded(float, 0), default=0.0,
                        help="uniform noise amplitude in 0..255 units that moves the photo off max-pool ties")
    args = parser.parse_args(argv)
    pixels_to_check = args.pixels or (6 if args.quick else 50)
    with Results(args.out, args) as results:
        network, dataset, head, head_source = face_network_and_head(args)
        actor_index = dataset.actors.index(args.actor)
        photo = dataset.test.x[np.flatnonzero(dataset.test.y == actor_index)[0]]
        print(f"model: dlib face ResNet (pretrained, ../shared/data/pretrained) + {head_source}")

        network.model.to(np.float64)
        head.to(np.float64)
        score = actor_score(network, head, actor_index)
        rng = np.random.default_rng(args.seed)
        photo_pixels = input_from_crops(photo[None]).astype(np.float64)
        image = tn.Tensor(photo_pixels + rng.uniform(-args.dither, args.dither, photo_pixels.shape), requires_grad=True)
        results.memory_report(f"The graph of {args.actor}'s score (float64), whose input gradient is shown",
                              score, image)
        score(image).backward()
        gradient = image.grad[0]
        results.figure(gradient_figure(photo, gradient, args.actor), "gradient")

        pixels = sampled_pixels(gradient.shape, pixels_to_check, rng)
        report, sweep_pixels, sweep = check_pixels(score, image, pixels, args.eps, 1 if args.quick else SWEEP_PIXELS)
        table = check_table(report, "pixel (n, c, y, x)")
        sweep_table = step_sweep_table(SWEEP_STEPS, sweep[0], sweep[1], [f"pixel {p}" for p in sweep_pixels])
        print(report)
        results.figure(sweep_figure(sweep_pixels, sweep), "step_sweep")
        results.metrics.update(model=f"face_resnet + {head_source}", actor=args.actor,
                               gradient_abs_max=float(np.abs(gradient).max()))
        results.metrics.update(findings(report, args.eps, args.dither))
        results.metrics["step_sweep"] = {"steps": SWEEP_STEPS, "pixels": sweep_pixels,
                                         "relative_errors": relative_errors(sweep[0], sweep[1]).tolist()}
        results.summary(summary(results.metrics, table, sweep_table))
    if not report.passed:
        sys.exit(f"gradient check failed: {len(report.failures)} of {len(report.elements)} pixels disagree with "
                 f"their finite difference beyond the noise floor (see {args.out / 'summary.md'})")


if __name__ == "__main__":
    run_main(main)
