"""The gradient check's working state: the objective F(x) = sum <dy, f(x)> at the evaluation
point, the analytic gradients it is compared with (float64, on the device and on the host), the
step fraction and the rounding each comparison allows.

A ``Setup`` built from an ``Evaluation`` can also build its twin with |grad_output|
(``convex``): kinks shared by several max-type terms make F neither convex nor concave under
mixed-sign grad_output, where the one-sided slopes of a coordinate stop bounding every valid
subgradient; under |grad_output| such an F is convex and they do. A diagnosis variant (another
problem the gradient may belong to) has no evaluation and so no twin.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._ground.backends import Backend, to_numpy
from .._ground.invoke import LayerCallError
from .._oracles.finite_diff import Objective
from .contracts import gradient_contract
from .evaluation import Evaluation
from .tolerances import analytic_slack, objective_noise, step_fraction

# Output term scales cost one forward call; they matter where a handful of cancelling outputs
# set the noise, not for a projection over 1e5 elements whose signal sums them all.
TERMS_LIMIT = 100_000


@dataclass(kw_only=True)
class Setup:
    """Everything the element-wise and projection checks need."""

    objective: Objective
    noise: float  # absolute rounding noise of F(x + d) - F(x) when every output moves (Taylor)
    names: list[str]
    gradients64: dict[int, Any]  # analytic gradient per input, float64 on the device
    host_gradients: dict[int, np.ndarray]
    host_values: dict[int, np.ndarray]  # the base point, float64 on the host
    fractions: dict[int, float]  # relative step per input (from its grid dtype)
    analytic_eps: dict[int, float]
    noise_eps: float = 0.0  # noise per unit of sum |dy y| over the outputs a probe moves
    rtol: float | None = None
    atol: float | None = None
    rng: np.random.Generator
    evaluation: Evaluation | None = None  # where the problem came from (None: a diagnosis variant)
    _slack: dict[int, tuple[float, float]] = field(default_factory=dict, init=False, repr=False)
    _convex: Setup | None = field(default=None, init=False, repr=False)
    _convex_built: bool = field(default=False, init=False, repr=False)  # _convex None: none could be

    @property
    def backend(self) -> Backend:
        return self.objective.backend

    def slack(self, i: int) -> tuple[float, float]:
        """(rtol, atol) the analytic gradient of input i may be off by: the caller's, else what
        its own rounding earns (asked per probe batch; the gradient's peak is a pass over it)."""
        if i not in self._slack:
            self._slack[i] = analytic_slack(self.analytic_eps[i], self.host_gradients[i])
        rtol, atol = self._slack[i]
        return (
            self.rtol if self.rtol is not None else rtol,
            self.atol if self.atol is not None else atol,
        )

    def convex(self) -> Setup | None:
        """The same check with |grad_output| (built once, on first use; None for a variant, or
        where the layer's backward cannot give it). The twin has no twin of its own."""
        if not self._convex_built:
            self._convex_built = True
            self._convex = _convex_twin(self) if self.evaluation is not None else None
        return self._convex

    def variant(self, objective: Objective, i: int, analytic: np.ndarray) -> Setup:
        """The check of another problem (``objective``) with ``analytic`` as input i's gradient."""
        return dataclasses.replace(
            self,
            objective=objective,
            gradients64={**self.gradients64, i: self.backend.from_numpy(analytic)},
            host_gradients={**self.host_gradients, i: analytic},
            evaluation=None,
        )


def build_setup(
    ev: Evaluation,
    dy: Sequence[Any | None] | None = None,
    gradients: Mapping[int, Any] | None = None,
    terms: list[Any] | None = None,
) -> Setup:
    """The check of ``ev``'s gradients against grad_output ``dy`` (default: the ones backward was
    given); output term scales ``terms`` are measured when None."""
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
    objective.base_outputs = [b.float64(y) if d is not None else None for y, d in zip(ev.outputs, dy64)]
    if terms is not None:
        objective.terms = terms  # per output: the same whatever grad_output weighs them
    elif sum(int(np.prod(tuple(ev.base[i].shape))) for i in usable) <= TERMS_LIMIT:
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
        evaluation=ev,
    )


def _convex_twin(setup: Setup) -> Setup | None:
    ev = setup.evaluation
    assert ev is not None
    dy = [setup.backend.xp.abs(d) if d is not None else None for d in ev.observed.dy]
    try:
        grads = ev.backward(dy)
    except LayerCallError:
        return None
    _, ok = gradient_contract(grads, ev.calls.plan.inputs, ev.names, ev.usable)
    if set(ok) != set(ev.usable):
        return None
    twin = build_setup(ev, dy, {i: grads[i] for i in ev.usable}, setup.objective.terms)
    twin.evaluation = None  # no twin of its own
    return twin
