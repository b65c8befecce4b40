"""Per-example gradients: one batched pass (func.vmap of func.grad) against a loop of single-example backward passes,
and against PyTorch's torch.func.vmap and its own loop in the same run.

    python -m benchmarks.per_example [--quick] [--rounds 5] [--no-torch] [--out DIR]

Cases (float32, the networks of the experiments, random weights and inputs):
- part 1's MLP, 784 -> 300 tanh -> 10 (experiments/part1_mnist.py), batch 64;
- seed 004's CNN on 91 x 91 images (experiments/cnn_filters.py, dropout off), batch 4 (each example's gradient
  holds the network's 35M weights: 139 MB).
Each implementation returns every parameter's per-example gradients, (B, *parameter.shape); they are checked
against the tinynet loop before timing. Time: the rounds interleave the implementations, one call each, the order
rotated (timing.interleaved_rounds: so that a change in the machine's load falls on all of them); the table shows
the median and the minimum over the rounds, and the load average before and after.
"""
import argparse
import json
import sys
from pathlib import Path

import numpy as np

import tinynet as tn
from experiments.cnn_filters import make_cnn
from tinynet import func, nn
from tinynet import functional as F

from .timing import exit_status, interleaved_rounds, load_average, median_and_minimum, seconds_per_call

try:
    import torch
except ImportError:
    torch = None

TOLERANCE = 1e-4  # float32 per-example gradients summed in other orders, relative to the largest


def part1_mlp(rng):
    return nn.Sequential(nn.Linear(784, 300, rng=rng), nn.Tanh(), nn.Linear(300, 10, rng=rng))


def cases(rng, quick):
    """(name, model, x, labels) of each case."""
    if quick:
        yield "part 1 MLP 784-300-10, batch 4", part1_mlp(rng), rng.standard_normal((4, 784), np.float32), \
            rng.integers(0, 10, 4)
        yield "seed-004 CNN 23x23, batch 2", make_cnn(rng, size=23).eval(), \
            rng.random((2, 1, 23, 23), np.float32), rng.integers(0, 2, 2)
        return
    yield "part 1 MLP 784-300-10, batch 64", part1_mlp(rng), rng.standard_normal((64, 784), np.float32), \
        rng.integers(0, 10, 64)
    yield "seed-004 CNN 91x91, batch 4", make_cnn(rng).eval(), rng.random((4, 1, 91, 91), np.float32), \
        rng.integers(0, 2, 4)


def tinynet_loop(model, x, labels):
    """Per-example gradients by one backward pass per example."""
    parameters = model.parameters()
    gradients = [np.empty((len(x), *p.shape), p.dtype) for p in parameters]
    for b in range(len(x)):
        F.cross_entropy(model(tn.Tensor(x[b:b + 1])), labels[b:b + 1]).backward()
        for gradient, p in zip(gradients, parameters):
            gradient[b] = p.grad
            p.grad = None
    return gradients


def tinynet_vmap(model, x, labels):
    """Per-example gradients in one batched pass: vmap of grad of one example's loss."""
    parameters = dict(model.named_parameters())

    def loss(parameters, x, label):
        return F.cross_entropy(func.functional_call(model, parameters, x[None]), label[None])
    gradients = func.vmap(func.grad(loss), in_dims=(None, 0, 0))(parameters, x, labels)
    return [gradients[name].data for name in parameters]


def torch_model(model):
    """model's layers and weights in torch.nn (Linear, Tanh, ReLU, Conv2d 'same', MaxPool2d 'same', Flatten)."""
    layers = []
    for layer in model.layers:
        if isinstance(layer, nn.Linear):
            layers.append(torch.nn.Linear(*layer.weight.shape[::-1]))
        elif isinstance(layer, nn.Conv2d):
            out_channels, in_channels, kernel, _ = layer.weight.shape
            layers.append(torch.nn.Conv2d(in_channels, out_channels, kernel, padding="same"))
        elif isinstance(layer, nn.MaxPool2d):  # 2x2 'same' on an odd side: the last window is cut off
            layers.append(torch.nn.MaxPool2d(2, ceil_mode=True))
        else:
            layers.append({"Tanh": torch.nn.Tanh, "ReLU": torch.nn.ReLU, "Flatten": torch.nn.Flatten,
                           "Dropout": torch.nn.Identity}[type(layer).__name__]())
    network = torch.nn.Sequential(*layers)
    tensors = [p.data for p in model.parameters()]
    with torch.no_grad():
        for theirs, ours in zip(network.parameters(), tensors):
            theirs.copy_(torch.from_numpy(ours))
    return network


