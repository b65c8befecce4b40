"""Is the network training well? The checks of CS231n's "babysitting the learning process" and of
Karpathy's makemore lectures, recorded through hooks while a model trains.

    with tn.monitor(model, optimizer, every=10) as health:
        for step in range(steps):
            ...forward, backward, optimizer.step()...
    health.to_json()

Four things are watched:

- The first loss. A classifier whose C scores start out equal predicts 1/C for every class, and its
  cross-entropy is -ln(1/C) = ln C (ln 2 for one logit and binary cross-entropy). A first loss far above
  ln C means the initial weights make confident, wrong predictions: training first spends its steps
  undoing them.
- Activations, per nn.Tanh, nn.Sigmoid and nn.ReLU module. tanh's gradient is 1 - t^2: below 0.06 once
  |t| > 0.97, so a saturated unit passes almost nothing back. Sigmoid s = (1 + tanh(x/2)) / 2 saturates
  at the same place, |2s - 1| > 0.97. A ReLU unit (a channel: a feature of a Linear output, a filter's
  map of a Conv2d output) that is zero for every example in the batch is dead: its weights get no
  gradient from this batch at all.
- Gradient histograms, per parameter: how the gradients of each layer are spread.
- The update-to-data ratio, per parameter: std(update) / std(parameter) of one step, where the update
  is what the step actually changed (after - before), so it is right for momentum and Adam, whose
  update is not lr * grad. Around 1e-3 is healthy; far below, the layer learns slowly; far above, its
  values are being thrown around. For a parameter of more than SAMPLE values, both standard deviations
  are those of an evenly strided sample of SAMPLE of them (relative error about 1/sqrt(2 SAMPLE), 0.2%),
  so that a 35M-weight layer is not copied whole at every recorded step.

Recording happens every `every` optimizer steps (activations of that step's training-mode forwards,
gradients and update of its step()); between them the hooks only count. Without a monitor there are
no hooks at all, so training pays nothing.
"""
import math

import numpy as np

from .nn import ReLU, Sigmoid, Tanh
from .optim import BLOCK_ELEMENTS

SATURATION = 0.97  # |tanh| above this is saturated: its gradient 1 - t^2 is below 0.06
GRADIENT_BINS = 40
SAMPLE = 100_000  # at most this many values of a parameter give its update ratio and its histogram's range
RANGE_PERCENTILE = 99.5  # the histogram spans +-(this percentile of |gradient|): one outlier does not squash it


def tanh_saturated_fraction(output):
    """The fraction of tanh outputs (any shape) with |t| > SATURATION."""
    return float(np.mean(np.abs(output) > SATURATION))


def sigmoid_saturated_fraction(output):
    """The fraction of sigmoid outputs (any shape) with |2s - 1| > SATURATION: the same places as tanh's."""
    return float(np.mean(np.abs(2 * output - 1) > SATURATION))


def relu_dead_fraction(output):
    """The fraction of units of a ReLU output (N, C, ...) that are zero for every example and position.

    A unit is a channel, axis 1: a feature of (N, features), a filter's map of (N, C, H, W).
    """
    if output.ndim < 2:
        raise ValueError(f"expected a ReLU output of shape (N, C, ...), got {output.shape}")
    ever_positive = np.any(output > 0, axis=tuple(a for a in range(output.ndim) if a != 1))
    return float(1 - np.mean(ever_positive))


def zero_fraction(output):
    """The fraction of outputs (any shape) that are zero (for a ReLU: the inputs that were not positive)."""
    return float(np.mean(output == 0))


