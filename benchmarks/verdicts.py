"""Verdict batteries: how often gk.check is wrong. A false alarm is a correct layer that fails, a
false pass a buggy one that passes; the script prints a table per battery and exits 1 if any
verdict was wrong.

    python benchmarks/verdicts.py [--battery all|realistic|zoo|kinks|precision|unseen] [--quick]
                                  [--seeds N] [--examples N] [--only SUBSTRING] [--all-rows]

- ``realistic``: tests/support/realistic (CS231n cache-style functions, mytorch classes, float32
  kernels, degenerate cases) x each specimen's dtypes x modes auto/projection x seeds (3).
  Buggy specimens with an ``expect`` are also scored on diagnosis: is it among the result's
  patterns or finding kinds?
- ``zoo``: tests/support/zoo.py x float64/float32 x elementwise/projection x seeds (5), plus
  every specimen but relu-mutates-dy wrapped to cast to float32 inside and to reject float64.
- ``kinks``: ReLU over 20000 values crowded at its kink, projection mode, seeds (20): the correct
  gradient must pass every time; x1.01 and x1.001 report their catch rate (a rare miss there is
  documented behaviour, not counted as wrong).
- ``precision``: float32 property checks of five reference layers over seeds (5); any failure
  is a false alarm.
- ``unseen``: tests/support/unseen (241 layers written apart from gradcheck-kit's tests) x each
  specimen's dtypes x its own seeds (two; one for the slowest; ``--seeds N`` keeps the first N),
  auto mode, and element-wise too where marked. Each case is labelled by a ground truth that
  never asks gradcheck-kit (torch float64 autograd of a re-implementation of the forward, or a
  subgradient test at kinks): ``correct`` and ``buggy`` by what it measures, ``contract`` (a
  right gradient from a layer that writes into its input or dy) scored as buggy, ``hazard`` (no
  verdict is right) reported only. A specimen whose cases measure differently gets a row per
  label. Skipped without torch.

``--quick`` shrinks seeds and examples, and runs unseen at one seed (under two minutes on 2
cores; the full run about 4.5).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's gradcheck_kit and tests, not an installed copy

import numpy as np  # noqa: E402

import gradcheck_kit as gk  # noqa: E402

BATTERIES = ("realistic", "zoo", "kinks", "precision", "unseen")
MODES = ("auto", "projection")

# -- tallies -------------------------------------------------------------------------------------


@dataclass
class Row:
    """One specimen's (or layer's) verdicts. ``judged=False`` rows are reported, not scored."""

    name: str
    buggy: bool
    style: str = ""
    judged: bool = True
    checks: int = 0
    failed: int = 0
    wrong: int = 0
    causes: dict[str, str] = field(default_factory=dict)  # cause -> first config showing it
    expect: str | None = None
    diagnosed: int = 0

    def record(self, passed: bool, config: str, cause: str | None, diagnosed: bool = False) -> None:
        self.checks += 1
        self.failed += not passed
        self.diagnosed += diagnosed
        if self.judged and passed == self.buggy:
            self.wrong += 1
            self.causes.setdefault(cause or "(passed)", config)


@dataclass
class Tally:
    title: str
    rows: dict[str, Row] = field(default_factory=dict)
    seconds: float = 0.0
    unit: str = "specimens"  # what a row is, for the summary
    skipped: str | None = None  # why the battery did not run

    def row(self, name: str, buggy: bool, **extra: Any) -> Row:
        if name not in self.rows:
            self.rows[name] = Row(name, buggy, **extra)
        return self.rows[name]

    @property
    def wrong(self) -> int:
        return sum(r.wrong for r in self.rows.values())

    def side(self, buggy: bool) -> tuple[int, int, int, int]:
        """(wrong checks, checks, specimens with a wrong verdict, specimens) on one side."""
        rows = [r for r in self.rows.values() if r.buggy == buggy and r.judged]
        return (
            sum(r.wrong for r in rows),
            sum(r.checks for r in rows),
            sum(1 for r in rows if r.wrong),
            len(rows),
        )


def print_tally(tally: Tally, *, all_rows: bool) -> None:
    if tally.skipped:
        print(f"\n== {tally.title}: skipped, {tally.skipped}")
        return
    print(f"\n== {tally.title} ({tally.seconds:.1f} s)")
    shown = [r for r in tally.rows.values() if all_rows or r.wrong or not r.judged]
    if shown:
        width = max(len(r.name) for r in shown)
        header = f"{'style':10} {'kind':4} {'checks':>6} {'failed':>6} {'wrong':>5}  diagnosis"
        print(f"  {'specimen':{width}}  {header}")
    for r in shown:
        diagnosis = f"{r.diagnosed}/{r.checks} {r.expect}" if r.expect else ""
        kind = "bug" if r.buggy else "ok"
        line = f"  {r.name:{width}}  {r.style:10} {kind:4} {r.checks:6} {r.failed:6} {r.wrong:5}  {diagnosis}"
        print(line.rstrip())
        for cause, config in list(r.causes.items())[:3]:
            print(f"      {config}: {cause}")
    print_summary(tally)


def print_summary(tally: Tally) -> None:
    alarms, correct, alarm_rows, correct_rows = tally.side(buggy=False)
    passes, buggy, pass_rows, buggy_rows = tally.side(buggy=True)
    print(f"  false alarms: {alarms} of {correct} correct checks", end="")
    print(f" ({alarm_rows} of {correct_rows} correct {tally.unit})")
    if buggy:
        print(f"  false passes: {passes} of {buggy} buggy checks", end="")
        print(f" ({pass_rows} of {buggy_rows} buggy {tally.unit})")
    for r in tally.rows.values():
        if not r.judged:
            print(f"  {r.name}: caught {r.failed} of {r.checks} (reported, not scored)")
        elif not r.buggy and r.style == "kinks":
            print(f"  {r.name}: passed {r.checks - r.failed} of {r.checks}")
    scored = [r for r in tally.rows.values() if r.expect]
    if scored:
        hits, total = sum(r.diagnosed for r in scored), sum(r.checks for r in scored)
        print(f"  diagnosis: the expected finding or pattern named in {hits} of {total} checks", end="")
        print(" (buggy specimens with an expect)")


def _cause(result: Any) -> str:
    if result.passed:
        return f"(passed: {len(result.inputs)} inputs checked, max rel err {result.max_rel_err:.2g})"
    return result.cause or "(failed without a cause)"


# -- batteries -----------------------------------------------------------------------------------


def battery_realistic(seeds: int, only: str | None) -> Tally:
    from tests.support.realistic.specimens import run, specimens

    tally = Tally(f"realistic: specimens x dtypes x modes {'/'.join(MODES)} x {seeds} seeds")
    for specimen in _selected(specimens(), only):
        row = tally.row(specimen.name, specimen.buggy, style=specimen.style, expect=specimen.expect)
        for dtype in specimen.dtypes:
            for mode in MODES:
                for seed in range(seeds):
                    result = run(specimen, dtype=dtype, seed=seed, mode=mode)
                    named = set(result.patterns) | {f.kind for f in result.findings}
                    diagnosed = specimen.expect is not None and specimen.expect in named
                    row.record(result.passed, f"{dtype} {mode} seed {seed}", _cause(result), diagnosed)
    return tally


def cast_to_float32(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The layer casts its floating inputs to float32 inside (a float32-only kernel)."""

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        args = tuple(
            a.astype(np.float32) if isinstance(a, np.ndarray) and a.dtype.kind == "f" else a for a in args
        )
        return fn(*args, **kwargs)

    return wrapped


