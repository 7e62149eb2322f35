"""Forward+backward time of the NumPy reference conv2d against torch.nn.functional.conv2d on
the CPU in float64, measured side by side in one run (median of several repeats, interleaved so
both see the same machine state). Target: ours within 3x of torch.

    python benchmarks/reference_layers.py [--repeats 7]
"""

from __future__ import annotations

import argparse
import importlib
import os
import statistics
import sys
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np

SHAPE = (8, 16, 32, 32, 32, 3)  # N, C, H, W, F, K
STRIDES = (1, 2)
PADDING = 1
TARGET = 3.0


def _package() -> ModuleType:
    """The ``reference_layers`` package. This script has the package's name, so when its folder
    comes first on ``sys.path`` (``python benchmarks/<script>.py``) a plain import would find the
    script: look the package up without that folder."""
    here = os.path.dirname(os.path.abspath(__file__))
    saved = sys.path[:]
    sys.modules.pop("reference_layers", None)  # this script, when a sibling imported it by name
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != here]
    try:
        return importlib.import_module("reference_layers")
    finally:
        sys.path[:] = saved


layers = _package()
if __name__ == "reference_layers":  # imported by a sibling script (check_cost.py): be the package
    sys.modules[__name__] = layers


def ours(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int) -> Callable[[], Any]:
    def run() -> Any:
        y = layers.conv2d(x, w, b, stride=stride, padding=PADDING)
        return layers.conv2d_backward(np.ones_like(y), x, w, b, stride=stride, padding=PADDING)

    return run


def theirs(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int) -> Callable[[], Any]:
    import torch

    tensors = [torch.tensor(a, requires_grad=True) for a in (x, w, b)]

    def run() -> Any:
        y = torch.nn.functional.conv2d(*tensors, stride=stride, padding=PADDING)
        return torch.autograd.grad(y, tensors, torch.ones_like(y))

    return run


def medians(fns: list[Callable[[], Any]], repeats: int) -> list[float]:
    """Median wall time of each function after one warm-up call, the calls interleaved."""
    for fn in fns:
        fn()
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for fn, bucket in zip(fns, times):
            start = time.perf_counter()
            fn()
            bucket.append(time.perf_counter() - start)
    return [statistics.median(bucket) for bucket in times]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=7, help="timed repeats per row (median)")
    args = parser.parse_args(argv)
    import torch

    n, c, h, w, f, k = SHAPE
    rng = np.random.default_rng(0)
    x, wt, b = (
        rng.standard_normal((n, c, h, w)),
        rng.standard_normal((f, c, k, k)) / 12,
        rng.standard_normal(f),
    )
    print(
        f"conv2d forward+backward, float64, CPU; (N,C,H,W,F,K) = {SHAPE}, padding {PADDING}; "
        f"median of {args.repeats}; torch {torch.__version__} ({torch.get_num_threads()} threads), "
        f"numpy {np.__version__}"
    )
    print(f"{'stride':>6}  {'numpy (ours)':>13}  {'torch':>10}  {'ours/torch':>10}  target <= {TARGET:g}x")
    worst = 0.0
    for stride in STRIDES:
        mine, ref = medians([ours(x, wt, b, stride), theirs(x, wt, b, stride)], args.repeats)
        worst = max(worst, mine / ref)
        verdict = "ok" if mine / ref <= TARGET else "SLOW"
        print(f"{stride:>6}  {mine * 1e3:>10.2f} ms  {ref * 1e3:>7.2f} ms  {mine / ref:>9.2f}x  {verdict}")
    return 0 if worst <= TARGET else 1


if __name__ == "__main__":
    raise SystemExit(main())
