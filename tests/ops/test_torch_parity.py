"""A differential test against PyTorch CPU (the optional `bench` extra): random programs of 1-4 ops over the
op catalogue, and random convolutions and poolings, compared in float64 for the output and every input's gradient,
and (double backward) for every input's second derivative along a random direction; and the same programs,
convolutions and poolings under tinynet.func's transforms against torch.func's (jvp, vjp, jacfwd, jacrev).

Skipped when torch is not installed. TINYNET_PARITY_EXAMPLES=n runs n programs per test (default 100); with
`-s` the largest differences seen (relative, or absolute below 1) are printed at the end.
"""
import math
import os

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinynet as tn
from strategies import seeds
from tinynet import functional as F

torch = pytest.importorskip("torch")
TF = torch.nn.functional
EXAMPLES = int(os.environ.get("TINYNET_PARITY_EXAMPLES", 100))
TOLERANCE = {"rtol": 1e-7, "atol": 1e-9}
largest = {"programs": 0, "output": 0.0, "gradient": 0.0, "second derivative": 0.0}
WITHOUT_DOUBLE_BACKWARD = {"gelu"}
# Spreads where the comparison means nothing, so programs avoid them. layer_norm's and std's second derivatives
# hold the cube of the spread sigma (d sigma^-1 / d var = -sigma^-3 / 2): with values past cbrt(largest float64) it
# over- or underflows and both libraries' second derivatives are wrong (rpow^3 -> layer_norm, sigma = 5e151:
# PyTorch -1e3, tinynet -3e6, mpmath 0). std's gradient (x - mean) / ((n - 1) std) divides deviations that carry a
# rounding of about eps * max|x| by std: below eps / rtol * max|x| the spread is round-off (values equal in exact
# arithmetic) and both gradients are noise; at exactly 0 std is not differentiable (tinynet and PyTorch give 0, and
# PyTorch's double backward NaN; test_conventions pins the 0).
LARGEST_SPREAD = np.cbrt(np.finfo(np.float64).max)
ROUNDED_SPREAD = np.finfo(np.float64).eps / TOLERANCE["rtol"]


@pytest.fixture(scope="module", autouse=True)
def report_largest_differences():
    yield
    print(f"\nPyTorch parity: {largest['programs']} programs, largest difference of an output "
          f"{largest['output']:.3g}, of a gradient {largest['gradient']:.3g}, of a second derivative "
          f"{largest['second derivative']:.3g}")


def positive(x):
    return x * x + 0.5


def unary(ours, theirs):
    return lambda draw, rng, shape: (ours, theirs, [])


def with_axis(ours, theirs):
    """A reduction over a drawn axis (None, one axis, or several; negatives too) with or without keepdims."""
    def build(draw, rng, shape):
        ndim = len(shape)
        axis = draw(st.none() | st.integers(-ndim, ndim - 1)
                    | st.lists(st.integers(-ndim, ndim - 1), min_size=1, max_size=ndim,
                               unique_by=lambda a: a % ndim).map(tuple))
        keepdims = draw(st.booleans())
        torch_axis = tuple(range(ndim)) if axis is None else axis
        return (lambda x: ours(x, axis, keepdims=keepdims), lambda x: theirs(x, torch_axis, keepdim=keepdims), [])
    return build


def one_axis(ours, theirs):
    def build(draw, rng, shape):
        axis = draw(st.integers(-len(shape), len(shape) - 1))
        return lambda x: ours(x, axis), lambda x: theirs(x, axis), []
    return build


def binary(ours, theirs, transform=lambda b: b):
    """With a second input whose shape broadcasts against x's (leading axes dropped, sizes set to 1)."""
    def build(draw, rng, shape):
        kept = shape[draw(st.integers(0, len(shape))):]
        other = tuple(size if draw(st.booleans()) else 1 for size in kept)
        first = draw(st.booleans())  # which side x is on
        order = (lambda f: lambda x, b: f(x, transform(b))) if first else (lambda f: lambda x, b: f(transform(b), x))
        return order(ours), order(theirs), [rng.standard_normal(other)]
    return build


def permutation(draw, rng, shape):
    axes = [a - len(shape) if draw(st.booleans()) else a for a in draw(st.permutations(range(len(shape))))]
    return lambda x: F.transpose(x, axes), lambda x: x.permute(*axes), []


