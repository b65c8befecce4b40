"""Seed 002: a network with no hidden layer on MNIST, its gradient by hand, GD against momentum.

The network is o = Wᵀx + b, p = softmax(o), with W: (784, 10) and b: (10,); the cost is the
negative log-probability of the right digits summed over the images. Its gradient, written
by hand as the seed derives it, is dC/dW = x (p - y)ᵀ; with images as rows (x: (N, 784)) that
is xᵀ(p - y). We check it against tinynet's autodiff and against central finite differences
for several step sizes, train with gradient descent and with momentum (tinynet's SGD fed the
hand-written gradient), show the 10 weight images, and follow two weights on a contour plot.
The Hessian too: tinynet's Hessian-vector product (double backward) against the hand-derived
Hessian, and Newton-CG (SciPy, fed tinynet's hvp) as a third path on the contour plot.

The seed takes 2000 steps on all 60,000 images with lr 1e-5 on the summed cost (a step of 0.6
per unit of the mean cost). A pass over 60,000 images costs about 0.12 s here, too slow for
2 x 2000 steps in three minutes, so each step uses a tenth of the shuffled training set in
turn, with the same step of 0.6 per unit of mean cost. `--batch-size 60000` runs the seed's
full-batch descent (several minutes).
"""
import functools

import numpy as np
import scipy.optimize
import scipy.special

import tinynet as tn
from coursedata.cli import bounded, run_main
from experiments.common.cli import experiment_parser
from experiments.common.gradient_checks import step_sweep_figure
from experiments.common.mnist import DIGITS, PIXELS, SIDE, load_mnist, unit_scale
from experiments.common.plots import image_grid, learning_curves, plt
from experiments.common.results import Results
from experiments.common.training import accuracy, monitored
from tinynet import functional as F
from tinynet import nn, optim
from tinynet.gradcheck import SWEEP_STEPS, step_sweep

LEARNING_RATE = 0.6  # per unit of the mean cost: the seed's 1e-5 on the cost summed over 60,000 images
MOMENTUM = 0.9
STEPS, BATCH_SIZE, CURVE_POINTS = 2000, 6000, 30
STEP_SIZES = (1e-1, 1e-3, 1e-5, 1e-7, 1e-9)  # the table's columns; the figure shows all of SWEEP_STEPS
CHECKED_WEIGHTS, CHECK_IMAGES = 6, 1000
PAIR_PIXELS, PAIR_DIGIT = ((13, 13), (14, 13)), 1  # two neighbouring centre pixels, weights into digit 1
PAIR_OFFSET = np.array([3.0, -3.0])  # where the pair starts, relative to its minimum: along the valley
PAIR_STEPS, PAIR_IMAGES = 40, 10_000
NEWTON_ITERATIONS, NEWTON_IMAGES = 10, 10_000  # Newton-CG on the whole model: its iterations and training images


def log_probabilities(weights, bias, x):
    """log p, p = softmax(o), o = Wᵀx + b for every row x: weights (784, 10), bias (10,), x (N, 784) -> (N, 10)."""
    return scipy.special.log_softmax(x @ weights + bias, axis=1)


def cost(weights, bias, x, labels):
    """Negative log-probability of labels (N,) summed over the images x (N, 784)."""
    return -float(np.sum(log_probabilities(weights, bias, x)[np.arange(len(labels)), labels]))


def hand_gradients(weights, bias, x, labels):
    """dC/dW (784, 10) and dC/db (10,) of the summed cost, vectorized: xᵀ(p - y) and Σ(p - y).

    xᵀ(p - y) is taken as ((p - y)ᵀ x)ᵀ: the same sums, which OpenBLAS ran in 1.9 ms instead of 2.6 for a step's
    6000 images (x C-ordered; one core), 4000 times in a run."""
    p_minus_y = np.exp(log_probabilities(weights, bias, x))
    p_minus_y[np.arange(len(labels)), labels] -= 1
    return (p_minus_y.T @ x).T, p_minus_y.sum(axis=0)


def autodiff_gradients(weights, bias, x, labels):
    """The same two gradients by tinynet's reverse-mode autodiff (in the dtype of weights)."""
    weights, bias = tn.Tensor(weights, requires_grad=True), tn.Tensor(bias, requires_grad=True)
    F.cross_entropy(F.matmul(tn.Tensor(x, dtype=weights.dtype), weights) + bias, labels, reduction="sum").backward()
    return weights.grad, bias.grad


