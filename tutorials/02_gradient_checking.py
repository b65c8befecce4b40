# %% [markdown]
# # 2. Gradient checking: the noise floor, kinks and the step size
#
# A central difference D(h) = (f(x + h) - f(x - h)) / 2h estimates f'(x) with two errors:
# truncation (~h², large steps) and round-off (~eps |f| / h, small steps). A good checker
# knows both, and knows where f has no derivative at all.

# %%
import numpy as np

import tinynet as tn
from tinynet import functional as F
from tinynet.gradcheck import SWEEP_STEPS, step_sweep

# %% [markdown]
# ## The "V": error against the step size
#
# For tanh at two points, the error of D(h) against backward's exact gradient for h from 1e-1
# to 1e-10. Read it right to left: the error first falls as h² (truncation), then rises as
# 1/h (round-off). The best step is near the cube root of machine epsilon, about 1e-5.

# %%
x = tn.Tensor(np.array([0.4, -1.7]), requires_grad=True)
analytic, numeric, roundoff = step_sweep(F.tanh, [x], [(0,), (1,)])
print(" step h    error at x=0.4   error at x=-1.7   round-off estimate")
for h, errors, floor in zip(SWEEP_STEPS, np.abs(numeric - analytic), roundoff):
    print(f"{h:8.0e}   {errors[0]:14.2e}   {errors[1]:15.2e}   {floor[0]:10.2e}")
best = SWEEP_STEPS[int(np.argmin(np.abs(numeric - analytic).max(axis=1)))]
print(f"best step here: {best:g}")

# %%
import matplotlib.pyplot as plt  # noqa: E402  (only this cell draws)

plt.loglog(SWEEP_STEPS, np.abs(numeric - analytic) + 1e-17, "o-")
plt.gca().invert_xaxis()
plt.xlabel("step h")
plt.ylabel("|D(h) - backward|")
plt.title("truncation (left of the V) and round-off (right)")
plt.show()

# %% [markdown]
# ## The noise floor: why a tiny gradient must pass
#
# f below is about 4, so one unit in the last place of f is 8.9e-16. Moving the third pixel by
# +-h changes f by 2e-18: less than one ulp, so D(h) sees 0 (or one ulp / 2h), nothing like
# the true 1e-15. A checker that divides by |gradient| would call that a 100% error and cry
# wolf. tinynet judges each element against its noise floor, what a difference of step h can
# resolve (round-off about eps |f| / h), and passes it.

# %%
weights = np.array([1e-9, 1e-9, 1e-15])
pixels = tn.Tensor(np.array([0.3, -0.2, 0.7]), requires_grad=True)
(report,) = tn.gradcheck(lambda p: 4.0 + (p * weights).sum(), [pixels], eps=1e-3)
print(report)

# %% [markdown]
# ## Kinks: where there is no derivative
#
# ReLU has a kink at 0. If x is closer to 0 than the step, x + h and x - h fall on different
# sides and D(h) averages the two slopes (0 and 1): 0.5-ish, while backward says 0 or 1.
# tinynet sees the ReLU take a different branch at x + h than at x - h and reports a *kink
# crossing* instead of a failure.

# %%
x = tn.Tensor(np.array([3e-7, -2e-7, 0.5]), requires_grad=True)
(report,) = tn.gradcheck(F.relu, [x])
print(report)

# %% [markdown]
# Max-pooling has the same kind of kink at ties: in a window of equal values, a small step
# decides the winner.

# %%
image = np.zeros((1, 1, 2, 2))
(report,) = tn.gradcheck(lambda t: F.max_pool2d(t, 2), [tn.Tensor(image, requires_grad=True)])
print(f"{len(report.kinks)} of {len(report.elements)} pixels crossed a kink in:",
      {op for e in report.kinks for op in e.crossed_kinks})

# %% [markdown]
# ## A real bug is caught, and located
#
# Plant a bug: tanh's backward doubled. The check fails, and gradcheck re-checks every op on
# the inputs it saw to name the culprit.

# %%
from tinynet.ops.activation import Tanh  # noqa: E402

correct_backward = Tanh.backward
Tanh.backward = staticmethod(lambda ctx, grad_out: (2 * correct_backward(ctx, grad_out)[0],))
try:
    rng = np.random.default_rng(0)
    w = rng.standard_normal((3, 2))
    tn.gradcheck(lambda x: F.tanh(x @ w), [tn.Tensor(rng.standard_normal((4, 3)), requires_grad=True)])
except tn.GradcheckError as error:
    print(error)
finally:
    Tanh.backward = correct_backward
