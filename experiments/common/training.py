"""Mini-batches, a training loop with learning curves, and accuracy."""
import contextlib
import itertools

import numpy as np
from tqdm import tqdm

import tinynet as tn

HEALTH_RECORDS = 20  # a monitored run records its health about this many times (every steps // 20 steps)
EVAL_BATCH_SIZE = 1000  # images a forward pass without a graph takes at once, by default


def minibatches(n, batch_size, rng):
    """Yield index arrays covering range(n) in a random order, batch_size at a time."""
    order = rng.permutation(n)
    for start in range(0, n, batch_size):
        yield order[start:start + batch_size]


def predict(model, x, batch_size=EVAL_BATCH_SIZE):
    """model(x) in evaluation mode without a graph, batch by batch. x: (N, ...) -> (N, ...)."""
    was_training = model.training
    model.eval()
    with tn.no_grad():
        outputs = [model(tn.Tensor(x[i:i + batch_size])).data for i in range(0, len(x), batch_size)]
    model.train(was_training)
    return np.concatenate(outputs)


def accuracy(scores, labels):
    """Fraction of correct predictions. scores: (N, C) class scores, predicted class = argmax;
    or (N, 1) logits of a binary classifier, predicted class = (logit > 0). labels: (N,)."""
    predicted = scores[:, 0] > 0 if scores.shape[1] == 1 else np.argmax(scores, axis=1)
    return float(np.mean(predicted == labels))


def evaluate(model, loss_fn, splits, batch_size=EVAL_BATCH_SIZE):
    """{split: (loss, accuracy)} of the model on each (x, y) in splits, its scores predicted batch_size at a time."""
    results = {}
    for name, (x, y) in splits.items():
        scores = predict(model, x, batch_size)
        results[name] = (float(loss_fn(tn.Tensor(scores), y).item()), accuracy(scores, y))
    return results


@contextlib.contextmanager
def monitored(model, optimizer, steps, health):
    """A tn.monitor of model and optimizer that records HEALTH_RECORDS times over a run of `steps` steps, handed to
    health(monitor) when the block ends; with health None, the block gets None and nothing is watched."""
    if health is None:
        yield None
        return
    with tn.monitor(model, optimizer, every=max(steps // HEALTH_RECORDS, 1)) as monitor:
        yield monitor
    health(monitor)


def train(model, optimizer, loss_fn, x, y, steps, batch_size, rng, eval_splits, eval_every=100, progress=True,
          batches=None, eval_loss_fn=None, health=None, eval_batch_size=EVAL_BATCH_SIZE):
    """Run `steps` optimizer steps on random mini-batches of (x, y).

    loss_fn(outputs, labels) -> scalar Tensor. eval_splits: {name: (x, y)} evaluated every
    eval_every steps and at the end, with eval_loss_fn (default loss_fn), eval_batch_size images at a time.
    batches: an iterator of index arrays into x to train on instead of shuffled epochs of batch_size.
    health: None, or a function given the run's tn.monitor when training ends (e.g. Results.health);
    the monitor records HEALTH_RECORDS times over the run, and the first batch's loss by
    eval_loss_fn (the plain data loss, to compare with ln(classes)).
    Returns the learning curves: {"step": [...], "<split>_loss": [...], "<split>_accuracy": [...]}.
    """
    curves = {"step": []}

    def record(step):
        curves["step"].append(step)
        for name, (loss, acc) in evaluate(model, eval_loss_fn or loss_fn, eval_splits, eval_batch_size).items():
            curves.setdefault(f"{name}_loss", []).append(loss)
            curves.setdefault(f"{name}_accuracy", []).append(acc)

    def take_step(batch, monitor):
        """One optimizer step on x[batch] (monitor: None, or the tn.monitor to give this batch's loss as the initial
        one). The gradients are cleared after the update and the graph goes when this returns, so neither is held
        through the next step's forward or an evaluation (seed 004: the fc layer's 139 MB weight gradient, and
        ~80 MB of graph; issue 30)."""
        outputs = model(tn.Tensor(x[batch]))
        loss = loss_fn(outputs, y[batch])
        if monitor is not None:
            with tn.no_grad():
                monitor.record_initial_loss((eval_loss_fn or loss_fn)(outputs, y[batch]).item(), outputs.shape[1])
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()

    if batches is None:
        batches = (batch for _ in itertools.count() for batch in minibatches(len(x), batch_size, rng))
    optimizer.zero_grad()  # gradients left from before must not add into the first step's
    with monitored(model, optimizer, steps, health) as monitor:
        for step in tqdm(range(steps), desc="training", disable=not progress, mininterval=1.0):
            if step % eval_every == 0:
                record(step)
            take_step(next(batches), monitor if step == 0 else None)
    record(steps)
    return curves
