"""The same computations in PyTorch (CPU), imported only when torch is installed.

Inputs and results are NumPy arrays so that the benchmark can compare every implementation
with the same code. Padding ((top, bottom), (left, right)) is applied with torch.nn.functional.pad
when it is asymmetric, since torch's conv2d only takes symmetric padding.
"""
import numpy as np
import torch
import torch.nn.functional as TF

from tinynet.models.face_resnet import BLOCKS, MEAN_RGB


def as_tensor(array, requires_grad=False):
    return torch.from_numpy(np.ascontiguousarray(array)).requires_grad_(requires_grad)


def padded(x, pads):
    """x and the symmetric padding left for the op, after padding asymmetric sides explicitly."""
    (top, bottom), (left, right) = pads
    if top == bottom and left == right:
        return x, (top, left)
    return TF.pad(x, (left, right, top, bottom)), (0, 0)


def conv2d(x, weight, stride, pads, dilation, groups, grad_out=None):
    """(out,) or, when grad_out is given, (out, grad_x, grad_weight)."""
    with torch.set_grad_enabled(grad_out is not None):
        x_t, weight_t = as_tensor(x, grad_out is not None), as_tensor(weight, grad_out is not None)
        source, padding = padded(x_t, pads)
        out = TF.conv2d(source, weight_t, None, stride, padding, dilation, groups)
        if grad_out is None:
            return (out.numpy(),)
        out.backward(as_tensor(grad_out))
        return out.detach().numpy(), x_t.grad.numpy(), weight_t.grad.numpy()


def max_pool2d(x, kernel, stride, pads, grad_out):
    """(out, grad_x); padding must be symmetric here."""
    x_t = as_tensor(x, True)
    source, padding = padded(x_t, pads)
    out = TF.max_pool2d(source, kernel, stride, padding)
    out.backward(as_tensor(grad_out))
    return out.detach().numpy(), x_t.grad.numpy()


def local_response_norm(x, radius, bias, alpha, beta, grad_out):
    """(out, grad_x) with TensorFlow's LRN: torch divides alpha by the window size, so it is multiplied back."""
    x_t = as_tensor(x, True)
    size = 2 * radius + 1
    out = TF.local_response_norm(x_t, size, alpha * size, beta, bias)
    out.backward(as_tensor(grad_out))
    return out.detach().numpy(), x_t.grad.numpy()


class Product:
    """a * b on tensors made once (the case times the op, not the conversion of its inputs): `forward` without a
    graph, `forward_backward` with one and the gradients of its sum."""

    def __init__(self, a, b, requires_grad):
        self.a, self.b = as_tensor(a, requires_grad), as_tensor(b, requires_grad)

    def forward(self):
        return ((self.a * self.b).numpy(),)

    def forward_backward(self):
        out = self.a * self.b
        out.sum().backward()
        grads = self.a.grad.numpy(), self.b.grad.numpy()
        self.a.grad = self.b.grad = None  # as zero_grad: the next call's gradients are not added to these
        return out.detach().numpy(), *grads


class MLP:
    """784-300-10 (any sizes) with ReLU (or activation: 'tanh'), trained by SGD on softmax cross-entropy."""

    def __init__(self, params, lr, activation="relu"):
        self.params = [as_tensor(p.copy(), True) for p in params]
        self.optimizer = torch.optim.SGD(self.params, lr=lr)
        self.activation = getattr(torch, activation)

    def step(self, x, labels):
        w1, b1, w2, b2 = self.params
        hidden = self.activation(TF.linear(as_tensor(x), w1, b1))
        loss = TF.cross_entropy(TF.linear(hidden, w2, b2), as_tensor(labels))
        loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad()  # after the step: the gradients (the CNN's 35M) do not outlive it
        return loss.item()


class CNN:
    """(conv 'same' -> ReLU -> max pool 2x2 'same') x 2 -> linear -> ReLU -> linear, trained by SGD on cross-entropy.

    params as in numpy_reference.cnn_sgd_step; 'same' follows TensorFlow (the odd padded pixel after),
    and the 2x2 pooling of an odd size keeps its last pixel (ceil_mode, as padding with -inf).
    """

    def __init__(self, params, lr):
        self.params = [as_tensor(p.copy(), True) for p in params]
        self.optimizer = torch.optim.SGD(self.params, lr=lr)

    def step(self, x, labels):
        hidden = as_tensor(x)
        for weight, bias in (self.params[0:2], self.params[2:4]):
            total = weight.shape[2] - 1
            hidden = TF.pad(hidden, (total // 2, total - total // 2) * 2)
            hidden = TF.max_pool2d(TF.relu(TF.conv2d(hidden, weight, bias)), 2, 2, ceil_mode=True)
        w1, b1, w2, b2 = self.params[4:]
        logits = TF.linear(TF.relu(TF.linear(hidden.flatten(1), w1, b1)), w2, b2)
        loss = TF.cross_entropy(logits, as_tensor(labels))
        loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad()  # after the step: the gradients (35M for the linear layer) do not outlive it
        return loss.item()


def face_resnet_forward(weights, images, grad_out=None):
    """numpy_reference.face_resnet_forward in PyTorch (every padding here is symmetric): descriptors (N, 128), or
    with grad_out (N, 128) (descriptors, d <descriptors, grad_out> / d images), the weights fixed."""
    def conv_scale(x, prefix, stride, padding):
        weight = as_tensor(weights[f"{prefix}/conv/filters"].transpose(3, 2, 0, 1))
        out = TF.conv2d(x, weight, as_tensor(weights[f"{prefix}/conv/bias"]), stride, padding)
        return out * channel(f"{prefix}/scale/weights") + channel(f"{prefix}/scale/biases")

    def channel(name):
        return as_tensor(weights[name]).reshape(1, -1, 1, 1)

    with torch.set_grad_enabled(grad_out is not None):
        images_t = as_tensor(images, grad_out is not None)
        x = (images_t - as_tensor(MEAN_RGB).reshape(1, 3, 1, 1)) / 256
        x = TF.max_pool2d(TF.relu(conv_scale(x, "conv32_down", 2, 0)), 3, 2)
        for name in BLOCKS:
            down = name.endswith(("_down", "_down_out"))
            out = conv_scale(TF.relu(conv_scale(x, f"{name}/conv1", 2 if down else 1, 0 if down else 1)),
                             f"{name}/conv2", 1, 1)
            shortcut = x
            if down:
                shortcut = TF.pad(TF.avg_pool2d(x, 2, 2), (0, 0, 0, 0, 0, out.shape[1] - x.shape[1]))
                out = TF.pad(out, (0, shortcut.shape[3] - out.shape[3], 0, shortcut.shape[2] - out.shape[2]))
            x = TF.relu(out + shortcut)
        descriptors = x.mean(dim=(2, 3)) @ as_tensor(weights["fc"])
        if grad_out is None:
            return descriptors.numpy()
        descriptors.backward(as_tensor(grad_out))
        return descriptors.detach().numpy(), images_t.grad.numpy()
