"""Peak memory and time of a backward with and without issue 29's tools: tn.checkpoint and float16 saves.

    python -m benchmarks.memory [--quick] [--repeats 3] [--out DIR]

Cases:
- seed-004 CNN SGD step (experiments/cnn_filters.py's network, batch 16, 91x91, float32): plain; with each
  conv -> ReLU -> pool block checkpointed (tn.Checkpointed); what ops save kept in float16.
- part 8's input gradient (experiments/part8_gradients.py): d <descriptors, grad_out> / d image through the
  face ResNet in float64, weights frozen (the pretrained ones when TINYNET_DATA has them, else random ones of
  the same shapes), one (1, 3, 150, 150) image: plain; each residual block checkpointed; what ops save kept in
  float16 (tn.saved_in_float16, the weights left as they are); saved on disk (tn.saved_on_disk).
- the same network's weight gradient d <descriptors, grad_out> / d weights (fine-tuning it), where the
  convolutions save their inputs: plain; saved in float16.

Peak memory: tracemalloc's peak during one run, above what was allocated before it (NumPy reports its
arrays' allocations to tracemalloc): what the step adds to the model and data it starts from. Time: the
median of --repeats runs without tracemalloc. Gradients: max |difference| / max |plain| against the plain
run. saved: tn.memory_report of the forward's graph, leaves' values (weights, data) left out: what its nodes saved.
held: measured, what is still allocated after the forward while its output is kept (tracemalloc): what the graph
keeps alive, the saved arrays (the graph holds no other values, tinynet.tensor.GraphTensor) and the output.
"""
import argparse
import contextlib
import copy
import json
import statistics
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

import tinynet as tn
from coursedata.paths import data_dir
from experiments.cnn_filters import make_cnn
from tinynet import functional as F
from tinynet import nn, optim
from tinynet.memory import megabytes
from tinynet.models.face_resnet import INPUT_SIZE, FaceResNet

from .cases import face_resnet_weights


def traced_bytes(run):
    """(run()'s result, the memory tracemalloc sees still allocated after it while the result is kept, and the peak
    during it), both above what was traced before."""
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        result = run()
        current, peak = tracemalloc.get_traced_memory()
        return result, current - before, peak - before
    finally:
        tracemalloc.stop()


def median_seconds(run, repeats):
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def cnn_variants(rng, quick):
    """{variant: (run() -> gradients, graph() -> the loss, for memory_report)} of one seed-004 CNN SGD step."""
    size, batch = (23, 4) if quick else (91, 16)
    model = make_cnn(rng, size=size)
    x, labels = rng.random((batch, 1, size, size), dtype=np.float32), rng.integers(0, 2, batch)
    layers = model.layers
    checkpointed = nn.Sequential(tn.Checkpointed(nn.Sequential(*layers[:3])),
                                 tn.Checkpointed(nn.Sequential(*layers[3:6])), *layers[6:])
    parameters = model.parameters()
    start = [p.data.copy() for p in parameters]
    dropout = layers[9].rng
    dropout_state = dropout.bit_generator.state

    def step(network, saving=contextlib.nullcontext):
        def graph():
            with saving():
                return F.cross_entropy(network(tn.Tensor(x)), labels)

        def run():
            for p, values in zip(parameters, start):  # every variant steps from the same weights and dropout mask
                p.data[...] = values
            dropout.bit_generator.state = dropout_state
            optimizer = optim.SGD(parameters, lr=0.01)
            optimizer.zero_grad()
            graph().backward()
            gradients = [p.grad.copy() for p in parameters]
            optimizer.step()
            return gradients
        return run, graph

    return {"plain": step(model), "conv blocks checkpointed": step(checkpointed),
            "saved in float16": step(model, lambda: tn.saved_in_float16(skip=parameters))}


def face_resnet(rng, quick):
    """(the face ResNet in float64, 'pretrained' or 'random', one (1, 3, 150, 150) image, a grad_out (1, 128))."""
    weights_dir = data_dir() / "pretrained"
    if not quick and (weights_dir / "face_recognition_model.bin").exists():
        model, source = FaceResNet.pretrained(weights_dir), "pretrained"
    else:
        model, source = FaceResNet(face_resnet_weights(rng, (4, 4, 8, 8) if quick else (32, 64, 128, 256))), "random"
    model.to(np.float64)
    return model, source, rng.uniform(0, 255, (1, 3, INPUT_SIZE, INPUT_SIZE)), rng.standard_normal((1, 128))


