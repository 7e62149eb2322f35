"""What a gradient check costs, in units of one forward+backward of the layer, measured side by
side in one run: gk.check (auto and projection mode) against torch.autograd.gradcheck
(fast_mode=True) for conv2d at three sizes, float64, on NumPy (the reference conv2d), torch CPU,
and where a GPU is available CuPy and torch-CUDA.

The unit is one forward+backward timed in a tight loop ("hot": the allocator hands the layer
the same warm memory again and again). Inside a check the same calls run with other arrays alive
and are slower for large layers; "in situ" divides by the layer's own calls timed inside the
check instead, which is the check's overhead over the calls it needs (NumPy rows; torch's
thread pool makes per-call times inside a check too erratic to divide by). Every cell is the
ratio of the best times over the repeats (the intrinsic cost, as ``timeit`` reports it) and, in
parentheses, the ratio of the medians. ``--layer relu`` shows a memory-bound layer, where the
check's own passes over the arrays, not the layer's arithmetic, set the cost.

    python benchmarks/check_cost.py [--repeats 3] [--sizes small,medium,large] [--layer relu]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np

import gradcheck_kit as gk

SIZES = {"small": (2, 3, 8, 8), "medium": (4, 16, 32, 32), "large": (16, 64, 56, 56)}
PARAMS = {"stride": 1, "padding": 1}


def seconds(fn: Callable[[], Any], repeats: int) -> np.ndarray:
    """(best, median) wall time of ``fn`` over ``repeats`` calls after one warm-up call. Ratios
    are taken of bests and of medians: on a noisy machine the best is the intrinsic cost (as
    ``timeit`` reports it), the median what a typical call pays."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return np.array([min(times), statistics.median(times)])


