# %% [markdown]
# # 5. Backprop Ninja: part 1's network, backward by hand
#
# Backprop is no magic: every gradient tinynet computes, you can write yourself, one chain-rule step at a
# time. Here we do it for the whole digit network of part 1 (784 -> 300 tanh -> 10, the handout's
# snapshot50 weights) on a batch of 30 MNIST images, and check every step against tinynet with
# `tn.compare_gradients`. Each row says *exact* (bit for bit), *approx* (equal up to round-off) or *WRONG*
# (with the largest difference and, when it is one, the constant factor). Needs the course data
# (`TINYNET_DATA`). After this, task 6.1 of the assignment asks for the same as one function.

# %%
import numpy as np

import tinynet as tn
from experiments.common.mnist import load_mnist, load_snapshot50, unit_scale

rng = np.random.default_rng(0)
mnist = load_mnist(per_digit=20)
batch = rng.choice(len(mnist.train_y), 30, replace=False)
x, labels = unit_scale(mnist.train_x[batch]), mnist.train_y[batch]   # (30, 784) float32, (30,)
N = len(labels)
snapshot = load_snapshot50()                                        # W0 (784, 300), b0, W1 (300, 10), b1

# %% [markdown]
# ## The forward pass, one named tensor at a time
#
# The loss is the mean cross-entropy, written out: log-softmax, pick each image's log-probability of its
# label, average, negate. Intermediate tensors drop their gradient after backward unless asked to keep it:
# `retain_grad()`.

# %%
def forward_and_backward(activation):
    """Every tensor of the network by name, after loss.backward() filled their .grad."""
    W0, b0, W1, b1 = (tn.Tensor(snapshot[name], requires_grad=True) for name in ("W0", "b0", "W1", "b1"))
    hidden_pre = tn.Tensor(x) @ W0 + b0                 # (N, 300)
    hidden = activation(hidden_pre)                     # (N, 300)
    logits = hidden @ W1 + b1                           # (N, 10)
    log_probs = logits.log_softmax(axis=1)              # (N, 10)
    label_log_probs = log_probs[np.arange(N), labels]   # (N,)
    loss = -label_log_probs.mean()                      # ()
    for tensor in (hidden_pre, hidden, logits, log_probs, label_log_probs):
        tensor.retain_grad()
    loss.backward()
    print(f"loss {loss.item():.4f}")
    return {"label_log_probs": label_log_probs, "log_probs": log_probs, "logits": logits, "W1": W1, "b1": b1,
            "hidden": hidden, "hidden_pre": hidden_pre, "W0": W0, "b0": b0}


tensors = forward_and_backward(tn.Tensor.tanh)


def check(grad):
    """Compare the gradients written so far with tinynet's."""
    print(tn.compare_gradients(grad, {name: tensors[name] for name in grad}))


# %% [markdown]
# ## Backward by hand, from the loss down
#
# **The mean.** loss = -(1/N) sum_n label_log_probs[n], so each one gets -1/N.

# %%
grad = {"label_log_probs": np.full(N, -1 / N, dtype=np.float32)}
check(grad)

# %% [markdown]
# **Picking.** label_log_probs[n] = log_probs[n, labels[n]]: the picked entries receive the gradient, the
# other nine of each row nothing.

# %%
grad["log_probs"] = np.zeros((N, 10), dtype=np.float32)
grad["log_probs"][np.arange(N), labels] = grad["label_log_probs"]
check(grad)

# %% [markdown]
# **Log-softmax.** log_probs = logits - log(sum(exp(logits))) row by row, and d log_probs[i] / d logits[j] =
# [i = j] - softmax[j]. So the gradient is g - softmax * sum(g) along each row (here: (softmax - one_hot) / N).

# %%
softmax = np.exp(tensors["log_probs"].numpy())
grad["logits"] = grad["log_probs"] - softmax * grad["log_probs"].sum(axis=1, keepdims=True)
check(grad)

# %% [markdown]
# The same gradient in another order, (softmax - one_hot) / N, differs from tinynet's in the last bits:
# *approx*, i.e. within the round-off a float32 computation carries (see tinynet/gradient_comparison.py).
# Both are right.

# %%
one_hot = np.eye(10, dtype=np.float32)[labels]
print(tn.compare_gradients({"logits": (softmax - one_hot) / N}, {"logits": tensors["logits"]}))

# %% [markdown]
# **The second layer.** logits = hidden @ W1 + b1. A matrix product sends the gradient back through the
# other factor, transposed; the bias was added to every row, so its gradient sums the rows.

# %%
grad["W1"] = tensors["hidden"].numpy().T @ grad["logits"]    # (300, N) @ (N, 10)
grad["b1"] = grad["logits"].sum(axis=0)
grad["hidden"] = grad["logits"] @ tensors["W1"].numpy().T    # (N, 10) @ (10, 300)
check(grad)

# %% [markdown]
# **tanh**, whose derivative is 1 - tanh², computed from its output; then **the first layer** as the second.

# %%
grad["hidden_pre"] = grad["hidden"] * (1 - tensors["hidden"].numpy() ** 2)
grad["W0"] = x.T @ grad["hidden_pre"]
grad["b0"] = grad["hidden_pre"].sum(axis=0)
check(grad)

# %% [markdown]
# ## What a bug looks like
#
# Forget the 1/N of the mean in the bias gradient (sum the per-image losses instead): the table names the
# tensor and the factor, here N = 30.

# %%
check({**grad, "b0": grad["b0"] * N})

# %% [markdown]
# ## The same with ReLU
#
# Swap tanh for ReLU and only one formula changes: ReLU passes the gradient where its input was positive
# (ReLU'(0) = 0, as in PyTorch). The other steps keep their formulas, applied to the new forward values.

# %%
tensors = forward_and_backward(tn.Tensor.relu)
relu_grad = {name: grad[name] for name in ("label_log_probs", "log_probs")}  # the same: they depend on labels only
softmax = np.exp(tensors["log_probs"].numpy())
relu_grad["logits"] = grad["log_probs"] - softmax * grad["log_probs"].sum(axis=1, keepdims=True)
relu_grad["W1"] = tensors["hidden"].numpy().T @ relu_grad["logits"]
relu_grad["b1"] = relu_grad["logits"].sum(axis=0)
relu_grad["hidden"] = relu_grad["logits"] @ tensors["W1"].numpy().T
relu_grad["hidden_pre"] = relu_grad["hidden"] * (tensors["hidden_pre"].numpy() > 0)   # the only new step
relu_grad["W0"] = x.T @ relu_grad["hidden_pre"]
relu_grad["b0"] = relu_grad["hidden_pre"].sum(axis=0)
check(relu_grad)

# %% [markdown]
# `tinynet/backprop_ninja.py` holds this network with both activations; its `manual_backward` is what task
# 6.1 of the assignment (`python -m tinynet.assign`) asks you to write, graded tensor by tensor by
# `compare_gradients` against tinynet's backward on hidden cases.
