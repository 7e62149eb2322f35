"""The project's layers, registered with gk.register: the pytest plugin collects them."""

import numpy as np
from hypothesis import strategies as st

import gradcheck_kit as gk
from gradcheck_kit import strategies as gks


def linear_forward(x, w, b):
    return x @ w + b


def linear_backward(dy, x, w, b):
    return dy @ w.T, x.T @ dy, dy.sum(axis=0)


def _linear_case(rng, *, batch, n_in, n_out):
    shapes = [(batch, n_in), (n_in, n_out), (n_out,)]
    return gk.Case(tuple(gks.values(rng, shape) for shape in shapes))


# cases: a hypothesis strategy of gk.Case (drawn, then shrunk to the smallest failing one)
LINEAR_CASES = gks.cases(
    _linear_case, batch=st.integers(1, 4), n_in=st.integers(1, 5), n_out=st.integers(1, 5)
)
gk.register("my_linear", linear_forward, linear_backward, cases=LINEAR_CASES)


# ... or a fixed list of cases, on a class with staticmethods forward and backward
@gk.register("my_softplus", cases=[gk.Case((np.linspace(-3.0, 3.0, 7),))])
class Softplus:
    @staticmethod
    def forward(x):
        return np.logaddexp(0.0, x)

    @staticmethod
    def backward(dy, x):
        return (dy / (1.0 + np.exp(-x)),)