def interleaved(fns: dict[str, Callable[[], Any]], repeats: int) -> dict[str, np.ndarray]:
    """``seconds`` for several functions run in turns, the order rotating every round: whichever
    runs first after a change of memory footprint pays the page faults, so none always does."""
    names = list(fns)
    for name in names:
        fns[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    for round_ in range(repeats):
        for name in names[round_ % len(names) :] + names[: round_ % len(names)]:
            start = time.perf_counter()
            fns[name]()
            times[name].append(time.perf_counter() - start)
    return {name: np.array([min(t), statistics.median(t)]) for name, t in times.items()}


def conv_inputs(shape: tuple[int, ...], rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    channels = shape[1]
    w = rng.standard_normal((channels, channels, 3, 3)) / 3
    return rng.standard_normal(shape), w, rng.standard_normal(channels)


def relu_inputs(shape: tuple[int, ...], rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    return (rng.standard_normal(shape),)


# name -> (inputs, keyword parameters); conv2d is compute-bound, relu memory-bound
LAYERS: dict[str, tuple[Callable[..., tuple[np.ndarray, ...]], dict[str, Any]]] = {
    "conv2d": (conv_inputs, PARAMS),
    "relu": (relu_inputs, {}),
}


def numpy_row(layer: str, shape: tuple[int, ...], repeats: int, xp: Any = np) -> dict[str, Any]:
    import reference_layers  # noqa: F401 - registers the layers

    spec = gk.registry.get(layer)
    make_inputs, params = LAYERS[layer]
    inputs = tuple(xp.asarray(a) for a in make_inputs(shape, np.random.default_rng(0)))
    y = spec.forward(*inputs, **params)
    dy = xp.ones_like(y)

    def forward_backward() -> None:
        spec.forward(*inputs, **params)
        spec.backward(dy, *inputs, **params)
        _sync(xp)

    unit = seconds(forward_backward, repeats)
    row: dict[str, Any] = {"fwd+bwd ms": 1e3 * unit}
    checks: dict[str, Callable[[], Any]] = {
        f"gk {mode}": partial(gk.check, spec.forward, spec.backward, inputs, params, mode=mode)
        for mode in ("auto", "projection")
    }
    row.update({name: t / unit for name, t in interleaved(checks, repeats).items()})
    situ = [in_situ(spec.forward, spec.backward, inputs, params, xp) for _ in range(repeats)]
    ratios = [total / (forward_s + backward_s) for total, forward_s, backward_s in situ]
    row["gk in situ"] = np.array([min(ratios), statistics.median(ratios)])
    return row


def in_situ(
    forward: Callable[..., Any],
    backward: Callable[..., Any],
    inputs: Any,
    params: dict[str, Any],
    module: Any,
) -> tuple[float, float, float]:
    """A projection check's time, and the mean forward and backward call timed inside it."""
    spent = {"forward": [0.0, 0], "backward": [0.0, 0]}

    def timed(fn: Callable[..., Any], key: str) -> Callable[..., Any]:
        def run(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            out = fn(*args, **kwargs)
            _sync(module)
            spent[key][0] += time.perf_counter() - start
            spent[key][1] += 1
            return out

        return run

    gk.check(timed(forward, "forward"), timed(backward, "backward"), inputs, params, mode="projection")
    for value in spent.values():
        value[:] = [0.0, 0]
    start = time.perf_counter()
    gk.check(timed(forward, "forward"), timed(backward, "backward"), inputs, params, mode="projection")
    total = time.perf_counter() - start
    means = [t / max(n, 1) for t, n in spent.values()]
    return total, means[0], means[1]


def torch_row(layer: str, shape: tuple[int, ...], repeats: int, device: str) -> dict[str, Any]:
    import torch

    f = {"conv2d": torch.nn.functional.conv2d, "relu": torch.relu}[layer]
    make_inputs, params = LAYERS[layer]
    inputs = tuple(torch.as_tensor(a, device=device) for a in make_inputs(shape, np.random.default_rng(0)))

    def forward(*args: Any, **p: Any) -> Any:
        return f(*args, **p)

    def backward(dy: Any, *args: Any, **p: Any) -> Any:
        leaves = [t.detach().requires_grad_(True) for t in args]
        with torch.enable_grad():
            return torch.autograd.grad(f(*leaves, **p), leaves, dy)

    dy = torch.ones_like(forward(*inputs, **params))

    def forward_backward() -> None:
        backward(dy, *inputs, **params)
        _sync(torch)

    unit = seconds(forward_backward, repeats)
    row: dict[str, Any] = {"fwd+bwd ms": 1e3 * unit}
    leaves = tuple(t.detach().requires_grad_(True) for t in inputs)
    checks: dict[str, Callable[[], Any]] = {
        f"gk {mode}": partial(gk.check, forward, backward, inputs, params, mode=mode)
        for mode in ("auto", "projection")
    }
    checks["torch fast"] = lambda: torch.autograd.gradcheck(
        lambda *a: f(*a, **params), leaves, fast_mode=True
    )
    row.update({name: t / unit for name, t in interleaved(checks, repeats).items()})
    return row


def _sync(module: Any) -> None:
    if module.__name__ == "torch" and module.cuda.is_available():
        module.cuda.synchronize()
    elif module.__name__ == "cupy":
        module.cuda.get_current_stream().synchronize()


def _cell(value: np.ndarray) -> str:
    """'best (median)'."""
    return f"{value[0]:.2f} ({value[1]:.2f})".rjust(13)


Row = Callable[[str, tuple[int, ...], int], dict[str, Any]]


def backends() -> list[tuple[str, Row]]:
    rows: list[tuple[str, Row]] = [("numpy", numpy_row)]
    try:
        import torch
    except ImportError:
        return rows
    rows.append(("torch-cpu", lambda n, s, r: torch_row(n, s, r, "cpu")))
    if torch.cuda.is_available():
        rows.append(("torch-cuda", lambda n, s, r: torch_row(n, s, r, "cuda")))
    try:
        import cupy

        cupy.cuda.runtime.getDeviceCount()
        rows.append(("cupy", lambda n, s, r: numpy_row(n, s, r, cupy)))
    except Exception:  # no CuPy, or no GPU: skip the row
        pass
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sizes", default=",".join(SIZES))
    parser.add_argument("--layer", choices=sorted(LAYERS), default="conv2d")
    args = parser.parse_args(argv)
    columns = ["fwd+bwd ms", "gk auto", "gk projection", "gk in situ", "torch fast"]
    what = "conv2d, float64, 3x3, stride 1, padding 1" if args.layer == "conv2d" else f"{args.layer}, float64"
    print(f"check cost in units of one forward+backward ({what});")
    print(f"each cell: ratio of bests (ratio of medians) over {args.repeats} runs")
    print(f"{'backend':11} {'shape':16} " + " ".join(f"{c:>13}" for c in columns))
    for name, row_of in backends():
        for size in args.sizes.split(","):
            shape = SIZES[size]
            repeats = args.repeats
            row = row_of(args.layer, shape, repeats)
            cells = [_cell(row[c]) if c in row else f"{'-':>13}" for c in columns]
            print(f"{name:11} {shape!s:16} " + " ".join(cells), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