def gradient_check(weights, bias, x, labels, rng):
    """Hand, autodiff and finite-difference dC/dW for CHECKED_WEIGHTS random weights on inked pixels, float64.

    The central differences are tinynet.gradcheck's, at every step of its sweep (1e-1 to 1e-10).
    Returns one dict per weight (pixel, digit, hand, autodiff, finite_differences {step: value})
    and the sweep (analytic (k,), numeric (steps, k), round-off estimate (steps, k)).
    """
    weights, bias, x = weights.astype(np.float64), bias.astype(np.float64), x.astype(np.float64)
    hand, _ = hand_gradients(weights, bias, x, labels)
    auto, _ = autodiff_gradients(weights, bias, x, labels)
    inked = np.flatnonzero(x.mean(axis=0) > 0.2)
    pixels, digits = rng.choice(inked, CHECKED_WEIGHTS, replace=False), rng.integers(0, DIGITS, CHECKED_WEIGHTS)
    elements = [(int(pixel), int(digit)) for pixel, digit in zip(pixels, digits)]
    images = tn.Tensor(x)

    def summed_cost(w):
        return F.cross_entropy(F.matmul(images, w) + bias, labels, reduction="sum")

    sweep = step_sweep(summed_cost, [tn.Tensor(weights, requires_grad=True)], elements)
    rows = [{"pixel": pixel, "digit": digit, "hand": hand[pixel, digit], "autodiff": auto[pixel, digit],
             "finite_differences": dict(zip(SWEEP_STEPS, sweep[1][:, k].tolist()))}
            for k, (pixel, digit) in enumerate(elements)]
    return rows, sweep


def hand_hessian_vector_product(weights, bias, x, v):
    """H v for the mean cost as a function of W (bias fixed), by hand: v (784, 10) -> (784, 10).

    H = (1/N) Σ_i x_i x_iᵀ ⊗ (diag p_i - p_i p_iᵀ), so H v = xᵀ(p * (x v) - p * Σ_k p_k (x v)_k) / N.
    """
    p = np.exp(log_probabilities(weights, bias, x))
    moved_logits = x @ v
    return x.T @ (p * moved_logits - p * np.sum(p * moved_logits, axis=1, keepdims=True)) / len(x)


def autodiff_hessian_vector_product(weights, bias, x, labels, v):
    """The same H v by tinynet: the gradient of <dC/dW, v>, differentiated again (tn.hvp)."""
    images = tn.Tensor(x, dtype=weights.dtype)
    return tn.hvp(lambda w: F.cross_entropy(F.matmul(images, w) + bias, labels), weights, v)[1].data


def hessian_check(weights, bias, x, labels, rng):
    """Largest |tinynet's H v - hand H v| / max |hand H v| over 3 random v, in float64."""
    weights, bias, x = weights.astype(np.float64), bias.astype(np.float64), x.astype(np.float64)
    errors = []
    for v in rng.standard_normal((3,) + weights.shape):
        hand = hand_hessian_vector_product(weights, bias, x, v)
        errors.append(np.abs(autodiff_hessian_vector_product(weights, bias, x, labels, v) - hand).max()
                      / np.abs(hand).max())
    return max(errors)


def gradient_table(rows):
    """The gradient check as a markdown table, and the worst relative error of each step size."""
    header = "| weight (row, col) -> digit | hand-written | autodiff | " + " | ".join(
        f"central diff. h={step:g}" for step in STEP_SIZES) + " |"
    lines = [header, "|" + "---|" * (3 + len(STEP_SIZES))]
    for row in rows:
        row_col = divmod(row["pixel"], SIDE)
        values = [row["hand"], row["autodiff"]] + [row["finite_differences"][step] for step in STEP_SIZES]
        lines.append(f"| {row_col} -> {row['digit']} | " + " | ".join(f"{v:.10f}" for v in values) + " |")
    worst = {step: max(abs(r["finite_differences"][step] - r["hand"]) / abs(r["hand"]) for r in rows)
             for step in SWEEP_STEPS}
    lines.append("| worst relative error vs hand-written | | " + f"{max_autodiff_error(rows):.1e} | "
                 + " | ".join(f"{worst[step]:.1e}" for step in STEP_SIZES) + " |")
    return "\n".join(lines), worst


