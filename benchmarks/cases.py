"""The benchmark cases: each one computation with a tinynet, a plain NumPy and (optionally) a
PyTorch implementation, all fed the same float32 inputs and returning their results as NumPy
arrays so that they can be checked against each other before they are timed.
"""
import math
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

import tinynet as tn
from tinynet import functional as F
from tinynet import nn, optim
from tinynet.kernels.conv_choice import recorded_conv_choices
from tinynet.kernels.lrn import lrn_backward_reference, lrn_reference
from tinynet.kernels.windows import output_size, resolve_padding
from tinynet.models import face_resnet
from tinynet.models.alexnet import CONV_LAYERS, INPUT_SIZE

from . import numpy_reference as reference

try:
    from . import torch_reference
except ImportError:
    torch_reference = None

# Targets as tinynet time / PyTorch CPU time (issue 20, tightened by issue 30): every AlexNet and 1-channel 5x5
# convolution, the seed-004 CNN step, the face ResNet's forward and input gradient, the 784-300-10 MLP step (1.3x
# before issue 30); the tiny MLP step's (issue 27), where the per-op cost of the graph core is nearly all of the time.
CONV_TARGET = 1.25
CNN_STEP_TARGET = 0.6
FACE_RESNET_TARGET = 1.0
MLP_TARGET = 1.0
PER_OP_TARGET = 1.0


@dataclass
class Case:
    """name; flops of one run (None when not counted); runners {implementation: () -> tuple of arrays};
    target: the largest acceptable ratio tinynet / torch, or None."""
    name: str
    flops: float | None
    runners: dict = field(default_factory=dict)
    target: float | None = None


@dataclass
class ConvSpec:
    """x: (N, C, H, W), weight: (O, C/groups, kh, kw), stride (h, w), pads ((t, b), (l, r))."""
    name: str
    x_shape: tuple
    weight_shape: tuple
    stride: tuple = (1, 1)
    pads: tuple = ((0, 0), (0, 0))
    groups: int = 1
    dilation: tuple = (1, 1)

    def settings(self):
        return self.stride, self.pads, self.dilation, self.groups

    def flops(self):
        """Multiply-adds of the forward pass, counted as 2 flops each."""
        n_images = self.x_shape[0]
        out_channels, group_channels, kernel_h, kernel_w = self.weight_shape
        out_h, out_w = (output_size(size, k, s, d, *p) for size, k, s, d, p in
                        zip(self.x_shape[2:], self.weight_shape[2:], self.stride, self.dilation, self.pads))
        return 2.0 * n_images * out_channels * out_h * out_w * group_channels * kernel_h * kernel_w


