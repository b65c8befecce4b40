"""Every op reachable from tinynet.functional, in one small call each: the table the convention tests
(tests/ops/test_conventions.py) and the forward-mode tests (tests/test_forward_mode.py) run through."""
import numpy as np

import tinynet as tn
from tinynet import functional as F

LABELS = np.array([2, 0])


def probabilities(x):
    """x squashed into (0, 1), for binary_cross_entropy."""
    return F.sigmoid(x)


def targets(x):
    """Constant targets in (0, 1) of x's shape and dtype."""
    return np.linspace(0.1, 0.9, x.size, dtype=x.dtype).reshape(x.shape)


def positive(x):
    """x moved into [0.5, inf), for log, sqrt, a divisor."""
    return x * x + 0.5


# name: (function of the input Tensors, the inputs' shapes). Every op reachable from tinynet.functional, in
# small calls; inputs go through `positive` or `probabilities` where the op's domain needs it.
CALLS = {
    "add": (F.add, [(2, 3), (3,)]),
    "sub": (F.sub, [(2, 3), (2, 1)]),
    "mul": (F.mul, [(2, 3), (1, 3)]),
    "div": (lambda a, b: F.div(a, positive(b)), [(2, 3), (2, 3)]),
    "neg": (F.neg, [(2, 3)]),
    "exp": (F.exp, [(2, 3)]),
    "log": (lambda x: F.log(positive(x)), [(2, 3)]),
    "sqrt": (lambda x: F.sqrt(positive(x)), [(2, 3)]),
    "pow_int": (lambda x: F.pow(x, 3), [(2, 3)]),
    "pow_float": (lambda x: F.pow(positive(x), 2.5), [(2, 3)]),
    "pow_zero": (lambda x: F.pow(x, 0), [(2, 3)]),
    "pow_tensor": (lambda x, e: F.pow(positive(x), e), [(2, 3), (2, 3)]),
    "abs": (F.abs, [(2, 3)]),
    "clamp": (lambda x: F.clamp(x, -0.5, 0.5), [(2, 3)]),
    "where": (lambda a, b: F.where(a.data > 0, a, b), [(2, 3), (3,)]),
    "cast": (lambda x: F.cast(x, np.float64 if x.dtype == np.float32 else np.float32), [(2, 3)]),
    "relu": (F.relu, [(2, 3)]),
    "tanh": (F.tanh, [(2, 3)]),
    "sigmoid": (F.sigmoid, [(2, 3)]),
    "gelu": (F.gelu, [(2, 3)]),
    "leaky_relu": (F.leaky_relu, [(2, 3)]),
    "softplus": (lambda x: F.softplus(x * 10, threshold=5), [(2, 3)]),
    "sum": (lambda x: F.sum(x, 1), [(2, 3)]),
    "mean": (F.mean, [(2, 3)]),
    "var": (lambda x: F.var(x, 0), [(2, 3)]),
    "std": (F.std, [(2, 3)]),
    "amax": (lambda x: F.amax(x, 1), [(2, 3)]),
    "amin": (F.amin, [(2, 3)]),
    "max": (lambda x: F.max(x, 0).values, [(2, 3)]),
    "min": (F.min, [(2, 3)]),
    "reshape": (lambda x: F.reshape(x, (3, 2)), [(2, 3)]),
    "transpose": (F.transpose, [(2, 3)]),
    "permute": (lambda x: F.permute(x, (2, 0, 1)), [(2, 3, 2)]),
    "getitem": (lambda x: F.getitem(x, (slice(None), [0, 2, 2])), [(2, 3)]),
    "concatenate": (lambda a, b: F.concatenate([a, b], 1), [(2, 3), (2, 1)]),
    "stack": (lambda a, b: F.stack([a, b]), [(2, 3), (2, 3)]),
    "unsqueeze": (lambda x: F.unsqueeze(x, 1), [(2, 3)]),
    "squeeze": (F.squeeze, [(2, 1, 3)]),
    "expand": (lambda x: F.expand(x, (4, 2, 3)), [(2, 1)]),
    "pad": (lambda x: F.pad(x, (1, 2)), [(2, 3)]),
    "flatten": (F.flatten, [(2, 3, 2)]),
    "matmul": (F.matmul, [(2, 3), (3, 4)]),
    "linear": (F.linear, [(2, 3), (4, 3), (4,)]),
    "log_softmax": (F.log_softmax, [(2, 3)]),
    "softmax": (lambda x: F.softmax(x, 0), [(2, 3)]),
    "cross_entropy": (lambda x: F.cross_entropy(x, LABELS), [(2, 3)]),
    "cross_entropy_smoothed": (lambda x: F.cross_entropy(x, LABELS, label_smoothing=0.1), [(2, 3)]),
    "nll_loss": (lambda x: F.nll_loss(F.log_softmax(x), LABELS), [(2, 3)]),
    "bce_with_logits": (lambda x: F.binary_cross_entropy_with_logits(x, targets(x)), [(2, 3)]),
    "bce": (lambda p, t: F.binary_cross_entropy(probabilities(p), probabilities(t)), [(2, 3), (2, 3)]),
    "mse_loss": (F.mse_loss, [(2, 3), (2, 3)]),
    "l1_loss": (F.l1_loss, [(2, 3), (2, 3)]),
    "dropout": (lambda x: F.dropout(x, 0.5, rng=np.random.default_rng(0)), [(2, 3)]),
    "conv2d": (lambda x, w, b: F.conv2d(x, w, b, padding=1), [(2, 2, 5, 5), (3, 2, 3, 3), (3,)]),
    "max_pool2d": (lambda x: F.max_pool2d(x, 2), [(2, 2, 4, 5)]),
    "avg_pool2d": (lambda x: F.avg_pool2d(x, 3, 2, 1), [(2, 2, 4, 5)]),
    "global_avg_pool2d": (F.global_avg_pool2d, [(2, 2, 4, 5)]),
    "local_response_norm": (lambda x: F.local_response_norm(x, depth_radius=1, alpha=0.5), [(2, 3, 2, 2)]),
    "layer_norm": (lambda x, w, b: F.layer_norm(x, 3, w, b), [(2, 3), (3,), (3,)]),
    "batch_norm": (lambda x, w, b: F.batch_norm(x, weight=w, bias=b, training=True), [(4, 3, 2), (3,), (3,)]),
}


def inputs_of(name, dtype, seed=0):
    rng = np.random.default_rng(seed)
    return [tn.Tensor(rng.standard_normal(shape).astype(dtype), requires_grad=True) for shape in CALLS[name][1]]
