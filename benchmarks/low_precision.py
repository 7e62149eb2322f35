"""Low-precision battery: gradcheck-kit, torch's gradcheck and a FlashAttention-style 2x rule side
by side on the bf16/fp16 kernels of tests/support/lowprec.py (correct, or with one planted bug).

    python benchmarks/low_precision.py [--seeds N] [--quick] [--only SUBSTRING] [--dtypes bfloat16,float16]

For every specimen x its dtypes x seeds, five verdicts (a cell prints one letter per seed:
p passed, F failed, E raised, - not run):

- ``gk``: ``gk.check(forward, backward, inputs, params)`` (not run for bf16-only kernels, which
  reject the float64 the check would need);
- ``gk+ref``: the same with ``reference=`` the specimen's plain torch math;
- ``gc``: ``torch.autograd.gradcheck`` on a ``torch.autograd.Function`` wrapping the pair, on the
  low-precision inputs, default tolerances, ``fast_mode=True`` (the full Jacobian of 10^4
  inputs x 10^4 outputs would take gigabytes); ``gc-tuned``: the same with ``atol=rtol=`` the
  usual hand-tuned value (bfloat16 1e-2, float16 1e-3);
- ``fa2x``: FlashAttention's test rule: per gradient, max |kernel - float64 reference| <= 2 x max
  |reference run in the low dtype - float64 reference| + 2 x the float32 rounding of the float64
  gradient (FlashAttention's ``(g + 0.3 - 0.3) - g``). All three by torch autograd of ``reference``
  for one grad_output drawn N(0, 1) in the output's dtype.

Then a summary per tool (correct checks passed and false alarms; buggy checks caught and misses),
and every wrong gradcheck-kit verdict with its cause. The exit code is 1 if gradcheck-kit (either
column) gave any wrong verdict, so the script is the acceptance battery of the low-precision
engine. ``--quick``: one seed, one dtype per specimen, no ``low`` kernels and no x1.1 (about a minute
and a half on 2 cores; the full run about six and a half).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's gradcheck_kit and tests, not an installed copy

import torch  # noqa: E402
from torch.autograd.gradcheck import GradcheckError  # noqa: E402

import gradcheck_kit as gk  # noqa: E402
from tests.support.lowprec import LOW, LowSpecimen, Tensors, specimens, torch_dtype  # noqa: E402

TOOLS = ("gk", "gk+ref", "gc", "gc-tuned", "fa2x")
GK_TOOLS = ("gk", "gk+ref")
TUNED = {"bfloat16": 1e-2, "float16": 1e-3}  # the atol = rtol kernel projects hand-tune per dtype
torch_gradcheck = sys.modules[
    "torch.autograd.gradcheck"
]  # the module (torch.autograd.gradcheck is the function)
SLOW_MESSAGE = "_run_slow_mode_and_get_error"
LETTER = {"pass": "p", "fail": "F", "error": "E", "skip": "-"}


# -- one verdict ---------------------------------------------------------------------------------


@dataclass
class Verdict:
    outcome: str  # pass | fail | error | skip
    seconds: float = 0.0
    calls: int | None = None  # layer calls (forward + backward), gradcheck-kit only
    why: str = ""  # a failure's cause or an error's first line, 100 characters

    def wrong(self, buggy: bool) -> bool:
        """A correct kernel must pass; a buggy one must fail (an error catches nothing)."""
        return self.outcome != ("fail" if buggy else "pass") and self.outcome != "skip"


def timed(fn: Callable[[], Verdict]) -> Verdict:
    start = time.perf_counter()
    try:
        verdict = fn()
    except Exception as exc:
        verdict = Verdict("error", why=one_line(f"{type(exc).__name__}: {exc}"))
    verdict.seconds = time.perf_counter() - start
    return verdict


def one_line(text: str) -> str:
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    return (lines[0] if lines else "")[:100]


# -- the tools -----------------------------------------------------------------------------------


def run_gk(trial: tuple[Any, ...], reference: Callable[..., Any] | None, seed: int, name: str) -> Verdict:
    forward, backward, inputs, params = trial
    result = gk.check(
        forward, backward, inputs, params, reference=reference, seed=seed, name=name, timeout=300
    )
    calls = sum(result.calls.values())
    if result.passed:
        return Verdict("pass", calls=calls)
    return Verdict("fail", calls=calls, why=one_line(result.cause or "(failed without a cause)"))


def as_function(forward: Callable[..., Any], backward: Callable[..., Any], params: dict[str, Any]) -> Any:
    """The pair behind a torch.autograd.Function, as a kernel project wires it."""

    class Kernel(torch.autograd.Function):
        @staticmethod
        def forward(ctx: Any, *inputs: torch.Tensor) -> torch.Tensor:
            ctx.save_for_backward(*inputs)
            return forward(*inputs, **params)

        @staticmethod
        def backward(ctx: Any, dy: torch.Tensor) -> Any:
            return tuple(backward(dy, *ctx.saved_tensors, **params))

    return Kernel.apply


def run_gradcheck(trial: tuple[Any, ...], tol: float | None) -> Verdict:
    """Fast mode, with the slow-mode re-run torch does only to word its error message skipped: it
    builds the full Jacobian (~40 s and 0.5 GB per failing check here) and changes no verdict."""
    forward, backward, inputs, params = trial
    leaves = tuple(t.detach().clone().requires_grad_() for t in inputs)
    tols = {} if tol is None else {"atol": tol, "rtol": tol}
    function = as_function(forward, backward, params)
    try:
        with warnings.catch_warnings(), mock.patch.object(torch_gradcheck, SLOW_MESSAGE, return_value=""):
            warnings.simplefilter("ignore")  # "Input #0 ... is not a double precision floating point"
            torch.autograd.gradcheck(function, leaves, fast_mode=True, **tols)
    except GradcheckError as exc:
        return Verdict("fail", why=one_line(exc))
    return Verdict("pass")


def vjp(fn: Callable[..., Any], inputs: Tensors, params: dict[str, Any], dy: torch.Tensor) -> Tensors:
    """Torch autograd's vector-Jacobian product of ``fn`` at ``inputs`` (in their dtype)."""
    leaves = [t.detach().clone().requires_grad_() for t in inputs]
    return torch.autograd.grad(fn(*leaves, **params), leaves, dy.to(leaves[0].dtype))


