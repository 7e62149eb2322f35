"""Which grid a layer really computes on: its outputs all on a coarser dtype's grid (a float32
kernel computing in bfloat16 inside), or its outputs unmoved by a sub-ulp nudge of one input at
a point of that grid (the layer rounds that input first)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .._ground.backends import dtype_name, eps, float_rank, is_floating, to_numpy
from .._ground.vocabulary import MANTISSA_BITS
from .calls import LayerCalls

ROUNDING_GRIDS = ("float32", "float16", "bfloat16")  # grids a layer may round to inside
COARSE_EVIDENCE = 16  # distinct output values on a coarser grid that prove the layer computes on it
SAMPLE = 4096  # values of an array looked at first
BLOCK = 1 << 18  # values of an array converted to float64 at a time


def lowest_float(outputs: Sequence[Any]) -> str:
    """The least precise floating dtype among ``outputs`` (float64 when there is none)."""
    floats = [dtype_name(o) for o in outputs if is_floating(o)]
    return min(floats, key=float_rank) if floats else "float64"


def coarse_outputs(outputs: Sequence[Any], inputs: Sequence[Any], library: str) -> str | None:
    """The coarsest of float16/bfloat16 that every floating output value is exactly
    representable in, when it is coarser than the outputs' and the inputs' own dtypes and no input
    is representable in it (so that it says how the layer computes, not what it was fed): 16
    independent float32 values land on bfloat16's grid by chance with probability 2^-256. None
    when the outputs are finer, or too few to tell.

    A sample of each array is asked first (nearly every layer is told apart there); only arrays
    whose sample is on the grid are then read in full, block by block: the check never holds
    more than a block's float64 copy besides the layer's own arrays."""
    floating = [o for o in outputs if is_floating(o)]
    if not floating:
        return None
    finest = max(eps(x) for x in [*floating, *inputs] if is_floating(x))
    fed = [x for x in inputs if is_floating(x)]
    for grid in [g for g in ("bfloat16", "float16") if g != "bfloat16" or library == "torch"]:
        on_it = eps(grid) > finest and all(_on_grid(o, grid) for o in floating)
        if on_it and not all(_on_grid(x, grid) for x in fed):
            # (counted last: nearly every layer's outputs are off the grid, told by a sample)
            return grid if _distinct_nonzero(floating) >= COARSE_EVIDENCE else None
    return None


def _flat(x: Any) -> Any:
    return x.reshape(-1) if x.ndim else x.reshape(1)


def _sample(x: Any) -> np.ndarray:
    flat = _flat(x)
    step = max(1, flat.shape[0] // SAMPLE)
    return to_numpy(flat[::step][:SAMPLE]).astype(np.float64)


def _distinct_nonzero(arrays: Sequence[Any]) -> int:
    values = np.concatenate([_sample(a) for a in arrays])
    return int(np.unique(values[(values != 0) & np.isfinite(values)]).size)


def _on_grid(x: Any, grid: str) -> bool:
    """Every finite value of ``x`` exactly representable in ``grid`` (zeros always are)."""
    if not _representable(_sample(x), grid):
        return False
    flat = _flat(x)
    return all(
        _representable(to_numpy(flat[k : k + BLOCK]).astype(np.float64), grid)
        for k in range(0, flat.shape[0], BLOCK)
    )


def _representable(values: np.ndarray, grid: str) -> bool:
    values = values[np.isfinite(values)]
    if grid == "bfloat16":
        import torch

        rounded = torch.from_numpy(values).to(torch.bfloat16).double().numpy()
    else:
        rounded = values.astype(grid).astype(np.float64)
    return bool(np.array_equal(rounded, values))


def rounds_to(calls: LayerCalls, base: Sequence[Any], i: int, grid: str) -> bool:
    """Whether the layer sees input i only on ``grid``: its outputs stay bit for bit the same
    under a sub-ulp nudge at a point of that grid (and move under a large one)."""
    b = calls.backend
    fed = dtype_name(base[i])  # the layer is fed what it was fed: it may accept nothing else
    if eps(fed) >= eps(grid):
        return False  # no finer value to nudge within a grid ulp
    on_grid = b.astype(b.astype(base[i], grid), fed)
    host = to_numpy(on_grid)
    if not np.all(np.isfinite(host)) or not np.any(host):
        return False  # out of the grid's range, or nothing a nudge could move
    signs = b.from_numpy(np.random.default_rng([calls.plan.seed, 5]).choice([-1.0, 1.0], size=host.shape))
    # below half an ulp (rounds back onto the grid: 2^-(bits + 3) relative), and, on the finest
    # grid, 1/16 relative: an input that moves no output even then is not rounded but unused
    factors = [2.0 ** -(MANTISSA_BITS[grid] + 3)] + ([2.0**-4] if grid == ROUNDING_GRIDS[0] else [])
    at = _outputs_at(calls, base, i, on_grid)
    for k, factor in enumerate(factors):
        nudged = b.copy(on_grid)
        nudged *= 1 + factor * signs  # in place: 0-d arrays stay arrays
        moved = _outputs_at(calls, base, i, nudged)
        unmoved = all(same(a, c) for a, c in zip(at, moved) if is_floating(a))
        if unmoved != (k == 0):
            return False
    return True


def _outputs_at(calls: LayerCalls, base: Sequence[Any], i: int, value: Any) -> tuple[Any, ...]:
    point = [value if k == i else x for k, x in enumerate(calls.copies(base))]
    return calls.forward(point, "forward (grid)")


def same(a: Any, b: Any) -> bool:
    return bool(np.array_equal(to_numpy(a), to_numpy(b)))
