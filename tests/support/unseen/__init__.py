"""The unseen zoo: layers written apart from gradcheck-kit's own tests (losses, reductions, linear
algebra, convolutions, norms, activations smooth and piecewise-linear, recurrent cells, composite
objects, contract breaches), each labelled per case by a ground truth that never asks
gradcheck-kit: torch float64 autograd of a re-implementation of the forward, or a subgradient
test at kinks and ties (``truth``). ``check`` hands a case to gk.check::

    from tests.support.unseen import specimens
    from tests.support.unseen.truth import build, label

Every module needs torch (the references). The verdict battery is
``python benchmarks/verdicts.py --battery unseen``.
"""

from __future__ import annotations

from . import contracts, convolution, elementwise, kinks, layers, linalg, losses, norms, recurrent, reductions
from .specimen import Specimen

__all__ = ["Specimen", "specimens"]

THEMES = (losses, reductions, linalg, convolution, norms, elementwise, kinks, recurrent, layers, contracts)


def specimens() -> list[Specimen]:
    """Every theme's specimens, in the order of ``THEMES``."""
    found = [s for theme in THEMES for s in theme.specimens()]
    names = [s.name for s in found]
    assert len(names) == len(set(names)), "specimen names must be unique"
    return found
