"""The unseen zoo: 241 layers written apart from gradcheck-kit's own tests (losses, reductions,
linear algebra, convolutions, norms, activations smooth and piecewise-linear, recurrent cells,
composite objects, contract breaches; margin losses at their kinks, likelihoods, mixed scales and
integer-valued inputs, gathers and scatters, torch.autograd.Functions smooth and at ties), each
labelled per case by a ground truth that never asks
gradcheck-kit: torch float64 autograd of a re-implementation of the forward, or a subgradient
test at kinks and ties (``truth``). ``check`` hands a case to gk.check::

    from tests.support.unseen import specimens
    from tests.support.unseen.truth import build, label

Every module needs torch (the references). The verdict battery is
``python benchmarks/verdicts.py --battery unseen``.
"""

from __future__ import annotations

from . import (
    activations,
    contracts,
    convolution,
    elementwise,
    function_kinks,
    functions,
    indexing,
    kinks,
    layers,
    likelihoods,
    linalg,
    losses,
    margins,
    networks,
    norms,
    recurrent,
    reductions,
    scales,
)
from .specimen import Specimen

__all__ = ["Specimen", "specimens"]

THEMES = (
    losses,
    reductions,
    linalg,
    convolution,
    norms,
    elementwise,
    kinks,
    recurrent,
    layers,
    contracts,
    margins,
    likelihoods,
    scales,
    indexing,
    activations,
    networks,
    functions,
    function_kinks,
)


def specimens() -> list[Specimen]:
    """Every theme's specimens, in the order of ``THEMES``."""
    found = [s for theme in THEMES for s in theme.specimens()]
    names = [s.name for s in found]
    assert len(names) == len(set(names)), "specimen names must be unique"
    return found
