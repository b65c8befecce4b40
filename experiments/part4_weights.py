"""Seed 000, part 4: a classifier with no hidden layer, and its weights seen as images.

Multinomial logistic regression: Linear(1024, 6) -> softmax cross-entropy (+ L2), Adam on
mini-batches of 64, on 32x32 grayscale crops in [0, 1] minus the training mean image. The
1024 weights into each actor's output, reshaped to 32x32, show which pixels raise that
actor's score (red) or lower it (blue).
"""
from dataclasses import asdict

import numpy as np

from coursedata.cli import run_main
from experiments.common.cli import experiment_parser
from experiments.common.faces import Setting, as_images, final_accuracies, fit, gray_inputs
from experiments.common.plots import image_grid, learning_curves
from experiments.common.results import Results
from experiments.common.training import predict

SETTING = Setting(hidden=0, lr=1e-3, l2=1e-3, steps=1000)
SIZE = 32
LARGELY = 0.5  # a mean correlation above this: the templates largely are the actors' mean faces


def per_actor_accuracy(model, x, y, classes):
    """Test accuracy of each actor's images: (classes,)."""
    predicted = np.argmax(predict(model, x), axis=1)
    return np.array([np.mean(predicted[y == k] == k) for k in range(classes)])


def mean_face_correlation(weight_images, faces, labels):
    """Pearson correlation of each actor's weight image (K, S, S) with that actor's mean
    training face minus the mean of all training faces: (K,)."""
    difference = np.stack([faces[labels == k].mean(axis=0) for k in range(len(weight_images))]) - faces.mean(axis=0)
    return np.array([np.corrcoef(w.ravel(), d.ravel())[0, 1] for w, d in zip(weight_images, difference)])


def findings(metrics):
    """What the summary concludes about the templates, each a named value (indices into the actors)."""
    per_actor, correlation = metrics["per_actor_test_accuracy"], metrics["weight_vs_mean_face_correlation"]
    return {
        "best_actor": int(np.argmax(per_actor)),
        "worst_actor": int(np.argmin(per_actor)),
        "weakest_template": int(np.argmin(correlation)),
        "correlation_range": (np.min(correlation), np.max(correlation)),
        "correlation_mean": np.mean(correlation),
        "templates_largely_mean_faces": np.mean(correlation) > LARGELY,
        "gap": metrics["train_accuracy"] - metrics["test_accuracy"],
    }


def summary(metrics, actors):
    per_actor, correlation = metrics["per_actor_test_accuracy"], metrics["weight_vs_mean_face_correlation"]
    rows = "\n".join(f"| {actor} | {a:.3f} | {c:+.2f} |" for actor, a, c in zip(actors, per_actor, correlation))
    found = findings(metrics)
    best, worst, lowest, highest = found["best_actor"], found["worst_actor"], *found["correlation_range"]
    how_much = "largely" if found["templates_largely_mean_faces"] else "partly"
    return f"""# Part 4: the weights of a classifier with no hidden layer

{metrics['architecture']}; {metrics['setting']['steps']} Adam steps (lr {metrics['setting']['lr']:g},
L2 {metrics['setting']['l2']:g}). Accuracy: train {metrics['train_accuracy']:.3f}, validation
{metrics['val_accuracy']:.3f}, test {metrics['test_accuracy']:.3f}.

| actor | test accuracy | correlation of the weight image with (actor's mean face - mean face) |
|---|---|---|
{rows}

Each weight image is the linear template the classifier matches against a face: the score of
an actor is the dot product of the centered image with it. The templates correlate with the
difference between that actor's mean training face and the mean of all faces by
{lowest:+.2f} to {highest:+.2f} (mean {found['correlation_mean']:+.2f}), so
they {how_much} encode how the actor's average face
(lighting, hair, face shape) departs from everyone's; the weakest match is {actors[found['weakest_template']]}.

The test accuracy of this linear classifier is {metrics['test_accuracy']:.1%} against
{metrics['train_accuracy']:.1%} on the training set. By actor, it ranges from
{per_actor[worst]:.1%} ({actors[worst]}) to {per_actor[best]:.1%} ({actors[best]}). The
{found['gap']:.1%} gap between training and test accuracy is what
one fixed template per actor cannot carry over to new photos (other poses, expressions and
lighting); a hidden layer (part 3) can combine several templates per actor.
"""


def main(argv=None):
    parser = experiment_parser("part4_weights", __doc__)
    args = parser.parse_args(argv)
    setting, dataset, splits = gray_inputs(args, SETTING, SIZE)
    classes = len(dataset.actors)
    with Results(args.out, args, setting=asdict(setting), size=SIZE) as results:
        model, curves = fit(splits, classes, setting, args.seed)
        weight_images = as_images(model.layers[0].weight.data, SIZE)
        results.figure(image_grid(weight_images, 2, 3, titles=dataset.actors, cmap="coolwarm", colorbar=True,
                                  symmetric=True, suptitle="weights into each actor's output (32x32)"), "weights")
        results.figure(learning_curves(curves, "no hidden layer"), "learning_curves")
        results.metrics.update(final_accuracies(curves))
        results.metrics.update(
            setting=asdict(setting), architecture=f"{SIZE * SIZE} inputs -> Linear({classes}) -> softmax",
            per_actor_test_accuracy=per_actor_accuracy(model, *splits["test"], classes),
            weight_vs_mean_face_correlation=mean_face_correlation(weight_images, dataset.train.x, dataset.train.y))
        print(f"test accuracy {results.metrics['test_accuracy']:.3f}")
        results.summary(summary(results.metrics, dataset.actors))


if __name__ == "__main__":
    run_main(main)
