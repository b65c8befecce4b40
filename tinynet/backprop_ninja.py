"""Backprop Ninja: the whole backward pass of the course's digit network (part 1), written by hand.

The network, in the handout's layout (x: (N, 784) images, W0: (784, 300), b0: (300,), W1: (300, 10), b1: (10,)),
with its mean cross-entropy broken into named steps:

    hidden_pre      = x @ W0 + b0                      (N, H)
    hidden          = tanh(hidden_pre)  (or relu)      (N, H)
    logits          = hidden @ W1 + b1                 (N, C)
    log_probs       = log_softmax(logits)              (N, C)
    label_log_probs = log_probs[n, labels[n]]          (N,)
    loss            = -mean(label_log_probs)           ()

`framework_gradients` lets tinynet's backward compute d loss / d each of these tensors; `manual_backward`
computes the same with NumPy alone, one chain-rule step at a time, from the values `forward` gives.
tinynet.compare_gradients says, tensor by tensor, whether the two agree. The assignment's task 6.1
(tinynet.assign) strips manual_backward for the student to write; tutorials/05_backprop_ninja.py walks through it.
"""
import numpy as np

from .ops.loss import log_softmax
from .tensor import Tensor

ACTIVATIONS = ("tanh", "relu")
PARAMETERS = ("W0", "b0", "W1", "b1")
# The order backward reaches them: from the loss back to the first layer's weights.
GRADIENT_NAMES = ("label_log_probs", "log_probs", "logits", "W1", "b1", "hidden", "hidden_pre", "W0", "b0")


def check_activation(activation):
    """ValueError unless activation is one the network knows."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation={activation!r}: use one of {', '.join(ACTIVATIONS)}")


def forward(params, x, activation="tanh") -> dict:
    """The forward pass in NumPy: {hidden_pre (N, H), hidden (N, H), logits (N, C), log_probs (N, C)}.

    params: {W0: (D, H), b0: (H,), W1: (H, C), b1: (C,)} arrays; x: (N, D).
    """
    check_activation(activation)
    hidden_pre = x @ params["W0"] + params["b0"]
    hidden = np.tanh(hidden_pre) if activation == "tanh" else np.maximum(hidden_pre, 0)
    logits = hidden @ params["W1"] + params["b1"]
    return {"hidden_pre": hidden_pre, "hidden": hidden, "logits": logits, "log_probs": log_softmax(logits, axis=1)}


def manual_backward(params, x, labels, activation="tanh") -> dict:
    """d loss / d every tensor of the network, by hand: {name in GRADIENT_NAMES: array of that tensor's shape}.

    params: {W0: (D, H), b0: (H,), W1: (H, C), b1: (C,)}; x: (N, D); labels: (N,) class indices.
    NumPy only, no tinynet: start from d loss / d loss = 1 and apply the chain rule backwards, step by step.
    """
    values = forward(params, x, activation)
    n = len(labels)
    rows = np.arange(n)
    grad_label_log_probs = np.full(n, -1 / n, dtype=values["log_probs"].dtype)  # loss = -mean(...)
    grad_log_probs = np.zeros_like(values["log_probs"])  # picking one entry per row: the rest get nothing
    grad_log_probs[rows, labels] = grad_label_log_probs
    softmax = np.exp(values["log_probs"])
    grad_logits = grad_log_probs - softmax * grad_log_probs.sum(axis=1, keepdims=True)
    grad_hidden = grad_logits @ params["W1"].T
    if activation == "tanh":
        grad_hidden_pre = grad_hidden * (1 - values["hidden"] ** 2)  # tanh' = 1 - tanh^2
    else:
        grad_hidden_pre = grad_hidden * (values["hidden_pre"] > 0)  # ReLU'(0) = 0, as PyTorch has it
    return {"label_log_probs": grad_label_log_probs, "log_probs": grad_log_probs, "logits": grad_logits,
            "W1": values["hidden"].T @ grad_logits, "b1": grad_logits.sum(axis=0), "hidden": grad_hidden,
            "hidden_pre": grad_hidden_pre, "W0": x.T @ grad_hidden_pre, "b0": grad_hidden_pre.sum(axis=0)}


def framework_gradients(params, x, labels, activation="tanh") -> dict:
    """The same gradients as manual_backward, by tinynet's backward: {name in GRADIENT_NAMES: array}.

    The forward pass runs on Tensors, each intermediate keeping its gradient (retain_grad).
    """
    check_activation(activation)
    weights = {name: Tensor(params[name], requires_grad=True) for name in PARAMETERS}
    hidden_pre = Tensor(x) @ weights["W0"] + weights["b0"]
    hidden = hidden_pre.tanh() if activation == "tanh" else hidden_pre.relu()
    logits = hidden @ weights["W1"] + weights["b1"]
    log_probs = logits.log_softmax(axis=1)
    label_log_probs = log_probs[np.arange(len(labels)), labels]
    tensors = {**weights, "hidden_pre": hidden_pre, "hidden": hidden, "logits": logits, "log_probs": log_probs,
               "label_log_probs": label_log_probs}
    for name in ("hidden_pre", "hidden", "logits", "log_probs", "label_log_probs"):
        tensors[name].retain_grad()
    (-label_log_probs.mean()).backward()
    return {name: tensors[name].grad for name in GRADIENT_NAMES}