def strided_sample(array, size=SAMPLE):
    """At most about `size` values of array (any shape), evenly strided over its flattened values: (<= 2 size,)."""
    flat = array.reshape(-1)
    return flat[::max(1, flat.size // size)]


def update_to_data_ratio(before, after):
    """std(after - before) / std(before) of one parameter (any shape); None when std(before) is 0 (e.g. biases that
    start at zero: there is no scale to compare the update with)."""
    scale = float(np.std(before))
    return float(np.std(after - before)) / scale if scale > 0 else None


def gradient_histogram(grad, bins=GRADIENT_BINS):
    """(counts (bins,), r): a histogram of the values of grad (any shape) in `bins` equal bins over [-r, r].

    r is the RANGE_PERCENTILE percentile of |grad| (of its strided_sample, so that a large layer is
    not sorted); values beyond +-r are counted in the end bins, so the counts add up to grad.size.
    The values are binned BLOCK_ELEMENTS at a time: the bin indices of a whole 35M-value layer would
    be a 280 MB temporary.
    """
    sample = np.abs(strided_sample(grad))
    bound = float(np.percentile(sample, RANGE_PERCENTILE)) or float(sample.max()) or 1.0
    flat, counts = grad.reshape(-1), np.zeros(bins, dtype=np.int64)
    for start in range(0, flat.size, BLOCK_ELEMENTS):
        which = ((flat[start:start + BLOCK_ELEMENTS] + bound) * (bins / (2 * bound))).astype(np.int64)
        counts += np.bincount(np.clip(which, 0, bins - 1, out=which), minlength=bins)
    return counts, bound


ACTIVATION_STATISTICS = {  # what is recorded for each kind of activation module: {name: statistic(output)}
    Tanh: {"saturated": tanh_saturated_fraction},
    Sigmoid: {"saturated": sigmoid_saturated_fraction},
    ReLU: {"dead": relu_dead_fraction, "zero": zero_fraction},
}


class Monitor:
    """Hooks on a model's activation modules and on its optimizer's step, recording every `every` steps.

    What it holds, each list with one entry per recorded step (steps: the indices of those steps, 0 first):
    activations: {"<module name> (<kind>)": {statistic: [fraction or None if the module did not run]}};
    update_ratios: {parameter name: [update-to-data ratio or None if it had no gradient]};
    gradient_histograms: {parameter name: {"steps": [...], "counts": [(bins,) ...], "bounds": [r, ...]}} at the
    recorded steps where the parameter had a gradient, each histogram's bins spanning [-r, r] evenly;
    initial_loss, classes: what record_initial_loss was given first.
    """

    def __init__(self, model, optimizer, every=1):
        if every < 1:
            raise ValueError(f"every must be a positive number of steps, got {every}")
        self.every, self.steps_taken, self.steps = every, 0, []
        self.parameters = [(name, p) for name, p in model.named_parameters()
                           if any(p is q for q in optimizer.params)]
        self.update_ratios = {name: [] for name, _ in self.parameters}
        self.gradient_histograms = {name: {"steps": [], "counts": [], "bounds": []} for name, _ in self.parameters}
        self.activations = {}
        self.initial_loss = self.classes = None
        self._this_step, self._before = {}, {}
        self._handles = [optimizer.register_step_pre_hook(self._before_step),
                         optimizer.register_step_post_hook(self._after_step)]
        for name, module in model.named_modules():
            if type(module) in ACTIVATION_STATISTICS:
                layer = f"{name} ({type(module).__name__})"
                self.activations[layer] = {statistic: [] for statistic in ACTIVATION_STATISTICS[type(module)]}
                self._handles.append(module.register_forward_hook(self._activation_hook(layer)))

    def recording(self):
        """Whether the step under way (the forward before optimizer.step(), and that step) is recorded."""
        return self.steps_taken % self.every == 0

    def record_initial_loss(self, loss, classes):
        """Keep the first loss (a number) given, and the number of classes whose ln it should be near
        (2 for a single logit); later calls are ignored."""
        if self.initial_loss is None:
            self.initial_loss, self.classes = float(loss), max(int(classes), 2)

    def _activation_hook(self, layer):
        """A forward hook computing the layer's statistics on a recorded step's training-mode forward
        (evaluation passes in between are not training)."""
        def hook(module, inputs, output):
            if module.training and self.recording():
                self._this_step[layer] = {name: statistic(np.asarray(output.data))
                                          for name, statistic in ACTIVATION_STATISTICS[type(module)].items()}
        return hook

    def _before_step(self, optimizer, args, kwargs):
        """The step pre-hook: on a recorded step, each parameter's gradient histogram and a sample of its values."""
        if not self.recording():
            return
        for name, p in self.parameters:
            if p.grad is not None:
                counts, bound = gradient_histogram(np.asarray(p.grad))
                histograms = self.gradient_histograms[name]
                histograms["steps"].append(self.steps_taken)
                histograms["counts"].append(counts)
                histograms["bounds"].append(bound)
                self._before[name] = strided_sample(np.asarray(p.data)).copy()

    def _after_step(self, optimizer, args, kwargs):
        """The step post-hook: on a recorded step, each parameter's update ratio and each layer's statistics
        (None where there were none); then count the step."""
        if self.recording():
            self.steps.append(self.steps_taken)
            for name, p in self.parameters:
                before = self._before.pop(name, None)
                self.update_ratios[name].append(None if before is None else
                                                update_to_data_ratio(before, strided_sample(np.asarray(p.data))))
            for layer, statistics in self.activations.items():
                seen = self._this_step.get(layer, {})
                for statistic, values in statistics.items():
                    values.append(seen.get(statistic))
            self._this_step = {}
        self.steps_taken += 1

    def remove(self):
        """Take every hook off the model and the optimizer (what leaving the `with` block does)."""
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def __enter__(self):
        return self

    def __exit__(self, *exception):
        self.remove()
        return False

    def to_json(self):
        """Everything recorded as plain numbers and lists, for a metrics file, with the parameters' shapes."""
        return {"every": self.every, "steps": list(self.steps), "initial_loss": self.initial_loss,
                "classes": self.classes, "shapes": {name: list(p.shape) for name, p in self.parameters},
                "expected_initial_loss": None if self.classes is None else math.log(self.classes),
                "activations": {layer: {statistic: list(values) for statistic, values in statistics.items()}
                                for layer, statistics in self.activations.items()},
                "update_ratios": {name: list(ratios) for name, ratios in self.update_ratios.items()},
                "gradient_histograms": {name: {"steps": list(h["steps"]), "counts": [c.tolist() for c in h["counts"]],
                                               "bounds": list(h["bounds"])}
                                        for name, h in self.gradient_histograms.items()}}


def monitor(model, optimizer, every=1):
    """Start watching model (an nn.Module) and optimizer's steps: a Monitor, to use in a `with` block or to
    remove() when done. every: record every this many optimizer steps (step 0 first)."""
    return Monitor(model, optimizer, every)
