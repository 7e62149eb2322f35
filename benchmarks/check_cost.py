"""What a gradient check costs, in units of one forward+backward of the layer, measured side by
side in one run: gk.check (auto and projection mode) against torch.autograd.gradcheck
(fast_mode=True) for conv2d at three sizes, float64, on NumPy (the reference conv2d), torch CPU,
and where a GPU is available CuPy and torch-CUDA.

The unit is one forward+backward timed in a tight loop ("hot": the allocator hands the layer
the same warm memory again and again). Inside a check the same calls run with other arrays alive
and are slower for large layers; "in situ" divides by the layer's own calls timed inside the
check instead, which is the check's overhead over the calls it needs (NumPy rows; torch's
thread pool makes per-call times inside a check too erratic to divide by).

    python benchmarks/check_cost.py [--repeats 3] [--sizes small,medium,large]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

import gradcheck_kit as gk

SIZES = {"small": (2, 3, 8, 8), "medium": (4, 16, 32, 32), "large": (16, 64, 56, 56)}
PARAMS = {"stride": 1, "padding": 1}


def seconds(fn: Callable[[], Any], repeats: int) -> float:
    """Median wall time of ``fn`` after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def conv_inputs(shape: tuple[int, ...], rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    channels = shape[1]
    w = rng.standard_normal((channels, channels, 3, 3)) / 3
    return rng.standard_normal(shape), w, rng.standard_normal(channels)


def numpy_row(shape: tuple[int, ...], repeats: int, xp: Any = np) -> dict[str, float]:
    import reference_layers  # noqa: F401 - registers conv2d

    spec = gk.registry.get("conv2d")
    inputs = tuple(xp.asarray(a) for a in conv_inputs(shape, np.random.default_rng(0)))
    y = spec.forward(*inputs, **PARAMS)
    dy = xp.ones_like(y)

    def forward_backward() -> None:
        spec.forward(*inputs, **PARAMS)
        spec.backward(dy, *inputs, **PARAMS)
        _sync(xp)

    unit = seconds(forward_backward, repeats)
    row = {"fwd+bwd ms": 1e3 * unit}
    for mode in ("auto", "projection"):
        t = seconds(lambda m=mode: gk.check(spec.forward, spec.backward, inputs, PARAMS, mode=m), repeats)
        row[f"gk {mode}"] = t / unit
    total, forward_s, backward_s = in_situ(spec.forward, spec.backward, inputs, xp)
    row["gk in situ"] = total / (forward_s + backward_s)
    return row


def in_situ(
    forward: Callable[..., Any], backward: Callable[..., Any], inputs: Any, module: Any
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

    gk.check(timed(forward, "forward"), timed(backward, "backward"), inputs, PARAMS, mode="projection")
    for value in spent.values():
        value[:] = [0.0, 0]
    start = time.perf_counter()
    gk.check(timed(forward, "forward"), timed(backward, "backward"), inputs, PARAMS, mode="projection")
    total = time.perf_counter() - start
    means = [t / max(n, 1) for t, n in spent.values()]
    return total, means[0], means[1]


def torch_row(shape: tuple[int, ...], repeats: int, device: str) -> dict[str, float]:
    import torch

    f = torch.nn.functional.conv2d
    x, w, b = (torch.as_tensor(a, device=device) for a in conv_inputs(shape, np.random.default_rng(0)))

    def forward(x: Any, w: Any, b: Any, **p: Any) -> Any:
        return f(x, w, b, **p)

    def backward(dy: Any, x: Any, w: Any, b: Any, **p: Any) -> Any:
        leaves = [t.detach().requires_grad_(True) for t in (x, w, b)]
        with torch.enable_grad():
            return torch.autograd.grad(f(*leaves, **p), leaves, dy)

    dy = torch.ones_like(forward(x, w, b, **PARAMS))

    def forward_backward() -> None:
        backward(dy, x, w, b, **PARAMS)
        _sync(torch)

    unit = seconds(forward_backward, repeats)
    row = {"fwd+bwd ms": 1e3 * unit}
    for mode in ("auto", "projection"):
        t = seconds(lambda m=mode: gk.check(forward, backward, (x, w, b), PARAMS, mode=m), repeats)
        row[f"gk {mode}"] = t / unit
    leaves = tuple(t.detach().requires_grad_(True) for t in (x, w, b))
    fast = seconds(
        lambda: torch.autograd.gradcheck(lambda *a: f(*a, **PARAMS), leaves, fast_mode=True), repeats
    )
    row["torch fast"] = fast / unit
    return row


def _sync(module: Any) -> None:
    if module.__name__ == "torch" and module.cuda.is_available():
        module.cuda.synchronize()
    elif module.__name__ == "cupy":
        module.cuda.get_current_stream().synchronize()


def backends() -> list[tuple[str, Callable[[tuple[int, ...], int], dict[str, float]]]]:
    rows: list[tuple[str, Callable[[tuple[int, ...], int], dict[str, float]]]] = [("numpy", numpy_row)]
    try:
        import torch
    except ImportError:
        return rows
    rows.append(("torch-cpu", lambda s, r: torch_row(s, r, "cpu")))
    if torch.cuda.is_available():
        rows.append(("torch-cuda", lambda s, r: torch_row(s, r, "cuda")))
    try:
        import cupy

        cupy.cuda.runtime.getDeviceCount()
        rows.append(("cupy", lambda s, r: numpy_row(s, r, cupy)))
    except Exception:  # no CuPy, or no GPU: skip the row
        pass
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sizes", default=",".join(SIZES))
    args = parser.parse_args(argv)
    columns = ["fwd+bwd ms", "gk auto", "gk projection", "gk in situ", "torch fast"]
    print("check cost in units of one forward+backward (conv2d, float64, 3x3, stride 1, padding 1)")
    print(f"{'backend':11} {'shape':16} " + " ".join(f"{c:>13}" for c in columns))
    for name, row_of in backends():
        for size in args.sizes.split(","):
            shape = SIZES[size]
            repeats = args.repeats
            row = row_of(shape, repeats)
            cells = [f"{row[c]:13.2f}" if c in row else f"{'-':>13}" for c in columns]
            print(f"{name:11} {shape!s:16} " + " ".join(cells), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
