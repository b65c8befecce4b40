"""Plain NumPy implementations that the benchmarks compare tinynet against (no Numba, no Tensor).

Each is a straightforward vectorised NumPy version of what tinynet computes: im2col with a
strided window view and one matmul per group for conv2d, window views for max pooling,
and hand-written MLP and CNN steps. (LRN uses the references in tinynet.kernels.lrn: loops over
channels only.) All arrays are NCHW.
"""
import numpy as np

from tinynet.kernels.pool import window_views
from tinynet.kernels.windows import resolve_padding
from tinynet.models.face_resnet import BLOCKS, MEAN_RGB

COLUMNS_BUDGET_BYTES = 128 * 2**20  # the CNN step's im2col columns at once: seed 004's conv2 makes 27 MB an image


def conv_columns(x_padded, kernel, stride, dilation, groups):
    """(G, N*Ho*Wo, C/G*kh*kw) receptive fields of x_padded (N, C, Hp, Wp), one row per output pixel."""
    n_images, channels = x_padded.shape[:2]
    spans = [(k - 1) * d + 1 for k, d in zip(kernel, dilation)]
    windows = np.lib.stride_tricks.sliding_window_view(x_padded, spans, axis=(2, 3))
    windows = windows[:, :, ::stride[0], ::stride[1], ::dilation[0], ::dilation[1]]  # (N, C, Ho, Wo, kh, kw)
    out_h, out_w = windows.shape[2:4]
    grouped = windows.reshape(n_images, groups, channels // groups, out_h, out_w, *kernel)
    return grouped.transpose(1, 0, 3, 4, 2, 5, 6).reshape(groups, n_images * out_h * out_w, -1)


def conv2d_forward(x, weight, stride, pads, dilation, groups):
    """(out (N, O, Ho, Wo), columns) of x (N, C, H, W) with weight (O, C/G, kh, kw)."""
    x_padded = np.pad(x, ((0, 0), (0, 0)) + tuple(pads))
    columns = conv_columns(x_padded, weight.shape[2:], stride, dilation, groups)
    out_channels = weight.shape[0]
    grouped_weight = weight.reshape(groups, out_channels // groups, -1)
    out = columns @ grouped_weight.transpose(0, 2, 1)  # (G, N*Ho*Wo, O/G)
    n_images = x.shape[0]
    spans = [(k - 1) * d + 1 for k, d in zip(weight.shape[2:], dilation)]
    out_h, out_w = ((size - span) // s + 1 for size, span, s in zip(x_padded.shape[2:], spans, stride))
    out = out.reshape(groups, n_images, out_h, out_w, -1).transpose(1, 0, 4, 2, 3)
    return out.reshape(n_images, out_channels, out_h, out_w), columns


def conv2d_backward(grad_out, columns, x_shape, weight, stride, pads, dilation, groups):
    """(grad_x (N, C, H, W), grad_weight (O, C/G, kh, kw)): two matmuls and a strided col2im."""
    return (conv2d_input_gradient(grad_out, x_shape, weight, stride, pads, dilation, groups),
            conv2d_weight_gradient(grad_out, columns, weight.shape, groups))


def conv2d_weight_gradient(grad_out, columns, weight_shape, groups):
    """grad_weight (O, C/G, kh, kw) for grad_out (N, O, Ho, Wo) and the forward's columns: one matmul per group."""
    return (grad_out_rows(grad_out, groups).transpose(0, 2, 1) @ columns).reshape(weight_shape)


def grad_out_rows(grad_out, groups):
    """(G, N*Ho*Wo, O/G): grad_out (N, O, Ho, Wo) with one row per output pixel, as conv_columns lays them out."""
    n_images, _, out_h, out_w = grad_out.shape
    grad_rows = grad_out.reshape(n_images, groups, -1, out_h * out_w).transpose(1, 0, 3, 2)
    return grad_rows.reshape(groups, n_images * out_h * out_w, -1)


def conv2d_input_gradient(grad_out, x_shape, weight, stride, pads, dilation, groups):
    """grad_x (N, C, H, W) of the convolution for grad_out (N, O, Ho, Wo): one matmul and a strided col2im."""
    n_images, out_channels, out_h, out_w = grad_out.shape
    kernel_h, kernel_w = weight.shape[2:]
    grad_columns = grad_out_rows(grad_out, groups) @ weight.reshape(groups, out_channels // groups, -1)
    grad_columns = grad_columns.reshape(groups, n_images, out_h, out_w, -1, kernel_h, kernel_w)
    (top, bottom), (left, right) = pads
    grad_x = np.zeros((n_images, x_shape[1], x_shape[2] + top + bottom, x_shape[3] + left + right), grad_out.dtype)
    for i in range(kernel_h):
        rows = slice(i * dilation[0], i * dilation[0] + (out_h - 1) * stride[0] + 1, stride[0])
        for j in range(kernel_w):
            cols = slice(j * dilation[1], j * dilation[1] + (out_w - 1) * stride[1] + 1, stride[1])
            # One kernel offset at a time from a view: a transposed copy of all the columns would double the peak.
            offset = grad_columns[..., i, j].transpose(1, 0, 4, 2, 3)  # (N, G, C/G, Ho, Wo)
            grad_x[:, :, rows, cols] += offset.reshape(n_images, -1, out_h, out_w)
    return grad_x[:, :, top:top + x_shape[2], left:left + x_shape[3]]


def max_pool_forward(x, kernel, stride, pads):
    """(out (N, C, Ho, Wo), argmax of each window as a flat index into its kh*kw positions)."""
    windows = window_views(x, kernel, stride, pads, -np.inf)
    flat = windows.reshape(*windows.shape[:4], -1)
    argmax = flat.argmax(axis=-1)
    return np.take_along_axis(flat, argmax[..., None], axis=-1)[..., 0], argmax


def max_pool_backward(grad_out, argmax, x_shape, kernel, stride, pads):
    """grad_x (N, C, H, W): each window's gradient added at its maximum, one window offset at a time."""
    (top, bottom), (left, right) = pads
    out_h, out_w = grad_out.shape[2:]
    grad_x = np.zeros((*x_shape[:2], x_shape[2] + top + bottom, x_shape[3] + left + right), grad_out.dtype)
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            routed = np.where(argmax == i * kernel[1] + j, grad_out, 0)
            rows = slice(i, i + (out_h - 1) * stride[0] + 1, stride[0])
            grad_x[:, :, rows, j:j + (out_w - 1) * stride[1] + 1:stride[1]] += routed
    return grad_x[:, :, top:top + x_shape[2], left:left + x_shape[3]]


# Hidden-layer activations of mlp_gradients: name -> (function, its derivative written in terms of its output).
ACTIVATIONS = {"relu": (lambda z: np.maximum(z, 0), lambda hidden: hidden > 0),
               "tanh": (np.tanh, lambda hidden: 1 - hidden * hidden)}


def mlp_gradients(params, x, labels, activation="relu"):
    """(loss, [grad of each param], grad_x) of linear-activation-linear with softmax cross-entropy (mean over the
    batch); activation: a name in ACTIVATIONS.

    params: [w1 (H, D), b1 (H,), w2 (K, H), b2 (K,)]; x: (N, D); labels: (N,) ints.
    """
    w1, b1, w2, b2 = params
    function, derivative = ACTIVATIONS[activation]
    hidden = function(x @ w1.T + b1)
    logits = hidden @ w2.T + b2
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    rows = np.arange(len(labels))
    loss = -log_probs[rows, labels].mean()
    grad_logits = np.exp(log_probs)
    grad_logits[rows, labels] -= 1
    grad_logits /= len(labels)
    grad_hidden = (grad_logits @ w2) * derivative(hidden)
    grads = [grad_hidden.T @ x, grad_hidden.sum(axis=0), grad_logits.T @ hidden, grad_logits.sum(axis=0)]
    return loss, grads, grad_hidden @ w1


def sgd_update(params, grads, lr):
    """param -= lr * grad for each pair, in place; each gradient is scaled in place (no parameter-sized temporary)."""
    for param, grad in zip(params, grads):
        grad *= lr
        param -= grad


def mlp_sgd_step(params, x, labels, lr, activation="relu"):
    """One SGD step of linear-activation-linear with softmax cross-entropy, in place (see mlp_gradients). Returns the
    loss."""
    loss, grads, _ = mlp_gradients(params, x, labels, activation)
    sgd_update(params, grads, lr)
    return loss


def product_forward_backward(a, b):
    """(a * b, and the gradients of its sum: grad_a = b, grad_b = a, each as grad_out * the other factor)."""
    out = a * b
    grad_out = np.ones_like(out)
    return out, grad_out * b, grad_out * a


def image_chunks(x_shape, kernel, dtype):
    """Slices of a batch x (N, C, H, W) whose 'same' im2col columns for a (kh, kw) kernel take at most
    COLUMNS_BUDGET_BYTES (one image at least)."""
    per_image = x_shape[1] * kernel[0] * kernel[1] * x_shape[2] * x_shape[3] * np.dtype(dtype).itemsize
    images = max(1, COLUMNS_BUDGET_BYTES // per_image)
    return [slice(start, start + images) for start in range(0, x_shape[0], images)]


def cnn_sgd_step(params, x, labels, lr):
    """One SGD step, in place, of (conv 'same' -> ReLU -> max pool 2x2 'same') x 2 -> the MLP of mlp_gradients.

    params: [conv1 weight (O1, C, k, k), bias (O1,), conv2 weight, bias, then the MLP's four]; x: (N, C, H, W).
    Returns the loss. Each convolution, and each of its gradients, runs a chunk of images at a time (image_chunks):
    conv2's columns for the benchmark's batch of 16 would be 433 MB, and so would its input gradient's.
    """
    saved, hidden = [], x
    for weight, bias in (params[0:2], params[2:4]):
        pads = resolve_padding("same", hidden.shape[2:], weight.shape[2:], (1, 1), (1, 1))
        chunks = image_chunks(hidden.shape, weight.shape[2:], hidden.dtype)
        out = np.concatenate([conv2d_forward(hidden[chunk], weight, (1, 1), pads, (1, 1), 1)[0] for chunk in chunks])
        activation = np.maximum(out + bias.reshape(1, -1, 1, 1), 0)
        pool_pads = resolve_padding("same", activation.shape[2:], (2, 2), (2, 2), (1, 1))
        pooled, argmax = max_pool_forward(activation, (2, 2), (2, 2), pool_pads)
        saved.append((hidden, weight, pads, activation, argmax, pool_pads, chunks))
        hidden = pooled
    loss, mlp_grads, grad_flat = mlp_gradients(params[4:], hidden.reshape(len(x), -1), labels)
    sgd_update(params[4:], mlp_grads, lr)  # now, not after the convs' backward: that frees the 35M-weight gradient
    del mlp_grads
    grad, conv_grads = grad_flat.reshape(hidden.shape), []
    for layer_input, weight, pads, activation, argmax, pool_pads, chunks in reversed(saved):
        grad_activation = max_pool_backward(grad, argmax, activation.shape, (2, 2), (2, 2), pool_pads)
        grad_out = grad_activation * (activation > 0)
        padded = np.pad(layer_input, ((0, 0), (0, 0)) + tuple(pads))
        grad_weight = sum(conv2d_weight_gradient(grad_out[chunk], conv_columns(padded[chunk], weight.shape[2:], (1, 1),
                                                                                (1, 1), 1), weight.shape, 1)
                          for chunk in chunks)
        grad = np.concatenate([conv2d_input_gradient(grad_out[chunk], layer_input[chunk].shape, weight, (1, 1), pads,
                                                     (1, 1), 1) for chunk in chunks])
        conv_grads = [grad_weight, grad_out.sum(axis=(0, 2, 3))] + conv_grads
    sgd_update(params[:4], conv_grads, lr)
    return loss


def face_resnet_forward(weights, images, tape=None):
    """Descriptors (N, 128) of tinynet.models.face_resnet's network, images (N, 3, 150, 150): the same layers
    (conv + scale, ReLU, max pool, residual blocks with average-pooled, zero-padded shortcuts) in NumPy.

    tape: when a list, each stage (input and stem, every block, pooling and fc) appends the function that maps the
    gradient of its output to that of its input (face_resnet_input_gradient runs them in reverse).
    """
    record = (lambda backward: None) if tape is None else tape.append

    def conv_scale(x, prefix, stride, padding):
        """(out, the function grad_out -> grad_x)."""
        weight = weights[f"{prefix}/conv/filters"].transpose(3, 2, 0, 1)  # HWIO -> OIHW
        pads = resolve_padding(padding, x.shape[2:], weight.shape[2:], (stride, stride), (1, 1))
        out = conv2d_forward(x, weight, (stride, stride), pads, (1, 1), 1)[0] + channel(f"{prefix}/conv/bias")
        gamma = channel(f"{prefix}/scale/weights")
        return out * gamma + channel(f"{prefix}/scale/biases"), lambda grad: conv2d_input_gradient(
            grad * gamma, x.shape, weight, (stride, stride), pads, (1, 1), 1)

    def channel(name):
        return weights[name].reshape(1, -1, 1, 1)

    def stem(images):
        out, conv_backward = conv_scale((images - MEAN_RGB.reshape(1, 3, 1, 1)) / 256, "conv32_down", 2, "valid")
        activation = np.maximum(out, 0)
        pooled, argmax = max_pool_forward(activation, (3, 3), (2, 2), ((0, 0), (0, 0)))
        record(lambda grad: conv_backward(max_pool_backward(grad, argmax, activation.shape, (3, 3), (2, 2),
                                                            ((0, 0), (0, 0))) * (activation > 0)) / 256)
        return pooled

    def block(x, name):
        down = name.endswith(("_down", "_down_out"))
        first, first_backward = conv_scale(x, f"{name}/conv1", 2 if down else 1, "valid" if down else "same")
        hidden = np.maximum(first, 0)
        out, second_backward = conv_scale(hidden, f"{name}/conv2", 1, "same")
        conv_hw, shortcut = out.shape[2:], x
        if down:
            n_images, channels, height, width = x.shape
            shortcut = x[:, :, :height // 2 * 2, :width // 2 * 2].reshape(n_images, channels, height // 2, 2,
                                                                             width // 2, 2).mean(axis=(3, 5))
            shortcut = np.pad(shortcut, ((0, 0), (0, out.shape[1] - channels), (0, 0), (0, 0)))
            out = np.pad(out, ((0, 0), (0, 0), (0, shortcut.shape[2] - out.shape[2]),
                               (0, shortcut.shape[3] - out.shape[3])))
        total = out + shortcut

        def backward(grad):
            grad = grad * (total > 0)
            grad_x = first_backward(second_backward(grad[:, :, :conv_hw[0], :conv_hw[1]]) * (hidden > 0))
            if not down:
                return grad_x + grad
            pooled_grad = grad[:, :x.shape[1]] / 4  # each input pixel of a 2x2 window gets a quarter
            rows, cols = pooled_grad.shape[2] * 2, pooled_grad.shape[3] * 2
            grad_x[:, :, :rows, :cols] += pooled_grad.repeat(2, axis=2).repeat(2, axis=3)
            return grad_x

        record(backward)
        return np.maximum(total, 0)

    x = stem(images)
    for name in BLOCKS:
        x = block(x, name)
    record(lambda grad: np.broadcast_to((grad @ weights["fc"].T)[:, :, None, None] / (x.shape[2] * x.shape[3]),
                                        x.shape))
    return x.mean(axis=(2, 3)) @ weights["fc"]


def face_resnet_input_gradient(weights, images, grad_out):
    """(descriptors (N, 128), d <descriptors, grad_out> / d images (N, 3, 150, 150)): the weights stay fixed."""
    tape = []
    descriptors = face_resnet_forward(weights, images, tape)
    grad = grad_out
    for backward in reversed(tape):
        grad = backward(grad)
    return descriptors, grad
