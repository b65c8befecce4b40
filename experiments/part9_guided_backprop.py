"""Seed 000, part 9: what do the hidden units of part 7's head respond to in a photo?

For each actor, the head's hidden units with the largest outgoing weight to that actor's
output are the units that vote most for the actor. For one test photo of the actor, the
figure shows, per unit, the plain gradient of the unit's activation with respect to the
input, and the guided-backpropagation gradient (Springenberg et al. 2015): the same
backward pass with every ReLU in the face ResNet and the head passing only positive
gradients through positive activations (tinynet.guided_backprop()).
"""
import contextlib
from pathlib import Path

import numpy as np

import tinynet as tn
from coursedata.cli import run_main
from experiments.common.cli import experiment_parser
from experiments.common.features import HEAD_FILE, face_network_and_head
from experiments.common.plots import blank, plt
from experiments.common.results import Results
from tinynet import functional as F
from tinynet.models.face_resnet import input_from_crops

UNITS_PER_ACTOR = 3


def hidden_activation(network, head, unit):
    """image (1, 3, 150, 150) Tensor -> the head's hidden unit `unit` after ReLU (a scalar Tensor)."""
    first_layer = head.layers[0]
    return lambda image: F.relu(first_layer(network(image)))[0, unit]


def input_gradient(activation, photo, guided):
    """d activation / d image (3, 150, 150) for photo (150, 150, 3) in [0, 1], plain or guided.

    Guided: the forward runs inside tn.guided_backprop(), which hooks every ReLU it computes.
    """
    image = tn.Tensor(input_from_crops(photo[None]), requires_grad=True)
    with tn.guided_backprop() if guided else contextlib.nullcontext():
        value = activation(image)
    value.backward()
    return image.grad[0], value.item()


def as_picture(gradient):
    """A gradient (3, H, W) as an RGB picture (H, W, 3): centred on gray, scaled to the largest value."""
    scale = max(np.abs(gradient).max(), 1e-12)
    return np.clip(0.5 + 0.5 * gradient.transpose(1, 2, 0) / scale, 0, 1)


def actor_figure(actor, photo, rows):
    """Photo, then per unit: plain gradient and guided gradient. rows: (unit, weight, activation, plain, guided)."""
    fig, axes = plt.subplots(len(rows), 3, figsize=(9, 3 * len(rows)), squeeze=False)
    for (unit, weight, activation, plain, guided), ax_row in zip(rows, axes):
        ax_row[0].imshow(photo)
        ax_row[0].set_title(f"{actor}\nunit {unit}: out-weight {weight:+.2f}, act {activation:.2f}", fontsize=9)
        ax_row[1].imshow(as_picture(plain))
        ax_row[1].set_title("plain gradient", fontsize=9)
        ax_row[2].imshow(as_picture(np.maximum(guided, 0)))
        ax_row[2].set_title("guided backprop (positive)", fontsize=9)
        for ax in ax_row:
            blank(ax)
    fig.tight_layout()
    return fig


def sparsity(gradient):
    """Fraction of input pixels whose gradient is exactly zero."""
    return float(np.mean(gradient == 0))


def main(argv=None):
    parser = experiment_parser("part9_guided_backprop", __doc__)
    parser.add_argument("--head", default=HEAD_FILE, type=Path, help="part 7's saved head")
    args = parser.parse_args(argv)
    with Results(args.out, args, units_per_actor=UNITS_PER_ACTOR) as results:
        network, dataset, head, head_source = face_network_and_head(args)
        outgoing = head.layers[2].weight.data  # (actors, hidden)
        actors = dataset.actors[:2] if args.quick else dataset.actors
        results.metrics.update(model=f"face_resnet + {head_source}", actors={})
        for actor in actors:
            index = dataset.actors.index(actor)
            photo = dataset.test.x[np.flatnonzero(dataset.test.y == index)[0]]
            units = np.argsort(-outgoing[index])[:1 if args.quick else UNITS_PER_ACTOR]
            rows = []
            for unit in units:
                activation = hidden_activation(network, head, int(unit))
                plain, value = input_gradient(activation, photo, guided=False)
                guided, _ = input_gradient(activation, photo, guided=True)
                rows.append((int(unit), float(outgoing[index, unit]), value, plain, guided))
            results.figure(actor_figure(actor, photo, rows), f"guided_{actor.replace(' ', '_')}")
            results.metrics["actors"][actor] = [
                {"unit": unit, "outgoing_weight": weight, "activation": value,
                 "zero_fraction_plain": sparsity(plain), "zero_fraction_guided": sparsity(guided)}
                for unit, weight, value, plain, guided in rows]
        results.summary(summary(results.metrics))


def summary(metrics):
    rows = [row for actor_rows in metrics["actors"].values() for row in actor_rows]
    plain = np.mean([row["zero_fraction_plain"] for row in rows])
    guided = np.mean([row["zero_fraction_guided"] for row in rows])
    lines = ["# Part 9: guided backpropagation of the head's hidden units", "", f"Model: {metrics['model']}.", "",
             "| actor | unit | outgoing weight | activation | zero gradient (plain) | zero gradient (guided) |",
             "|---|---|---|---|---|---|"]
    for actor, actor_rows in metrics["actors"].items():
        lines += [f"| {actor} | {r['unit']} | {r['outgoing_weight']:+.3f} | {r['activation']:.3f} | "
                  f"{r['zero_fraction_plain']:.1%} | {r['zero_fraction_guided']:.1%} |" for r in actor_rows]
    lines += ["", "Each actor's units are those with the largest weights from the hidden layer to that actor's "
              "output: they add the most to the actor's score when they fire.", "",
              f"Guided backpropagation zeroes on average {guided:.1%} of the input gradient against {plain:.1%} "
              "for the plain gradient, because every ReLU also blocks negative incoming gradients. What is left "
              "marks the pixels whose increase raises the unit's activation through positive evidence only; "
              "compare the two columns of each figure to see which facial regions those are."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    run_main(main)
