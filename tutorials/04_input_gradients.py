# %% [markdown]
# # 4. What an input gradient shows, and what guided backprop changes (part 8 and 9)
#
# Backprop does not stop at the weights: it can go all the way to the pixels. d score / d image
# says which pixels would raise a network's output if brightened a little. Here: one unit of
# the pretrained face ResNet's 128-d descriptor, for one FaceScrub face (course data needed).

# %%
import numpy as np

import facescrub
import tinynet as tn
from coursedata.paths import data_dir
from tinynet.models.face_resnet import INPUT_SIZE, FaceResNet, input_from_crops

network = FaceResNet.pretrained(data_dir() / "pretrained")  # image (N, 3, 150, 150) -> descriptor (N, 128)
faces = facescrub.load_faces(size=INPUT_SIZE, color=True).subset(per_actor=1)
photo = faces.test.x[0]
print(f"a {photo.shape} crop of {faces.actors[faces.test.y[0]]}")

# %% [markdown]
# ## The plain input gradient

# %%
UNIT = 7


def unit_gradient(guided):
    """d descriptor[UNIT] / d image, (3, 150, 150), plain or guided."""
    image = tn.Tensor(input_from_crops(photo[None]), requires_grad=True)
    if guided:
        with tn.guided_backprop():       # every ReLU made in here gets a hook on its output
            unit = network(image)[0, UNIT]
    else:
        unit = network(image)[0, UNIT]
    unit.backward()
    return image.grad[0]


plain = unit_gradient(guided=False)
print(f"plain: {np.mean(plain == 0):.1%} of the pixels have gradient exactly 0, max |grad| {np.abs(plain).max():.2e}")

# %% [markdown]
# The gradient is exactly 0 at pixels no path reaches: the last row and column, which the
# 7x7 stride-2 stem never reads, and wherever every ReLU on the way was off.

# %%
print("last row all zero:", np.all(plain[:, -1, :] == 0))

# %% [markdown]
# ## Guided backprop
#
# A ReLU's backward passes grad_out where its input was positive. Guided backprop also blocks
# *negative* incoming gradients: it keeps only evidence that raises the unit through positive
# activations. In tinynet that is a hook on each ReLU's output (`tinynet/guided.py`), not a
# change to ReLU. The guided map gathers on the face; the plain one spreads over the background.

# %%
guided = unit_gradient(guided=True)


def central_share(gradient):
    """Fraction of the gradient's energy (sum of squares) in the central half of the crop, where the face is."""
    energy = gradient.astype(np.float64) ** 2
    return energy[:, 37:113, 37:113].sum() / energy.sum()


print(f"energy on the central half of the crop: plain {central_share(plain):.0%}, guided {central_share(guided):.0%}")

# %%
import matplotlib.pyplot as plt  # noqa: E402


def as_picture(gradient):
    """(3, H, W) gradient -> (H, W, 3) picture: gray is 0."""
    return np.clip(0.5 + 0.5 * gradient.transpose(1, 2, 0) / max(np.abs(gradient).max(), 1e-12), 0, 1)


fig, axes = plt.subplots(1, 3, figsize=(10, 3.5))
for ax, picture, title in zip(axes, [photo, as_picture(plain), as_picture(guided)], ["photo", "plain", "guided"]):
    ax.imshow(picture)
    ax.set_title(title)
    ax.axis("off")
plt.show()

# %% [markdown]
# ## Is the gradient right?
#
# Part 8 checks it against finite differences in float64 (`python -m experiments.part8_gradients`).
# Here, the same check on three pixels, one of them in the unread last row.

# %%
network.to(np.float64)
image = tn.Tensor(input_from_crops(photo[None]).astype(np.float64), requires_grad=True)
(report,) = tn.gradcheck(lambda t: network(t)[0, UNIT], [image], eps=1e-3,
                         elements=[(0, 0, 149, 10), (0, 1, 70, 80), (0, 2, 40, 100)])
print(report)
