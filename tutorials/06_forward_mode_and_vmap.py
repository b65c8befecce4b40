# %% [markdown]
# # 6. Forward mode, reverse mode, and gradients per example
#
# Backprop (reverse mode) gives a whole **row** of the Jacobian, d output_i / d every input, in one
# backward pass. Forward mode gives a **column**, d every output / d input_j, in one forward pass that
# carries a tangent beside each value. Which one is cheaper depends on the shape of the function:
#
# - **wide** (many inputs, few outputs: a loss of a million weights): reverse mode, one pass per output;
# - **tall** (few inputs, many outputs: a curve traced by one parameter): forward mode, one pass per input.
#
# Then `vmap`: a function written for one example, run on a whole batch in one pass, so that
# `vmap(grad(loss))` gives every example's own gradient, which a plain backward (the batch's *sum*) cannot.
# The names are those of `torch.func` and JAX.
#
# Run this file top to bottom (`python tutorials/06_forward_mode_and_vmap.py`), or open its notebook (see
# tutorials/README.md). The last part needs the course data (`TINYNET_DATA`).

# %%
import time

import matplotlib.pyplot as plt
import numpy as np

import tinynet as tn
from tinynet import func
from tinynet import functional as F

rng = np.random.default_rng(0)

# %% [markdown]
# ## One product each: jvp pushes a direction forward, vjp pulls one back
#
# For f(x) = tanh(W x): `func.jvp(f, (x,), (v,))` gives J v, `func.vjp(f, x)` a function u -> J^T u. The two
# are transposes of each other: <u, J v> = <J^T u, v> for any u and v (gradcheck checks every op this way).

# %%
W = tn.Tensor(rng.standard_normal((3, 5)))


def f(x):
    return F.tanh(F.matmul(W, x))


x, v, u = rng.standard_normal(5), rng.standard_normal(5), rng.standard_normal(3)
_, Jv = func.jvp(f, (x,), (v,))
_, pullback = func.vjp(f, x)
(JTu,) = pullback(u)
print(f"<u, J v> = {u @ Jv.data:.12f}\n<J^T u, v> = {JTu.data @ v:.12f}")

# %% [markdown]
# ## The whole Jacobian: columns (jacfwd) or rows (jacrev)
#
# `func.jacfwd(f)` runs one jvp per input element, `func.jacrev(f)` one vjp per output element. Same matrix,
# different cost. Below, f maps n inputs to m = 16 outputs; we time both as n grows past m.

# %%
m = 16


def best_of(run, repeats=3):
    """The fastest of a few timed runs, in milliseconds."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return 1e3 * min(times)


sizes, forward_ms, reverse_ms = [2, 4, 8, 16, 32, 64], [], []
for n in sizes:
    W_n = tn.Tensor(rng.standard_normal((m, n)))
    x_n = rng.standard_normal(n)

    def g(x, W_n=W_n):
        return F.tanh(F.matmul(W_n, x))
    assert np.allclose(func.jacfwd(g)(x_n).data, func.jacrev(g)(x_n).data)
    forward_ms.append(best_of(lambda g=g, x_n=x_n: func.jacfwd(g)(x_n)))
    reverse_ms.append(best_of(lambda g=g, x_n=x_n: func.jacrev(g)(x_n)))
    print(f"n = {n:3d} inputs, m = {m} outputs: jacfwd {forward_ms[-1]:6.2f} ms, jacrev {reverse_ms[-1]:6.2f} ms")

plt.figure(figsize=(6, 3.5))
plt.loglog(sizes, forward_ms, "o-", label="jacfwd: one jvp per input")
plt.loglog(sizes, reverse_ms, "s-", label="jacrev: one vjp per output")
plt.axvline(m, color="gray", linestyle=":", label=f"n = m = {m}")
plt.minorticks_off()
plt.xticks(sizes, [str(n) for n in sizes])
plt.yticks([0.1, 0.3, 1, 3, 10, 30], ["0.1", "0.3", "1", "3", "10", "30"])
plt.xlabel("inputs n")
plt.ylabel("time for the whole Jacobian (ms)")
plt.title(f"forward vs reverse mode, {m} outputs")
plt.legend()
plt.show()

# %% [markdown]
# Forward mode's cost grows with the number of inputs, reverse mode's stays put (it depends on the m outputs):
# they cross where n is about m. A loss has one output, so training uses reverse mode; a Hessian,
# the Jacobian of a gradient (n outputs of n inputs), is often taken as `jacfwd(jacrev(f))`: forward over
# reverse, as `func.hessian` does.

# %%
def energy(x):
    return (F.tanh(x) ** 2).sum()


x3 = rng.standard_normal(3)
print(np.round(func.hessian(energy)(x3).data, 4))
print(np.allclose(func.hessian(energy)(x3).data, tn.hessian(energy, tn.Tensor(x3)).data))

# %% [markdown]
# ## vmap: write it for one example, run it for all
#
# `func.vmap(f)` runs a function of one example on a batch: every op inside meets the example's tensor and runs
# for all examples at once. Here a loss for one image and its label ...

# %%
model = tn.nn.Sequential(tn.nn.Linear(784, 300, rng=rng), tn.nn.Tanh(), tn.nn.Linear(300, 10, rng=rng))
parameters = dict(model.named_parameters())


def loss_of_one(parameters, image, label):
    """Cross-entropy of one (784,) image and its label, with the model's weights replaced by `parameters`."""
    logits = func.functional_call(model, parameters, image[None])
    return F.cross_entropy(logits, label[None])


