# %% [markdown]
# # 1. Backprop by hand, then by tinynet
#
# Take one scalar expression, differentiate it by hand with the chain rule, then let tinynet
# do the same and watch it, step by step.
#
#     f(a, b) = (a * b + b) ** 2,   at a = 2, b = -3
#
# Run this file top to bottom (`python tutorials/01_backprop_by_hand.py`), or open it as a
# notebook: `python -m experiments.tutorials --no-run` writes results/tutorials/*.ipynb.

# %%
import numpy as np

import tinynet as tn

a, b = 2.0, -3.0

# %% [markdown]
# ## The forward pass, one intermediate at a time
#
#     c = a * b      = -6
#     d = c + b      = -9
#     f = d ** 2     = 81

# %%
c = a * b
d = c + b
f = d ** 2
print(f"c = {c}, d = {d}, f = {f}")

# %% [markdown]
# ## The backward pass by hand
#
# Start from df/df = 1 and walk back, multiplying by each local derivative (the chain rule):
#
#     df/dd = 2 d                          = -18
#     df/dc = df/dd * dd/dc = df/dd * 1    = -18
#     df/da = df/dc * dc/da = df/dc * b    =  54
#     df/db = df/dc * dc/db + df/dd * dd/db = df/dc * a + df/dd * 1 = -36 - 18 = -54
#
# b is used twice (in c and in d), so its gradient is the **sum** of two contributions.

# %%
df_dd = 2 * d
df_dc = df_dd * 1
df_da = df_dc * b
df_db = df_dc * a + df_dd * 1
print(f"by hand: df/da = {df_da}, df/db = {df_db}")

# %% [markdown]
# ## The same in tinynet
#
# `tn.tracing()` records every step of the backward pass; `print(trace)` shows them in the
# order backward takes them: each tensor, the gradient arriving at it (grad_out) and what it
# sends to each parent.

# %%
ta = tn.Tensor(np.array(a), requires_grad=True)
tb = tn.Tensor(np.array(b), requires_grad=True)
with tn.tracing(names={"a": ta, "b": tb}) as trace:
    tf = (ta * tb + tb) ** 2
    tf.backward()
print(trace)
print(f"tinynet: df/da = {ta.grad}, df/db = {tb.grad}")
assert ta.grad == df_da and tb.grad == df_db

# %% [markdown]
# In the trace, find the step of `b`: "grad_out is the sum of 2 contributions". That is the
# accumulation we did by hand. `trace.save_html("f.html")` writes a page where you can step
# through the same backward in a browser (arrow keys), with the graph drawn.

# %%
trace.save_html("backprop_by_hand.html", "f(a, b) = (a b + b)^2")
print("wrote backprop_by_hand.html: open it in a browser")

# %% [markdown]
# ## Check: finite differences
#
# A derivative is a limit: (f(a + h) - f(a - h)) / 2h for a small h. `tn.gradcheck` compares
# every gradient with this central difference (the next tutorial says how small "small" is).

# %%
print(tn.gradcheck(lambda x, y: (x * y + y) ** 2, [ta, tb])[0])
