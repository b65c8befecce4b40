"""Features of pretrained networks for face crops, cached on disk, and the head trained on them.

Parts 7, 8 and 9 of seed 000 share this: part 7 trains the head, part 8 differentiates
head(network(image)) with respect to the image, part 9 runs guided backpropagation.
"""
import hashlib
from pathlib import Path

import numpy as np
from tqdm import tqdm

import facescrub
import tinynet as tn
from coursedata.files import atomic_write
from coursedata.paths import cache_dir, data_dir
from experiments.common.training import train
from tinynet import functional as F
from tinynet import nn, optim
from tinynet.models.alexnet import AlexNet
from tinynet.models.alexnet import preprocess as alexnet_preprocess
from tinynet.models.face_resnet import FaceResNet, input_from_crops

HEAD_STEPS, HEAD_BATCH_SIZE, HEAD_LEARNING_RATE = 1500, 64, 1e-3
HEAD_FILE = Path("results/part7_features/head_face_resnet.npz")  # where part 7 saves its face-ResNet head
# crops per actor and split in --quick runs of parts 7-9: one subset, so that their features are computed once
QUICK_PER_ACTOR = 4


class FeatureNetwork:
    """A frozen pretrained network and how to feed it: name, input crop size, forward to features."""

    def __init__(self, name, crop_size, model, prepare, layer):
        self.name, self.crop_size, self.model, self.prepare, self.layer = name, crop_size, model, prepare, layer

    @classmethod
    def face_resnet(cls):
        """dlib's face ResNet; features = the 128-d descriptor."""
        return cls("face_resnet", 150, FaceResNet.pretrained(data_dir() / "pretrained"), input_from_crops, None)

    @classmethod
    def alexnet(cls, weights_path):
        """The course AlexNet; features = conv4 after ReLU, flattened (64,896 values)."""
        return cls("alexnet_conv4", 227, AlexNet.from_file(weights_path), lambda x: alexnet_preprocess(x * 255),
                   "conv4")

    def __call__(self, image_tensor):
        """Features (N, D) of prepared images, differentiable (used by parts 8 and 9)."""
        out = self.model(image_tensor, until=self.layer)
        return tn.functional.flatten(out, 1)

    def features(self, images, sha256s, batch_size=32):
        """Features (N, D) float32 of crops (N, H, W, 3) in [0, 1], cached by network and image hashes."""
        key = hashlib.sha256((self.name + "".join(sha256s)).encode()).hexdigest()[:20]
        path = cache_dir() / "features" / f"{self.name}-{key}.npy"
        if path.exists():
            return np.load(path, allow_pickle=False)
        chunks = []
        with tn.no_grad():
            for start in tqdm(range(0, len(images), batch_size), desc=f"{self.name} features", mininterval=1.0):
                batch = self.prepare(images[start:start + batch_size])
                chunks.append(self(tn.Tensor(batch)).data)
        features = np.concatenate(chunks).astype(np.float32)
        with atomic_write(path) as file:
            np.save(file, features)
        return features


def make_head(in_features, hidden, classes, rng):
    """The classifier on top of the features: Linear -> ReLU -> Linear, (N, D) -> (N, classes) logits."""
    return nn.Sequential(nn.Linear(in_features, hidden, rng=rng), nn.ReLU(), nn.Linear(hidden, classes, rng=rng))


def split_features(network, dataset):
    """{split: (features (N, D), labels (N,))} for train, val and test."""
    return {name: (network.features(split.x, split.sha256), split.y)
            for name, split in (("train", dataset.train), ("val", dataset.val), ("test", dataset.test))}


def train_head(features, hidden, classes, seed, steps, health=None):
    """A head trained on features['train'] with Adam; returns (head, learning curves). health: see training.train."""
    rng = np.random.default_rng(seed)
    x, y = features["train"]
    head = make_head(x.shape[1], hidden, classes, rng)
    curves = train(head, optim.Adam(head.parameters(), lr=HEAD_LEARNING_RATE), F.cross_entropy, x, y, steps=steps,
                   batch_size=HEAD_BATCH_SIZE, rng=rng, eval_splits=features, eval_every=max(steps // 30, 1),
                   progress=False, health=health)
    return head, curves


def load_or_train_head(network, dataset, seed, head_file, steps=HEAD_STEPS):
    """Part 7's head from head_file, or a head trained now (64 hidden units) when it is missing."""
    if head_file.exists():
        state = tn.load(head_file)
        hidden, features = state["layers.0.weight"].shape
        head = make_head(features, hidden, len(dataset.actors), np.random.default_rng(seed)).load_state_dict(state)
        return head, f"part 7's head ({head_file})"
    print(f"{head_file} not found: training the head on cached face-ResNet features first")
    head, _ = train_head(split_features(network, dataset), 64, len(dataset.actors), seed, steps=steps)
    return head, "a head trained by this script (part 7 has not been run)"


def face_network_and_head(args):
    """The face ResNet, the 150x150 RGB crops (a few per actor with --quick) and part 7's head.

    args: the parsed --quick, --seed and --head of parts 8 and 9.
    Returns (network, dataset, head, where the head came from).
    """
    network = FeatureNetwork.face_resnet()
    dataset = facescrub.load_faces(size=network.crop_size, color=True)
    if args.quick:
        dataset = dataset.subset(per_actor=QUICK_PER_ACTOR)
    steps = 60 if args.quick else HEAD_STEPS
    head, head_source = load_or_train_head(network, dataset, args.seed, args.head, steps=steps)
    return network, dataset, head, head_source
