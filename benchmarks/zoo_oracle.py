"""An oracle independent of gradcheck_kit for the realistic zoo's labels: is every "correct"
specimen correct and every buggy one wrong on the data it is checked on?

    python benchmarks/zoo_oracle.py [--seeds 2] [--only SUBSTRING]

- Every floating input is differenced centrally in float64 (h = 1e-6 |x|, at least 1e-6) with
  the kernels' float32 replaced by float64 (``functional.F32``), so their math is what is
  checked, not float32 rounding; class layers are called directly, gradients read from the
  attributes the specimen names, grad_output copied (contract bugs are gk.check's business).
- Where central differences disagree (a kink: ReLU at 0, tied maxima), the gradient must lie
  between the one-sided slopes element by element, and is then compared with the exact
  gradient at a nearby point where the ties are broken (x + 1e-4 p for p = +1, -1 or a ramp
  decreasing in row-major order: the choices ``x >= 0``, ``x > 0`` and "first maximum" make):
  a limit of true gradients is a valid answer at the kink.
- Max-pool specimens are also compared with torch.nn.functional.max_pool2d's gradient when
  torch is installed.

Prints one line per specimen and seed; exits 1 if a label looks wrong.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.realistic import functional, mytorch
from tests.support.realistic.specimens import RealSpecimen, Trial, specimens

Pair = tuple[Callable[..., Any], Callable[..., Any], list[Any]]


def as_functions(trial: Trial) -> Pair:
    """(forward(*inputs), backward(dy, *inputs) -> grads, inputs) for any style."""
    if trial.layer is None:
        params = trial.params
        return (
            lambda *xs: trial.forward(*xs, **params),
            lambda dy, *xs: _tuple(trial.backward(np.copy(dy), *xs, **params)),
            list(trial.inputs),
        )
    layer, paths, grads = trial.layer, list(trial.weights), list(trial.weights.values())

    def forward(a: Any, *weights: Any) -> Any:
        for path, w in zip(paths, weights):
            mytorch.assign(layer, path, w)
        return layer.forward(a, **trial.params)

    def backward(dy: Any, a: Any, *weights: Any) -> tuple[Any, ...]:
        forward(a, *weights)
        for grad, w in zip(grads, weights):
            if mytorch.has(layer, grad):
                mytorch.assign(layer, grad, np.zeros_like(w))  # what the course's zero_grads() does
        d_input = layer.backward(np.copy(dy))
        return (d_input, *(np.array(mytorch.resolve(layer, g), copy=True) for g in grads))

    return forward, backward, [*trial.inputs, *mytorch.weight_arrays(layer, paths)]


def _tuple(value: Any) -> tuple[Any, ...]:
    return tuple(value) if isinstance(value, (tuple, list)) else (value,)


def differences(
    forward: Callable[..., Any], xs: list[Any], i: int, dy: np.ndarray, step: float = 1e-6
) -> tuple[np.ndarray, ...]:
    """Central, left and right difference quotients of sum(dy * forward) in input i."""
    x = xs[i]
    base = np.sum(dy * np.asarray(forward(*xs)))
    central, left, right = (np.zeros(x.shape) for _ in range(3))
    for j in np.ndindex(x.shape):
        h = step * max(1.0, abs(float(x[j])))
        values = []
        for sign in (1, -1):
            moved = list(xs)
            moved[i] = x.copy()
            moved[i][j] += sign * h
            values.append(np.sum(dy * np.asarray(forward(*moved))))
        central[j] = (values[0] - values[1]) / (2 * h)
        right[j], left[j] = (values[0] - base) / h, (base - values[1]) / h
    return central, left, right


def nearby_error(forward: Callable[..., Any], xs: list[Any], i: int, dy: np.ndarray, g: np.ndarray) -> float:
    """Smallest error of g against the exact gradient at x + 1e-4 p over the tie-breaking p
    (differenced with steps far below the gaps the ramp opens between tied values)."""
    x = xs[i]
    ramp = -np.arange(x.size, dtype=float).reshape(x.shape) / x.size
    errors = []
    for p in (np.ones(x.shape), -np.ones(x.shape), ramp):
        moved = list(xs)
        moved[i] = x + 1e-4 * p
        central, _, _ = differences(forward, moved, i, dy, step=1e-9)
        errors.append(_relative(central, g))
    return min(errors)


def _relative(numeric: np.ndarray, analytic: np.ndarray) -> float:
    scale = max(1e-12, float(np.max(np.abs(numeric))), float(np.max(np.abs(analytic))))
    return float(np.max(np.abs(numeric - analytic))) / scale


def judge_input(forward: Callable[..., Any], xs: list[Any], i: int, dy: np.ndarray, g: Any) -> str:
    if g is None or np.shape(g) != np.shape(xs[i]):
        return f"shape {np.shape(g) if g is not None else None} for {np.shape(xs[i])}"
    g = np.asarray(g, dtype=np.float64)
    central, left, right = differences(forward, xs, i, dy)
    if _relative(central, g) < 1e-5:
        return "ok"
    if nearby_error(forward, xs, i, dy, g) < 1e-5:
        return "ok at kinks (a nearby gradient)"
    slack = 1e-5 * max(1e-12, float(np.max(np.abs(central))))
    inside = (g >= np.minimum(left, right) - slack) & (g <= np.maximum(left, right) + slack)
    return (
        "kinks: between the slopes only" if inside.all() else f"wrong (rel err {_relative(central, g):.2g})"
    )


def judge(specimen: RealSpecimen, seed: int) -> list[str]:
    dtype = "float64" if "float64" in specimen.dtypes else specimen.dtypes[0]
    forward, backward, xs = as_functions(specimen.trial(dtype, seed))
    xs = [np.array(x, dtype=np.float64) if np.asarray(x).dtype.kind == "f" else x for x in xs]
    y = np.asarray(forward(*xs))
    rng = np.random.default_rng(1000 + seed)
    dy = rng.uniform(0.5, 1.5, y.shape) * rng.choice([-1.0, 1.0], y.shape)
    grads = backward(dy.astype(y.dtype), *[np.copy(x) for x in xs])
    verdicts = []
    for i, x in enumerate(xs):
        if np.asarray(x).dtype.kind == "f":
            verdicts.append(judge_input(forward, xs, i, dy, grads[i] if i < len(grads) else None))
    return verdicts


def label_looks_wrong(specimen: RealSpecimen, verdicts: list[str]) -> bool:
    clean = all(v == "ok" or v.startswith("ok at kinks") for v in verdicts)
    if specimen.buggy:  # contract bugs and "nothing differentiated" are invisible to this oracle
        return clean and specimen.expect not in ("mutation", "nothing_differentiated")
    return not clean and not any(v.startswith("kinks") for v in verdicts)


def torch_pool_agreement(specimen: RealSpecimen, seed: int) -> str | None:
    """For max-pool specimens: does the gradient equal torch's (first maximum) and conserve
    each window's dy (sum of dx == sum of dy: the subgradient spreads dy over tied maxima)?"""
    if "maxpool" not in specimen.name or "overlap" in specimen.name or "strided" in specimen.name:
        return None
    try:
        import torch
    except ImportError:
        return None
    trial = specimen.trial("float64", seed)
    forward, backward, xs = as_functions(trial)
    stride = 1 if trial.layer is not None else trial.params["pool_param"]["stride"]
    y = np.asarray(forward(*xs))
    dy = np.random.default_rng(seed).normal(size=y.shape)
    g = np.asarray(backward(dy, *xs)[0])
    t = torch.tensor(xs[0], requires_grad=True)
    torch.nn.functional.max_pool2d(t, 2, stride).backward(torch.tensor(dy))
    same = np.allclose(g, t.grad.numpy())
    return (
        f"torch's gradient: {'same' if same else 'differs'}; mass conserved: {np.isclose(g.sum(), dy.sum())}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--only", help="only specimens whose name contains this")
    args = parser.parse_args(argv)
    functional.F32 = np.float64  # check the kernels' math, not float32 rounding
    suspicious = 0
    for specimen in specimens():
        if args.only and args.only not in specimen.name:
            continue
        for seed in range(args.seeds):
            verdicts = judge(specimen, seed)
            flag = label_looks_wrong(specimen, verdicts)
            suspicious += flag
            kind = "bug" if specimen.buggy else "ok"
            extra = torch_pool_agreement(specimen, seed)
            print(f"{specimen.name:45} {kind:3} seed {seed}: {'; '.join(verdicts) or '-'}", end="")
            print(f"{'  [' + extra + ']' if extra else ''}{'  <-- LABEL?' if flag else ''}")
    print(f"\n{suspicious} suspicious labels")
    return 1 if suspicious else 0


if __name__ == "__main__":
    sys.exit(main())
