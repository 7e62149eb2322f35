"""``conj_missing``: a complex input's gradient with a conjugation forgotten (or one too many).

In torch's convention the gradient of a complex input is grad_output times the conjugate
derivative: for y = z·w, grad_z = grad·conj(w). Checked through the real view (``_engine.
realview``: (real, imaginary) pairs on a last axis of 2), a conj gone wrong shows in one of two
ways, each tested as a variant problem with the projection check (so it also works where the
input was checked by projection):

* the gradient is the conjugate of the right one, its imaginary half's sign flipped
  (``conj(grad * w.conj())``, ``grad.conj() * w``);
* it is the conjugate of the right gradient for conj(grad_output): grad·∂y/∂z where
  grad·conj(∂y/∂z) is due (``grad * w`` for ``grad * w.conj()``). For a real output the two
  coincide.
"""

from __future__ import annotations

import numpy as np

from .._engine.setup import Setup
from . import variants
from .evidence import Pattern

CONVENTION = "torch's convention: grad_z = grad_output · conj(∂y/∂z), e.g. grad * w.conj() for y = z * w"


def conj_missing(setup: Setup, i: int) -> list[Pattern]:
    """The pattern where input i is a complex one's real view and a conj explains its gradient."""
    if i not in setup.complex_inputs:
        return []
    conjugated = _conj(setup.host_gradients[i])
    verdict = variants.transformed(setup, i, conjugated)
    if verdict.holds:
        return [
            _pattern(
                "the gradient is the conjugate of the right one (its imaginary part has the wrong sign)",
                verdict.relative_error,
            )
        ]
    outputs = setup.complex_outputs
    dy = variants.grad_output(setup)
    if not any(outputs):
        return []
    flipped = [_conj(d) if d is not None and k < len(outputs) and outputs[k] else d for k, d in enumerate(dy)]
    verdict = variants.holds(variants.variant(setup, i, flipped, conjugated), i)
    if verdict.holds:
        return [
            _pattern(
                "the gradient is grad_output · ∂y/∂z where grad_output · conj(∂y/∂z) is due (a conj() "
                "missing on the derivative)",
                verdict.relative_error,
            )
        ]
    return []


def _conj(pairs: np.ndarray) -> np.ndarray:
    out = np.array(pairs, dtype=np.float64, copy=True)
    out[..., 1] *= -1.0
    return out


def _pattern(what: str, error: float) -> Pattern:
    return Pattern(
        "conj_missing",
        f"conj missing: {what}; {CONVENTION} (relative error {error:.1e})",
        max(0.0, 1.0 - error),
    )
