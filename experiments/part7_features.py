"""Seed 000, part 7: classify the six actors from features of a pretrained network.

Features: the 128-d descriptor of dlib's face ResNet (always), and AlexNet's conv4
activations when --alexnet-weights points to bvlc_alexnet.npy. On top, a one-hidden-layer
head (Linear -> ReLU -> Linear) trained with Adam; its hidden size is picked on the
validation split. The head and its configuration are saved for parts 8 and 9.
"""
import json

import facescrub
from coursedata.cli import run_main
from experiments.common.cli import experiment_parser
from experiments.common.features import (
    HEAD_BATCH_SIZE,
    HEAD_LEARNING_RATE,
    HEAD_STEPS,
    QUICK_PER_ACTOR,
    FeatureNetwork,
    split_features,
    train_head,
)
from experiments.common.plots import learning_curves
from experiments.common.results import Results
from experiments.common.training import evaluate
from tinynet import functional as F

HIDDEN_SIZES = (32, 128)
PART3_METRICS = "results/part3_mlp/metrics.json"


def select_and_train(features, classes, seed, steps):
    """Train one head per hidden size; keep the best on validation. Returns (hidden, head, curves, its
    tn.monitor, sweep)."""
    sweep, best, monitors = [], None, []
    for hidden in HIDDEN_SIZES:
        head, curves = train_head(features, hidden, classes, seed, steps, health=monitors.append)
        val_accuracy = curves["val_accuracy"][-1]
        sweep.append({"hidden": hidden, "val_accuracy": val_accuracy})
        if best is None or val_accuracy > best[2]["val_accuracy"][-1]:
            best = (hidden, head, curves, monitors[-1])
    return (*best, sweep)


def part3_test_error():
    """Part 3's test error from its results, or None when part 3 has not been run."""
    try:
        return 1 - json.loads(open(PART3_METRICS).read())["test_accuracy"]
    except (OSError, KeyError, ValueError):
        return None


def report_network(results, network, dataset, seed, steps):
    """Extract features, train and evaluate the head for one network; add figures and metrics."""
    features = split_features(network, dataset)
    hidden, head, curves, monitor, sweep = select_and_train(features, len(dataset.actors), seed, steps)
    scores = evaluate(head, F.cross_entropy, features)
    metrics = {f"{split}_accuracy": accuracy for split, (_, accuracy) in scores.items()}
    metrics.update(feature_dimension=features["train"][0].shape[1], hidden=hidden, sweep=sweep,
                   architecture=f"{network.name} features ({features['train'][0].shape[1]}) -> Linear({hidden}) "
                                f"-> ReLU -> Linear({len(dataset.actors)})")
    results.figure(learning_curves(curves, f"head on {network.name}"), f"learning_curves_{network.name}")
    results.weights(head, f"head_{network.name}")
    results.health(monitor, run=network.name)
    print(f"{network.name}: hidden {hidden}, test accuracy {metrics['test_accuracy']:.3f}")
    return metrics


def summary(metrics, dataset):
    lines = ["# Part 7: classifying actors from pretrained features", "",
             "| features | hidden | train | val | test |", "|---|---|---|---|---|"]
    for name, m in metrics["networks"].items():
        lines.append(f"| {name} | {m['hidden']} | {m['train_accuracy']:.3f} | {m['val_accuracy']:.3f} | "
                     f"{m['test_accuracy']:.3f} |")
    resnet = metrics["networks"]["face_resnet"]
    lines += ["", f"The six actors' crops were split per actor by SHA-256 into {len(dataset.train.y)} training, "
              f"{len(dataset.val.y)} validation and {len(dataset.test.y)} test images; the hidden size was chosen "
              f"on validation accuracy only. On the face ResNet's descriptors the head reaches "
              f"{resnet['test_accuracy']:.1%} test accuracy."]
    reduction = metrics.get("error_reduction_vs_part3")
    lines += ["", f"Compared with part 3's pixel MLP (test error {metrics['part3_test_error']:.1%}), the test error "
              f"falls by {reduction:.0%}; the target was 30%." if reduction is not None else
              "Part 3 has not been run, so the error reduction against it could not be computed "
              "(run `python -m experiments.part3_mlp` first)."]
    lines += ["", "The face network was trained on millions of faces (including FaceScrub, so this accuracy is "
              "optimistic); its descriptor already separates identities, and a small head suffices."]
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = experiment_parser("part7_features", __doc__)
    parser.add_argument("--alexnet-weights", help="bvlc_alexnet.npy, to also use AlexNet conv4 features")
    args = parser.parse_args(argv)
    steps = 60 if args.quick else HEAD_STEPS
    networks = [FeatureNetwork.face_resnet()]
    if args.alexnet_weights:
        networks.append(FeatureNetwork.alexnet(args.alexnet_weights))
    with Results(args.out, args, steps=steps, batch_size=HEAD_BATCH_SIZE, learning_rate=HEAD_LEARNING_RATE,
                 hidden_sizes=HIDDEN_SIZES) as results:
        results.metrics["networks"] = {}
        for network in networks:
            dataset = facescrub.load_faces(size=network.crop_size, color=True)
            if args.quick:
                dataset = dataset.subset(per_actor=QUICK_PER_ACTOR)
            results.metrics["networks"][network.name] = report_network(results, network, dataset, args.seed, steps)
        best_error = 1 - max(m["test_accuracy"] for m in results.metrics["networks"].values())
        results.metrics["test_accuracy"] = 1 - best_error
        results.metrics["part3_test_error"] = part3_test_error()
        if results.metrics["part3_test_error"]:
            reduction = 1 - best_error / results.metrics["part3_test_error"]
            results.metrics["error_reduction_vs_part3"] = reduction
            print(f"test error reduced by {reduction:.0%} relative to part 3")
        results.summary(summary(results.metrics, dataset))


if __name__ == "__main__":
    run_main(main)
