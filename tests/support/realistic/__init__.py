"""A zoo of layers written the way students and kernel authors write them: CS231n cache-style
functions (``cs231n``), 11-785 "mytorch" stateful classes (``mytorch``), float32 kernels and
plain forward/backward pairs (``functional``), each correct or with one planted bug, plus a few
degenerate cases. The catalogue and the one driver live in ``specimens``::

    from tests.support.realistic.specimens import run, specimens

The verdict battery is ``python benchmarks/verdicts.py --battery realistic``.
"""
