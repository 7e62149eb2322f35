"""Custom autograd Functions: gradcheck-kit and torch's own tools side by side (issue 17).

    python benchmarks/torch_functions.py [--repeat N] [--only SUBSTRING]

On every Function of tests/support/functions.py (correct ones, and one planted bug each in the
second order, forward mode, vmap, undefined grads, complex conj, a non-tensor argument in the
middle, mark_dirty), two tools:

- ``gk``: ``gk.check(*gk.from_autograd_function(F), inputs, params)``, defaults (second order
  where backward is differentiable, forward mode where F has a jvp, batched where it has a vmap
  rule, undefined grads where it has several outputs);
- ``torch``: ``torch.autograd.gradcheck(fn, inputs, check_forward_ad=<F has a jvp>,
  check_batched_grad=True, check_undefined_grad=True)`` then ``gradgradcheck(fn, inputs,
  check_batched_grad=True)`` unless backward is once_differentiable, with ``fn`` the plain call a
  user writes (``lambda x, w: F.apply(x, k, w)``, ``F.apply`` itself otherwise) on leaves that
  require grad.

Per Function: each tool's verdict (passed / FAILED / ERROR: raised something other than a
gradient mismatch), the cause it gives (first line), the calls of the Function's forward,
backward and jvp it made, and its seconds (median of ``--repeat`` runs). The exit code is 1 if
gk gave a wrong verdict (a correct Function failing, a planted bug passing).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's gradcheck_kit and tests, not an installed copy

import torch  # noqa: E402
from torch.autograd.gradcheck import GradcheckError  # noqa: E402

import gradcheck_kit as gk  # noqa: E402
from tests.support.functions import CALLS, Specimen, specimens  # noqa: E402


def run_gk(s: Specimen) -> tuple[str, str]:
    result = gk.check(*gk.from_autograd_function(s.function), s.inputs, s.params)
    return ("passed" if result.passed else "FAILED"), (result.cause or "")


def _plain_call(s: Specimen) -> Callable[..., Any]:
    """What a user hands torch's tools: the tensors as arguments, the rest closed over."""
    if s.params:
        k = s.params["k"]
        return lambda x, w: s.function.apply(x, k, w)
    return s.function.apply


def _defines(function: type, name: str) -> bool:
    return any(name in vars(c) for c in function.__mro__ if not c.__module__.startswith("torch."))


def run_torch(s: Specimen) -> tuple[str, str]:
    fn = _plain_call(s)
    leaves = tuple(t.detach().clone().requires_grad_(True) for t in s.inputs)
    once = getattr(s.function.backward, "__wrapped__", None) is not None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.autograd.gradcheck(
                fn,
                leaves,
                check_forward_ad=_defines(s.function, "jvp"),
                check_batched_grad=True,
                check_undefined_grad=True,
            )
            if not once:
                torch.autograd.gradgradcheck(fn, leaves, check_batched_grad=True)
    except GradcheckError as exc:
        return "FAILED", _first_line(exc)
    except Exception as exc:  # what a user would see instead of a verdict
        return "ERROR", f"{type(exc).__name__}: {_first_line(exc)}"
    return "passed", ""


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def measure(tool: Callable[[Specimen], tuple[str, str]], s: Specimen, repeat: int) -> dict[str, Any]:
    seconds, verdict, cause, calls = [], "", "", Counter()
    for _ in range(repeat):
        CALLS.clear()
        started = time.perf_counter()
        verdict, cause = tool(s)
        seconds.append(time.perf_counter() - started)
        calls = Counter(CALLS)
    return {"verdict": verdict, "cause": cause, "calls": calls, "seconds": statistics.median(seconds)}


def _calls(calls: Counter[str]) -> str:
    return "/".join(str(calls.get(k, 0)) for k in ("forward", "backward", "jvp"))


def _cells(seen: dict[str, Any]) -> str:
    return f"{seen['verdict']:7} {_calls(seen['calls']):12} {seen['seconds']:7.3f}"


def _right(s: Specimen, verdict: str) -> bool:
    return (verdict == "passed") == (s.bug is None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per tool and Function (median time)")
    parser.add_argument("--only", default="", help="only Functions whose name contains this")
    args = parser.parse_args(argv)
    chosen = [s for s in specimens() if args.only in s.name]
    for s in chosen:  # warm up: torch's first forward-AD and vmap calls import and compile
        run_gk(s)
    tool = f"{'calls f/b/j':12} {'s':>7}"
    header = f"{'Function':38} {'planted':15} {'gk':7} {tool}   {'torch':7} {tool}"
    print(header)
    print("-" * len(header))
    wrong, notes, tally = 0, [], Counter()
    for s in chosen:
        ours, theirs = measure(run_gk, s, args.repeat), measure(run_torch, s, args.repeat)
        wrong += not _right(s, ours["verdict"])
        for tool, seen in (("gk", ours), ("torch", theirs)):
            tally[tool, "right"] += _right(s, seen["verdict"])
            tally[tool, "caught"] += bool(s.bug) and seen["verdict"] != "passed"
            tally[tool, "error"] += seen["verdict"] == "ERROR"
        flag = "" if _right(s, ours["verdict"]) else "  <- wrong gk verdict"
        print(f"{s.name:38} {s.bug or '-':15} {_cells(ours)}   {_cells(theirs)}{flag}")
        notes.append((s.name, ours["cause"], theirs["cause"]))
    print("\ncauses (gk | torch):")
    for name, ours, theirs in notes:
        if ours or theirs:
            print(f"- {name}\n    gk:    {ours[:220]}\n    torch: {theirs[:220]}")
    bugs = sum(1 for s in chosen if s.bug)
    print()
    for tool in ("gk", "torch"):
        print(
            f"{tool}: {tally[tool, 'right']} of {len(chosen)} verdicts right; planted bugs caught (failed or "
            f"raised): {tally[tool, 'caught']} of {bugs}; raised instead of a verdict: {tally[tool, 'error']}"
        )
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
