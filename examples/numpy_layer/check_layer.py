"""A dense tanh layer checked with gk.check: the right backward, then one with a planted bug.

Run it: python check_layer.py
"""

import numpy as np

import gradcheck_kit as gk


def dense_tanh(x, w, b):
    """y = tanh(x @ w + b); x is (batch, n_in), w (n_in, n_out), b (n_out,)."""
    return np.tanh(x @ w + b)


def dense_tanh_backward(dy, x, w, b):
    """One gradient per input, in the order of forward's arguments."""
    dz = dy * (1.0 - np.tanh(x @ w + b) ** 2)  # tanh' = 1 - tanh^2
    return dz @ w.T, x.T @ dz, dz.sum(axis=0)


def dense_tanh_backward_buggy(dy, x, w, b):
    """The planted bug: db takes batch item 0 only instead of summing over the batch."""
    dz = dy * (1.0 - np.tanh(x @ w + b) ** 2)
    return dz @ w.T, x.T @ dz, dz[0]


def main():
    rng = np.random.default_rng(0)
    inputs = (rng.normal(size=(4, 3)), rng.normal(size=(3, 2)), rng.normal(size=2))

    good = gk.check(dense_tanh, dense_tanh_backward, inputs)
    print(good)
    good.raise_for_failure()  # raises gk.GradientMismatch if anything failed; here nothing does

    print()
    bad = gk.check(dense_tanh, dense_tanh_backward_buggy, inputs)
    print(bad)
    print("patterns:", bad.patterns)
    return 0 if good.passed and not bad.passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
