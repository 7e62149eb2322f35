"""Random numbers a check draws: grad_outputs, directions, nudges."""

from __future__ import annotations

import numpy as np


def signed_magnitudes(rng: np.random.Generator, shape: int | tuple[int, ...]) -> np.ndarray:
    """Random signs times magnitudes in [0.5, 1.5): no coordinate is tiny. Computed in place
    (each pass over a large input costs as much as a cheap layer's forward)."""
    u = rng.random(shape)
    u *= 2.0
    u -= 1.0  # uniform in [-1, 1)
    u += np.copysign(0.5, u)  # u + 0.5 or u - 0.5: the magnitude moves away from 0 by a half
    return u
