"""The reference layers' writes into part of an array (``set_at``, ``add_at``) and their
sliding windows give the same values on JAX (immutable, no as_strided) as on NumPy, where the
writes stay in place."""

from __future__ import annotations

import numpy as np
import pytest

from reference_layers._xp import add_at, scatter, set_at, windows


def test_writes_on_numpy_stay_in_place():
    a = np.zeros(5)
    assert add_at(a, slice(1, 3), 2.0) is a and set_at(a, 4, 7.0) is a
    assert a.tolist() == [0.0, 2.0, 2.0, 0.0, 7.0]


def test_windows_and_scatter_on_jax_match_numpy():
    jnp = pytest.importorskip("jax.numpy")
    from array_api_compat import array_namespace

    x = np.arange(2 * 3 * 9, dtype=np.float32).reshape(2, 3, 9)
    view = windows(x, (3,), (2,), (1,))
    stacked = windows(jnp.asarray(x), (3,), (2,), (1,))
    np.testing.assert_array_equal(np.asarray(stacked), view)
    back = scatter(array_namespace(stacked), stacked, (9,), (2,), (1,))
    np.testing.assert_array_equal(np.asarray(back), scatter(array_namespace(x), view, (9,), (2,), (1,)))
    a = jnp.zeros(3)
    assert add_at(a, slice(0, 2), 1.0).tolist() == [1.0, 1.0, 0.0] and a.tolist() == [0.0, 0.0, 0.0]