def reject_float64(fn: Callable[..., Any]) -> Callable[..., Any]:
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if any(isinstance(a, np.ndarray) and a.dtype == np.float64 for a in args):
            raise TypeError("this kernel takes float32 only")
        return fn(*args, **kwargs)

    return wrapped


def battery_zoo(seeds: int, only: str | None) -> Tally:
    from tests.support.zoo import specimens

    title = f"zoo: tests/support/zoo.py x float64/float32 x elementwise/projection x {seeds} seeds + wrappers"
    tally = Tally(title, unit="specimen/wrapper rows")
    zoo = _selected(specimens(), only)
    for s in zoo:
        row = tally.row(s.name, s.buggy, style="zoo")
        for dtype in ("float64", "float32"):
            for mode in ("elementwise", "projection"):
                for seed in range(seeds):
                    result = gk.check(
                        s.forward, s.backward, s.inputs(dtype, seed), s.params, mode=mode, seed=seed
                    )
                    row.record(result.passed, f"{dtype} {mode} seed {seed}", _cause(result))
    plain = sum(r.checks for r in tally.rows.values())
    for wrap, label in ((cast_to_float32, "casts-inside"), (reject_float64, "float32-only")):
        for s in zoo:
            if s.name == "relu-mutates-dy":  # the wrapper's cast copy hides the mutation
                continue
            row = tally.row(f"{s.name} [{label}]", s.buggy, style=label)
            for seed in range(seeds):
                result = gk.check(
                    wrap(s.forward), wrap(s.backward), s.inputs("float32", seed), s.params, seed=seed
                )
                row.record(result.passed, f"float32 auto seed {seed}", _cause(result))
    total = sum(r.checks for r in tally.rows.values())
    tally.title += f" ({plain} plain checks, {total - plain} wrapped)"
    return tally


