"""Random directions to difference along: balanced across inputs, scaled per element, and
steering clear of exact zeros and ties (kinks a projection cannot judge)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .._ground.draws import signed_magnitudes
from .setup import Setup
from .tolerances import element_steps

TIE_SAMPLE = 1 << 16
RARE_TIES = 0.01  # ties in under 1% of a sample: coincidences, not quantized data


def special_elements(
    values: np.ndarray,
    *,
    exhaustive: bool,
    near_zero: float = 0.0,
    ordered: Callable[[], np.ndarray] | None = None,
) -> np.ndarray:
    """Flat indices of zeros (|x| <= ``near_zero``: ReLU's, abs's kink) and of values that occur
    more than once (ties).

    Sorting a large input costs a good part of a forward pass, so unless ``exhaustive`` ties are
    first looked for in a sample: continuous data skips the full sort, float32 data included,
    whose ~n^2 / 2^25 chance coincidences among n values are rarely in one pooling window. A
    kink showing up later brings the exhaustive search after all. ``ordered``: the values sorted
    (flat), where the caller keeps them for the tie search too."""
    flat = values.reshape(-1)
    special = np.abs(flat) <= near_zero
    if not exhaustive and chance_ties_only(flat):
        return np.flatnonzero(special)
    ordered_flat = np.sort(flat) if ordered is None else ordered()
    tied = ordered_flat[1:] == ordered_flat[:-1]
    if not exhaustive and np.count_nonzero(tied) < RARE_TIES * tied.size:
        return np.flatnonzero(special)
    repeated = ordered_flat[1:][tied]
    if repeated.size:
        special |= np.isin(flat, repeated)
    return np.flatnonzero(special)


def chance_ties_only(flat: np.ndarray) -> bool:
    """A large input whose evenly strided sample (no random draw to pay) holds ties in under
    RARE_TIES of it: coincidences, not quantized data, told without sorting it all."""
    if flat.size <= 4 * TIE_SAMPLE:
        return False
    sample = np.sort(flat[:: flat.size // TIE_SAMPLE])
    return bool(np.count_nonzero(sample[1:] == sample[:-1]) < RARE_TIES * sample.size)


def unit_coordinates(setup: Setup, mask: np.ndarray) -> np.ndarray:
    return signed_magnitudes(setup.rng, mask.size) * mask


def sorted_values(setup: Setup, i: int) -> np.ndarray:
    """Input i's values sorted (flat), sorted once per check: zeros, ties and tie groups read it."""
    return setup.memo(("sorted", i), lambda: np.sort(setup.host_values[i].reshape(-1)))


def element_scales(setup: Setup, i: int) -> np.ndarray:
    """Per-element steps of input i (a copy: callers scale it in place)."""
    steps = setup.memo(
        ("scales", i), lambda: element_steps(setup.host_values[i].reshape(-1), setup.fractions[i])
    )
    return steps.copy()


OWN_SCALE = 64.0  # an element whose step exceeds 64x the usual fraction of its own magnitude


def far_below_scale(setup: Setup, i: int, special: np.ndarray, below: float = OWN_SCALE) -> np.ndarray:
    """Flat indices of input i's nonzero elements (``special`` ones aside) so far below the
    input's scale, which floors every step, that even a step ``below`` times smaller than the
    first moves them by more than the usual fraction of themselves."""
    values = setup.host_values[i].reshape(-1)
    small = (values != 0) & (element_scales(setup, i) > below * setup.fractions[i] * np.abs(values))
    small[special] = False
    return np.flatnonzero(small)


def own_scale_direction(setup: Setup, i: int, index: np.ndarray) -> dict[int, Any]:
    """A direction over input i's elements ``index`` (flat), each stepped by the usual fraction
    of its own magnitude rather than of the input's scale."""
    values = setup.host_values[i].reshape(-1)
    coordinates = np.zeros(values.size)
    coordinates[index] = signed_magnitudes(setup.rng, index.size) * np.abs(values[index]) * setup.fractions[i]
    return {i: on_device(setup, i, coordinates)}


def on_device(setup: Setup, i: int, flat: np.ndarray) -> Any:
    return setup.backend.from_numpy(flat.reshape(setup.host_values[i].shape))


def masked_direction(setup: Setup, i: int, mask: np.ndarray) -> dict[int, Any]:
    """A direction over input i alone, on the elements ``mask`` (flat) selects, scaled per element."""
    return {i: on_device(setup, i, unit_coordinates(setup, mask) * element_scales(setup, i))}


DROWNED = 16.0  # an input whose share of a joint direction is 16x below another's


def joint_direction(
    setup: Setup, inputs: list[int], specials: dict[int, np.ndarray], drowned: set[int] | None = None
) -> dict[int, Any]:
    """One direction over all inputs, each input's share rescaled so that no input's
    contribution <g_i, d_i> drowns another's (a tiny bias gradient next to a huge weight one).
    The rescaling stops at 1e-3 (a smaller step would sink into the input's own grid); inputs
    still drowned by another's share, whose errors the direction cannot see, are added to
    ``drowned`` where given."""
    raw = {}
    for i in inputs:
        coordinates = signed_magnitudes(setup.rng, setup.host_values[i].size)
        coordinates[specials[i]] = 0.0
        coordinates *= element_scales(setup, i)
        raw[i] = coordinates
    weight = {i: _norm(setup.host_gradients[i].reshape(-1) * raw[i]) for i in inputs}
    positive = [w for w in weight.values() if w > 0]
    smallest = min(positive) if positive else 1.0
    share = {}
    for i in inputs:
        balance = _balance(weight[i], smallest)
        raw[i] *= balance
        share[i] = weight[i] * balance
    if drowned is not None:
        largest = max(share.values(), default=0.0)
        drowned.update(i for i in inputs if share[i] * DROWNED < largest)
    return {i: on_device(setup, i, raw[i]) for i in inputs}


def _norm(v: np.ndarray) -> float:
    """The 2-norm without BLAS: a BLAS call wakes OpenBLAS's thread pool, which then spins
    against torch's own threads through the layer's next calls (2x slower checks on 2 cores)."""
    v *= v  # in place: v is a temporary of ours
    return float(np.sqrt(np.sum(v)))


def _balance(weight: float, smallest: float) -> float:
    return 1.0 if weight <= 0 else float(np.clip(smallest / weight, 1e-3, 1.0))