def matmul(draw, rng, shape):
    columns = draw(st.integers(1, 3))
    return F.matmul, torch.matmul, [rng.standard_normal((shape[-1], columns) if draw(st.booleans()) else shape[-1:])]


def join(ours, theirs):
    def build(draw, rng, shape):
        axis = draw(st.integers(-len(shape), len(shape) - 1))
        return lambda x, b: ours([x, b], axis), lambda x, b: theirs([x, b], axis), [rng.standard_normal(shape)]
    return build


def pad(draw, rng, shape):
    widths = [(draw(st.integers(0, 2)), draw(st.integers(0, 2))) for _ in shape]
    flat = [w for pair in reversed(widths) for w in pair]  # PyTorch lists the last axis first
    return lambda x: F.pad(x, widths), lambda x: TF.pad(x, flat), []


def index(draw, rng, shape):
    rows = rng.integers(0, shape[0], size=draw(st.integers(1, 4)))  # repeats: gradients add up
    if len(shape) == 1:
        return lambda x: x[rows], lambda x: x[torch.from_numpy(rows)], []
    return lambda x: x[rows, ..., ::2], lambda x: x[torch.from_numpy(rows), ..., ::2], []


def where(draw, rng, shape):
    return (lambda x, b: F.where(x.data > 0, x, b), lambda x, b: torch.where(x > 0, x, b),
            [rng.standard_normal(shape)])


def torch_binary_cross_entropy(probabilities, target, reduction):
    """PyTorch's binary_cross_entropy written as tinynet's, with torch.log of probabilities clamped to [e^-100, 1]: the
    same values as TF.binary_cross_entropy (checked here) but exact derivatives. TF.binary_cross_entropy's backward
    regularises them with eps = 1e-12: (p - y) / max(p (1 - p), eps), and (p + eps)^2 (1 - p + eps)^2 as the second
    derivative's denominator, a relative change of 2 eps / (1 - p) that cancellation in the chain rule can amplify past
    the tolerance (at p = 1 - 1.2e-6 PyTorch's second derivatives were 1e-4 off, tinynet's within 2e-14 of mpmath)."""
    floor = math.exp(-100)
    losses = -(target * torch.log(probabilities.clamp(min=floor))
               + (1 - target) * torch.log((1 - probabilities).clamp(min=floor)))
    return {"mean": torch.mean, "sum": torch.sum, "none": lambda loss: loss}[reduction](losses)


def test_the_binary_cross_entropy_reference_has_pytorchs_values():
    """Both terms are >= 0 (no cancellation), and PyTorch's log1p(-p) differs from log(1 - p) by the rounding of
    1 - p, at most eps absolute: the values agree to a few roundings. (Checked here, not inside the programs:
    under torch.func's transforms a tensor has no storage to compare.)"""
    rng = np.random.default_rng(0)
    probabilities = torch.from_numpy(np.concatenate([rng.uniform(0, 1, 200), 1 - np.logspace(-12, -1, 50),
                                                     np.logspace(-12, -1, 50)]))
    target = torch.from_numpy(rng.uniform(0, 1, probabilities.shape[0]))
    eps = np.finfo(np.float64).eps
    np.testing.assert_allclose(torch_binary_cross_entropy(probabilities, target, "none"),
                               TF.binary_cross_entropy(probabilities, target, reduction="none"), rtol=4 * eps, atol=eps)


def unsaturated(x):
    """x, if sigmoid(x) stays far enough below 1 for binary_cross_entropy's log(1 - p) to mean something: 1 - p ~ e^-x
    is computed from p, whose rounding (eps / 2) makes log(1 - p) ~ -x off by about e^x eps / 2 absolutely, past
    the tolerance for x > log(rtol / eps) ~ 20 (at x = 30 the two libraries' losses were 1.6e-2 apart)."""
    assume(not np.any(x.data > math.log(TOLERANCE["rtol"] / np.finfo(np.float64).eps)))
    return x


ELEMENTWISE_LOSSES = {
    "mse": (F.mse_loss, TF.mse_loss), "l1": (F.l1_loss, TF.l1_loss),
    "bce_logits": (F.binary_cross_entropy_with_logits, TF.binary_cross_entropy_with_logits),
    "bce": (lambda x, target, reduction: F.binary_cross_entropy(F.sigmoid(unsaturated(x)), target, reduction=reduction),
            lambda x, target, reduction: torch_binary_cross_entropy(torch.sigmoid(x), target, reduction))}