def crowded_at_the_kink(seed: int) -> np.ndarray:
    """20000 values whose bulk sits densely around ReLU's kink at 0 (a few large values set the
    step), as tests/test_projection.py builds them."""
    x = np.random.default_rng(seed).standard_normal(20000) * 0.01
    x[::100] *= 3000
    return x


def battery_kinks(seeds: int) -> Tally:
    tally = Tally(f"kinks: ReLU over 20000 values crowded at 0, projection mode, {seeds} seeds", unit="rows")

    def relu(x: np.ndarray) -> np.ndarray:
        return np.maximum(x, 0)

    for factor in (1.0, 1.01, 1.001):
        buggy = factor != 1.0
        # only the correct gradient is scored; a rare miss of a 0.1% error is documented
        row = tally.row(f"relu gradient x{factor:g}", buggy, style="kinks", judged=not buggy)
        for seed in range(seeds):

            def backward(dy: np.ndarray, x: np.ndarray, factor: float = factor) -> tuple[np.ndarray]:
                return (dy * (x > 0) * factor,)

            result = gk.check(relu, backward, (crowded_at_the_kink(seed),), mode="projection", seed=seed)
            row.record(result.passed, f"seed {seed}", _cause(result))
    return tally


PRECISION_LAYERS = (
    "batch_norm",
    "layer_norm",
    "softmax_cross_entropy",
    "gaussian_filter1d",
    "linear_sigmoid",
)


def battery_precision(seeds: int, examples: int) -> Tally:
    import reference_layers  # noqa: F401 - registers the layers

    tally = Tally(
        f"precision: float32 property checks, {examples} examples x {seeds} seeds per layer", unit="layers"
    )
    for name in PRECISION_LAYERS:
        row = tally.row(name, False, style="property")
        for seed in range(seeds):
            result = gk.property_check(
                name, backend="numpy", dtypes=("float32",), max_examples=examples, seed=seed, database=False
            )
            cause = None if result.passed else (result.message.splitlines() or ["failed"])[0]
            row.record(result.passed, f"seed {seed}", cause)
    return tally


