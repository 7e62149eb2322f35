"""Loads the hypothesis profile named by ``$HYPOTHESIS_PROFILE`` (``dev``, ``ci`` or
``thorough``; default ``ci``) with the example database at ``$GRADCHECK_DATABASE``
(default ``.hypothesis/gradcheck``): see ``gradcheck_kit.profiles``."""

from __future__ import annotations

import os

if os.environ.get("PYTEST_XDIST_WORKER"):
    # one thread per xdist worker (and its subprocesses), set before NumPy or torch loads:
    # xdist already runs a worker per core, and BLAS's or torch's own pools on top oversubscribe
    # the cores (a bfloat16 matmul check took 40 s instead of 3 with two spinning pools)
    for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(variable, "1")

from gradcheck_kit import profiles

profiles.load_profile()