def run_fa_rule(trial: tuple[Any, ...], reference: Callable[..., Any], dtype: str, seed: int) -> Verdict:
    forward, backward, inputs, params = trial
    out = forward(*inputs, **params)
    g = torch.Generator().manual_seed(10_000 + seed)
    dy = torch.randn(out.shape, generator=g, dtype=torch.float64).to(out.dtype)
    kernel = backward(dy, *inputs, **params)
    exact = vjp(reference, tuple(t.double() for t in inputs), params, dy)
    plain = vjp(reference, tuple(t.to(torch_dtype(dtype)) for t in inputs), params, dy)
    for i, (k, e, p) in enumerate(zip(kernel, exact, plain)):
        err, err_plain = (k.double() - e).abs().max().item(), (p.double() - e).abs().max().item()
        e32 = e.float()
        atol = 2 * ((e32 + 0.3 - 0.3) - e32).abs().max().item()
        if not err <= 2 * err_plain + atol:
            return Verdict("fail", why=f"gradient {i}: error {err:.3g} > 2 x {err_plain:.3g} + {atol:.2g}")
    return Verdict("pass")


def verdicts(specimen: LowSpecimen, dtype: str, seed: int) -> dict[str, Verdict]:
    def trial() -> tuple[Any, ...]:
        return specimen.build(seed, dtype)  # a fresh trial per tool: none sees another's state

    name, ref = f"{specimen.name}[{dtype}]", specimen.reference
    skip = specimen.variant == "bf16-only"
    return {
        "gk": Verdict("skip") if skip else timed(lambda: run_gk(trial(), None, seed, name)),
        "gk+ref": timed(lambda: run_gk(trial(), ref, seed, name)),
        "gc": timed(lambda: run_gradcheck(trial(), None)),
        "gc-tuned": timed(lambda: run_gradcheck(trial(), TUNED[dtype])),
        "fa2x": timed(lambda: run_fa_rule(trial(), ref, dtype, seed)),
    }


# -- tallies -------------------------------------------------------------------------------------


@dataclass
class Row:
    specimen: LowSpecimen
    dtype: str
    cells: dict[str, list[Verdict]] = field(default_factory=lambda: {t: [] for t in TOOLS})

    def add(self, found: dict[str, Verdict]) -> None:
        for tool, verdict in found.items():
            self.cells[tool].append(verdict)

    def cell(self, tool: str) -> str:
        verdicts = self.cells[tool]
        letters = "".join(LETTER[v.outcome] for v in verdicts)
        return letters + ("!" if any(v.wrong(self.specimen.buggy) for v in verdicts) else " ")


def print_rows(rows: list[Row]) -> None:
    width = max(len(r.specimen.name) for r in rows)
    seeds = max(len(r.cells["gk+ref"]) for r in rows)
    header = "  ".join(f"{t:>{seeds + 1}}" for t in TOOLS)
    print(f"{'specimen':{width}}  {'dtype':8}  kind  {header}")
    for r in rows:
        kind = "bug" if r.specimen.buggy else "ok"
        cells = "  ".join(f"{r.cell(t):>{max(seeds, len(t)) + 1}}" for t in TOOLS)
        print(f"{r.specimen.name:{width}}  {r.dtype:8}  {kind:4}  {cells}")
    print("(p passed, F failed, E raised, - not run; ! a wrong verdict)")


