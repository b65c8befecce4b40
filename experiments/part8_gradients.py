"""Seed 000, part 8: the gradient of an actor's score with respect to the input photo.

The network is part 7's: dlib's face ResNet (frozen) followed by the trained head. For one
test photo of the actor, tinynet's backward gives d score / d image for all 150x150x3
pixels; the figure shows the photo and the positive part of that gradient. Then the
gradient is checked against central finite differences, in float64, on a random sample of
pixels: the table is printed and saved, and the script exits non-zero when any sampled
pixel disagrees beyond the tolerance.

Why the photo is dithered first: its pixels are 8-bit values, so flat regions give exactly
equal activations, and max-pooling over equal values is a corner of the function (the
gradient does not exist there; a central difference averages the two one-sided slopes and
disagrees with backward by up to ~10%). Adding seeded noise of +-0.01 gray levels, invisible
in the picture, moves the point off those corners. `--dither 0` shows the disagreement.

Run it with no arguments: it uses part 7's saved head when present, and otherwise trains
the head first (cached features make that a few seconds).
"""
import sys
from pathlib import Path

import numpy as np

import facescrub
import tinynet as tn
from experiments.common.cli import bounded, experiment_parser, run_main
from experiments.common.features import FeatureNetwork, make_head, resnet_input
from experiments.common.plots import plt
from experiments.common.results import Results
from experiments.part7_features import split_features, train_head

HEAD_FILE = Path("results/part7_features/head_face_resnet.npz")


def load_or_train_head(network, dataset, seed, head_file, steps=1500):
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

    Returns (network, dataset, head, where the head came from).
    """
    network = FeatureNetwork.face_resnet()
    dataset = facescrub.load_faces(size=network.crop_size, color=True)
    if args.quick:
        dataset = dataset.subset(per_actor=4)
    head, head_source = load_or_train_head(network, dataset, args.seed, args.head, steps=60 if args.quick else 1500)
    return network, dataset, head, head_source


def sampled_pixels(shape, count, rng):
    """count distinct random (channel, row, column) positions of an image of shape (3, H, W)."""
    flat = rng.choice(int(np.prod(shape)), size=count, replace=False)
    return [tuple(int(i) for i in np.unravel_index(k, shape)) for k in flat]


def finite_differences(score, image, pixels, eps, batch_size=20):
    """Central differences (score(x + eps e) - score(x - eps e)) / 2 eps for each pixel.

    image: (1, 3, H, W). The perturbed copies are scored batch_size at a time.
    """
    values = []
    with tn.no_grad():
        for start in range(0, len(pixels), batch_size):
            chunk = pixels[start:start + batch_size]
            batch = np.repeat(image, 2 * len(chunk), axis=0)
            for k, pixel in enumerate(chunk):
                batch[(2 * k,) + pixel] += eps
                batch[(2 * k + 1,) + pixel] -= eps
            per_image = score.per_image(tn.Tensor(batch))
            values.extend((per_image[0::2] - per_image[1::2]) / (2 * eps))
    return np.array(values)


class ActorScore:
    """The actor's pre-softmax score under feature network + head, per image or summed."""

    def __init__(self, network, head, actor_index):
        self.network, self.head, self.actor_index = network, head, actor_index

    def per_image(self, images):
        """images (N, 3, 150, 150) Tensor -> scores (N,) array."""
        return self.head(self.network(images)).data[:, self.actor_index]

    def __call__(self, images):
        """The summed score as a scalar Tensor, for backward()."""
        return self.head(self.network(images))[:, self.actor_index].sum()


def gradient_figure(photo, gradient, actor):
    """The photo, the positive part of the gradient combined over channels, and per channel."""
    positive = np.maximum(gradient, 0)
    fig, axes = plt.subplots(1, 5, figsize=(17, 3.6))
    axes[0].imshow(photo)
    axes[0].set_title(f"input: {actor}")
    combined = positive.transpose(1, 2, 0)
    axes[1].imshow(combined / max(combined.max(), 1e-12))
    axes[1].set_title("positive gradient (RGB)")
    for c, (ax, color) in enumerate(zip(axes[2:], ["Reds", "Greens", "Blues"])):
        shown = ax.imshow(positive[c], cmap=color)
        ax.set_title(f"positive gradient, {'RGB'[c]} channel")
        fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.04)
    for ax in axes:
        ax.axis("off")
    fig.tight_layout()
    return fig


