"""Where finite differences run, and what precision the layer really computes in.

Finite differences always run on float64 copies of the inputs when the layer accepts them, never
in the layer's float32. A layer that returns float64 for float64 inputs is *dtype-generic*: its
float64 backward is then the gradient judged against finite differences (tight), and its
float32 backward is compared with that float64 gradient within float32 rounding (``precision``).
A layer that returns float32 for float64 inputs computes in float32 inside: perturbations are
rounded to float32 so the step it sees is the step we measure, and tolerances use float32's
epsilon. A layer that rejects float64 is differenced in its own dtype, said in the result.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._ground.backends import dtype_name, eps, float_rank, is_floating, to_numpy
from .._ground.invoke import LayerCallError, call, outputs_of
from .._result import Finding, InputReport
from . import contracts
from .tolerances import ROUNDING_ULPS, precision_tolerance, smallest_normal

NUDGE_ULPS = 4.0


@dataclass
class Evaluation:
    base: list[Any]
    outputs: tuple[Any, ...]
    grid: dict[int, str]
    gradients: dict[int, Any]
    analytic_eps: dict[int, float]
    noise_eps: float
    pairs: dict[int, tuple[Any, Any]] = field(default_factory=dict)
    forward_eps: float = 0.0
    float64_backward: bool = False  # gradients came from backward on the float64 base point
    names: list[str] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    rounding: Callable[[], dict[int, np.ndarray]] | None = None
    _rounding: dict[int, np.ndarray] | None = None
    jitter: Callable[[], dict[int, np.ndarray]] | None = None
    _jitter: dict[int, np.ndarray] | None = None

    def rounding_scale(self, i: int) -> float:
        """The largest |g(dy) + g(d) - g(dy + d)| of the backward that produced ``gradients``.

        A backward pass is linear in grad_output, so this is pure rounding, cancellation
        included (batch norm's dx subtracts terms far larger than the result): the precision the
        layer's own algorithm achieves, measured. Computed once, only when a comparison needs
        it (two more backward calls)."""
        if self.rounding is None:
            return 0.0
        if self._rounding is None:
            self._rounding = self.rounding()
        residual = self._rounding.get(i)
        return float(np.max(residual)) if residual is not None and residual.size else 0.0

    def precision_findings(self, reports: list[InputReport]) -> list[Finding]:
        return [f for i, pair in self.pairs.items() if (f := self._compare(i, *pair)) is not None]

    def _cancellation(self, i: int, epsilon: float) -> np.ndarray | float:
        """Rounding a low-precision gradient carries when it cancels large terms.

        Such a gradient rounds like epsilon times its terms, not times itself, and neither its
        value nor its linearity in grad_output shows the terms. The float64 backward's jitter
        under an ulp-level nudge of the inputs does: rounding noise of eps(float64) times the
        terms. The same algorithm in ``epsilon`` rounds epsilon/eps(float64) times worse."""
        assert self.jitter is not None
        if self._jitter is None:
            self._jitter = self.jitter()
        moved = self._jitter.get(i)
        if moved is None or not moved.size:
            return 0.0
        return ROUNDING_ULPS * (moved + 0.1 * float(np.max(moved))) * epsilon / eps("float64")

    def _compare(self, i: int, low: Any, high: Any) -> Finding | None:
        low_np, high_np = to_numpy(low).astype(np.float64), to_numpy(high).astype(np.float64)
        if low_np.shape != high_np.shape or low_np.size == 0:
            return None
        allowed = precision_tolerance(
            max(eps(low), self.forward_eps), high_np, smallest_normal(dtype_name(low))
        )
        excess = np.abs(low_np - high_np) - allowed
        if (excess > 0).any():  # the same algorithm rounds ~eps(low)/eps(float64) times worse
            allowed = allowed + ROUNDING_ULPS * self.rounding_scale(i) * eps(low) / eps("float64")
            excess = np.abs(low_np - high_np) - allowed
        if (excess > 0).any() and self.jitter is not None:
            allowed = allowed + self._cancellation(i, eps(low))
            excess = np.abs(low_np - high_np) - allowed
        if not (excess > 0).any():
            return None
        k = np.unravel_index(int(np.argmax(excess)), excess.shape)
        where = tuple(int(v) for v in k)
        name = self.names[i]
        return Finding(
            "precision",
            f"{dtype_name(low)} gradient for {name} differs from the same layer's float64 gradient "
            f"beyond {dtype_name(low)} rounding at {list(where)}: {low_np[k]:.6g} vs "
            f"{high_np[k]:.6g} (allowed ±{allowed[k]:.3g}); look for a low-precision "
            "accumulator or a dtype-specific branch",
            input=name,
            where=where,
            details={"low": float(low_np[k]), "float64": float(high_np[k]), "allowed": float(allowed[k])},
        )


def evaluation_point(
    session: Any, y: tuple[Any, ...], grads: list[Any], usable: list[int]
) -> Evaluation | None:
    """Decide the grid and the analytic gradient finite differences are compared with."""
    plan, b = session.plan, session.b
    names = plan.names
    if all(dtype_name(plan.inputs[i]) == "float64" for i in usable):
        # our private copies, never handed to the layer before: differences start from them
        # (a layer writing into its inputs was caught on the first call)
        return _in_own_dtype(list(session.originals), y, grads, usable, names, session)
    base64 = [
        b.float64(x) if k in usable else x for k, x in enumerate(contracts.snapshot(b, session.originals))
    ]
    try:
        y64 = outputs_of(call(plan.forward, base64, plan.params, "forward (float64)", session.calls), b.name)
    except LayerCallError as exc:
        base = contracts.snapshot(b, session.originals)
        ev = _in_own_dtype(base, y, grads, usable, names, session)
        ev.settings["float64_rejected"] = exc.message
        return ev
    compute = lowest_float(y64)
    if compute != "float64":
        return _inside_low(session, base64, y64, grads, usable, compute)
    return _dtype_generic(session, base64, y, y64, grads, usable)


def _in_own_dtype(
    base: list[Any], y: tuple[Any, ...], grads: list[Any], usable: list[int], names: list[str], session: Any
) -> Evaluation:
    grid = {i: _grid(dtype_name(base[i]), lowest_float(y)) for i in usable}
    noise = max([eps(g) for g in grid.values()] + [eps(o) for o in y if is_floating(o)])
    return Evaluation(
        base,
        y,
        grid,
        {i: grads[i] for i in usable},
        {i: max(eps(grads[i]), eps(grid[i])) for i in usable},
        noise,
        names=names,
        settings={"grid": {names[i]: grid[i] for i in usable}, "computes_in": lowest_float(y)},
    )


def _grid(input_dtype: str, output_dtype: str) -> str:
    """The coarser of the input's dtype and the precision the layer's outputs show."""
    return input_dtype if float_rank(input_dtype) <= float_rank(output_dtype) else output_dtype


def lowest_float(outputs: tuple[Any, ...]) -> str:
    floats = [dtype_name(o) for o in outputs if is_floating(o)]
    return min(floats, key=float_rank) if floats else "float64"


def _inside_low(
    session: Any, base64: list[Any], y64: tuple[Any, ...], grads: list[Any], usable: list[int], compute: str
) -> Evaluation:
    """The layer casts to ``compute`` inside: perturb on that grid, tolerate its epsilon."""
    b, plan = session.b, session.plan
    rounded = [b.astype(b.astype(x, compute), "float64") if k in usable else x for k, x in enumerate(base64)]
    if any(not _same(rounded[i], base64[i]) for i in usable):
        y64 = outputs_of(call(plan.forward, rounded, plan.params, "forward (float64)", session.calls), b.name)
    grid = {i: compute for i in usable}
    ev = Evaluation(
        rounded,
        y64,
        grid,
        {i: grads[i] for i in usable},
        {i: max(eps(grads[i]), eps(compute)) for i in usable},
        eps(compute),
        names=plan.names,
        settings={"grid": {plan.names[i]: compute for i in usable}, "computes_in": compute},
    )
    return ev


def _same(a: Any, b: Any) -> bool:
    return bool(np.array_equal(to_numpy(a), to_numpy(b)))


def _dtype_generic(
    session: Any,
    base64: list[Any],
    y: tuple[Any, ...],
    y64: tuple[Any, ...],
    grads: list[Any],
    usable: list[int],
) -> Evaluation:
    """float64 in, float64 out: judge the float64 backward, compare the low-precision one to it."""
    b, plan = session.b, session.plan
    grid = {i: "float64" for i in usable}
    forward_eps = _forward_discrepancy(y, y64)
    ev = Evaluation(
        base64,
        y64,
        grid,
        {i: grads[i] for i in usable},
        {i: max(eps(grads[i]), forward_eps) for i in usable},
        eps("float64"),
        forward_eps=forward_eps,
        names=plan.names,
        settings={"grid": {plan.names[i]: "float64" for i in usable}, "forward_eps": forward_eps},
    )
    dy64 = [b.float64(d) if d is not None else None for d in session.dy_values]
    try:
        grads64 = session._call_backward(dy64, contracts.snapshot(b, base64))
    except LayerCallError as exc:
        ev.settings["float64_backward_failed"] = exc.message
        return ev
    _, ok = contracts.gradient_contract(grads64, base64, plan.names, usable)
    ev.float64_backward = set(ok) == set(usable)
    for i in ok:
        ev.gradients[i] = grads64[i]
        ev.analytic_eps[i] = eps(grads64[i])
        if dtype_name(plan.inputs[i]) != "float64":
            ev.pairs[i] = (grads[i], grads64[i])
    return ev


# Grids a layer may round its float64 inputs to before computing, finest first, with their
# mantissa bits: a nudge of 2^-(bits + 3) relative stays below half an ulp of each.
ROUNDING_GRIDS = {"float32": 23, "float16": 10, "bfloat16": 7}


def rounded_inside(session: Any, ev: Evaluation, inputs: list[int]) -> dict[int, str]:
    """The inputs among ``inputs`` that the layer rounds to a coarser grid before computing, and
    that grid: a float64 kernel that casts to float32 first (``x.astype(np.float32)``) and
    returns float64, as NumPy 1.x's promotion often makes it, is a staircase at float64's
    scale. A nudge smaller than half a grid ulp, at a point on that grid, then leaves every
    output bit for bit the same. Two forward calls per grid tried; only asked when a check on
    the float64 grid failed (on the coarser grid a correct layer passes)."""
    # float16 and bfloat16 are not nested: each is tried, the coarsest that holds is taken
    grids = [g for g in ROUNDING_GRIDS if g != "bfloat16" or session.b.name == "torch"]
    found = {}
    for i in inputs:
        if ev.grid.get(i) != "float64" or not rounds_to(session, ev.base, i, grids[0]):
            continue
        held = [g for g in grids if g == grids[0] or rounds_to(session, ev.base, i, g)]
        found[i] = max(held, key=eps)
    return found


def rounds_to(session: Any, base: Sequence[Any], i: int, grid: str) -> bool:
    """Whether the layer sees input i only on ``grid``: its outputs stay bit for bit the same
    under a sub-ulp nudge at a point of that grid (and move under a large one)."""
    b, plan = session.b, session.plan
    on_grid = b.astype(b.astype(base[i], grid), "float64")
    host = to_numpy(on_grid)
    if not np.all(np.isfinite(host)) or not np.any(host):
        return False  # out of the grid's range, or nothing a nudge could move
    signs = b.from_numpy(np.random.default_rng([plan.seed, 5]).choice([-1.0, 1.0], size=host.shape))
    # below half an ulp (rounds back onto the grid), and, on the finest grid, 1/16 relative: an
    # input that moves no output even then is not rounded but unused (its gradient must be 0)
    factors = [2.0 ** -(ROUNDING_GRIDS[grid] + 3)] + ([2.0**-4] if grid == "float32" else [])
    at = _outputs_at(session, base, i, on_grid)
    for k, factor in enumerate(factors):
        nudged = b.copy(on_grid)
        nudged *= 1 + factor * signs  # in place: 0-d arrays stay arrays
        moved = _outputs_at(session, base, i, nudged)
        same = all(_same(a, c) for a, c in zip(at, moved) if is_floating(a))
        if same != (k == 0):
            return False
    return True


def _outputs_at(session: Any, base: Sequence[Any], i: int, value: Any) -> tuple[Any, ...]:
    b, plan = session.b, session.plan
    point = [value if k == i else x for k, x in enumerate(contracts.snapshot(b, base))]
    return outputs_of(call(plan.forward, point, plan.params, "forward (grid)", session.calls), b.name)


def regrid(session: Any, ev: Evaluation, grids: dict[int, str]) -> Evaluation:
    """``ev`` with the inputs in ``grids`` rounded to their grid and differenced on it, with that
    grid's epsilon for the rounding the outputs carry."""
    b, plan = session.b, session.plan
    base = [
        b.astype(b.astype(x, grids[k]), "float64") if k in grids else x
        for k, x in enumerate(contracts.snapshot(b, ev.base))
    ]
    y = outputs_of(call(plan.forward, base, plan.params, "forward (float64)", session.calls), b.name)
    coarsest = max(grids.values(), key=eps)
    grid = {i: grids.get(i, g) for i, g in ev.grid.items()}
    settings = dict(ev.settings)
    settings["grid"] = {plan.names[i]: g for i, g in grid.items()}
    settings["rounded_inside"] = {plan.names[i]: g for i, g in grids.items()}
    return dataclasses.replace(
        ev,
        base=base,
        outputs=y,
        grid=grid,
        analytic_eps={i: max(e, eps(grid[i])) for i, e in ev.analytic_eps.items()},
        noise_eps=max(ev.noise_eps, eps(coarsest)),
        settings=settings,
        rounding=None,
        _rounding=None,
        jitter=None,
        _jitter=None,
    )


def _forward_discrepancy(y: tuple[Any, ...], y64: tuple[Any, ...]) -> float:
    """Relative gap between the low-precision and the float64 forward: the precision the layer
    really achieves (TF32 convolutions, float16 inside) measured rather than assumed."""
    worst = 0.0
    for low, high in zip(y, y64):
        if not (is_floating(low) and is_floating(high)) or low.shape != high.shape:
            continue
        low_np, high_np = to_numpy(low).astype(np.float64), to_numpy(high).astype(np.float64)
        finite = np.isfinite(low_np) & np.isfinite(high_np)
        if not finite.any():
            continue
        peak = float(np.max(np.abs(high_np[finite])))
        if peak > 0:
            worst = max(worst, float(np.max(np.abs(low_np - high_np)[finite])) / peak)
    return worst
