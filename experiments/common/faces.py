"""What parts 3-6 of seed 000 share: face crops as vectors, the one-hidden-layer classifier,
its training with L2, and pictures of what its units look at.

A network here is nn.Sequential(Linear(D, H), activation, Linear(H, 6)) or, with no hidden
layer, nn.Sequential(Linear(D, 6)); inputs are flattened crops (N, D), D = S*S or S*S*3.
"""
from dataclasses import dataclass, replace

import numpy as np

import facescrub
from experiments.common.training import train
from tinynet import functional as F
from tinynet import nn, optim

SPLITS = ("train", "val", "test")
QUICK_PER_ACTOR = 4  # images per actor and split in --quick runs
QUICK_STEPS = 10  # optimizer steps in --quick runs
ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh}


def load(size, color, quick):
    """facescrub.load_faces(size, color), cut to QUICK_PER_ACTOR images per actor and split when quick."""
    dataset = facescrub.load_faces(size=size, color=color)
    return dataset.subset(per_actor=QUICK_PER_ACTOR) if quick else dataset


def gray_inputs(args, setting, size):
    """What a run on size x size gray crops starts from: (the setting, cut to QUICK_STEPS with
    --quick; the dataset; its centered vectors, see vectors())."""
    dataset = load(size, False, args.quick)
    return replace(setting, steps=QUICK_STEPS) if args.quick else setting, dataset, vectors(dataset)


def standardized_faces(x):
    """Each face (row of x, (N, D)) minus its own mean pixel, divided by its own pixel standard
    deviation: the same face under brighter light or more contrast gives the same row. A flat
    face (standard deviation below 1e-6) is only shifted to zero mean."""
    x = x - x.mean(axis=1, keepdims=True)
    return x / np.maximum(x.std(axis=1, keepdims=True), 1e-6)


def vectors(dataset, scale="center"):
    """{split: (x (N, D) float32, y (N,))} of flattened crops.

    scale: "center" subtracts the training set's mean image from every split (pixels stay
    in [0, 1] before that); "standardize" first applies standardized_faces to every face,
    then centers the same way; "symmetric" maps [0, 1] to [-1, 1] (seed 002's preprocessing).
    """
    flat = {name: getattr(dataset, name).x.reshape(len(getattr(dataset, name).x), -1) for name in SPLITS}
    if scale == "standardize":
        flat = {name: standardized_faces(x) for name, x in flat.items()}
    if scale in ("center", "standardize"):
        offset, factor = flat["train"].mean(axis=0), 1.0
    elif scale == "symmetric":
        offset, factor = 0.5, 2.0
    else:
        raise ValueError(f"scale must be 'center', 'standardize' or 'symmetric', got {scale!r}")
    return {name: (((x - offset) * factor).astype(np.float32), getattr(dataset, name).y) for name, x in flat.items()}


def make_mlp(in_features, hidden, classes, rng, activation="relu"):
    """Linear(in_features, hidden) -> activation -> Linear(hidden, classes); hidden=0: one Linear.

    Weights and biases start uniform in +-1/sqrt(fan_in) (nn.Linear's PyTorch initialization).
    """
    if hidden == 0:
        return nn.Sequential(nn.Linear(in_features, classes, rng=rng))
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
    return nn.Sequential(nn.Linear(in_features, hidden, rng=rng), ACTIVATIONS[activation](),
                         nn.Linear(hidden, classes, rng=rng))


def weights_of(model):
    """The weight matrices of the model's Linear layers (biases are not regularized)."""
    return [layer.weight for layer in model.layers if isinstance(layer, nn.Linear)]


def cross_entropy_l2(model, l2):
    """loss(logits (N, C), labels (N,)) = mean cross-entropy + l2 * (sum of squared weights)."""
    if l2 == 0:
        return F.cross_entropy
    weights = weights_of(model)
    return lambda logits, labels: F.cross_entropy(logits, labels) + F.l2_penalty(weights, l2)


@dataclass(frozen=True)
class Setting:
    """How one classifier is built and trained: hidden units (0: none), activation, Adam's
    learning rate, the L2 coefficient on the weights, optimizer steps and batch size."""

    hidden: int
    lr: float
    l2: float
    steps: int
    batch_size: int = 64
    activation: str = "relu"


def fit(splits, classes, setting, seed, eval_every=None, health=None):
    """Train make_mlp on splits['train'] with Adam and cross_entropy_l2; return (model, curves).

    splits: {name: (x (N, D), y (N,))}, all evaluated every eval_every steps (default
    steps/20) for the learning curves of training.train; their loss is the plain
    cross-entropy, without the L2 term. health: see training.train (e.g. Results.health).
    """
    rng = np.random.default_rng(seed)
    x, y = splits["train"]
    model = make_mlp(x.shape[1], setting.hidden, classes, rng, setting.activation)
    curves = train(model, optim.Adam(model.parameters(), lr=setting.lr), cross_entropy_l2(model, setting.l2), x, y,
                   steps=setting.steps, batch_size=setting.batch_size, rng=rng, eval_splits=splits,
                   eval_every=eval_every or max(setting.steps // 20, 1), progress=False, eval_loss_fn=F.cross_entropy,
                   health=health)
    return model, curves


def final_accuracies(curves):
    """{'<split>_accuracy': the last value of its curve} for each split in the curves."""
    return {key: curves[key][-1] for key in curves if key.endswith("_accuracy")}


def as_images(rows, size):
    """Rows (K, S*S) or (K, S*S*3) -> images (K, S, S); color rows are averaged over the channels."""
    rows = np.asarray(rows)
    channels = rows.shape[1] // (size * size)
    if rows.shape[1] != size * size * channels or channels not in (1, 3):
        raise ValueError(f"expected rows of {size * size} or {size * size * 3} values, got {rows.shape[1]}")
    images = rows.reshape(len(rows), size, size, channels)
    return images.mean(axis=3)


def units_for_actor(model, actor, count):
    """The `count` hidden units with the largest outgoing weight to the actor's output.

    Returns (unit indices (count,), their outgoing weights (count,)), largest first.
    """
    outgoing = model.layers[-1].weight.data[actor]
    units = np.argsort(-outgoing)[:count]
    return units, outgoing[units]