def max_autodiff_error(rows):
    """Largest |autodiff - hand| / |hand| over the checked weights."""
    return max(abs(r["autodiff"] - r["hand"]) / abs(r["hand"]) for r in rows)


def mean_cost_and_accuracy(weights, bias, x, labels):
    """(cost per image, fraction correct) of the network on x (N, 784)."""
    log_p = log_probabilities(weights, bias, x)
    return -float(np.mean(log_p[np.arange(len(labels)), labels])), accuracy(log_p, labels)


def curve_steps(steps):
    """0 and about CURVE_POINTS steps spaced evenly on a log scale up to steps: the early steps are where GD and
    momentum differ most."""
    return {0} | set(np.unique(np.geomspace(1, steps, CURVE_POINTS).round().astype(int)).tolist())


def descend(weights, bias, x, labels, momentum, steps, batch_size, eval_splits, health=None):
    """Train a copy of (weights, bias) with tinynet's SGD on the hand-written gradient of the mean cost.

    Step k uses rows [k*batch_size, (k+1)*batch_size) of x, cycling (x is shuffled once by the
    caller). Returns the trained (weights, bias) and curves {"step", "<split>_loss", "<split>_accuracy"}
    at curve_steps(steps). health: see training.train (e.g. Results.health).
    """
    model = nn.Module()  # only to name the parameters for the health monitor
    model.weights, model.bias = nn.Parameter(weights), nn.Parameter(bias)  # copies: the caller's arrays stay
    weights, bias = model.weights, model.bias
    optimizer = optim.SGD([weights, bias], lr=LEARNING_RATE, momentum=momentum)
    starts = range(0, len(labels) - batch_size + 1, batch_size)
    curves, recorded = {"step": []}, curve_steps(steps)
    with monitored(model, optimizer, steps, health) as monitor:
        for step in range(steps + 1):
            if step in recorded:
                curves["step"].append(step)
                for split, (split_x, split_labels) in eval_splits.items():
                    loss, correct = mean_cost_and_accuracy(weights.data, bias.data, split_x, split_labels)
                    curves.setdefault(f"{split}_loss", []).append(loss)
                    curves.setdefault(f"{split}_accuracy", []).append(correct)
            if step == steps:
                break
            start = starts[step % len(starts)]
            batch = slice(start, start + batch_size)
            if monitor is not None and step == 0:
                monitor.record_initial_loss(mean_cost_and_accuracy(weights.data, bias.data, x[batch],
                                                                   labels[batch])[0], DIGITS)
            grad_weights, grad_bias = hand_gradients(weights.data, bias.data, x[batch], labels[batch])
            weights.grad, bias.grad = grad_weights / batch_size, grad_bias / batch_size
            optimizer.step()
    return weights.data, bias.data, curves