def torch_runners(model, x, labels):
    """(loop, vmap): PyTorch's per-example gradients of the same network, by a loop and by torch.func.vmap."""
    network = torch_model(model)
    x_t, labels_t = torch.from_numpy(x), torch.from_numpy(labels)
    parameters = {name: p.detach() for name, p in network.named_parameters()}

    def loss(parameters, x, label):
        logits = torch.func.functional_call(network, parameters, (x[None],))
        return torch.nn.functional.cross_entropy(logits, label[None])
    per_example = torch.func.vmap(torch.func.grad(loss), in_dims=(None, 0, 0))

    def loop():
        gradients = [np.empty((len(x), *p.shape), np.float32) for p in network.parameters()]
        for b in range(len(x)):
            network.zero_grad()
            torch.nn.functional.cross_entropy(network(x_t[b:b + 1]), labels_t[b:b + 1]).backward()
            for gradient, p in zip(gradients, network.parameters()):
                gradient[b] = p.grad.numpy()
        return gradients

    def vmapped():
        return [g.numpy() for g in per_example(parameters, x_t, labels_t).values()]
    return loop, vmapped


def worst_difference(results, expected):
    """max over the parameters of max |difference| / max |expected|."""
    return max(float(np.abs(r - e).max() / max(np.abs(e).max(), 1e-30)) for r, e in zip(results, expected))


def measure(name, model, x, labels, rounds, with_torch):
    """A row: per implementation the median and minimum seconds over interleaved rounds, and the largest
    difference of each from the tinynet loop."""
    runners = {"tinynet loop": lambda: tinynet_loop(model, x, labels),
               "tinynet vmap": lambda: tinynet_vmap(model, x, labels)}
    if with_torch:
        runners["torch loop"], runners["torch vmap"] = torch_runners(model, x, labels)
    reference = runners["tinynet loop"]()
    differences = {key: worst_difference(run(), reference) for key, run in runners.items()}
    medians, minimums = median_and_minimum(interleaved_rounds(runners, rounds, lambda run: seconds_per_call(run, 1)))
    return {"case": name, "median_seconds": medians, "min_seconds": minimums, "difference_from_loop": differences}


def table(rows):
    """The rows as a Markdown table: times in ms (median, min), vmap's speed-up over the loop, and tinynet's vmap
    over PyTorch's."""
    lines = ["| case | implementation | median ms | min ms | max diff from tinynet loop |", "|---|---|---|---|---|"]
    for row in rows:
        for key, median in row["median_seconds"].items():
            lines.append(f"| {row['case']} | {key} | {median * 1e3:.1f} | {row['min_seconds'][key] * 1e3:.1f} | "
                         f"{row['difference_from_loop'][key]:.1e} |")
        medians = row["median_seconds"]
        ratios = [f"vmap is {medians['tinynet loop'] / medians['tinynet vmap']:.1f}x faster than the loop"]
        if "torch vmap" in medians:
            ratios.append(f"tinynet vmap / torch vmap = {medians['tinynet vmap'] / medians['torch vmap']:.2f}")
        lines.append(f"| {row['case']} | {'; '.join(ratios)} | | | |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.per_example", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks the code paths")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved timing rounds")
    parser.add_argument("--no-torch", action="store_true", help="leave PyTorch out even when it is installed")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="also write the rows to OUT/per_example.json")
    args = parser.parse_args(argv)
    with_torch = torch is not None and not args.no_torch
    load_before = load_average()
    rows = [measure(*case, args.rounds, with_torch) for case in cases(np.random.default_rng(args.seed), args.quick)]
    print(table(rows))
    print(f"\nload average (1 min): {load_before:.2f} before, {load_average():.2f} after; torch: "
          f"{torch.__version__ if with_torch else 'not used'}")
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "per_example.json").write_text(json.dumps(rows, indent=2) + "\n")
    disagree = [f"{row['case']}: {key}" for row in rows for key, difference in row["difference_from_loop"].items()
                if difference > TOLERANCE]
    return exit_status(disagree, TOLERANCE)


if __name__ == "__main__":
    sys.exit(main())
