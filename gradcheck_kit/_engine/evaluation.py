"""Where finite differences run, and what precision the layer really computes in.

Finite differences always run on float64 copies of the inputs when the layer accepts them, never
in the layer's float32. A layer that returns float64 for float64 inputs is *dtype-generic*: its
float64 backward is then the gradient judged against finite differences (tight), and its
float32 backward is compared with that float64 gradient within float32 rounding (``precision``).
A layer that returns float32 for float64 inputs computes in float32 inside: perturbations are
rounded to float32 so the step it sees is the step we measure, and tolerances use float32's
epsilon. A layer that rejects float64 is differenced in its own dtype, said in the result. A
layer that rounds its float64 inputs to a coarser grid inside and still returns float64 is
found out when a check fails (``rounded_inside``) and differenced on that grid (``regrid``).

The ``Evaluation`` also measures, on demand, the rounding its analytic gradients carry: their
residual from linearity in grad_output, and their jitter under ulp-level nudges.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._ground.backends import dtype_name, eps, float_rank, is_floating, to_numpy
from .._ground.draws import signed_magnitudes
from .._ground.invoke import LayerCallError
from .._oracles.finite_diff import Objective
from . import lowprec
from .calls import LayerCalls, Observed
from .contracts import gradient_contract
from .grids import ROUNDING_GRIDS, coarse_outputs, lowest_float, rounds_to, same
from .setup import Setup
from .tolerances import objective_noise, step_fraction

NUDGE_ULPS = 4.0  # float64 ulps the jitter nudges inputs and grad_output by
JITTER_NUDGES = 6  # ... how many times: on a handful of values the rounding of one nudged run
# comes near 0 in ~40% of nudges, so the largest response over several is taken
# Output term scales cost one forward call; they matter where a handful of cancelling outputs
# set the noise, not for a projection over 1e5 elements whose signal sums them all.
TERMS_LIMIT = 100_000


@dataclass(kw_only=True)
class Evaluation:
    """The point finite differences start from, on which grid each input moves, and the
    analytic gradient they are compared with."""

    calls: LayerCalls
    observed: Observed
    base: list[Any]  # the inputs (float64 where differenced in float64)
    outputs: tuple[Any, ...]  # forward at ``base``
    grid: dict[int, str]  # per input: the dtype its perturbations are rounded to
    gradients: dict[int, Any]  # the analytic gradient judged
    analytic_eps: dict[int, float]  # ... and the epsilon of its own rounding
    noise_eps: float  # epsilon of the rounding forward's outputs carry
    pairs: dict[int, tuple[Any, Any]] = field(default_factory=dict)  # (low-precision, float64) gradients
    forward_eps: float = 0.0
    float64_backward: bool = False  # gradients came from backward on the float64 base point
    settings: dict[str, Any] = field(default_factory=dict)
    # measured on first use (each costs backward calls): the linearity residuals, the jitter
    _rounding: dict[int, np.ndarray] | None = field(default=None, init=False, repr=False)
    _jitter: dict[int, np.ndarray] | None = field(default=None, init=False, repr=False)
    _sensitivity: dict[int, np.ndarray] | None = field(default=None, init=False, repr=False)

    @property
    def usable(self) -> list[int]:
        return self.observed.usable

    @property
    def names(self) -> list[str]:
        return self.calls.plan.names

    def backward(self, dy: Sequence[Any]) -> list[Any]:
        """Backward for another grad_output, called the way ``gradients`` were: on the float64
        base point when they came from the float64 run, else on fresh copies of the inputs."""
        b = self.calls.backend
        if self.float64_backward:
            dy64 = [b.float64(d) if d is not None else None for d in dy]
            return self.calls.backward(dy64, self.calls.copies(self.base))
        return self.calls.backward(list(dy), self.calls.copies(self.observed.originals))

    def rounding_scale(self, i: int) -> float:
        """The largest |g(dy) + g(d) - g(dy + d)| of the backward that produced ``gradients``.

        A backward pass is linear in grad_output, so this is pure rounding, cancellation
        included (batch norm's dx subtracts terms far larger than the result): the precision the
        layer's own algorithm achieves, measured. Computed once, only when a comparison needs
        it (two more backward calls); nothing for a backward that is not linear (its residual is
        its bug, which must not pass for rounding)."""
        if self._rounding is None:
            self._rounding = _linearity_residuals(self) if self.observed.linear else {}
        residual = self._rounding.get(i)
        return float(np.max(residual)) if residual is not None and residual.size else 0.0

    def sensitivity(self, i: int) -> np.ndarray | None:
        """How much the float64 gradient of input i moves per unit relative nudge of the inputs
        and grad_output (``lowprec.sensitivity``), measured once; None without a float64
        backward."""
        if self._sensitivity is None:
            self._sensitivity = _sensitivity(self) if self.float64_backward else {}
        return self._sensitivity.get(i)

    def convex_twin(self, setup: Setup) -> Setup | None:
        """``setup``'s check with |grad_output| (None where backward cannot give it)."""
        return _convex_twin(self, setup)

    def jitter(self, i: int) -> np.ndarray | None:
        """|g - g at inputs and grad_output nudged by ~NUDGE_ULPS float64 ulps| of the float64
        backward, the largest over JITTER_NUDGES nudges (None without a float64 backward)."""
        if self._jitter is None:
            self._jitter = _jitter(self) if self.float64_backward else {}
        return self._jitter.get(i)


# -- the evaluation point -------------------------------------------------------------------------


def evaluation_point(calls: LayerCalls, observed: Observed) -> Evaluation:
    """Decide the grid and the analytic gradient finite differences are compared with; a layer
    whose outputs all carry a coarser dtype's precision (a float32 kernel computing in bfloat16
    inside) is differenced on that grid from the start, for the inputs it rounds to it."""
    ev = _evaluation_point(calls, observed)
    coarse = coarse_outputs(ev.outputs, observed.originals, calls.backend.name)
    rounded = (
        {i: coarse for i in ev.usable if coarse and rounds_to(calls, ev.base, i, coarse)} if coarse else {}
    )
    return regrid(ev, rounded) if rounded else ev


def _evaluation_point(calls: LayerCalls, observed: Observed) -> Evaluation:
    plan, b = calls.plan, calls.backend
    if all(dtype_name(plan.inputs[i]) == "float64" for i in observed.usable):
        # our private copies, never handed to the layer before: differences start from them
        # (a layer writing into its inputs was caught on the first call)
        return _in_own_dtype(calls, observed, list(observed.originals))
    base64 = [
        b.float64(x) if k in observed.usable else x for k, x in enumerate(calls.copies(observed.originals))
    ]
    try:
        y64 = calls.forward(base64, "forward (float64)")
    except LayerCallError as exc:
        ev = _in_own_dtype(calls, observed, calls.copies(observed.originals))
        ev.settings["float64_rejected"] = exc.message
        return ev
    compute = lowest_float(y64)
    if compute != "float64":
        return _inside_low(calls, observed, base64, y64, compute)
    return _dtype_generic(calls, observed, base64, y64)


def _settings(calls: LayerCalls, grid: dict[int, str], **more: Any) -> dict[str, Any]:
    return {"grid": {calls.plan.names[i]: g for i, g in grid.items()}, **more}


def _in_own_dtype(calls: LayerCalls, observed: Observed, base: list[Any]) -> Evaluation:
    y, grads = observed.outputs, observed.gradients
    # the coarser of the input's dtype and the precision the layer's outputs show
    grid = {i: min(dtype_name(base[i]), lowest_float(y), key=float_rank) for i in observed.usable}
    noise = max([eps(g) for g in grid.values()] + [eps(o) for o in y if is_floating(o)])
    return Evaluation(
        calls=calls,
        observed=observed,
        base=base,
        outputs=y,
        grid=grid,
        gradients={i: grads[i] for i in observed.usable},
        analytic_eps={i: max(eps(grads[i]), eps(grid[i])) for i in observed.usable},
        noise_eps=noise,
        settings=_settings(calls, grid, computes_in=lowest_float(y)),
    )


def _inside_low(
    calls: LayerCalls, observed: Observed, base64: list[Any], y64: tuple[Any, ...], compute: str
) -> Evaluation:
    """The layer casts to ``compute`` inside: perturb on that grid, tolerate its epsilon."""
    b, usable, grads = calls.backend, observed.usable, observed.gradients
    rounded = [b.astype(b.astype(x, compute), "float64") if k in usable else x for k, x in enumerate(base64)]
    if any(not same(rounded[i], base64[i]) for i in usable):
        y64 = calls.forward(rounded, "forward (float64)")
    grid = {i: compute for i in usable}
    ev = Evaluation(
        calls=calls,
        observed=observed,
        base=rounded,
        outputs=y64,
        grid=grid,
        gradients={i: grads[i] for i in usable},
        analytic_eps={i: max(eps(grads[i]), eps(compute)) for i in usable},
        noise_eps=eps(compute),
        settings=_settings(calls, grid, computes_in=compute),
    )
    if any(lowprec.is_low(dtype_name(calls.plan.inputs[i])) for i in usable) and not lowprec.is_low(compute):
        # a bfloat16 input's kernel that answers float32 from float64 inputs: its gradient from
        # those inputs is judged (held to float32, not to bfloat16's rounding, which finite
        # differences on a float32 grid would never resolve), the bfloat16 one against it
        _backward_at(ev, rounded, compute, lambda i: lowprec.is_low(dtype_name(calls.plan.inputs[i])))
    return ev


def _backward_at(
    ev: Evaluation, base: list[Any], computes_in: str, paired: Callable[[int], bool]
) -> list[Any] | None:
    """backward at ``base`` (float64 inputs) with float64 grad_outputs: its usable gradients
    become the ones finite differences judge (held to ``computes_in`` at least), and the
    observed gradient of each input ``paired`` selects is compared with them. The gradients,
    or None where backward failed (said in the settings)."""
    calls, b = ev.calls, ev.calls.backend
    dy64 = [b.float64(d) if d is not None else None for d in ev.observed.dy]
    try:
        grads = calls.backward(dy64, calls.copies(base))
    except LayerCallError as exc:
        ev.settings["float64_backward_failed"] = exc.message
        return None
    _, ok = gradient_contract(grads, base, calls.plan.names, ev.usable, computes_in=computes_in)
    ev.float64_backward = set(ok) == set(ev.usable)
    for i in ok:
        if paired(i):
            ev.pairs[i] = (ev.observed.gradients[i], grads[i])
        ev.gradients[i] = grads[i]
        ev.analytic_eps[i] = max(eps(grads[i]), eps(computes_in))
    return grads


def _dtype_generic(
    calls: LayerCalls, observed: Observed, base64: list[Any], y64: tuple[Any, ...]
) -> Evaluation:
    """float64 in, float64 out: judge the float64 backward, compare the low-precision one to it."""
    plan, usable, grads = calls.plan, observed.usable, observed.gradients
    grid = {i: "float64" for i in usable}
    forward_eps = _forward_discrepancy(observed.outputs, y64)
    ev = Evaluation(
        calls=calls,
        observed=observed,
        base=base64,
        outputs=y64,
        grid=grid,
        gradients={i: grads[i] for i in usable},
        analytic_eps={i: max(eps(grads[i]), forward_eps) for i in usable},
        noise_eps=eps("float64"),
        forward_eps=forward_eps,
        settings=_settings(calls, grid, forward_eps=forward_eps),
    )
    grads64 = _backward_at(ev, base64, "float64", lambda i: dtype_name(plan.inputs[i]) != "float64")
    if grads64 is None:
        return ev
    coarse = {
        plan.names[i]: dtype_name(grads64[i])
        for i in usable
        if grads64[i] is not None and lowprec.is_low(dtype_name(grads64[i]))
    }
    if coarse:  # a backward that answers bfloat16 whatever it is fed
        ev.settings["float64_backward_dtype"] = coarse
    return ev


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


# -- grids the layer rounds to inside ---------------------------------------------------------


def rounded_inside(ev: Evaluation, inputs: list[int]) -> dict[int, str]:
    """The inputs among ``inputs`` that the layer rounds to a coarser grid before computing, and
    that grid: a float64 kernel that casts to float32 first (``x.astype(np.float32)``) and
    returns float64, as NumPy 1.x's promotion often makes it, is a staircase at float64's
    scale. A nudge smaller than half a grid ulp, at a point on that grid, then leaves every
    output bit for bit the same. Two forward calls per grid tried; only asked when a check on
    the float64 grid failed (on the coarser grid a correct layer passes)."""
    # float16 and bfloat16 are not nested: each is tried, the coarsest that holds is taken
    grids = [g for g in ROUNDING_GRIDS if g != "bfloat16" or ev.calls.backend.name == "torch"]
    found = {}
    for i in inputs:
        if ev.grid.get(i) != "float64" or not rounds_to(ev.calls, ev.base, i, grids[0]):
            continue
        held = [g for g in grids if g == grids[0] or rounds_to(ev.calls, ev.base, i, g)]
        found[i] = max(held, key=eps)
    return found


def regrid(ev: Evaluation, grids: dict[int, str]) -> Evaluation:
    """``ev`` with the inputs in ``grids`` rounded to their grid and differenced on it, with that
    grid's epsilon for the rounding the outputs carry."""
    b = ev.calls.backend
    base = [
        b.astype(b.astype(x, grids[k]), "float64") if k in grids else x
        for k, x in enumerate(ev.calls.copies(ev.base))
    ]
    grid = {i: grids.get(i, g) for i, g in ev.grid.items()}
    names = ev.calls.plan.names
    return dataclasses.replace(
        ev,
        base=base,
        outputs=ev.calls.forward(base, "forward (float64)"),
        grid=grid,
        analytic_eps={i: max(e, eps(grid[i])) for i, e in ev.analytic_eps.items()},
        noise_eps=max(ev.noise_eps, eps(max(grids.values(), key=eps))),
        settings={
            **ev.settings,
            **_settings(ev.calls, grid),
            "rounded_inside": {names[i]: g for i, g in grids.items()},
        },
    )


# -- the rounding the analytic gradients carry, measured --------------------------------------


def _linearity_residuals(ev: Evaluation) -> dict[int, np.ndarray]:
    """|g(dy) + g(d) - g(dy + d)| of the backward that produced ``ev.gradients``."""
    b, rng = ev.calls.backend, np.random.default_rng([ev.calls.plan.seed, 2])
    # the identity is exact only if dy + d is formed in the dtype the backward runs in
    dy = [b.float64(d) if d is not None and ev.float64_backward else d for d in ev.observed.dy]
    other = [
        None if d is None else b.astype(b.from_numpy(rng.uniform(-1.5, 1.5, tuple(d.shape))), d.dtype)
        for d in dy
    ]
    try:
        g_other = ev.backward(other)
        both = ev.calls.copies(other)
        for d, e in zip(dy, both):
            if e is not None:
                e += d  # in place: 0-d arrays stay arrays
        g_both = ev.backward(both)
    except LayerCallError:
        return {}
    out = {}
    for i in ev.usable:
        parts = [
            to_numpy(g).astype(np.float64) for g in (ev.gradients[i], g_other[i], g_both[i]) if g is not None
        ]
        if len(parts) == 3 and parts[0].shape == parts[1].shape == parts[2].shape:
            out[i] = np.abs(parts[0] + parts[1] - parts[2])
    return out


def _sensitivity(ev: Evaluation) -> dict[int, np.ndarray]:
    b = ev.calls.backend

    def backward(inputs: list[Any], dy: list[Any]) -> list[np.ndarray | None]:
        grads = ev.calls.backward(dy, inputs)
        return [None if grads[i] is None else to_numpy(grads[i]).astype(np.float64) for i in ev.usable]

    dy64 = [b.float64(d) if d is not None else None for d in ev.observed.dy]
    rng = np.random.default_rng([ev.calls.plan.seed, 6])
    try:
        return lowprec.sensitivity(backward, ev.calls.copies(ev.base), dy64, ev.usable, rng, b)
    except LayerCallError:
        return {}


def _jitter(ev: Evaluation) -> dict[int, np.ndarray]:
    """Nudging grad_output moves a gradient by ulps of the terms it sums (a bias gradient that
    cancels to ~0); nudging the inputs, by ulps of its coefficients' rounding. Nudges have random
    signs and magnitudes, and several are taken: a layer blind to some nudges (batch norm over
    two values ignores moving both alike) must not look exact, nor one whose rounding happened
    to cancel in one nudged run."""
    rng = np.random.default_rng([ev.calls.plan.seed, 4])
    worst: dict[int, np.ndarray] = {}
    for _ in range(JITTER_NUDGES):
        try:
            moved = _nudged_gradients(ev, rng)
        except LayerCallError:
            return {}
        for i, change in moved.items():
            worst[i] = np.maximum(worst[i], change) if i in worst else change
    return worst


def _nudged_gradients(ev: Evaluation, rng: np.random.Generator) -> dict[int, np.ndarray]:
    b, nudge = ev.calls.backend, NUDGE_ULPS * eps("float64")

    def nudged(x: Any) -> Any:
        x *= 1 + nudge * b.from_numpy(signed_magnitudes(rng, tuple(x.shape)))  # 0-d stays an array
        return x

    inputs = [nudged(x) if k in ev.usable else x for k, x in enumerate(ev.calls.copies(ev.base))]
    dy = [nudged(b.float64(d)) if d is not None else None for d in ev.observed.dy]
    moved = ev.calls.backward(dy, inputs)
    return {
        i: np.abs(to_numpy(moved[i]).astype(np.float64) - to_numpy(ev.gradients[i]).astype(np.float64))
        for i in ev.usable
        if moved[i] is not None and tuple(moved[i].shape) == tuple(ev.gradients[i].shape)
    }


# -- the gradient check's working state ----------------------------------------------------


def build_setup(
    ev: Evaluation,
    dy: Sequence[Any | None] | None = None,
    gradients: Mapping[int, Any] | None = None,
    like: Objective | None = None,
) -> Setup:
    """The check of ``ev``'s gradients against grad_output ``dy`` (default: the ones backward was
    given); output term scales are measured, unless ``like`` (the objective of the same point
    under another grad_output) has them: its outputs and their rounding scales are shared."""
    b, plan, usable = ev.calls.backend, ev.calls.plan, ev.usable
    dy = ev.observed.dy if dy is None else dy
    gradients = ev.gradients if gradients is None else gradients
    dy64 = [b.as_float64(d) if d is not None else None for d in dy]  # ours: no copy needed
    objective = Objective(
        forward=plan.forward,
        params=plan.params,
        base=ev.base,
        base64={i: b.as_float64(ev.base[i]) for i in usable},
        grid=ev.grid,
        dy=dy64,
        backend=b,
        counter=ev.calls.counter,
    )
    if like is not None:  # per output: the same whatever grad_output weighs them
        objective.base_outputs, objective._sizes = like.base_outputs, like.sizes()
    else:
        objective.base_outputs = [
            _ours(b, ev, y) if d is not None else None for y, d in zip(ev.outputs, dy64)
        ]
        if sum(math.prod(ev.base[i].shape) for i in usable) <= TERMS_LIMIT:
            objective.measure_terms(np.random.default_rng([plan.seed, 3]))
    noise_eps = objective_noise(ev.noise_eps)
    # gradients are copied once: a layer may hand back a buffer its next backward call reuses
    gradients64 = {i: b.float64(gradients[i]) for i in usable}
    return Setup(
        objective=objective,
        noise=noise_eps * objective.base_spread(),
        names=plan.names,
        gradients64=gradients64,
        host_gradients={i: np.asarray(to_numpy(gradients64[i]), dtype=np.float64) for i in usable},
        host_values={i: np.asarray(to_numpy(objective.base64[i]), dtype=np.float64) for i in usable},
        fractions={i: step_fraction(ev.grid[i]) for i in usable},
        analytic_eps={i: ev.analytic_eps[i] for i in usable},
        noise_eps=noise_eps,
        rtol=plan.rtol,
        atol=plan.atol,
        rng=np.random.default_rng([plan.seed, 1]),
        origin=ev,
        complex_inputs=plan.view.inputs if plan.view is not None else frozenset(),
        complex_outputs=plan.view.outputs if plan.view is not None else (),
    )


def _ours(b: Any, ev: Evaluation, y: Any) -> Any:
    """A base output in float64 that no later call of the layer can overwrite: the contract
    stage's outputs are copies already (shared, not copied again: an output can be most of a
    check's memory), any other is copied."""
    if any(y is mine for mine in ev.observed.outputs):
        return b.as_float64(y)
    return b.float64(y)


def _convex_twin(ev: Evaluation, setup: Setup) -> Setup | None:
    dy = [setup.backend.xp.abs(d) if d is not None else None for d in ev.observed.dy]
    try:
        grads = ev.backward(dy)
    except LayerCallError:
        return None
    _, ok = gradient_contract(grads, ev.calls.plan.inputs, ev.names, ev.usable)
    if set(ok) != set(ev.usable):
        return None
    twin = build_setup(ev, dy, {i: grads[i] for i in ev.usable}, setup.objective)
    twin.origin = None  # no twin of its own
    return twin