class WeightPair:
    """The mean cost as a function of two weights W[pixel_1, digit], W[pixel_2, digit], the rest fixed.

    Only the logit of `digit` moves: o_digit = rest_of_o + x_1 w_1 + x_2 w_2, so the cost of
    many (w_1, w_2) at once needs no pass over all 784 pixels.
    """

    def __init__(self, weights, bias, x, labels, pixels, digit):
        logits = (x @ weights + bias).astype(np.float64)
        self.inputs = x[:, list(pixels)].astype(np.float64)
        self.trained = weights[list(pixels), digit].astype(np.float64)
        self.fixed_logit = logits[:, digit] - self.inputs @ self.trained
        self.others_log_norm = scipy.special.logsumexp(np.delete(logits, digit, axis=1), axis=1)
        self.is_digit = labels == digit
        self.other_label_logit = np.where(self.is_digit, 0.0, logits[np.arange(len(labels)), labels])

    def _logit(self, w1, w2):
        return self.fixed_logit + np.multiply.outer(w1, self.inputs[:, 0]) + np.multiply.outer(w2, self.inputs[:, 1])

    def cost(self, w1, w2):
        """Mean cost at arrays w1, w2 of one shape S -> (S)."""
        logit = self._logit(np.asarray(w1, dtype=np.float64), np.asarray(w2, dtype=np.float64))
        per_image = np.logaddexp(self.others_log_norm, logit) - np.where(self.is_digit, logit,
                                                                        self.other_label_logit)
        return per_image.mean(axis=-1)

    def gradient(self, w):
        """d mean cost / d (w1, w2) at w (2,) -> (2,): Σ (p_digit - y_digit) x_i / N."""
        logit = self._logit(w[0], w[1])
        p_minus_y = scipy.special.expit(logit - self.others_log_norm) - self.is_digit
        return self.inputs.T @ p_minus_y / len(p_minus_y)

    def hessian(self, w):
        """Second derivatives (2, 2) of the mean cost at w (2,)."""
        p = scipy.special.expit(self._logit(w[0], w[1]) - self.others_log_norm)
        return (self.inputs.T * (p * (1 - p))) @ self.inputs / len(p)

    def tinynet_cost(self, w):
        """The mean cost at w, a Tensor (2,), with tinynet ops, so that tinynet can differentiate it twice.

        log(e^a + e^b) for the digit's logit b and the others' a is written b - log_softmax([a, b])[1].
        """
        logit = F.matmul(tn.Tensor(self.inputs), w) + self.fixed_logit
        both = F.stack([tn.Tensor(self.others_log_norm), logit], axis=1)
        log_norm = logit - F.log_softmax(both, axis=1)[:, 1]
        return F.mean(log_norm - F.where(self.is_digit, logit, self.other_label_logit))

    def hessian_vector_product(self, w, v):
        """H v (2,) at w (2,) by tinynet's double backward (what Newton-CG asks for)."""
        return tn.hvp(self.tinynet_cost, w, v)[1].data

    def newton_cg_path(self, start, steps):
        """Positions (<= steps + 1, 2) of SciPy's Newton-CG from start, fed the gradient and tinynet's hvp."""
        positions = [np.array(start, dtype=np.float64)]
        scipy.optimize.minimize(lambda w: self.cost(*w), positions[0], jac=self.gradient,
                                hessp=self.hessian_vector_product, method="Newton-CG",
                                callback=lambda w: positions.append(np.array(w)),
                                options={"maxiter": steps, "xtol": 1e-10})
        return np.array(positions)

    def minimum(self):
        """The (w1, w2) of least mean cost (2,), by a trust-region Newton method from the trained values."""
        found = scipy.optimize.minimize(lambda w: self.cost(*w), self.trained, jac=self.gradient, hess=self.hessian,
                                        method="trust-exact", options={"gtol": 1e-12})
        return found.x

    def path(self, start, lr, momentum, steps):
        """Positions (steps + 1, 2) of tinynet's SGD on the two weights from start."""
        w = nn.Parameter(np.array(start, dtype=np.float64))
        optimizer = optim.SGD([w], lr=lr, momentum=momentum)
        positions = [w.data.copy()]
        for _ in range(steps):
            w.grad = self.gradient(w.data)
            optimizer.step()
            positions.append(w.data.copy())
        return np.array(positions)


def contour_figure(pair, minimum, paths, lr):
    """The mean cost over a grid around the paths, with each path drawn on it."""
    points = np.concatenate(list(paths.values()))
    low, high = points.min(axis=0), points.max(axis=0)
    margin = 0.15 * (high - low) + 0.05
    w1, w2 = np.meshgrid(np.linspace(low[0] - margin[0], high[0] + margin[0], 80),
                         np.linspace(low[1] - margin[1], high[1] + margin[1], 80))
    costs = np.array([pair.cost(row1, row2) for row1, row2 in zip(w1, w2)])
    fig, ax = plt.subplots(figsize=(7, 6))
    levels = costs.min() + (costs.max() - costs.min()) * np.linspace(0, 1, 30) ** 2  # dense near the minimum
    filled = ax.contourf(w1, w2, costs, levels=levels, cmap="viridis")
    ax.contour(w1, w2, costs, levels=levels, colors="white", linewidths=0.3)
    fig.colorbar(filled, ax=ax, label="mean cost (negative log-probability per image)")
    for (name, path), color in zip(paths.items(), ("tab:orange", "tab:red", "tab:cyan")):
        ax.plot(path[:, 0], path[:, 1], "o-", color=color, markersize=3, linewidth=1.2, label=name)
    ax.plot(*paths[next(iter(paths))][0], "k*", markersize=12, label="start")
    ax.plot(*minimum, "wX", markersize=10, label="minimum")
    (r1, c1), (r2, c2) = PAIR_PIXELS
    ax.set(xlabel=f"w1 = W[pixel ({r1}, {c1}), digit {PAIR_DIGIT}]",
           ylabel=f"w2 = W[pixel ({r2}, {c2}), digit {PAIR_DIGIT}]",
           title=f"two weights, the others fixed: {PAIR_STEPS} steps of lr {lr:.3g} (Newton-CG: its own steps)")
    ax.legend(loc="best", fontsize=8)
    return fig


