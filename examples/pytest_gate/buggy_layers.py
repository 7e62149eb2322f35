"""A layer with a planted bug, to see what a failing gate looks like:

python -m pytest -o gradcheck_modules=buggy_layers
"""

from my_layers import LINEAR_CASES, linear_forward

import gradcheck_kit as gk


def linear_backward_buggy(dy, x, w, b):
    return dy @ w.T, x.T @ dy, dy[0]  # db: batch item 0 only, the sum over the batch forgotten


gk.register("my_linear_buggy", linear_forward, linear_backward_buggy, cases=LINEAR_CASES)