def losses(draw, rng, shape):
    """A loss of x (any shape): elementwise ones against a constant target, or classification losses on
    x seen as (N, C) logits."""
    target = rng.random(shape)
    reduction = draw(st.sampled_from(["mean", "sum", "none"]))
    kind = draw(st.sampled_from(["mse", "l1", "bce_logits", "bce", "cross_entropy", "nll"]))
    if kind in ELEMENTWISE_LOSSES:
        ours, theirs = ELEMENTWISE_LOSSES[kind]
        return (lambda x: ours(x, target, reduction=reduction),
                lambda x: theirs(x, torch.from_numpy(target), reduction=reduction), [])
    n = shape[0] if len(shape) > 1 else 1
    classes = int(np.prod(shape)) // n
    labels = rng.integers(0, classes, n)
    weight = 0.5 + rng.random(classes) if draw(st.booleans()) else None
    ignore = draw(st.booleans()) and n > 1
    if ignore:
        labels[0] = -100
    options = {"weight": weight, "reduction": reduction}
    torch_options = {"weight": None if weight is None else torch.from_numpy(weight), "reduction": reduction}
    if kind == "nll":
        return (lambda x: F.nll_loss(F.log_softmax(F.reshape(x, (n, classes)), 1), labels, **options),
                lambda x: TF.nll_loss(TF.log_softmax(x.reshape(n, classes), 1), torch.from_numpy(labels),
                                      **torch_options), [])
    smoothing = draw(st.sampled_from([0.0, 0.1]))
    return (lambda x: F.cross_entropy(F.reshape(x, (n, classes)), labels, label_smoothing=smoothing, **options),
            lambda x: TF.cross_entropy(x.reshape(n, classes), torch.from_numpy(labels), label_smoothing=smoothing,
                                       **torch_options), [])


def layer_norm(draw, rng, shape):
    return (lambda x, w, b: F.layer_norm(x, shape[-1:], w, b), lambda x, w, b: TF.layer_norm(x, shape[-1:], w, b),
            [rng.standard_normal(shape[-1:]), rng.standard_normal(shape[-1:])])


CATALOGUE = {
    "neg": unary(F.neg, torch.neg), "exp": unary(F.exp, torch.exp), "tanh": unary(F.tanh, torch.tanh),
    "sigmoid": unary(F.sigmoid, torch.sigmoid), "relu": unary(F.relu, torch.relu), "gelu": unary(F.gelu, TF.gelu),
    "softplus": unary(F.softplus, TF.softplus), "leaky_relu": unary(lambda x: F.leaky_relu(x, 0.1),
                                                                     lambda x: TF.leaky_relu(x, 0.1)),
    "abs": unary(abs, torch.abs), "clamp": unary(lambda x: x.clamp(-0.5, 0.7), lambda x: x.clamp(-0.5, 0.7)),
    "log": unary(lambda x: F.log(positive(x)), lambda x: torch.log(positive(x))),
    "sqrt": unary(lambda x: positive(x).sqrt(), lambda x: positive(x).sqrt()),
    "square": unary(lambda x: x ** 2, lambda x: x ** 2), "cube": unary(lambda x: x ** 3, lambda x: x ** 3),
    "pow0": unary(lambda x: x ** 0, lambda x: x ** 0),
    "pow_negative": unary(lambda x: positive(x) ** -1.5, lambda x: positive(x) ** -1.5),
    "rpow": unary(lambda x: 2.5 ** x, lambda x: 2.5 ** x),
    "constants": unary(lambda x: (0.1 - x) * 0.3 / 0.7 - 0.1, lambda x: (0.1 - x) * 0.3 / 0.7 - 0.1),
    "add": binary(F.add, torch.add), "sub": binary(F.sub, torch.sub), "mul": binary(F.mul, torch.mul),
    "div": binary(F.div, torch.div, positive),
    "tensor_pow": binary(lambda a, b: positive(a) ** b, lambda a, b: positive(a) ** b),
    "where": where, "matmul": matmul,
    "sum": with_axis(F.sum, torch.sum), "mean": with_axis(F.mean, torch.mean), "max": with_axis(F.amax, torch.amax),
    "min": with_axis(F.amin, torch.amin), "var": with_axis(F.var, torch.var), "std": with_axis(F.std, torch.std),
    "softmax": one_axis(F.softmax, TF.softmax), "log_softmax": one_axis(F.log_softmax, TF.log_softmax),
    "unsqueeze": one_axis(F.unsqueeze, torch.unsqueeze), "squeeze": one_axis(F.squeeze, torch.squeeze),
    "flatten": one_axis(lambda x, a: F.flatten(x, a), lambda x, a: torch.flatten(x, a)),
    "transpose": permutation, "T": unary(lambda x: x.T, lambda x: x.permute(*reversed(range(x.ndim)))),
    "expand": unary(lambda x: x.expand(2, *x.shape), lambda x: x.expand(2, *x.shape)),
    "reshape": unary(lambda x: x.reshape(-1), lambda x: x.reshape(-1)),
    "concatenate": join(F.concatenate, torch.cat), "stack": join(F.stack, torch.stack), "pad": pad, "index": index,
    "losses": losses, "layer_norm": layer_norm,
}