def weight_pair_study(weights, bias, x, labels):
    """Train only the two PAIR weights from a poor start with GD, momentum and Newton-CG; return (figure, metrics).

    The cost is the mean over the first PAIR_IMAGES rows of x (N, 784), labels (N,).

    All start at PAIR_OFFSET from the pair's minimum; GD and momentum with the step 1 / (largest
    curvature there): about the best fixed step for gradient descent, so any speed-up is momentum's.
    Newton-CG takes at most PAIR_STEPS iterations, with Hessian-vector products from tinynet.
    """
    pixels = [row * SIDE + col for row, col in PAIR_PIXELS]
    pair = WeightPair(weights, bias, x[:PAIR_IMAGES], labels[:PAIR_IMAGES], pixels, PAIR_DIGIT)
    minimum = pair.minimum()
    curvatures = np.linalg.eigvalsh(pair.hessian(minimum))
    lr = 1 / curvatures[-1]
    start = minimum + PAIR_OFFSET
    paths = {"gradient descent": pair.path(start, lr, 0.0, PAIR_STEPS),
             f"momentum {MOMENTUM}": pair.path(start, lr, MOMENTUM, PAIR_STEPS),
             "Newton-CG (tinynet hvp)": pair.newton_cg_path(start, PAIR_STEPS)}
    metrics = {"pixels": PAIR_PIXELS, "digit": PAIR_DIGIT, "learning_rate": lr, "steps": PAIR_STEPS,
               "condition_number": curvatures[-1] / curvatures[0], "minimum": minimum,
               "minimum_cost": pair.cost(*minimum), "start_cost": pair.cost(*start),
               "final_distance": {name: np.linalg.norm(path[-1] - minimum) for name, path in paths.items()},
               "final_cost": {name: pair.cost(*path[-1]) for name, path in paths.items()},
               "newton_cg_iterations": len(paths["Newton-CG (tinynet hvp)"]) - 1,
               "hvp_vs_hand_hessian": np.abs(pair.hessian_vector_product(start, np.array([1.0, -1.0]))
                                             - pair.hessian(start) @ np.array([1.0, -1.0])).max()}
    return contour_figure(pair, minimum, paths, lr), metrics