def alexnet_convs(batch, input_size=INPUT_SIZE, channel_divisor=1):
    """ConvSpecs of AlexNet conv1..conv5 ('same' padding) at this batch size, following
    tinynet.models.alexnet: each max pool is 3x3 stride 2 'valid'. channel_divisor shrinks
    the output channels (for a quick run)."""
    specs, channels, size = [], 3, input_size
    for name, (out_channels, kernel, stride, groups, _, pool) in CONV_LAYERS.items():
        out_channels //= channel_divisor
        pads = resolve_padding("same", (size, size), (kernel, kernel), (stride, stride), (1, 1))
        specs.append(ConvSpec(f"AlexNet {name} fwd, batch {batch}", (batch, channels, size, size),
                              (out_channels, channels // groups, kernel, kernel), (stride, stride), pads, groups))
        size = output_size(size, kernel, stride, 1, *pads[0])
        if pool:
            size = output_size(size, 3, 2, 1, 0, 0)
        channels = out_channels
    return specs


def tinynet_conv(x, weight, spec, grad_out=None):
    """tinynet's conv2d through the Tensor API: (out,) or (out, grad_x, grad_weight)."""
    stride, pads, dilation, groups = spec.settings()
    if grad_out is None:
        with tn.no_grad():
            return (F.conv2d(x, weight, None, stride, pads, groups=groups, dilation=dilation).data,)
    x_t, weight_t = tn.Tensor(x, requires_grad=True), tn.Tensor(weight, requires_grad=True)
    out = F.conv2d(x_t, weight_t, None, stride, pads, groups=groups, dilation=dilation)
    out.backward(grad_out)
    return out.data, x_t.grad, weight_t.grad


def numpy_conv(x, weight, spec, grad_out=None):
    out, columns = reference.conv2d_forward(x, weight, *spec.settings())
    if grad_out is None:
        return (out,)
    return (out, *reference.conv2d_backward(grad_out, columns, x.shape, weight, *spec.settings()))


def conv_case(spec, backward, rng, torch_ref):
    """The convolution of spec, forward only or forward + backward (x and weight)."""
    x = rng.standard_normal(spec.x_shape, dtype=np.float32)
    fan_in = np.prod(spec.weight_shape[1:])
    weight = rng.standard_normal(spec.weight_shape, dtype=np.float32) / np.float32(np.sqrt(fan_in))
    grad_out = None
    if backward:
        grad_out = rng.standard_normal(tinynet_conv(x, weight, spec)[0].shape, dtype=np.float32)
    case = Case(spec.name, spec.flops() * (3 if backward else 1), target=CONV_TARGET)
    case.runners["tinynet"] = lambda: tinynet_conv(x, weight, spec, grad_out)
    case.runners["numpy"] = lambda: numpy_conv(x, weight, spec, grad_out)
    if torch_ref:
        case.runners["torch"] = lambda: torch_ref.conv2d(x, weight, *spec.settings(), grad_out=grad_out)
    return case


def tinynet_forward_backward(function, x, grad_out):
    """(out, grad_x) of a one-input tinynet function."""
    x_t = tn.Tensor(x, requires_grad=True)
    out = function(x_t)
    out.backward(grad_out)
    return out.data, x_t.grad


def max_pool_case(shape, kernel, stride, rng, torch_ref):
    """Max pooling fwd + bwd, 'valid' padding; distinct values so every implementation picks the same maximum."""
    x = rng.permutation(np.prod(shape)).reshape(shape).astype(np.float32)
    pads = ((0, 0), (0, 0))
    out, argmax = reference.max_pool_forward(x, (kernel, kernel), (stride, stride), pads)
    grad_out = rng.standard_normal(out.shape, dtype=np.float32)
    case = Case(f"max_pool {kernel}x{kernel}/{stride} fwd+bwd {shape}", None)
    case.runners["tinynet"] = lambda: tinynet_forward_backward(lambda t: F.max_pool2d(t, kernel, stride), x, grad_out)

    def numpy_run():
        out, argmax = reference.max_pool_forward(x, (kernel, kernel), (stride, stride), pads)
        return out, reference.max_pool_backward(grad_out, argmax, x.shape, (kernel, kernel), (stride, stride), pads)

    case.runners["numpy"] = numpy_run
    if torch_ref:
        case.runners["torch"] = lambda: torch_ref.max_pool2d(x, kernel, stride, pads, grad_out)
    return case


def lrn_case(shape, rng, torch_ref, radius=2, bias=1.0, alpha=2e-5, beta=0.75):
    """TensorFlow LRN fwd + bwd with AlexNet's settings."""
    x = rng.standard_normal(shape, dtype=np.float32) * 10
    grad_out = rng.standard_normal(shape, dtype=np.float32)
    settings = (radius, bias, alpha, beta)
    case = Case(f"LRN r={radius} fwd+bwd {shape}", None)
    case.runners["tinynet"] = lambda: tinynet_forward_backward(lambda t: F.local_response_norm(
        t, depth_radius=radius, bias=bias, alpha=alpha, beta=beta), x, grad_out)
    case.runners["numpy"] = lambda: (lrn_reference(x, *settings), lrn_backward_reference(grad_out, x, *settings))
    if torch_ref:
        case.runners["torch"] = lambda: torch_ref.local_response_norm(x, *settings, grad_out)
    return case


def sgd_step_case(name, flops, model, x, labels, numpy_step, torch_class, torch_ref, lr, **model_options):
    """One SGD step on softmax cross-entropy of a tinynet model, a NumPy step function and a torch reference class.

    Each runner returns (loss, *parameters) after its step; all start from the model's weights. model_options
    (the MLP's activation) go to both the NumPy step and the torch class.
    """
    parameters = model.parameters()  # listed once, as torch_reference keeps its list: walking the modules is no step
    numpy_params = [p.data.copy() for p in parameters]  # before any step: every implementation starts here
    optimizer = optim.SGD(parameters, lr=lr)
    case = Case(name, flops)

    def tinynet_step():
        loss = F.cross_entropy(model(tn.Tensor(x)), labels)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()  # after the step, as in torch_reference: the gradients do not outlive it
        return (np.float32(loss.item()), *(p.data for p in parameters))

    case.runners["tinynet"] = tinynet_step
    case.runners["numpy"] = lambda: (numpy_step(numpy_params, x, labels, lr, **model_options), *numpy_params)
    if torch_ref:
        torch_model = getattr(torch_ref, torch_class)(numpy_params, lr, **model_options)  # copies them
        case.runners["torch"] = lambda: (torch_model.step(x, labels), *(p.detach().numpy() for p in torch_model.params))
    return case


def mlp_case(batch, sizes, rng, torch_ref, lr=0.1, activation="relu"):
    """One SGD train step of a sizes[0]-sizes[1]-sizes[2] MLP on softmax cross-entropy; activation 'relu' or 'tanh'
    (named in the case's name when not ReLU)."""
    n_in, n_hidden, n_out = sizes
    x = rng.standard_normal((batch, n_in), dtype=np.float32)
    labels = rng.integers(0, n_out, batch)
    hidden_layer = {"relu": nn.ReLU, "tanh": nn.Tanh}[activation]()
    model = nn.Sequential(nn.Linear(n_in, n_hidden, rng=rng), hidden_layer, nn.Linear(n_hidden, n_out, rng=rng))
    kind = "" if activation == "relu" else f" {activation}"
    case = sgd_step_case(f"MLP {n_in}-{n_hidden}-{n_out}{kind} SGD step, batch {batch}",
                         2.0 * 3 * batch * (n_in * n_hidden + n_hidden * n_out), model, x, labels,
                         reference.mlp_sgd_step, "MLP", torch_ref, lr, activation=activation)
    case.target = MLP_TARGET
    return case


def per_op_cases(rng, torch_ref, shape=(4, 5)):
    """What each op costs beyond its arithmetic (issue 27), the same at every size: a 10-5-2 tanh MLP's SGD step at
    batch 4, and one elementwise product a * b of two `shape` tensors made once, without a graph and with one (the
    gradients of its sum). Each runner returns its results through the Tensor's public `.numpy()`."""
    step = mlp_case(4, (10, 5, 2), rng, torch_ref, activation="tanh")
    step.name += " (per-op overhead)"
    step.flops, step.target = None, PER_OP_TARGET  # a few thousand flops: GFLOP/s would say nothing
    yield step

    a, b = (rng.standard_normal(shape, dtype=np.float32) for _ in range(2))
    constant_a, constant_b = tn.Tensor(a), tn.Tensor(b)
    product = Case(f"elementwise a * b {shape}, no graph (per-op overhead)", None)
    product.runners["tinynet"] = lambda: ((constant_a * constant_b).numpy(),)
    product.runners["numpy"] = lambda: (a * b,)
    if torch_ref:
        product.runners["torch"] = torch_ref.Product(a, b, requires_grad=False).forward
    yield product

    leaf_a, leaf_b = tn.Tensor(a, requires_grad=True), tn.Tensor(b, requires_grad=True)

    def tinynet_forward_backward_of_sum():
        out = leaf_a * leaf_b
        out.sum().backward()
        grads = leaf_a.grad, leaf_b.grad
        leaf_a.grad = leaf_b.grad = None  # as zero_grad: the next call's gradients are not added to these
        return out.numpy(), *grads

    product_graph = Case(f"elementwise a * b {shape}, fwd + bwd of its sum (per-op overhead)", None)
    product_graph.runners["tinynet"] = tinynet_forward_backward_of_sum
    product_graph.runners["numpy"] = lambda: reference.product_forward_backward(a, b)
    if torch_ref:
        product_graph.runners["torch"] = torch_ref.Product(a, b, requires_grad=True).forward_backward
    yield product_graph


def cnn_case(batch, size, channels, kernel, rng, torch_ref, lr=0.01):
    """One SGD step of seed 004's CNN (experiments/cnn_filters.py, without its dropout): (N, 1, size, size) ->
    conv channels[0]@kernel 'same' -> ReLU -> max pool 2 'same' -> conv channels[1]@kernel ... -> fc 1024 -> fc 2.

    The name says which algorithm each convolution runs (tn.conv_algorithm).
    """
    half = math.ceil(size / 2)
    pooled = math.ceil(half / 2)
    model = nn.Sequential(
        nn.Conv2d(1, channels[0], kernel, padding="same", rng=rng), nn.ReLU(), nn.MaxPool2d(2, padding="same"),
        nn.Conv2d(channels[0], channels[1], kernel, padding="same", rng=rng), nn.ReLU(),
        nn.MaxPool2d(2, padding="same"), nn.Flatten(), nn.Linear(channels[1] * pooled * pooled, 1024, rng=rng),
        nn.ReLU(), nn.Linear(1024, 2, rng=rng))
    x = rng.random((batch, 1, size, size), dtype=np.float32)
    labels = rng.integers(0, 2, batch)
    conv_shapes = [((batch, 1, size, size), (channels[0], 1, kernel, kernel)),
                   ((batch, channels[0], half, half), (channels[1], channels[0], kernel, kernel))]
    algorithms = ", ".join(tn.conv_algorithm(*shapes, padding="same").algorithm for shapes in conv_shapes)
    multiply_adds = sum(math.prod(x_shape[2:]) * math.prod(w_shape) for x_shape, w_shape in conv_shapes)  # 'same'
    multiply_adds += channels[1] * pooled * pooled * 1024 + 1024 * 2
    flops = 2.0 * 3 * batch * multiply_adds
    case = sgd_step_case(f"seed-004 CNN {size}x{size} SGD step, batch {batch} (convs: {algorithms})", flops, model,
                         x, labels, reference.cnn_sgd_step, "CNN", torch_ref, lr)
    case.target = CNN_STEP_TARGET
    return case


def face_resnet_weights(rng, widths=(32, 64, 128, 256)):
    """Random weights named and shaped as the face ResNet's file (tinynet.models.face_resnet.load_weights), filters
    HWIO, He-scaled; widths: the stem's and the four stages' channels (smaller for a quick run)."""
    weights, channels = {}, 3

    def conv_scale(prefix, kernel, in_channels, out_channels):
        fan_in = kernel * kernel * in_channels
        weights[f"{prefix}/conv/filters"] = rng.standard_normal((kernel, kernel, in_channels, out_channels),
                                                                dtype=np.float32) * np.float32(np.sqrt(2 / fan_in))
        for name in ("conv/bias", "scale/weights", "scale/biases"):
            weights[f"{prefix}/{name}"] = rng.normal(1.0 if name == "scale/weights" else 0.0, 0.1,
                                                     out_channels).astype(np.float32)

    conv_scale("conv32_down", 7, channels, widths[0])
    channels = widths[0]
    for name in face_resnet.BLOCKS:
        width = widths[[32, 64, 128, 256].index(int(name[4:].split("_")[0]))]
        conv_scale(f"{name}/conv1", 3, channels, width)
        conv_scale(f"{name}/conv2", 3, width, width)
        channels = width
    weights["fc"] = rng.standard_normal((channels, 128), dtype=np.float32) / np.float32(np.sqrt(channels))
    return weights


def conv_algorithms(run):
    """'29 im2col' (each distinct algorithm once with its count, as tn.conv_algorithm says) of the convolutions that
    run() makes; a backward pass runs its forward's algorithms."""
    with recorded_conv_choices() as choices:
        run()
    return ", ".join(f"{n} {name}" for name, n in Counter(choice.algorithm for _, _, choice in choices).items())


def face_resnet_case(batch, rng, torch_ref, widths=(32, 64, 128, 256)):
    """The face ResNet's forward pass (no graph) on random weights and images; the name lists its convolutions'
    algorithms."""
    weights = face_resnet_weights(rng, widths)
    model = face_resnet.FaceResNet(weights)
    images = rng.uniform(0, 255, (batch, 3, face_resnet.INPUT_SIZE, face_resnet.INPUT_SIZE)).astype(np.float32)

    def tinynet_forward():
        with tn.no_grad():
            return (model(tn.Tensor(images)).data,)

    case = Case(f"face ResNet fwd, batch {batch} (convs: {conv_algorithms(tinynet_forward)})", None,
                target=FACE_RESNET_TARGET)
    case.runners["tinynet"] = tinynet_forward
    case.runners["numpy"] = lambda: (reference.face_resnet_forward(weights, images),)
    if torch_ref:
        case.runners["torch"] = lambda: (torch_ref.face_resnet_forward(weights, images),)
    return case


def face_resnet_input_grad_case(rng, torch_ref, widths=(32, 64, 128, 256)):
    """Part 8's input gradient at batch 1: d <descriptors, grad_out> / d image for one (1, 3, 150, 150) image through
    the face ResNet with fixed (random, file-shaped) weights, as experiments/part8_gradients.py takes d score / d
    image (its head's gradient is such a grad_out). Each runner returns (descriptors, grad_image)."""
    weights = face_resnet_weights(rng, widths)
    model = face_resnet.FaceResNet(weights)
    for parameter in model.parameters():
        parameter.requires_grad = False  # frozen, as in part 8: only the image's gradient is computed
    image = rng.uniform(0, 255, (1, 3, face_resnet.INPUT_SIZE, face_resnet.INPUT_SIZE)).astype(np.float32)
    grad_out = rng.standard_normal((1, 128), dtype=np.float32)

    def tinynet_run():
        return tinynet_forward_backward(model, image, grad_out)

    case = Case(f"face ResNet input grad, batch 1 (convs: {conv_algorithms(tinynet_run)})", None,
                target=FACE_RESNET_TARGET)
    case.runners["tinynet"] = tinynet_run
    case.runners["numpy"] = lambda: reference.face_resnet_input_gradient(weights, image, grad_out)
    if torch_ref:
        case.runners["torch"] = lambda: torch_ref.face_resnet_forward(weights, image, grad_out)
    return case


def all_cases(quick=False, seed=0, with_torch=True):
    """The issue's benchmark list; quick=True gives the same kinds of case at tiny sizes (for tests; the per-op
    cases are tiny at any size).

    The cases are made one at a time, as they are asked for, so that only the case being timed holds its arrays
    (the seed-004 CNN's weights alone are 35M floats, held by each implementation). The PyTorch runners are added
    when with_torch is set and torch is importable.
    """
    rng, torch_ref = np.random.default_rng(seed), torch_reference if with_torch else None
    if quick:
        small_conv = ConvSpec("conv2d (4,1,8,8)x(3,1,3,3)", (4, 1, 8, 8), (3, 1, 3, 3))
        alexnet = alexnet_convs(2, input_size=35, channel_divisor=16)
        pool_shape, mlp, cnn, resnet = (2, 6, 9, 9), (20, (12, 8, 3)), (2, 11, (3, 4), 4), (1, (4, 4, 8, 8))
    else:
        small_conv = ConvSpec("conv2d (64,1,32,32)x(32,1,5,5)", (64, 1, 32, 32), (32, 1, 5, 5))
        alexnet = alexnet_convs(1) + alexnet_convs(32)
        pool_shape, mlp, cnn = (32, 96, 57, 57), (500, (784, 300, 10)), (16, 91, (32, 64), 10)
        resnet = (32, (32, 64, 128, 256))
    for kind in ("fwd", "fwd+bwd"):
        yield conv_case(ConvSpec(f"{small_conv.name} {kind}", small_conv.x_shape, small_conv.weight_shape),
                        kind == "fwd+bwd", rng, torch_ref)
    for spec in alexnet:
        yield conv_case(spec, False, rng, torch_ref)
    yield max_pool_case(pool_shape, 3, 2, rng, torch_ref)
    yield lrn_case(pool_shape, rng, torch_ref)
    yield mlp_case(*mlp, rng, torch_ref)
    yield from per_op_cases(rng, torch_ref)
    yield cnn_case(*cnn, rng, torch_ref)
    yield face_resnet_case(resnet[0], rng, torch_ref, resnet[1])
    yield face_resnet_input_grad_case(rng, torch_ref, resnet[1])