def check_table(pixels, analytic, numeric, atol):
    """Markdown table of the finite-difference check; rows sorted by error, worst first."""
    errors = np.abs(analytic - numeric)
    relative = errors / np.maximum(np.maximum(np.abs(analytic), np.abs(numeric)), atol)
    lines = ["| pixel (c, y, x) | backward | finite difference | abs error | rel error |", "|---|---|---|---|---|"]
    for k in np.argsort(-relative):
        lines.append(f"| {pixels[k]} | {analytic[k]:.6e} | {numeric[k]:.6e} | {errors[k]:.2e} | {relative[k]:.2e} |")
    return "\n".join(lines), relative


def main(argv=None):
    parser = experiment_parser("part8_gradients", __doc__)
    parser.add_argument("--actor", default="Gerard Butler", choices=facescrub.ACTORS)
    parser.add_argument("--pixels", type=bounded(int, 1),
                        help="pixels checked by finite differences (default 50, 6 with --quick)")
    parser.add_argument("--eps", type=bounded(float, above=0),
                        default=1e-3, help="finite-difference step, in 0..255 pixel units")
    parser.add_argument("--tolerance", type=bounded(float, above=0),
                        default=1e-4, help="largest relative error accepted")
    parser.add_argument("--head", type=Path, default=HEAD_FILE, help="part 7's saved head")
    parser.add_argument("--dither", type=bounded(float, 0), default=0.01,
                        help="uniform noise amplitude in 0..255 units that moves the photo off max-pool ties")
    args = parser.parse_args(argv)
    pixels_to_check = args.pixels or (6 if args.quick else 50)
    with Results(args.out, args) as results:
        network, dataset, head, head_source = face_network_and_head(args)
        actor_index = dataset.actors.index(args.actor)
        photo = dataset.test.x[np.flatnonzero(dataset.test.y == actor_index)[0]]
        print(f"model: dlib face ResNet (pretrained, ../shared/data/pretrained) + {head_source}")

        network.model.to(np.float64)
        head.to(np.float64)
        score = ActorScore(network, head, actor_index)
        rng = np.random.default_rng(args.seed)
        photo_pixels = resnet_input(photo[None]).astype(np.float64)
        image = tn.Tensor(photo_pixels + rng.uniform(-args.dither, args.dither, photo_pixels.shape), requires_grad=True)
        score(image).backward()
        gradient = image.grad[0]
        results.figure(gradient_figure(photo, gradient, args.actor), "gradient")

        pixels = sampled_pixels(gradient.shape, pixels_to_check, rng)
        analytic = np.array([gradient[p] for p in pixels])
        numeric = finite_differences(score, image.data, pixels, args.eps)
        atol = 1e-6 * np.abs(gradient).max()
        table, relative = check_table(pixels, analytic, numeric, atol)
        print(table)
        worst = float(relative.max())
        passed = worst <= args.tolerance
        print(f"max relative error over {len(pixels)} pixels: {worst:.2e} "
              f"({'within' if passed else 'ABOVE'} tolerance {args.tolerance:g})")
        results.metrics.update(model=f"face_resnet + {head_source}", actor=args.actor, pixels_checked=len(pixels),
                               max_relative_error=worst, tolerance=args.tolerance, passed=passed,
                               gradient_abs_max=float(np.abs(gradient).max()))
        results.summary(f"# Part 8: input gradient of {args.actor}'s score\n\nModel: {results.metrics['model']}.\n\n"
                        f"The gradient of the pre-softmax score for {args.actor} with respect to the 150x150x3 input "
                        f"was computed by tinynet's backward pass; its positive part is shown in `gradient.png`.\n\n"
                        f"Finite-difference check (float64, step {args.eps} in 0..255 units, {len(pixels)} random "
                        f"pixels, photo dithered by +-{args.dither:g} gray levels to move it off max-pool ties): "
                        f"the largest relative error is {worst:.2e}, "
                        f"{'within' if passed else 'above'} the tolerance {args.tolerance:g}.\n\n{table}\n")
    if not passed:
        sys.exit(f"gradient check failed: max relative error {worst:.2e} > {args.tolerance:g}")


if __name__ == "__main__":
    run_main(main)