def summary(metrics, table):
    gd, mo, pair = metrics["gradient_descent"], metrics["momentum"], metrics["weight_pair"]
    newton = metrics["newton_cg"]
    start_distance = np.linalg.norm(PAIR_OFFSET)
    gd_distance, mo_distance, newton_distance = pair["final_distance"].values()
    return f"""# MNIST, no hidden layer: hand-written gradient, gradient descent vs momentum (seed 002)

o = Wᵀx + b, p = softmax(o), cost = -Σ log p_label over the images; dC/dW = x(p - y)ᵀ.

## Gradient check ({CHECK_IMAGES} training images, float64, at the initial weights)

{table}

The hand-written and autodiff gradients agree to rounding. The central difference has a
truncation error of order h² (large h) and a rounding error of order ε·C/h (small h), so it
is best in between: `step_sweep.png` shows the "V" for every step from 1e-1 to 1e-10
(tinynet.gradcheck's sweep; dashed, the checker's round-off estimate).

## Training ({metrics['steps']} steps of {metrics['batch_size']} images, lr {LEARNING_RATE} per unit of mean cost)

| | train accuracy | test accuracy | seed 002 test accuracy |
|---|---|---|---|
| gradient descent | {gd['train_accuracy']:.4f} | {gd['test_accuracy']:.4f} | 0.9257 |
| momentum {MOMENTUM} | {mo['train_accuracy']:.4f} | {mo['test_accuracy']:.4f} | 0.9267 |
| Newton-CG, {newton['iterations']} iterations on {newton['images']} images | {newton['train_accuracy']:.4f} \
| {newton['test_accuracy']:.4f} | |

Newton-CG (SciPy) takes the full model's 7,850 parameters from the same start; each of its
{newton['hvp_calls']} Hessian-vector products is tinynet's double backward (`tn.hvp`), so the
Hessian (7,850 x 7,850) is never formed. After {newton['iterations']} iterations its mean training cost
is {newton['train_loss']:.3f}, against {gd['train_loss']:.3f} for gradient descent after
{metrics['steps']} steps ({newton['hvp_calls'] / max(newton['iterations'], 1):.0f} Hessian-vector products per
iteration, each about the cost of two gradients).

## Two weights on the cost surface

The weights from pixels {PAIR_PIXELS[0]} and {PAIR_PIXELS[1]} into digit {PAIR_DIGIT}, all other weights fixed at their
trained values, the cost taken over {PAIR_IMAGES} training images. All three runs start {start_distance:.2f} away
from the pair's minimum; gradient descent and momentum with the step 1/(largest curvature) =
{pair['learning_rate']:.3g}. Neighbouring pixels are inked together, so the cost is a long narrow valley
(condition number {pair['condition_number']:.0f}). After {pair['steps']} steps the distance to the minimum is
{gd_distance:.3f} with gradient descent and {mo_distance:.3f} with momentum: gradient descent crosses the
valley at once and then crawls along its floor; momentum gathers speed along the floor, overshoots the
minimum and swings back. Newton-CG (SciPy, with Hessian-vector products by tinynet's double backward)
uses the curvature: {pair['newton_cg_iterations']} iterations
end {newton_distance:.1e} from the minimum.

## Second derivatives

tinynet's Hessian-vector product (`tn.hvp`: the gradient taken with create_graph, differentiated
again) against the hand-derived Hessian of the mean cost, H = (1/N) Σ x xᵀ ⊗ (diag p - p pᵀ), in float64:
largest difference {metrics['hessian_check']:.1e} of the largest |H v| over 3 random v at the initial
weights; on the two-weight slice, {pair['hvp_vs_hand_hessian']:.1e}.
"""


def compare_optimizers(weights, bias, train_split, splits, steps, batch_size, results):
    """Train from (weights, bias) with gradient descent and with momentum; each run's health panel goes to results.

    Returns {name: (weights, bias)}, the curves of both on one step axis ("GD train_loss", ...)
    and {name: final train/test loss and accuracy}.
    """
    trained, merged, finals = {}, {}, {}
    for name, label, momentum in (("gradient_descent", "GD", 0.0), ("momentum", f"momentum {MOMENTUM}", MOMENTUM)):
        *trained[name], curves = descend(weights, bias, *train_split, momentum, steps, batch_size, splits,
                                         health=functools.partial(results.health, run=name))
        merged["step"] = curves.pop("step")
        merged.update({f"{label} {key}": values for key, values in curves.items()})
        finals[name] = {key: values[-1] for key, values in curves.items()}
        print(f"{name}: train accuracy {finals[name]['train_accuracy']:.4f}, "
              f"test accuracy {finals[name]['test_accuracy']:.4f}")
    return trained, merged, finals


def newton_cg(weights, bias, train_split, splits, iterations):
    """Train (weights, bias) by SciPy's Newton-CG on the mean cost over NEWTON_IMAGES training images, float64.

    The gradient is the hand-written one; each Hessian-vector product is tinynet's double backward
    (tn.hvp) through matmul and cross-entropy, of the 7,850 parameters flattened into one vector.
    Returns (weights, bias, {"<split>_loss", "<split>_accuracy", "iterations", "hvp_calls", "images"}).
    """
    x, labels = (array[:NEWTON_IMAGES] for array in train_split)
    x, images, shape = x.astype(np.float64), tn.Tensor(x.astype(np.float64)), weights.shape

    def unpack(theta):
        return theta[:weights.size].reshape(shape), theta[weights.size:]

    def mean_cost(theta):
        return cost(*unpack(theta), x, labels) / len(labels)

    def gradient(theta):
        grad_weights, grad_bias = hand_gradients(*unpack(theta), x, labels)
        return np.concatenate([grad_weights.ravel(), grad_bias]) / len(labels)

    def tinynet_cost(theta):
        return F.cross_entropy(F.matmul(images, theta[:weights.size].reshape(shape)) + theta[weights.size:], labels)

    calls = []

    def hessian_vector_product(theta, v):
        calls.append(1)
        return tn.hvp(tinynet_cost, theta, v)[1].data

    start = np.concatenate([weights.ravel(), bias]).astype(np.float64)
    found = scipy.optimize.minimize(mean_cost, start, jac=gradient, hessp=hessian_vector_product, method="Newton-CG",
                                    options={"maxiter": iterations})
    trained = tuple(part.astype(weights.dtype) for part in unpack(found.x))
    finals = {"iterations": int(found.nit), "hvp_calls": len(calls), "images": len(labels)}
    for split, (split_x, split_labels) in splits.items():
        finals[f"{split}_loss"], finals[f"{split}_accuracy"] = mean_cost_and_accuracy(*trained, split_x, split_labels)
    print(f"newton_cg: {found.nit} iterations, {len(calls)} Hessian-vector products, "
          f"test accuracy {finals['test_accuracy']:.4f}")
    return (*trained, finals)


