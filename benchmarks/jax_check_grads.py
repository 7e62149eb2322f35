"""JAX custom_vjp / custom_jvp rules: gradcheck-kit and ``jax.test_util.check_grads`` side by
side (issue 21).

    python benchmarks/jax_check_grads.py [--repeat N] [--only SUBSTRING]

On each function below (correct rules, some at kinks or in float32/bfloat16, and one planted
bug each: a scaled gradient, a small scale in float32, a sign flip, a missing product-rule term,
a wrong residual saved in fwd, a bwd ignoring its cotangent, a wrong jvp rule), two tools:

- ``gk``: ``gk.check(*gk.from_custom_vjp(f), inputs)`` (``from_custom_jvp`` for custom_jvp
  functions: the transposed rule against finite differences, then the rule itself along random
  tangents), defaults;
- ``check_grads``: ``jax.test_util.check_grads(f, inputs, order=1, modes=...)`` with
  ``modes=["rev"]`` for custom_vjp (JAX cannot run a custom_vjp forward) and ``["fwd", "rev"]``
  for custom_jvp, defaults (float64 cases under ``jax.enable_x64``).

Per function: each tool's verdict (passed / FAILED / ERROR: raised something other than a
gradient mismatch), what it says (first line), the calls of the user's Python rules it made
(primal, fwd, bwd, jvp bodies; nothing is jitted, so each call is one evaluation) and its seconds
(median of ``--repeat`` runs). Exit code 1 if gk gave a wrong verdict.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's gradcheck_kit, not an installed copy

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax.test_util import check_grads  # noqa: E402

import gradcheck_kit as gk  # noqa: E402

CALLS: Counter[str] = Counter()


@dataclass
class Specimen:
    name: str
    function: Callable[..., Any]
    inputs: tuple[Any, ...]
    kind: str  # custom_vjp or custom_jvp
    correct: bool
    note: str


# -- the functions -----------------------------------------------------------------------------------
def vjp_rule(primal: Callable[..., Any], fwd: Callable[..., Any], bwd: Callable[..., Any]) -> Any:
    """A custom_vjp function whose three bodies count their calls."""

    def counted(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)  # the primal's parameter names name the inputs
        def run(*args: Any) -> Any:
            CALLS[name] += 1
            return fn(*args)

        return run

    f = jax.custom_vjp(counted("primal", primal))
    f.defvjp(counted("fwd", fwd), counted("bwd", bwd))
    return f


def jvp_rule(primal: Callable[..., Any], tangent: Callable[..., Any]) -> Any:
    """A custom_jvp function with one input: the rule returns tangent(x, t)."""

    @functools.wraps(primal)
    def body(x: Any) -> Any:
        CALLS["primal"] += 1
        return primal(x)

    f = jax.custom_jvp(body)

    @f.defjvp
    def rule(primals: Any, tangents: Any) -> Any:
        CALLS["jvp"] += 1
        (x,), (t,) = primals, tangents
        return primal(x), tangent(x, t)

    return f


def relu(bug: float = 1.0) -> Any:
    return vjp_rule(
        lambda x: jnp.maximum(x, 0.0),
        lambda x: (jnp.maximum(x, 0.0), x > 0),
        lambda mask, g: (bug * g * mask,),
    )


def mul_sin(scale: float = 1.0, term: bool = True, residual: Callable[..., Any] = jnp.cos) -> Any:
    """y = sin(x) * w: dx = g cos(x) w, dw = g sin(x)."""
    return vjp_rule(
        lambda x, w: jnp.sin(x) * w,
        lambda x, w: (jnp.sin(x) * w, (residual(x), jnp.sin(x), w)),
        lambda r, g: (scale * g * r[0] * r[2], g * r[1] if term else jnp.zeros_like(r[1])),
    )


def x_sin(term: bool = True) -> Any:
    """y = x sin(x): dy/dx = sin(x) + x cos(x)."""
    return vjp_rule(
        lambda x: x * jnp.sin(x),
        lambda x: (x * jnp.sin(x), x),
        lambda x, g: (g * ((jnp.sin(x) if term else 0.0) + x * jnp.cos(x)),),
    )


def logsumexp(ignore_g: bool = False) -> Any:
    def fwd(x: Any) -> Any:
        y = jax.nn.logsumexp(x, axis=-1)
        return y, (x, y)

    def bwd(r: Any, g: Any) -> Any:
        x, y = r
        p = jnp.exp(x - y[..., None])
        return ((jnp.ones_like(g) if ignore_g else g)[..., None] * p,)

    return vjp_rule(lambda x: jax.nn.logsumexp(x, axis=-1), fwd, bwd)


def dense() -> Any:
    def fwd(params: Any, x: Any) -> Any:
        y = jnp.tanh(x @ params["w"] + params["b"])
        return y, (params, x, y)

    def bwd(r: Any, g: Any) -> Any:
        params, x, y = r
        dz = g * (1 - y**2)
        return {"w": x.T @ dz, "b": dz.sum(0)}, dz @ params["w"].T

    return vjp_rule(lambda p, x: jnp.tanh(x @ p["w"] + p["b"]), fwd, bwd)


def softplus(scale: float = 1.0) -> Any:
    return jvp_rule(lambda x: jnp.logaddexp(x, 0.0), lambda x, t: scale * jax.nn.sigmoid(x) * t)


def absolute() -> Any:
    return jvp_rule(jnp.abs, lambda x, t: jnp.sign(x) * t)


def specimens() -> list[Specimen]:
    rng = np.random.default_rng(0)

    def a(*shape: int, dtype: Any = jnp.float32) -> Any:
        with jax.enable_x64(True):
            return jnp.asarray(rng.normal(size=shape), dtype=dtype)

    kinks = jnp.array([-1.5, 0.0, 0.7, 0.0, -0.2, 2.0, 0.0, 1.1], dtype=jnp.float32)
    f64 = jnp.float64
    with jax.enable_x64(True):
        params = {"w": a(4, 3, dtype=f64), "b": a(3, dtype=f64)}
    bf = jnp.linspace(-2.0, 2.0, 9, dtype=jnp.bfloat16)
    return [
        Specimen("relu at 0 (kinks)", relu(), (kinks,), "custom_vjp", True, "float32, 3 of 8 at 0"),
        Specimen(
            "mul_sin float64", mul_sin(), (a(3, 4, dtype=f64), a(3, 4, dtype=f64)), "custom_vjp", True, ""
        ),
        Specimen("mul_sin float32", mul_sin(), (a(3, 4), a(3, 4)), "custom_vjp", True, ""),
        Specimen("x_sin bfloat16", x_sin(), (bf,), "custom_vjp", True, "bfloat16"),
        Specimen("logsumexp float32", logsumexp(), (a(4, 6),), "custom_vjp", True, ""),
        Specimen("dense (pytree)", dense(), (params, a(5, 4, dtype=f64)), "custom_vjp", True, "dict params"),
        Specimen("softplus jvp", softplus(), (a(7),), "custom_jvp", True, "float32"),
        Specimen("abs jvp at 0 (kink)", absolute(), (kinks,), "custom_jvp", True, "float32"),
        Specimen("bug: dx scaled x2", mul_sin(scale=2.0), (a(3, 4), a(3, 4)), "custom_vjp", False, ""),
        Specimen("bug: dx scaled x1.001", mul_sin(scale=1.001), (a(3, 4), a(3, 4)), "custom_vjp", False, ""),
        Specimen("bug: relu sign flip", relu(bug=-1.0), (kinks,), "custom_vjp", False, ""),
        Specimen("bug: missing term", x_sin(term=False), (a(6),), "custom_vjp", False, "sin(x) dropped"),
        Specimen("bug: dw never written", mul_sin(term=False), (a(3, 4), a(3, 4)), "custom_vjp", False, ""),
        Specimen(
            "bug: wrong residual", mul_sin(residual=jnp.sin), (a(3, 4), a(3, 4)), "custom_vjp", False, ""
        ),
        Specimen("bug: g ignored", logsumexp(ignore_g=True), (a(4, 6),), "custom_vjp", False, ""),
        Specimen("bug: jvp rule x0.5", softplus(scale=0.5), (a(7),), "custom_jvp", False, ""),
    ]


# -- the tools ---------------------------------------------------------------------------------------
def run_gk(s: Specimen) -> tuple[str, str]:
    adapt = gk.from_custom_jvp if s.kind == "custom_jvp" else gk.from_custom_vjp
    result = gk.check(*adapt(s.function), s.inputs)
    return ("passed" if result.passed else "FAILED"), (result.cause or "")


def run_check_grads(s: Specimen) -> tuple[str, str]:
    modes = ["fwd", "rev"] if s.kind == "custom_jvp" else ["rev"]
    wide = any(str(leaf.dtype) == "float64" for leaf in jax.tree_util.tree_leaves(s.inputs))
    try:
        with jax.enable_x64(wide):
            check_grads(s.function, s.inputs, order=1, modes=modes)
    except AssertionError as exc:
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        return "FAILED", " / ".join(lines[:2])
    except Exception as exc:
        return "ERROR", f"{type(exc).__name__}: {exc}".splitlines()[0]
    return "passed", ""


def measure(
    tool: Callable[[Specimen], tuple[str, str]], s: Specimen, repeat: int
) -> tuple[str, str, int, float]:
    seconds = []
    for _ in range(repeat):
        CALLS.clear()
        start = time.perf_counter()
        verdict, message = tool(s)
        seconds.append(time.perf_counter() - start)
    return verdict, message, sum(CALLS.values()), statistics.median(seconds)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", default="")
    args = parser.parse_args()
    rows, wrong = [], []
    for s in specimens():
        if args.only not in s.name:
            continue
        measure(run_gk, s, 1)  # warm-up: JAX compiles each primitive once per shape and dtype
        measure(run_check_grads, s, 1)
        mine = measure(run_gk, s, args.repeat)
        theirs = measure(run_check_grads, s, args.repeat)
        rows.append((s, mine, theirs))
        if (mine[0] == "passed") != s.correct:
            wrong.append(s.name)
    where = jax.devices()[0].platform
    print(f"jax {jax.__version__}, {where}; median of {args.repeat} runs; calls: rule bodies")
    print()
    print("| function | truth | gk | gk calls | gk s | check_grads | cg calls | cg s |")
    print("|---|---|---|---|---|---|---|---|")
    for s, mine, theirs in rows:
        truth = "correct" if s.correct else "bug"
        gk_cells = f"{mine[0]} | {mine[2]} | {mine[3]:.3f}"
        print(f"| {s.name} | {truth} | {gk_cells} | {theirs[0]} | {theirs[2]} | {theirs[3]:.3f} |")
    print()
    for s, mine, theirs in rows:
        print(f"{s.name}:\n  gk: {mine[1][:200] or '-'}\n  check_grads: {theirs[1][:200] or '-'}")
    caught = [sum(1 for s, m, _ in rows if not s.correct and m[0] != "passed")]
    caught.append(sum(1 for s, _, t in rows if not s.correct and t[0] != "passed"))
    alarms = [sum(1 for s, m, _ in rows if s.correct and m[0] != "passed")]
    alarms.append(sum(1 for s, _, t in rows if s.correct and t[0] != "passed"))
    bugs = sum(1 for s, _, _ in rows if not s.correct)
    print(f"\nplanted bugs caught: gk {caught[0]}/{bugs}, check_grads {caught[1]}/{bugs}")
    print(f"false alarms on correct rules: gk {alarms[0]}, check_grads {alarms[1]}")
    if wrong:
        print(f"gk gave a wrong verdict on: {', '.join(wrong)}")
    return 1 if wrong else 0


if __name__ == "__main__":
    raise SystemExit(main())
