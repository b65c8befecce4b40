"""Seed 000, part 1: the MNIST digits, and the course's handout digit network rebuilt with tinynet.

The handout network: 784 -> 300 tanh -> 10 softmax, started from the weights in
snapshot50.pkl (W0, b0, W1, b1), inputs scaled to [0, 1]. Each of its 5000 Adam steps
(lr 5e-4) takes 50 random training images of each digit (500) and the negative
log-likelihood summed over them. Every 100 steps we record the mean loss and the accuracy on
the test set and on a fixed random sample of 10,000 training images (the whole training set
is scored at the end). Then the weights: what some hidden units look at (their 784 input
weights as 28x28 heatmaps) and how one unit votes for the 10 digits (its output weights).
"""
import numpy as np

import tinynet as tn
from coursedata.cli import run_main
from experiments.common.cli import experiment_parser
from experiments.common.mnist import (
    DIGITS,
    HIDDEN,
    SIDE,
    handout_network,
    load_mnist,
    load_snapshot50,
    per_digit_batches,
    unit_scale,
)
from experiments.common.plots import image_grid, learning_curves, plt
from experiments.common.results import Results
from experiments.common.training import evaluate, train
from tinynet import functional as F
from tinynet import optim

LEARNING_RATE, PER_DIGIT, STEPS, EVAL_EVERY = 5e-4, 50, 5000, 100
CURVE_TRAIN_IMAGES = 10_000
SHOWN_UNIT = 50  # the hidden unit the seed's display code shows: mW[:, 50]


def summed_nll(logits, labels):
    """The handout's cost: negative log-likelihood of labels (N,) under softmax(logits (N, 10)), summed."""
    return F.cross_entropy(logits, labels, reduction="sum")


def digits_figure(images, labels, rng):
    """10 random images of each digit, one digit per row, tiled into one picture. images: (N, 784) uint8."""
    chosen = np.stack([rng.choice(np.flatnonzero(labels == digit), 10, replace=False) for digit in range(DIGITS)])
    tiles = images[chosen].reshape(DIGITS, 10, SIDE, SIDE)
    fig, ax = plt.subplots(figsize=(6, 6))
    ax.imshow(tiles.transpose(0, 2, 1, 3).reshape(DIGITS * SIDE, 10 * SIDE), cmap="gray")
    ax.set(xticks=[], yticks=SIDE * np.arange(DIGITS) + SIDE / 2, yticklabels=range(DIGITS), ylabel="digit",
           title="10 training images of each digit (mnist_all.mat)")
    return fig


def strongest_units(output_weights):
    """For each digit, the hidden unit with the largest weight into it. output_weights: (10, 300) -> (10,)."""
    return np.argmax(output_weights, axis=1)


def hidden_units_figure(input_weights, output_weights):
    """Input weights (300, 784) of the hidden unit that most favours each digit, as 28x28 heatmaps."""
    units = strongest_units(output_weights)
    titles = [f"unit {unit}: +{output_weights[digit, unit]:.2f} to {digit}" for digit, unit in enumerate(units)]
    return image_grid(input_weights[units].reshape(-1, SIDE, SIDE), 2, 5, titles=titles, cmap="coolwarm",
                      colorbar=True, symmetric=True,
                      suptitle="input weights of the hidden unit with the largest weight into each digit")


def unit_figure(input_weights, output_weights, unit):
    """One hidden unit: its input weights (784,) as a 28x28 heatmap and its 10 output weights as bars."""
    fig, (ax_in, ax_out) = plt.subplots(1, 2, figsize=(10, 4), gridspec_kw={"width_ratios": [1, 1.2]})
    bound = np.abs(input_weights[unit]).max()
    heatmap = ax_in.imshow(input_weights[unit].reshape(SIDE, SIDE), cmap="coolwarm", vmin=-bound, vmax=bound)
    fig.colorbar(heatmap, ax=ax_in, shrink=0.8)
    ax_in.set(title=f"hidden unit {unit}: input weights", xticks=[], yticks=[])
    votes = output_weights[:, unit]
    ax_out.bar(range(DIGITS), votes, color=np.where(votes > 0, "tab:red", "tab:blue"))
    ax_out.axhline(0, color="black", linewidth=0.8)
    ax_out.set(xticks=range(DIGITS), xlabel="digit", ylabel="weight",
               title=f"hidden unit {unit}: weights to the 10 outputs")
    ax_out.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    return fig