def compare(ours, theirs, what):
    # PyTorch's double backward may give a ZeroTensor, which has no storage: .numpy(), even with force=True, reads
    # garbage (pytorch/pytorch#89034), and of a view of one (cat's backward) crashes the process; clone() gives zeros.
    theirs = theirs.detach().clone().numpy()
    np.testing.assert_allclose(ours, theirs, err_msg=what, **TOLERANCE)
    finite = np.isfinite(theirs)
    difference = (np.abs(ours[finite] - theirs[finite]) / np.maximum(np.abs(theirs[finite]), 1)).max(initial=0.0)
    key = "output" if what.startswith("output") else "second derivative" if what.startswith("second") else "gradient"
    largest[key] = max(largest[key], float(difference))


def run_both(build_steps, leaves, rng, second_order=True):
    """Run the program on tinynet and on PyTorch from the same leaf arrays; compare output and gradients
    (and, with second_order, the second derivatives)."""
    ours = [tn.Tensor(leaf, requires_grad=True) for leaf in leaves]
    theirs = [torch.tensor(leaf, requires_grad=True) for leaf in leaves]
    out_ours, out_theirs, leaves_ours, leaves_theirs = build_steps(ours, theirs)
    assume(torch.all(torch.isfinite(out_theirs)))
    compare(out_ours.data, out_theirs, "output")
    grad_out = rng.standard_normal(out_ours.shape)
    out_ours.backward(grad_out)
    out_theirs.backward(torch.from_numpy(np.asarray(grad_out)), retain_graph=second_order)
    for i, (mine, reference) in enumerate(zip(leaves_ours, leaves_theirs)):
        if reference.grad is None:
            assert mine.grad is None or not np.any(mine.grad), f"input {i}: PyTorch has no gradient"
            continue
        compare(np.zeros(mine.shape) if mine.grad is None else mine.grad, reference.grad, f"gradient of input {i}")
    if second_order:
        compare_second_derivatives(out_ours, out_theirs, leaves_ours, leaves_theirs, grad_out, rng)
    largest["programs"] += 1


def compare_second_derivatives(out_ours, out_theirs, leaves_ours, leaves_theirs, grad_out, rng):
    """d <v, d <grad_out, out> / d leaves> / d leaves by double backward on both sides, v random."""
    directions = [rng.standard_normal(leaf.shape) for leaf in leaves_ours]
    first_ours = tn.grad(out_ours, leaves_ours, grad_out, create_graph=True, allow_unused=True)
    first_theirs = torch.autograd.grad(out_theirs, leaves_theirs, torch.from_numpy(np.asarray(grad_out)),
                                       create_graph=True, allow_unused=True)
    along_ours = [F.sum(g * v) for g, v in zip(first_ours, directions) if g is not None and g.requires_grad]
    along_theirs = [torch.sum(g * torch.from_numpy(v)) for g, v in zip(first_theirs, directions)
                    if g is not None and g.requires_grad]
    unused = [None] * len(leaves_ours)  # every first derivative is constant: no second derivative
    second_ours = tn.grad(F.stack(along_ours).sum(), leaves_ours, allow_unused=True) if along_ours else unused
    second_theirs = (torch.autograd.grad(torch.stack(along_theirs).sum(), leaves_theirs, allow_unused=True)
                     if along_theirs else unused)
    for i, (leaf, mine, reference) in enumerate(zip(leaves_ours, second_ours, second_theirs)):
        compare(np.zeros(leaf.shape) if mine is None else mine.data,
                torch.zeros(leaf.shape, dtype=torch.float64) if reference is None else reference,
                f"second derivative of input {i}")


