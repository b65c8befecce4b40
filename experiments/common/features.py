"""Features of pretrained networks for face crops, cached on disk, and the head trained on them.

Parts 7, 8 and 9 of seed 000 share this: part 7 trains the head, part 8 differentiates
head(network(image)) with respect to the image, part 9 runs guided backpropagation.
"""
import hashlib

import numpy as np
from tqdm import tqdm

import tinynet as tn
from coursedata.files import atomic_write
from coursedata.paths import cache_dir, data_dir
from tinynet import nn
from tinynet.models.alexnet import AlexNet
from tinynet.models.alexnet import preprocess as alexnet_preprocess
from tinynet.models.face_resnet import FaceResNet


def resnet_input(images):
    """Face crops (N, 150, 150, 3) RGB in [0, 1] -> the face ResNet's input (N, 3, 150, 150), 0..255."""
    return np.ascontiguousarray(np.asarray(images, dtype=np.float32).transpose(0, 3, 1, 2) * 255)


class FeatureNetwork:
    """A frozen pretrained network and how to feed it: name, input crop size, forward to features."""

    def __init__(self, name, crop_size, model, prepare, layer):
        self.name, self.crop_size, self.model, self.prepare, self.layer = name, crop_size, model, prepare, layer

    @classmethod
    def face_resnet(cls):
        """dlib's face ResNet; features = the 128-d descriptor."""
        return cls("face_resnet", 150, FaceResNet.pretrained(data_dir() / "pretrained"), resnet_input, None)

    @classmethod
    def alexnet(cls, weights_path):
        """The course AlexNet; features = conv4 after ReLU, flattened (64,896 values)."""
        return cls("alexnet_conv4", 227, AlexNet.from_file(weights_path), lambda x: alexnet_preprocess(x * 255),
                   "conv4")

    def __call__(self, image_tensor):
        """Features (N, D) of prepared images, differentiable (used by parts 8 and 9)."""
        out = self.model(image_tensor, until=self.layer)
        return tn.functional.flatten(out)

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