def face_resnet_weight_variants(model, image, grad_out):
    """{variant: (run() -> the weights' gradients, graph() -> descriptors)} of d <descriptors, grad_out> / d weights
    (fine-tuning the face ResNet, float64): the convolutions save their inputs for the weights' gradients."""
    parameters = model.parameters()

    def weight_gradient(saving=contextlib.nullcontext):
        def graph():
            with saving():
                return model(tn.Tensor(image))

        def run():
            for p in parameters:
                p.grad = None
            graph().backward(grad_out)
            return [p.grad for p in parameters]
        return run, graph

    for p in parameters:
        p.requires_grad = True
    return {"plain": weight_gradient(),
            "saved in float16": weight_gradient(lambda: tn.saved_in_float16(skip=parameters))}


def face_resnet_variants(model, image, grad_out):
    """{variant: (run() -> [grad of the image], graph() -> descriptors)} of part 8's input gradient, float64."""
    for p in model.parameters():
        p.requires_grad = False
    checkpointed = copy.copy(model)
    checkpointed.blocks = [tn.Checkpointed(block) for block in model.blocks]
    disk = tempfile.mkdtemp(prefix="tinynet-saved-")

    def input_gradient(network, saving=contextlib.nullcontext):
        def graph(x):
            with saving():
                return network(x)

        def run():
            x = tn.Tensor(image, requires_grad=True)
            graph(x).backward(grad_out)
            return [x.grad]
        return run, lambda: graph(tn.Tensor(image, requires_grad=True))

    variants = {"plain": input_gradient(model), "each block checkpointed": input_gradient(checkpointed),
                "saved in float16": input_gradient(model, lambda: tn.saved_in_float16(skip=model.parameters())),
                "saved on disk": input_gradient(model, lambda: tn.saved_on_disk(disk))}
    return variants


def measure(name, variants, repeats):
    """Rows {case, variant, peak_bytes, seconds, gradient_difference, saved_bytes, held_bytes}, plain first."""
    rows, plain = [], None
    for variant, (run, graph) in variants.items():
        run()  # warm-up: compiles kernels, chooses conv algorithms
        gradients, _, peak = traced_bytes(run)
        seconds = median_seconds(run, repeats)
        output, held, _ = traced_bytes(graph)
        report = tn.memory_report(output)
        plain = plain or gradients
        difference = max(float(np.abs(g - p).max() / np.abs(p).max()) for g, p in zip(gradients, plain))
        rows.append({"case": name, "variant": variant, "peak_bytes": peak, "seconds": seconds,
                     "gradient_difference": difference, "saved_bytes": report.saved_bytes - report.leaf_bytes,
                     "held_bytes": held})
        print(f"{name}: {variant}: peak {megabytes(peak)}, {seconds:.3f} s", flush=True)
    return rows


def table(rows):
    lines = ["| case | variant | peak memory | vs plain | time | vs plain | gradient diff | saved | held by graph |",
             "|---|---|---|---|---|---|---|---|---|"]
    plain = {}
    for row in rows:
        base = plain.setdefault(row["case"], row)
        lines.append(f"| {row['case']} | {row['variant']} | {megabytes(row['peak_bytes'])} | "
                     f"{row['peak_bytes'] / base['peak_bytes'] - 1:+.0%} | {row['seconds'] * 1e3:.0f} ms | "
                     f"{row['seconds'] / base['seconds']:.2f}x | {row['gradient_difference']:.1e} | "
                     f"{megabytes(row['saved_bytes'])} | {megabytes(row['held_bytes'])} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.memory", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks the code paths")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per variant (the median is shown)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="also write the rows to OUT/memory.json")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    rows = measure("seed-004 CNN SGD step", cnn_variants(rng, args.quick), args.repeats)
    model, source, image, grad_out = face_resnet(rng, args.quick)
    rows += measure(f"face ResNet input grad, float64, {source} weights", face_resnet_variants(model, image, grad_out),
                    args.repeats)
    rows += measure(f"face ResNet weight grad, float64, {source} weights",
                    face_resnet_weight_variants(model, image, grad_out), args.repeats)
    print(table(rows))
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "memory.json").write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
