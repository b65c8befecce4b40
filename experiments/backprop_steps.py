"""How backprop works: backward passes recorded step by step, to read or to step through in a browser.

Traces of five computations (tn.tracing), each written as a self-contained page (open it, then press the right
arrow key; tick "predict" to be asked each step's formula first) and as text:
- accumulation: b = a + a; c = b * b; the gradient of a arrives in two contributions that add up;
- broadcasting: a (3, 1) column plus a (1, 4) row; backward sums each gradient back to its shape;
- xor: the README's 2-16-2 tanh network on 64 points, one cross-entropy backward;
- mnist: part 1's 784-300-10 handout network (snapshot50.pkl) on a few digits;
- face_resnet (not with --quick): the 30-layer face ResNet of parts 7-9 on one crop, to show
  how a deep graph reads (it scrolls sideways, one column per distance from the loss).
"""
import numpy as np

import tinynet as tn
from coursedata.files import write_atomically
from experiments.common.cli import experiment_parser
from experiments.common.features import FeatureNetwork
from experiments.common.mnist import handout_network, load_mnist, load_snapshot50, unit_scale
from experiments.common.results import Results
from tinynet import functional as F
from tinynet import nn
from tinynet.memory import megabytes

MNIST_IMAGES = 4


def accumulation():
    """b = a + a; c = b * b; backward of sum(c): a receives two contributions of 2 b each."""
    a = tn.Tensor(np.array([1.0, 2.0]), requires_grad=True)
    with tn.tracing(names={"a": a}) as trace:
        b = a + a
        c = b * b
        c.sum().backward()
    return trace


def broadcasting():
    """column (3, 1) + row (1, 4) -> (3, 4); the gradients are summed over the stretched axes."""
    column = tn.Tensor(np.arange(3.0).reshape(3, 1), requires_grad=True)
    row = tn.Tensor(np.arange(4.0).reshape(1, 4), requires_grad=True)
    with tn.tracing(names={"column": column, "row": row}) as trace:
        ((column + row) ** 2).sum().backward()
    return trace


def xor(rng):
    """The README's network: 2 -> 16 tanh -> 2 logits on 64 points labelled by the XOR of their signs."""
    x = rng.standard_normal((64, 2))
    model = nn.Sequential(nn.Linear(2, 16, rng=rng), nn.Tanh(), nn.Linear(16, 2, rng=rng))
    with tn.tracing(names=dict(model.named_parameters())) as trace:
        F.cross_entropy(model(x), (x[:, 0] * x[:, 1] > 0).astype(np.int64)).backward()
    return trace


def mnist(rng):
    """Part 1's handout network from snapshot50.pkl, cross-entropy summed over a few test digits."""
    digits = load_mnist(per_digit=1)
    chosen = rng.choice(len(digits.test_y), MNIST_IMAGES, replace=False)
    model = handout_network(load_snapshot50())
    with tn.tracing(names=dict(model.named_parameters())) as trace:
        logits = model(unit_scale(digits.test_x[chosen]))
        F.cross_entropy(logits, digits.test_y[chosen], reduction="sum").backward()
    return trace


def face_resnet(rng):
    """The face ResNet's 128-d descriptor of one random 150x150 image, backward of its sum."""
    network = FeatureNetwork.face_resnet()
    image = tn.Tensor(rng.uniform(0, 255, (1, 3, 150, 150)).astype(np.float32), requires_grad=True)
    with tn.tracing(names={"image": image}) as trace:
        network(image).sum().backward()
    return trace


def summary(metrics, accumulation_text, broadcasting_text):
    rows = "\n".join(f"| [{name}]({name}.html) | {m['tensors']} | {m['steps']} | {m['leaves']} | "
                     f"{megabytes(m['page_bytes'])} |"
                     for name, m in metrics["traces"].items())
    return f"""# How backprop works: backward, step by step

Each page below draws a computation's graph, with each tensor's shape, and steps through its backward
pass (buttons or the arrow keys): the current tensor is outlined in red, the parents it sends gradients
to in orange, and each tensor backward has reached is filled by its gradient's norm (log scale). For each
step the page shows the op, the line of code that made it, what its forward saved, the incoming gradient
(grad_out = g; as heatmaps when image-shaped), the op's VJP as formulas (what backward sends each input)
and the gradient sent to each parent, with the axes that un-broadcasting summed; a tensor that feeds
several ops has its gradient written as the chain rule's sum of what each sent. The last step lists the
leaf gradients, which equal `.grad`. Tick *predict* to choose each step's formula before it is revealed.

| trace | tensors | backward steps | leaves with a gradient | page |
|---|---|---|---|---|
{rows}

## Accumulation: b = a + a; c = b * b

a is used twice (by the same Add), so its gradient is the sum of two contributions; backward
adds them rather than keeping the last one (a bug an early tinygrad had).

```
{accumulation_text}
```

## Broadcasting: (3, 1) + (1, 4)

```
{broadcasting_text}
```
"""


def main(argv=None):
    parser = experiment_parser("backprop_steps", __doc__)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    with Results(args.out, args) as results:
        traces = {"accumulation": accumulation(), "broadcasting": broadcasting(), "xor": xor(rng),
                  "mnist": mnist(rng)}
        if not args.quick:
            traces["face_resnet"] = face_resnet(rng)
        results.metrics["traces"] = {}
        for name, trace in traces.items():
            page = trace.to_html(f"{name}: backward, step by step")
            write_atomically(args.out / f"{name}.html", page)
            write_atomically(args.out / f"{name}.txt", str(trace) + "\n")
            results.metrics["traces"][name] = {"tensors": len(trace.nodes), "steps": len(trace.steps),
                                               "leaves": len(trace.leaf_grads), "page_bytes": len(page.encode())}
            print(f"{name}: {len(trace.steps)} backward steps over {len(trace.nodes)} tensors")
        results.summary(summary(results.metrics, str(traces["accumulation"]), str(traces["broadcasting"])))


if __name__ == "__main__":
    main()