@settings(max_examples=EXAMPLES)
@given(data=st.data(), seed=seeds, shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=2, max_side=4),
       length=st.integers(1, 4))
def test_random_programs_match_pytorch(data, seed, shape, length):
    rng = np.random.default_rng(seed)
    names = data.draw(st.lists(st.sampled_from(sorted(CATALOGUE)), min_size=length, max_size=length), label="ops")

    def build_steps(ours, theirs):
        x, y = ours[0], theirs[0]
        for name in names:
            if x.ndim == 0:
                x, y = x.reshape(1), y.reshape(1)
            step_ours, step_theirs, extras = CATALOGUE[name](data.draw, rng, x.shape)
            extra_ours = [tn.Tensor(e, requires_grad=True) for e in extras]
            extra_theirs = [torch.tensor(e, requires_grad=True) for e in extras]
            ours += extra_ours
            theirs += extra_theirs
            magnitude = np.abs(x.data).max(initial=0.0)
            assume(name not in ("layer_norm", "std") or not magnitude > LARGEST_SPREAD)
            x, y = step_ours(x, *extra_ours), step_theirs(y, *extra_theirs)
            assume(name not in ("var", "std") or x.size == 0 or y.numel() == 0 or bool(torch.all(torch.isfinite(y))))
            assume(name != "std" or bool(np.all(x.data > ROUNDED_SPREAD * magnitude)))
        return x, y, ours, theirs

    run_both(build_steps, [rng.standard_normal(shape)], rng, second_order=not WITHOUT_DOUBLE_BACKWARD & set(names))