def side(rows: list[Row], tool: str, buggy: bool) -> tuple[int, int, int]:
    """(right verdicts, wrong verdicts, errors) of ``tool`` on one side."""
    found = [v for r in rows if r.specimen.buggy == buggy for v in r.cells[tool] if v.outcome != "skip"]
    wrong = sum(v.wrong(buggy) for v in found)
    return len(found) - wrong, wrong, sum(v.outcome == "error" for v in found)


def print_summary(rows: list[Row]) -> None:
    print(
        f"\n{'tool':9} {'correct: passed':>16} {'false alarms':>13} {'buggy: caught':>14} {'misses':>7}",
        end="",
    )
    print(f" {'errors':>7} {'median s':>9} {'total s':>8} {'calls':>6}")
    for tool in TOOLS:
        ok, alarms, e1 = side(rows, tool, buggy=False)
        caught, misses, e2 = side(rows, tool, buggy=True)
        found = [v for r in rows for v in r.cells[tool] if v.outcome != "skip"]
        seconds = [v.seconds for v in found]
        calls = [v.calls for v in found if v.calls is not None]
        median_calls = f"{statistics.median(calls):.0f}" if calls else "-"
        print(
            f"{tool:9} {ok:>9}/{ok + alarms:<6} {alarms:>13} {caught:>7}/{caught + misses:<6} {misses:>7}",
            end="",
        )
        print(f" {e1 + e2:>7} {statistics.median(seconds):>9.3f} {sum(seconds):>8.1f} {median_calls:>6}")


def print_wrong(rows: list[Row]) -> None:
    print("\ngradcheck-kit's wrong verdicts (first cause per specimen, dtype and column):")
    shown = 0
    for r in rows:
        for tool in GK_TOOLS:
            wrong = [(seed, v) for seed, v in enumerate(r.cells[tool]) if v.wrong(r.specimen.buggy)]
            if wrong:
                v, seeds = wrong[0][1], ",".join(str(s) for s, _ in wrong)
                print(f"  {r.specimen.name} [{r.dtype}] {tool} seeds {seeds}: ", end="")
                print(f"{v.outcome}: {v.why or '(passed)'}")
                shown += 1
    if not shown:
        print("  none")


def print_torch_errors(rows: list[Row]) -> None:
    for tool in ("gc", "gc-tuned"):
        why = Counter(v.why for r in rows for v in r.cells[tool] if v.outcome in ("fail", "error"))
        for text, n in why.most_common(2):
            print(f"  {tool}, {n}x: {text}")


# -- the run -------------------------------------------------------------------------------------


def quick_dtype(specimen: LowSpecimen, index: int) -> str:
    """--quick runs each specimen in one dtype: a scaled gradient at its smallest planted size
    (x1.05 in bfloat16, x1.02 in float16), anything else alternating between the dtypes."""
    if specimen.tag == "x1.05":
        return "bfloat16"
    return specimen.dtypes[index % len(specimen.dtypes)]


def in_quick(specimen: LowSpecimen) -> bool:
    return specimen.variant != "low" and specimen.tag != "x1.1"


def selected(only: str | None, quick: bool, dtypes: tuple[str, ...]) -> list[tuple[LowSpecimen, str]]:
    chosen = []
    for index, s in enumerate(specimens()):
        if only and only not in s.name:
            continue
        if not quick:
            chosen += [(s, d) for d in s.dtypes if d in dtypes]
        elif in_quick(s) and quick_dtype(s, index) in dtypes:
            chosen.append((s, quick_dtype(s, index)))
    return chosen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, help="seeds per specimen and dtype (default 3; --quick 1)")
    parser.add_argument("--quick", action="store_true", help="a ~1-minute subset")
    parser.add_argument("--only", help="only specimens whose name contains this")
    parser.add_argument("--dtypes", default=",".join(LOW), help="comma-separated (default bfloat16,float16)")
    args = parser.parse_args(argv)
    seeds = args.seeds or (1 if args.quick else 3)
    torch.set_num_threads(1)  # small kernels: intra-op threads cost more than they save on 2 shared cores
    start = time.perf_counter()
    rows = []
    for specimen, dtype in selected(args.only, args.quick, tuple(args.dtypes.split(","))):
        row = Row(specimen, dtype)
        for seed in range(seeds):
            row.add(verdicts(specimen, dtype, seed))
        rows.append(row)
    print(
        f"low-precision battery: {len(rows)} specimen/dtype rows x {seeds} seeds, torch {torch.__version__}"
    )
    print_rows(rows)
    print_summary(rows)
    print_torch_errors(rows)
    print_wrong(rows)
    print(f"\n{time.perf_counter() - start:.0f} s")
    return int(any(v.wrong(r.specimen.buggy) for r in rows for t in GK_TOOLS for v in r.cells[t]))


if __name__ == "__main__":
    sys.exit(main())
