"""Seed 000, part 5: what the hidden units useful for two actors look at, and how L2
regularization and the input size change that.

Network: Linear(S*S, 100) -> ReLU -> Linear(100, 6), Adam, on gray crops in [0, 1] minus the
training mean image. A unit is useful for an actor when its outgoing weight to that actor's
output is large and positive: a ReLU unit's output is >= 0, so it then adds to that actor's
score whenever it fires. For each actor we show the units with the largest such weights,
first for one network, then for every (L2, input size) in a grid, with its test accuracy.
"""
import itertools
from dataclasses import asdict, replace

import numpy as np

from coursedata.cli import run_main
from experiments.common.cli import experiment_parser
from experiments.common.faces import QUICK_STEPS, Setting, as_images, fit, load, units_for_actor, vectors
from experiments.common.plots import image_grid
from experiments.common.results import Results

SHOWN_ACTORS = ("Lorraine Bracco", "Gerard Butler")
UNITS = 4
BASE = Setting(hidden=100, lr=1e-3, l2=1e-3, steps=800)
L2_VALUES, SIZES = (0.0, 1e-3, 1e-2), (32, 64)
CLEAR_CHANGE = 3  # test images: a spread of accuracy over more than this many is a change


def roughness(images):
    """Mean squared difference of horizontally and vertically adjacent pixels over twice the
    variance, per image (K, S, S) -> (K,): about 1 for white noise, near 0 for smooth images."""
    dx = np.diff(images, axis=2) ** 2
    dy = np.diff(images, axis=1) ** 2
    return (dx.mean(axis=(1, 2)) + dy.mean(axis=(1, 2))) / (4 * images.var(axis=(1, 2)) + 1e-12)


def actor_face_correlation(images, faces, labels, actor):
    """Pearson correlation of each image (K, S, S) with the actor's mean face minus the mean face: (K,)."""
    template = (faces[labels == actor].mean(axis=0) - faces.mean(axis=0)).ravel()
    return np.array([np.corrcoef(image.ravel(), template)[0, 1] for image in images])


def useful_units(model, dataset, size, count):
    """For each shown actor: its `count` units (largest outgoing weight first), their weight
    images, outgoing weights, roughness and correlation with the actor's mean face."""
    incoming = model.layers[0].weight.data
    found = []
    for name in SHOWN_ACTORS:
        actor = dataset.actors.index(name)
        units, outgoing = units_for_actor(model, actor, count)
        images = as_images(incoming[units], size)
        found.append({"actor": name, "units": units, "outgoing": outgoing, "images": images,
                      "roughness": roughness(images),
                      "face_correlation": actor_face_correlation(images, dataset.train.x, dataset.train.y, actor)})
    return found


def unit_titles(found, prefix=""):
    return [f"{prefix}{f['actor'].split()[-1]}: unit {u}\nw_out = {w:+.2f}"
            for f in found for u, w in zip(f["units"], f["outgoing"])]


def findings(metrics):
    """What the summary concludes about the grid of (L2, input size), each a named value."""
    grid = metrics["grid"]
    by_l2 = {l2: np.mean([g["roughness"] for g in grid if g["l2"] == l2]) for l2 in L2_VALUES}
    by_size = {size: np.mean([g["roughness"] for g in grid if g["size"] == size]) for size in SIZES}
    best = max(grid, key=lambda g: g["test_accuracy"])
    worst = min(grid, key=lambda g: g["test_accuracy"])
    spread = best["test_accuracy"] - worst["test_accuracy"]
    return {
        "smoothest": min(grid, key=lambda g: g["roughness"]),
        "roughest": max(grid, key=lambda g: g["roughness"]),
        "best": best,
        "worst": worst,
        "accuracy_spread": spread,
        "accuracy_follows_setting": spread > CLEAR_CHANGE / metrics["test_images"],
        "roughness_at_l2": (by_l2[L2_VALUES[0]], by_l2[L2_VALUES[-1]]),
        "roughness_at_size": (by_size[SIZES[0]], by_size[SIZES[-1]]),
        "l2_smooths": by_l2[L2_VALUES[-1]] < by_l2[L2_VALUES[0]],
        "size_smooths": by_size[SIZES[-1]] < by_size[SIZES[0]],
    }


def setting_name(g):
    """'L2 0.001, 32x32' of a grid entry."""
    return f"L2 {g['l2']:g}, {g['size']}x{g['size']}"