images, labels = rng.random((8, 784), np.float32), rng.integers(0, 10, 8)
print(func.vmap(loss_of_one, in_dims=(None, 0, 0))(parameters, images, labels).data)

# %% [markdown]
# ... and its gradient with respect to the weights, *per example*: `vmap(grad(loss_of_one))`. A plain backward
# of the batch's loss gives only the sum of these; a loop gives them one backward pass at a time.

# %%
per_example = func.vmap(func.grad(loss_of_one), in_dims=(None, 0, 0))(parameters, images, labels)
print({name: gradient.shape for name, gradient in per_example.items()})

looped = func.grad(loss_of_one)(parameters, images[3], labels[3])
print("example 3, vmap vs its own backward:",
      max(float(np.abs(per_example[name].data[3] - looped[name].data).max()) for name in parameters))

# %% [markdown]
# ## What per-example gradients are for
#
# Part 1's network on real digits: the handout's starting snapshot, trained a little more here (300 Adam
# steps). The norm of each example's gradient says how hard that example pulls on the weights: the digits the
# network already gets right pull little, the misclassified and odd ones pull hardest. (DP-SGD clips each
# example's gradient to a norm C before averaging, so that no single example can move the model far: that
# needs them one by one.)

# %%
from experiments.common.mnist import handout_network, load_mnist, load_snapshot50, unit_scale  # noqa: E402

digits = load_mnist(per_digit=300)
network = handout_network(load_snapshot50())
train_images, train_labels = unit_scale(digits.train_x), digits.train_y
optimizer = tn.optim.Adam(network.parameters(), lr=1e-3)
for _ in range(300):
    batch = rng.choice(len(train_images), 50, replace=False)
    F.cross_entropy(network(tn.Tensor(train_images[batch])), train_labels[batch]).backward()
    optimizer.step()
    optimizer.zero_grad()

weights = dict(network.named_parameters())
test_images, test_labels = unit_scale(digits.test_x[::20]), digits.test_y[::20]  # 15 of each digit


def digit_loss(weights, image, label):
    return F.cross_entropy(func.functional_call(network, weights, image[None]), label[None])


gradients = func.vmap(func.grad(digit_loss), in_dims=(None, 0, 0))(weights, test_images, test_labels)
norms = np.sqrt(sum((g.data.reshape(len(test_images), -1) ** 2).sum(axis=1) for g in gradients.values()))
predicted = network(tn.Tensor(test_images)).data.argmax(axis=1)
wrong = predicted != test_labels
print(f"{len(test_images)} test digits, {wrong.sum()} misclassified; mean gradient norm: "
      f"right {norms[~wrong].mean():.3f}, wrong {norms[wrong].mean():.3f}")

clip = np.median(norms)
scale = np.minimum(1, clip / norms)  # DP-SGD's per-example clipping to norm C (here the median norm)
clipped_mean = {name: (g.data * scale.reshape(-1, *[1] * (g.ndim - 1))).mean(axis=0) for name, g in gradients.items()}
print(f"clipped at C = {clip:.3f}: the largest example's share of the mean gradient drops from "
      f"{norms.max() / norms.sum():.1%} to {(norms * scale).max() / (norms * scale).sum():.1%}")

hardest = np.argsort(norms)[::-1][:6]
fig, axes = plt.subplots(1, 7, figsize=(12, 2.4))
per_digit = [norms[test_labels == d].mean() for d in range(10)]
axes[0].bar(range(10), per_digit)
axes[0].set_xticks(range(10))
axes[0].set_title("mean norm by digit")
for ax, k in zip(axes[1:], hardest):
    ax.imshow(test_images[k].reshape(28, 28), cmap="gray")
    ax.set_title(f"{test_labels[k]} as {predicted[k]}\n|g| = {norms[k]:.2f}", fontsize=9)
    ax.axis("off")
plt.suptitle("per-example gradient norms of part 1's network: the digits that pull hardest")
plt.tight_layout()
plt.show()
