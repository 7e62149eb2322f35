"""Check mytorch-style layer objects with gk.from_layer_object.

Run it: python check_layers.py
"""

import numpy as np
from mytorch_layers import Conv1d, Linear, LinearMeanBug

import gradcheck_kit as gk


def check_layer(layer, A):
    pair = gk.from_layer_object(layer)  # finds the weights itself
    print(type(layer).__name__, pair.describe())
    result = gk.check(*pair, (A, *pair.weights))  # differentiates A and every weight
    print(result)
    print()
    return result


def main():
    rng = np.random.default_rng(0)
    linear = check_layer(Linear(3, 2, rng), rng.normal(size=(4, 3)))
    conv = check_layer(Conv1d(2, 3, kernel_size=3, stride=2, rng=rng), rng.normal(size=(2, 2, 7)))
    buggy = check_layer(LinearMeanBug(3, 2, rng), rng.normal(size=(4, 3)))
    print("patterns:", buggy.patterns)
    return 0 if linear.passed and conv.passed and not buggy.passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