@settings(max_examples=EXAMPLES)
@given(seed=seeds, data=st.data())
def test_random_convolutions_and_poolings_match_pytorch(seed, data):
    """PyTorch pads symmetrically and needs pooling padding <= kernel / 2; within that, the same numbers.
    Average pooling with and without the padding's zeros in the mean (count_include_pad)."""
    rng = np.random.default_rng(seed)
    groups = data.draw(st.integers(1, 2))
    channels, out_channels = groups * data.draw(st.integers(1, 2)), groups * data.draw(st.integers(1, 2))
    kernel = (data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3)))
    stride = (data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3)))
    dilation = (data.draw(st.integers(1, 2)), data.draw(st.integers(1, 2)))
    padding = (data.draw(st.integers(0, kernel[0] // 2)), data.draw(st.integers(0, kernel[1] // 2)))
    size = (data.draw(st.integers((kernel[0] - 1) * dilation[0] + 1, 7)),
            data.draw(st.integers((kernel[1] - 1) * dilation[1] + 1, 7)))
    x = rng.standard_normal((data.draw(st.integers(0, 2)), channels) + size)
    weight, bias = rng.standard_normal((out_channels, channels // groups) + kernel), rng.standard_normal(out_channels)

    def conv(ours, theirs):
        return (F.conv2d(*ours, stride, padding, groups=groups, dilation=dilation),
                TF.conv2d(*theirs, stride, padding, dilation, groups), ours, theirs)

    run_both(conv, [x, weight, bias], rng)
    # jvp and vjp only: the jacobians are loops of them, and a convolution's hundreds of elements would be slow
    compare_transforms(lambda *ours: F.conv2d(*ours, stride, padding, groups=groups, dilation=dilation),
                       lambda *theirs: TF.conv2d(*theirs, stride, padding, dilation, groups), [x, weight, bias], rng,
                       jacobians=False)
    pool = data.draw(st.sampled_from(["max", "avg"]))
    count_include_pad = data.draw(st.booleans())

    def pool_ours(x):
        if pool == "max":
            return F.max_pool2d(x, kernel, stride, padding)
        return F.avg_pool2d(x, kernel, stride, padding, count_include_pad=count_include_pad)

    def pool_theirs(x):
        if pool == "max":
            return TF.max_pool2d(x, kernel, stride, padding)
        return TF.avg_pool2d(x, kernel, stride, padding, count_include_pad=count_include_pad)

    run_both(lambda ours, theirs: (pool_ours(ours[0]), pool_theirs(theirs[0]), ours, theirs), [x], rng)
    compare_transforms(pool_ours, pool_theirs, [x], rng, jacobians=False)


@settings(max_examples=EXAMPLES)
@given(data=st.data(), seed=seeds, shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=2, max_side=3),
       length=st.integers(1, 4))
def test_random_programs_match_torch_func(data, seed, shape, length):
    """The same programs as functions of their leaves, under tinynet.func's and torch.func's transforms: jvp, vjp,
    jacfwd and jacrev of every leaf."""
    rng = np.random.default_rng(seed)
    names = data.draw(st.lists(st.sampled_from(sorted(CATALOGUE)), min_size=length, max_size=length), label="ops")
    steps, leaves, x = [], [rng.standard_normal(shape)], tn.Tensor(rng.standard_normal(shape))
    for name in names:
        x = x.reshape(1) if x.ndim == 0 else x
        step_ours, step_theirs, extras = CATALOGUE[name](data.draw, rng, x.shape)
        steps.append((step_ours, step_theirs, len(extras)))
        leaves += extras
        x = step_ours(x, *extras)

    def program(side):
        def run(x, *extras):
            remaining = list(extras)
            for step_ours, step_theirs, count in steps:
                x = x.reshape(1) if x.ndim == 0 else x
                x = (step_ours if side == "ours" else step_theirs)(x, *remaining[:count])
                remaining = remaining[count:]
            return x
        return run

    compare_transforms(program("ours"), program("theirs"), leaves, rng)


def compare_transforms(ours, theirs, leaves, rng, jacobians=True):
    """ours and theirs, one function of the leaves in tinynet and in torch, under tinynet.func's and torch.func's
    transforms: jvp, vjp, and (jacobians) jacfwd and jacrev with respect to every leaf."""
    torch_leaves = tuple(torch.from_numpy(leaf) for leaf in leaves)
    assume(bool(torch.all(torch.isfinite(theirs(*torch_leaves)))))
    tangents = tuple(rng.standard_normal(leaf.shape) for leaf in leaves)
    out, tangent = tn.func.jvp(ours, tuple(leaves), tangents)
    torch_out, torch_tangent = torch.func.jvp(theirs, torch_leaves, tuple(map(torch.from_numpy, tangents)))
    compare(out.data, torch_out, "output")
    compare(tangent.data, torch_tangent, "jvp")
    cotangent = rng.standard_normal(out.shape)
    for i, (mine, reference) in enumerate(zip(tn.func.vjp(ours, *leaves)[1](cotangent),
                                              torch.func.vjp(theirs, *torch_leaves)[1](torch.from_numpy(cotangent)))):
        compare(mine.data, reference, f"vjp of input {i}")
    every_leaf = tuple(range(len(leaves)))
    compare_per_example_gradients(ours, theirs, leaves, cotangent, every_leaf)
    transforms = [(tn.func.jacfwd, torch.func.jacfwd), (tn.func.jacrev, torch.func.jacrev)] if jacobians else []
    for transform, torch_transform in transforms:
        for i, (mine, reference) in enumerate(zip(transform(ours, every_leaf)(*leaves),
                                                  torch_transform(theirs, every_leaf)(*torch_leaves))):
            compare(mine.data, reference, f"{transform.__name__} of input {i}")


def compare_per_example_gradients(ours, theirs, leaves, cotangent, every_leaf):
    """vmap(grad(<f, cotangent>)) over two examples of the first leaf (the others shared) against torch.func's. An
    op that reads its input's values (a clamp's mask) raises inside tinynet's vmap: then there is nothing to compare."""
    examples = np.stack([leaves[0], 0.9 * leaves[0]])
    in_dims = (0,) + (None,) * (len(leaves) - 1)
    torch_examples = [torch.from_numpy(examples), *map(torch.from_numpy, leaves[1:])]
    assume(bool(torch.all(torch.isfinite(torch.func.vmap(theirs, in_dims)(*torch_examples)))))
    try:
        mine = tn.func.vmap(tn.func.grad(lambda *xs: F.sum(ours(*xs) * cotangent), every_leaf), in_dims)(
            examples, *leaves[1:])
    except (RuntimeError, NotImplementedError) as error:
        assert "vmap" in str(error), error
        return
    reference = torch.func.vmap(torch.func.grad(lambda *xs: torch.sum(theirs(*xs) * torch.from_numpy(cotangent)),
                                                every_leaf), in_dims)(*torch_examples)
    for i, (gradient, expected) in enumerate(zip(mine, reference)):
        compare(gradient.data, expected, f"per-example gradient of input {i}")