def summary(metrics):
    rows = "\n".join(f"| {g['l2']:g} | {g['size']}x{g['size']} | {g['test_accuracy']:.3f} | {g['roughness']:.2f} | "
                     f"{g['face_correlation']:+.2f} |" for g in metrics["grid"])
    found = findings(metrics)
    smoothest, roughest, best, worst = (found[key] for key in ("smoothest", "roughest", "best", "worst"))
    (l2_before, l2_after), (size_before, size_after) = found["roughness_at_l2"], found["roughness_at_size"]
    l2_trend, l2_reason = (("smoother", ": the penalty shrinks the weights that no training image pushes on, the "
                            "noise of the random initialization, and keeps what many faces agree on")
                           if found["l2_smooths"] else ("not smoother", ""))
    size_trend, size_reason = (("smoother", ": neighbouring pixels of a larger image are more alike, and so are "
                                "their weights") if found["size_smooths"] else
                               ("rougher", ": with four times as many weights per unit and the same faces, each "
                                "weight gets less signal while the initial noise stays"))
    accuracy = ("changes with the setting by more than three test images" if found["accuracy_follows_setting"] else
                "barely follows the look of the units")
    return f"""# Part 5: hidden units useful for {SHOWN_ACTORS[0]} and {SHOWN_ACTORS[1]}

Selection: for actor k, the {UNITS} hidden units j with the largest outgoing weight w_out = W2[k, j]
(ReLU units are >= 0, so a large positive W2[k, j] means the unit's firing raises actor k's score).
Shown: each unit's {metrics['inputs']} incoming weights reshaped to the input image (`units.png`; color
inputs averaged over channels). Network: {metrics['architecture']}; test accuracy
{metrics['test_accuracy']:.3f}.

| L2 | input | test accuracy | roughness of the shown units | correlation with the actor's mean face |
|---|---|---|---|---|
{rows}

Roughness is the mean squared difference of neighbouring weights over twice their variance
(about 1 for white noise, near 0 for a smooth image); the last column is the Pearson correlation of
each shown unit with its actor's mean training face minus the mean of all faces, averaged.
Raising L2 from {L2_VALUES[0]:g} to {L2_VALUES[-1]:g} makes the units {l2_trend} (roughness
{l2_before:.2f} -> {l2_after:.2f}, averaged over input sizes){l2_reason}.
The smoothest units come from L2 {smoothest['l2']:g} at {smoothest['size']}x{smoothest['size']}
({smoothest['roughness']:.2f}), the roughest from L2 {roughest['l2']:g} at {roughest['size']}x{roughest['size']}
({roughest['roughness']:.2f}).

Going from {SIZES[0]}x{SIZES[0]} to {SIZES[-1]}x{SIZES[-1]} inputs makes the units {size_trend} on average
(roughness {size_before:.2f} -> {size_after:.2f}){size_reason}. The test accuracy {accuracy}: it ranges from
{worst['test_accuracy']:.1%} ({setting_name(worst)}) to {best['test_accuracy']:.1%} ({setting_name(best)}),
a spread of {found['accuracy_spread']:.1%} on {metrics['test_images']} test images.
"""


def main(argv=None):
    parser = experiment_parser("part5_hidden_units", __doc__)
    args = parser.parse_args(argv)
    base = replace(BASE, steps=QUICK_STEPS) if args.quick else BASE
    datasets = {size: load(size, False, args.quick) for size in SIZES}
    with Results(args.out, args, base=asdict(base), l2_values=L2_VALUES, sizes=SIZES,
                 shown_actors=SHOWN_ACTORS) as results:
        grid, grid_images, grid_titles = [], [], []
        for size, l2 in itertools.product(SIZES, L2_VALUES):
            dataset = datasets[size]
            splits = vectors(dataset)
            setting = replace(base, l2=l2)
            shown = (size, l2) == (SIZES[0], base.l2)
            model, curves = fit(splits, len(dataset.actors), setting, args.seed,
                                health=results.health if shown else None)
            found = useful_units(model, dataset, size, UNITS)
            if shown:
                results.figure(image_grid([im for f in found for im in f["images"]], len(SHOWN_ACTORS), UNITS,
                                          titles=unit_titles(found), cmap="coolwarm", colorbar=True, symmetric=True,
                                          suptitle=f"incoming weights of the units with the largest outgoing weight "
                                                   f"to each actor ({size}x{size}, L2 {l2:g})"), "units")
                results.metrics.update(
                    test_accuracy=curves["test_accuracy"][-1], inputs=size * size, test_images=len(splits["test"][1]),
                    architecture=f"{size * size} -> Linear({setting.hidden}) -> ReLU -> Linear({len(dataset.actors)})",
                    units={f["actor"]: {"units": f["units"], "outgoing": f["outgoing"]} for f in found})
            grid.append({"l2": l2, "size": size, "test_accuracy": curves["test_accuracy"][-1],
                         "roughness": float(np.mean([f["roughness"] for f in found])),
                         "face_correlation": float(np.mean([f["face_correlation"] for f in found]))})
            print(f"L2 {l2:g}, {size}x{size}: test accuracy {grid[-1]['test_accuracy']:.3f}, "
                  f"roughness {grid[-1]['roughness']:.2f}")
            top = [{**f, "units": f["units"][:2], "outgoing": f["outgoing"][:2]} for f in found]
            grid_images += [im for f in found for im in f["images"][:2]]
            grid_titles += unit_titles(top, prefix=f"L2 {l2:g}, {size}px, test {grid[-1]['test_accuracy']:.0%}\n")
        columns = 2 * len(SHOWN_ACTORS)
        results.figure(image_grid(grid_images, len(grid), columns, titles=grid_titles, cmap="coolwarm",
                                  colorbar=True, symmetric=True,
                                  suptitle="top-2 units per actor for each L2 strength and input size"), "grid")
        results.metrics["grid"] = grid
        results.summary(summary(results.metrics))


if __name__ == "__main__":
    run_main(main)