def battery_unseen(seeds: int | None, only: str | None) -> Tally:
    """Each case's label comes from ``truth.label`` (torch autograd, never gradcheck-kit), the
    verdict from ``check``. ``seeds`` caps each specimen's own seeds (None: all of them)."""
    try:
        from tests.support.unseen import specimens
        from tests.support.unseen.check import check
        from tests.support.unseen.truth import build, label
    except ModuleNotFoundError as exc:
        if exc.name != "torch":
            raise
        return Tally("unseen", skipped="torch is not installed (the ground truth is torch autograd)")

    title = "unseen: tests/support/unseen x dtypes x seeds, auto (+ elementwise where marked)"
    tally = Tally(title, unit="specimen rows")
    labels: dict[str, int] = dict.fromkeys(("correct", "buggy", "contract", "hazard"), 0)
    for specimen in _selected(specimens(), only):
        cases = [build(specimen, d, s) for d in specimen.dtypes for s in specimen.seeds[:seeds]]
        truths = [label(case) for case in cases]
        mixed = len({t.label for t in truths}) > 1
        for case, truth in zip(cases, truths):
            labels[truth.label] += 1
            name = f"{specimen.name} [{truth.label}]" if mixed else specimen.name
            style = truth.label if truth.label in ("contract", "hazard") else specimen.style
            row = tally.row(name, truth.buggy, style=style, judged=truth.judged)
            for mode in ("auto", "elementwise") if specimen.elementwise else ("auto",):
                result = check(case, mode)
                config = f"{case.dtype} {mode} seed {case.seed} (true error {truth.error:.2g})"
                row.record(result.passed, config, _cause(result))
    counts = ", ".join(f"{n} {kind}" for kind, n in labels.items())
    checks = sum(r.checks for r in tally.rows.values())
    tally.title += f" ({sum(labels.values())} cases: {counts}; {checks} checks)"
    return tally


def _selected(items: Iterable[Any], only: str | None) -> list[Any]:
    return [s for s in items if only is None or only in s.name]


# -- main ----------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--battery", choices=("all", *BATTERIES), default="all")
    parser.add_argument(
        "--quick", action="store_true", help="fewer seeds and examples (under two minutes on 2 cores)"
    )
    parser.add_argument("--seeds", type=int, help="seeds per configuration (default: the battery's)")
    parser.add_argument("--examples", type=int, help="examples per property check (precision)")
    parser.add_argument("--only", help="realistic/zoo/unseen: only specimens whose name contains this")
    parser.add_argument(
        "--all-rows", action="store_true", help="zoo/unseen: print every row, not only wrong or unscored ones"
    )
    args = parser.parse_args(argv)
    chosen = BATTERIES if args.battery == "all" else (args.battery,)
    print(f"gradcheck_kit {gk.__file__}; numpy {np.__version__}")

    def seeds(default: int, quick: int) -> int:
        return args.seeds or (quick if args.quick else default)

    runners: dict[str, Callable[[], Tally]] = {
        "realistic": lambda: battery_realistic(seeds(3, 1), args.only),
        "zoo": lambda: battery_zoo(seeds(5, 2), args.only),
        "kinks": lambda: battery_kinks(seeds(20, 10)),
        "precision": lambda: battery_precision(seeds(5, 2), args.examples or (100 if args.quick else 200)),
        "unseen": lambda: battery_unseen(args.seeds or (1 if args.quick else None), args.only),
    }
    wrong = 0
    ran: list[str] = []
    skipped: list[str] = []
    for name in chosen:
        start = time.perf_counter()
        tally = runners[name]()
        tally.seconds = time.perf_counter() - start
        print_tally(tally, all_rows=args.all_rows or name not in ("zoo", "unseen"))
        wrong += tally.wrong
        (skipped if tally.skipped else ran).append(name)
    summary = f"{'OK' if not wrong else 'WRONG'}: {wrong} wrong verdicts in {', '.join(ran) or 'nothing'}"
    print(f"\n{summary}" + (f" (skipped: {', '.join(skipped)})" if skipped else ""))
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