def curves_figure(merged):
    """Both optimizers' learning curves, on a logarithmic step axis."""
    fig = learning_curves(merged, "no hidden layer")
    for ax in fig.axes:
        ax.set_xscale("symlog", linthresh=1)
        ax.set_xlabel("step (logarithmic beyond 1)")
    return fig


def main(argv=None):
    parser = experiment_parser("mnist_softmax", __doc__)
    parser.add_argument("--batch-size", type=bounded(int, 1, 60000), default=BATCH_SIZE,
                        help=f"images per step (default {BATCH_SIZE})")
    args = parser.parse_args(argv)
    steps, batch_size = (20, 100) if args.quick else (STEPS, args.batch_size)
    rng = np.random.default_rng(args.seed)
    mnist = load_mnist(per_digit=100 if args.quick else None)
    order = rng.permutation(len(mnist.train_y))
    train_x, train_y = unit_scale(mnist.train_x)[order], mnist.train_y[order]
    if not 0 < batch_size <= len(train_y):
        parser.error(f"--batch-size must lie in [1, {len(train_y)}], got {batch_size}")
    with Results(args.out, args, steps=steps, batch_size=batch_size, learning_rate=LEARNING_RATE,
                 momentum=MOMENTUM) as results:
        results.metrics.update(steps=steps, batch_size=batch_size)
        weights = (0.01 * rng.standard_normal((PIXELS, DIGITS))).astype(np.float32)
        bias = np.zeros(DIGITS, np.float32)
        checked = rng.choice(len(train_y), min(CHECK_IMAGES, len(train_y)), replace=False)
        rows, sweep = gradient_check(weights, bias, train_x[checked], train_y[checked], rng)
        table, worst = gradient_table(rows)
        print(table)
        labels = [f"{divmod(row['pixel'], SIDE)} -> {row['digit']}" for row in rows]
        results.figure(step_sweep_figure(SWEEP_STEPS, *sweep, labels, "dC/dW: central difference vs backward"),
                       "step_sweep")
        results.metrics["gradient_check"] = {"rows": rows, "autodiff_max_relative_error": max_autodiff_error(rows),
                                             "finite_difference_max_relative_error": worst}
        results.metrics["hessian_check"] = hessian_check(weights, bias, train_x[checked], train_y[checked], rng)
        splits = {"train": (train_x, train_y), "test": (unit_scale(mnist.test_x), mnist.test_y)}
        trained, curves, finals = compare_optimizers(weights, bias, (train_x, train_y), splits, steps, batch_size,
                                                     results)
        results.metrics.update(finals, curves=curves)
        *_, results.metrics["newton_cg"] = newton_cg(weights, bias, (train_x, train_y), splits,
                                                      2 if args.quick else NEWTON_ITERATIONS)
        results.figure(curves_figure(curves), "learning_curves")
        gd_weights, gd_bias = trained["gradient_descent"]
        results.figure(image_grid(gd_weights.T.reshape(DIGITS, SIDE, SIDE), 2, 5, cmap="coolwarm", colorbar=True,
                                  titles=[f"digit {digit}" for digit in range(DIGITS)], symmetric=True,
                                  suptitle="W[:, digit] as 28x28 images, after gradient descent"), "weights")
        figure, results.metrics["weight_pair"] = weight_pair_study(gd_weights, gd_bias, train_x, train_y)
        results.figure(figure, "weight_paths")
        results.summary(summary(results.metrics, table))


if __name__ == "__main__":
    run_main(main)