def summary(metrics):
    votes = ", ".join(f"{v:+.3f}" for v in metrics["shown_unit_output_weights"])
    return f"""# MNIST: the handout network rebuilt with tinynet (seed 000, part 1)

784 -> 300 tanh -> 10 softmax from snapshot50.pkl; Adam lr {LEARNING_RATE}; {metrics['steps']} steps of
{PER_DIGIT} images per digit; summed negative log-likelihood; inputs in [0, 1].

| | accuracy | mean loss |
|---|---|---|
| snapshot50.pkl, before training (test) | {metrics['initial_test_accuracy']:.4f} | {metrics['initial_test_loss']:.4f} |
| after training: training set | {metrics['train_accuracy']:.4f} | {metrics['train_loss']:.4f} |
| after training: test set | {metrics['test_accuracy']:.4f} | {metrics['test_loss']:.4f} |

Hidden unit {SHOWN_UNIT} sends these weights to the digits 0..9: [{votes}].
The heatmaps show what pattern of ink raises each unit (red) or lowers it (blue).
"""


def main(argv=None):
    parser = experiment_parser("part1_mnist", __doc__)
    args = parser.parse_args(argv)
    steps, eval_every = (20, 10) if args.quick else (STEPS, EVAL_EVERY)
    rng = np.random.default_rng(args.seed)
    mnist = load_mnist(per_digit=100 if args.quick else None)
    train_x, test_x = unit_scale(mnist.train_x), unit_scale(mnist.test_x)
    sample = rng.choice(len(train_x), min(CURVE_TRAIN_IMAGES, len(train_x)), replace=False)
    with Results(args.out, args, steps=steps, learning_rate=LEARNING_RATE, per_digit=PER_DIGIT,
                 hidden=HIDDEN, curve_train_images=len(sample)) as results:
        results.figure(digits_figure(mnist.train_x, mnist.train_y, rng), "digits")
        model = handout_network(load_snapshot50())
        test_split = {"test": (test_x, mnist.test_y)}
        initial_loss, initial_accuracy = evaluate(model, F.cross_entropy, test_split)["test"]
        curves = train(model, optim.Adam(model.parameters(), lr=LEARNING_RATE), summed_nll, train_x, mnist.train_y,
                       steps=steps, batch_size=PER_DIGIT * DIGITS, rng=rng, eval_every=eval_every,
                       eval_splits={"train (10k sample)": (train_x[sample], mnist.train_y[sample]), **test_split},
                       batches=per_digit_batches(mnist.train_y, PER_DIGIT, rng), eval_loss_fn=F.cross_entropy,
                       health=results.health)
        final = evaluate(model, F.cross_entropy, {"train": (train_x, mnist.train_y), **test_split})
        results.metrics.update(steps=steps, initial_test_loss=initial_loss, initial_test_accuracy=initial_accuracy,
                               train_loss=final["train"][0], train_accuracy=final["train"][1],
                               test_loss=final["test"][0], test_accuracy=final["test"][1], curves=curves)
        print(f"test accuracy {initial_accuracy:.4f} before training, {final['test'][1]:.4f} after "
              f"(train {final['train'][1]:.4f})")
        results.figure(learning_curves(curves, "784-300-10 tanh, Adam"), "learning_curves")
        input_weights, output_weights = model.layers[0].weight.data, model.layers[2].weight.data
        results.metrics["shown_unit_output_weights"] = output_weights[:, SHOWN_UNIT]
        results.metrics["strongest_units"] = strongest_units(output_weights)
        results.figure(hidden_units_figure(input_weights, output_weights), "hidden_units")
        results.figure(unit_figure(input_weights, output_weights, SHOWN_UNIT), f"hidden_unit_{SHOWN_UNIT}")
        batch = next(per_digit_batches(mnist.train_y, PER_DIGIT, rng))
        results.memory_report(f"One training step's graph: {len(batch)} images, summed negative log-likelihood",
                              lambda: summed_nll(model(tn.Tensor(train_x[batch])), mnist.train_y[batch]))
        results.summary(summary(results.metrics))


if __name__ == "__main__":
    run_main(main)
