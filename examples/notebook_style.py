# %% [markdown]
# # Checking a layer from a notebook
# Cells are separated by `# %%` (Jupyter, VS Code and Spyder run them one by one); the file also
# runs as a plain script: `python notebook_style.py`.

# %%
import json

import numpy as np

import gradcheck_kit as gk

# %% [markdown]
# A softmax over the last axis, and its backward: dx = y * (dy - sum(dy * y)).


# %%
def softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def softmax_backward(dy, x):
    y = softmax(x)
    return (y * (dy - (dy * y).sum(axis=-1, keepdims=True)),)


x = np.random.default_rng(0).normal(size=(3, 4))
result = gk.check(softmax, softmax_backward, (x,))
print(result.passed)  # a CheckResult is also truthy when it passed

# %%
print(result)  # the report; a bare `result` in a cell shows the dataclass fields instead

# %% [markdown]
# One `InputReport` per differentiated input: the numbers behind the verdict.

# %%
report = result.input("x")  # or result.inputs[0]
print(report.name, report.mode, f"{report.max_rel_err:.1e}", report.worst_index)

# %% [markdown]
# A common slip: the backward forgets the `- sum(dy * y)` term.


# %%
def softmax_backward_buggy(dy, x):
    return (softmax(x) * dy,)


buggy = gk.check(softmax, softmax_backward_buggy, (x,))
print(buggy)
print("cause:", buggy.cause)

# %% [markdown]
# The error map, |analytic - numeric| per element (plot it with `plt.imshow` for larger inputs).

# %%
print(np.array2string(buggy.input("x").error_map, precision=3))

# %%
# to_dict() is JSON-able: save it, diff it between runs
print(json.dumps(buggy.to_dict())[:120], "...")
