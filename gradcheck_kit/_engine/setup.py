"""The gradient check's working state: the objective F(x) = sum <dy, f(x)> at the evaluation
point, the analytic gradients it is compared with (float64, on the device and on the host), the
step fraction and the rounding each comparison allows.

A ``Setup`` built from an ``Evaluation`` (its ``origin``) can also build its twin with
|grad_output| (``convex``): kinks shared by several max-type terms make F neither convex nor concave under
mixed-sign grad_output, where the one-sided slopes of a coordinate stop bounding every valid
subgradient; under |grad_output| such an F is convex and they do. A diagnosis variant (another
problem the gradient may belong to) has no evaluation and so no twin.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from .._ground.backends import Backend
from .._oracles.finite_diff import Objective
from .tolerances import analytic_slack


class Origin(Protocol):
    """Where a ``Setup``'s problem came from (an ``Evaluation``): it can build the same check
    with |grad_output|."""

    def convex_twin(self, setup: Setup) -> Setup | None: ...


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
    origin: Origin | None = None  # where the problem came from (None: a diagnosis variant)
    complex_inputs: frozenset[int] = frozenset()  # inputs that are complex ones' real views
    complex_outputs: tuple[bool, ...] = ()  # which outputs are complex ones' real views
    _slack: dict[int, tuple[float, float]] = field(default_factory=dict, init=False, repr=False)
    _memo: dict[Any, Any] = field(default_factory=dict, init=False, repr=False)
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

    def memo(self, key: Any, make: Callable[[], Any]) -> Any:
        """``make()``, computed once per setup and ``key``: facts of the base point (its ties,
        its zeros) that several checks of it ask for."""
        if key not in self._memo:
            self._memo[key] = make()
        return self._memo[key]

    def convex(self) -> Setup | None:
        """The same check with |grad_output| (built once, on first use; None for a variant, or
        where the layer's backward cannot give it). The twin has no twin of its own."""
        if not self._convex_built:
            self._convex_built = True
            self._convex = self.origin.convex_twin(self) if self.origin is not None else None
        return self._convex

    def variant(self, objective: Objective, i: int, analytic: np.ndarray) -> Setup:
        """The check of another problem (``objective``) with ``analytic`` as input i's gradient."""
        return dataclasses.replace(
            self,
            objective=objective,
            gradients64={**self.gradients64, i: self.backend.from_numpy(analytic)},
            host_gradients={**self.host_gradients, i: analytic},
            origin=None,
        )
