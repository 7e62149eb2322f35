"""The Taylor test reads order 2 for a right gradient and order 1 for a wrong one."""

from __future__ import annotations

import numpy as np

from gradcheck_kit._ground.backends import backend_of
from gradcheck_kit._oracles.finite_diff import Objective
from gradcheck_kit._oracles.taylor import taylor_test


def objective_for(x, dy):
    b = backend_of([x])
    obj = Objective(np.sin, {}, [x], {0: x}, {0: "float64"}, [dy], b)
    obj.base_outputs = [np.sin(x)]
    return obj


def test_orders_are_two_for_the_gradient_and_one_for_a_wrong_one():
    rng = np.random.default_rng(0)
    x, dy = rng.standard_normal(20), rng.standard_normal(20)
    d = {0: rng.standard_normal(20) * 0.1}
    right = taylor_test(objective_for(x, dy), d, {0: dy * np.cos(x)}, 1e-16)
    wrong = taylor_test(objective_for(x, dy), d, {0: dy * np.cos(x) * 1.1}, 1e-16)
    assert right.consistent and abs(right.order - 2) < 0.2
    assert wrong.consistent is False and abs(wrong.order - 1) < 0.2
