"""Where property testing spends its time: for every registered reference layer, examples per
second of ``gk.property_check`` on NumPy and how each example's time divides between hypothesis
drawing, building the case, the check's own overhead and the layer's own calls.

``benchmarks/property.py`` gives the plain throughput; this adds the attribution, two ways:

- measured, without a profiler: the layer's forward/backward are timed around each call (a
  ``LayerSpec`` with timed wrappers), and the time inside ``gk.check_case`` is the result's
  ``check_seconds``, and the draws of the layer's ``cases`` strategy are timed too; so per run
  its fixed setup, and per example: drawing the case, the rest of hypothesis' work, the check's
  overhead (in the check, outside the layer) and the layer's calls;
- profiled, one more run per layer under cProfile: every function's own time goes to a bucket
  by its module (``hypothesis.*``; ``gradcheck_kit.strategies``, ``reference_layers.cases`` and
  the dtype cast in ``gradcheck_kit.property``: the case; the rest of ``gradcheck_kit.property``
  and ``property_text``: the driver; other ``gradcheck_kit`` modules: the engine; other
  ``reference_layers`` modules: the layer). Time in NumPy, builtins and the standard library is
  charged to the bucket of the caller (through its callers when that one is neutral too).
  cProfile inflates Python-heavy code more than NumPy's C loops: read these as shares.

    python benchmarks/property_profile.py [--examples 200] [--dtype drawn] [--layers conv,pool]
                                          [--top 20] [--target 500 --floor 300]
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import functools
import pstats
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

# this checkout's package, not whichever one an editable install points at
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hypothesis import strategies as st

import gradcheck_kit as gk

BUCKETS = ("hypothesis", "case", "driver", "engine", "layer", "other")
# functions of gradcheck_kit/property.py that build (cast, move) the drawn case
CASE_BUILDING = {"layer_cases", "_base_cases", "with_dtype", "to_backend", "<lambda>"}
Key = tuple[str, int, str]


# -- measured: no profiler ----------------------------------------------------------------------


class LayerClock:
    """Time and calls inside a layer's own forward and backward, when the first case was drawn
    and when the last layer call ended."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.calls = {"forward": 0, "backward": 0}
        self.first_draw: float | None = None
        self.last_end = 0.0
        self.draw_seconds = 0.0

    def wrap(self, fn: Callable[..., Any], role: str) -> Callable[..., Any]:
        @functools.wraps(fn)  # keeps the signature: input names, wrt by name
        def timed(*args: Any, **kwargs: Any) -> Any:
            self.calls[role] += 1
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.last_end = time.perf_counter()
                self.seconds += self.last_end - start

        return timed

    def cases(self, strategy: Any) -> Any:
        """``strategy`` with each draw timed (hypothesis' choices and our case building)."""

        @st.composite
        def timed(draw: Any) -> Any:
            start = time.perf_counter()
            self.first_draw = self.first_draw or start
            case = draw(strategy)
            self.draw_seconds += time.perf_counter() - start
            return case

        return timed()


def options(dtype: str) -> dict[str, Any]:
    """database=False: no disk writes and no replayed examples; the reference stays off, as in
    property tests by default."""
    return {"database": False, "seed": 0, **({} if dtype == "drawn" else {"dtypes": (dtype,)})}


def measured(name: str, examples: int, dtype: str) -> dict[str, Any]:
    """One property run of a copy of the layer's spec whose calls are timed; ``setup ms`` is the
    run's fixed cost: before the first case is drawn and after the last layer call."""
    spec = gk.registry.get(name)
    gk.property_check(spec, max_examples=5, **options(dtype))  # warm-up: imports, first-call caches
    clock = LayerClock()
    cases = clock.cases(spec.cases) if isinstance(spec.cases, st.SearchStrategy) else spec.cases
    timed = dataclasses.replace(
        spec,
        forward=clock.wrap(spec.forward, "forward"),
        backward=clock.wrap(spec.backward, "backward"),
        cases=cases,
    )
    start = time.perf_counter()
    result = gk.property_check(timed, max_examples=examples, **options(dtype))
    end = time.perf_counter()
    setup = (clock.first_draw or start) - start + end - max(clock.last_end, start)
    n = max(result.examples, 1)
    return {
        "result": result,
        "setup ms": 1e3 * setup,
        "draw ms": 1e3 * clock.draw_seconds / n,
        "rest ms": 1e3 * (end - start - setup - result.check_seconds - clock.draw_seconds) / n,
        "overhead ms": 1e3 * (result.check_seconds - clock.seconds) / n,
        "layer ms": 1e3 * clock.seconds / n,
        "calls": {role: count / n for role, count in clock.calls.items()},
    }


# -- profiled: buckets by module ----------------------------------------------------------------


def bucket(key: Key) -> str | None:
    """The bucket of a function by where it is defined; None for neutral code (NumPy, builtins,
    the standard library), which is charged to its callers."""
    path, _, function = key
    path = path.replace("\\", "/")
    if "/hypothesis/" in path:
        return "hypothesis"
    if path.endswith(("gradcheck_kit/strategies.py", "reference_layers/cases.py")):
        return "case"
    if path.endswith("gradcheck_kit/property.py"):
        return "case" if function in CASE_BUILDING else "driver"
    if path.endswith("gradcheck_kit/property_text.py"):
        return "driver"
    if "/gradcheck_kit/" in path:
        return "engine"
    if "/reference_layers/" in path:
        return "layer"
    return None


def engine_module(key: Key) -> str | None:
    """Finer labels for ``attribute``: the gradcheck_kit module (engine code only)."""
    if bucket(key) != "engine":
        return bucket(key)
    return key[0].replace("\\", "/").split("gradcheck_kit/")[-1].removesuffix(".py")


def attribute(stats: dict[Key, Any], label: Callable[[Key], str | None]) -> dict[str, float]:
    """Seconds per label: a labelled function's own time is its label's; a neutral function's
    own time, per caller edge (cProfile records it per caller), goes to that caller's labels,
    a neutral caller's split in proportion to its own callers' cumulative time (gprof's
    assumption, one level up at a time; edges back into the chain being followed are skipped)."""
    shares: dict[Key, dict[str, float]] = {}

    def share(key: Key, path: frozenset[Key]) -> dict[str, float]:
        if key in shares:
            return shares[key]
        if label(key) is not None:
            return {label(key): 1.0}  # type: ignore[dict-item]
        every = stats[key][4] if key in stats else {}
        callers = {c: edge for c, edge in every.items() if c != key and c not in path}
        result: dict[str, float] = defaultdict(float)
        total = sum(edge[3] for edge in callers.values())
        for caller, edge in callers.items():
            for name, part in share(caller, path | {key}).items():
                result[name] += part * (edge[3] / total if total else 1 / len(callers))
        result = dict(result) or {"other": 1.0}
        if not any(c in path for c in every):  # a cut cycle makes the answer depend on the path
            shares[key] = result
        return result

    seconds: dict[str, float] = defaultdict(float)
    for key, (_, _, _, _, callers) in stats.items():
        if label(key) is not None or not callers:
            seconds[label(key) or "other"] += stats[key][2]
            continue
        for caller, edge in callers.items():  # edge[2]: this function's own time under that caller
            split = share(
                key if caller == key else caller, frozenset() if caller == key else frozenset({key})
            )
            for name, part in split.items():
                seconds[name] += part * edge[2]
    return dict(seconds)


def profiled(name: str, examples: int, dtype: str) -> pstats.Stats:
    profiler = cProfile.Profile()
    profiler.enable()
    gk.property_check(name, max_examples=examples, **options(dtype))
    profiler.disable()
    return pstats.Stats(profiler)


# -- tables -------------------------------------------------------------------------------------


def layer_row(name: str, m: dict[str, Any], shares: dict[str, float], floor: float) -> str:
    result = m["result"]
    total = sum(shares.values()) or 1.0
    ms = 1e3 * result.seconds / max(result.examples, 1)
    calls = f"{m['calls']['forward']:.1f}/{m['calls']['backward']:.1f}"
    cells = " ".join(f"{shares.get(b, 0.0) / total:6.0%}" for b in BUCKETS)
    verdict = "ok" if result.examples_per_second >= floor else "SLOW"
    passed = "" if result.passed else "  FAILED"
    return (
        f"{name:28} {result.examples:5} {result.examples_per_second:7.0f} {ms:6.2f} {m['setup ms']:6.1f} "
        f"{m['draw ms']:6.2f} {m['rest ms']:6.2f} "
        f"{m['overhead ms']:8.2f} {m['layer ms']:6.2f} {calls:>9} | {cells}  {verdict}{passed}"
    )


def header() -> str:
    buckets = " ".join(f"{b[:6]:>6}" for b in BUCKETS)
    return (
        f"{'layer':28} {'exmpl':>5} {'ex/s':>7} {'ms/ex':>6} {'setup':>6} {'draw':>6} {'hyprst':>6} "
        f"{'overhead':>8} {'layer':>6} {'calls f/b':>9} | {buckets}"
    )


def top_functions(stats: pstats.Stats, examples: int, prefix: str, top: int) -> list[str]:
    """Functions defined under ``prefix`` by cumulative time, per example (recursive ones once)."""
    rows = [(key, value) for key, value in stats.stats.items() if prefix in key[0].replace("\\", "/")]  # type: ignore[attr-defined]
    rows.sort(key=lambda kv: -kv[1][3])
    lines = [f"{'cum ms/ex':>9} {'self ms/ex':>10} {'calls/ex':>8}  function"]
    for (path, line, function), (_, ncalls, tottime, cumtime, _) in rows[:top]:
        lines.append(
            f"{1e3 * cumtime / examples:9.3f} {1e3 * tottime / examples:10.3f} {ncalls / examples:8.1f}  "
            f"{_where((path, line, function))}"
        )
    return lines


def _where(key: Key) -> str:
    path, line, function = key
    path = path.replace("\\", "/").split("site-packages/")[-1]
    return f"{path.split('/wt-speed/')[-1]}:{line} {function}"


def top_own(stats: dict[Key, Any], examples: int, top: int) -> list[str]:
    """Functions of our code and hypothesis by own time plus the NumPy/builtin time they call
    directly or through neutral code: where the per-example time is actually spent."""

    def label(key: Key) -> str | None:
        kind = bucket(key)
        return f"{kind:10} {_where(key)}" if kind in ("hypothesis", "case", "driver", "engine") else kind

    spent = attribute(stats, label)
    rows = sorted(((k, v) for k, v in spent.items() if k not in BUCKETS), key=lambda kv: -kv[1])
    lines = [f"{'ms/ex':>7}  {'bucket':10} function"]
    lines += [f"{1e3 * v / examples:7.3f}  {k}" for k, v in rows[:top]]
    return lines


def report(names: list[str], args: argparse.Namespace) -> None:
    what = "drawn dtypes" if args.dtype == "drawn" else args.dtype
    print(f"property_check on numpy, {what}, {args.examples} examples per layer, no torch reference")
    print(f"gradcheck_kit from {Path(gk.__file__).parent}")
    print("measured (no profiler): setup = ms per run before the first draw and after the last check;")
    print("ms per example: draw = drawing the case (hypothesis' choices and building the arrays); hyprst =")
    print("hypothesis' other per-example work; overhead = in gk.check_case outside the layer's calls;")
    print("layer = the layer's own forward/backward calls")
    print("profiled shares of each example's time by bucket (cProfile, NumPy time charged to its caller)")
    print(header())
    totals: dict[str, float] = defaultdict(float)
    engine: dict[str, float] = defaultdict(float)
    combined: pstats.Stats | None = None
    results = []
    for name in names:
        m = measured(name, args.examples, args.dtype)
        stats = profiled(name, args.examples, args.dtype)
        shares = attribute(stats.stats, bucket)  # type: ignore[attr-defined]
        for label, seconds in attribute(stats.stats, engine_module).items():  # type: ignore[attr-defined]
            engine[label] += seconds
        for b, seconds in shares.items():
            totals[b] += seconds
        combined = stats if combined is None else combined.add(stats)
        results.append(m)
        print(layer_row(name, m, shares, args.floor), flush=True)
    summary(results, totals, args)
    examples = sum(m["result"].examples for m in results)
    print_engine(engine, examples)
    if combined is not None:
        print("\nfunctions by own time + the NumPy/builtin time they call (profiled, all layers):")
        print("\n".join(top_own(combined.stats, examples, args.top)))  # type: ignore[attr-defined]
        print(f"\ngradcheck_kit functions by cumulative time, all layers (profiled, {examples} examples):")
        print("\n".join(top_functions(combined, examples, "/gradcheck_kit/", args.top)))


def summary(results: list[dict[str, Any]], totals: dict[str, float], args: argparse.Namespace) -> None:
    examples = sum(m["result"].examples for m in results)
    seconds = sum(m["result"].seconds for m in results)
    rate = examples / seconds
    per = {
        k: sum(m[k] * m["result"].examples for m in results) / examples
        for k in ("setup ms", "draw ms", "rest ms", "overhead ms", "layer ms")
    }
    slow = [m["result"].layer for m in results if m["result"].examples_per_second < args.floor]
    total = sum(totals.values()) or 1.0
    shares = ", ".join(f"{b} {totals.get(b, 0.0) / total:.0%}" for b in BUCKETS)
    print(
        f"overall {rate:.0f} examples/s ({1e3 / rate:.2f} ms per example: run setup "
        f"{per['setup ms'] * len(results) / examples:.2f}, drawing the case {per['draw ms']:.2f}, "
        f"other hypothesis work {per['rest ms']:.2f}, check overhead {per['overhead ms']:.2f}, "
        f"layer calls {per['layer ms']:.2f}); "
        f"target {args.target:.0f}/s overall: {'met' if rate >= args.target else 'NOT met'}; "
        f"below {args.floor:.0f}/s: {', '.join(slow) or 'none'}"
    )
    print(f"profiled shares over all layers: {shares}")


def print_engine(engine: dict[str, float], examples: int) -> None:
    """The engine bucket by gradcheck_kit module (own time plus the NumPy time it called)."""
    modules = sorted(((k, v) for k, v in engine.items() if k not in BUCKETS), key=lambda kv: -kv[1])
    total = sum(v for _, v in modules) or 1.0
    print(
        "\nengine time by gradcheck_kit module (profiled; own time + NumPy called from it), ms per example:"
    )
    print("  " + ", ".join(f"{k} {1e3 * v / examples:.3f} ({v / total:.0%})" for k, v in modules[:14]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=200)
    parser.add_argument("--dtype", default="drawn", choices=("drawn", "float64", "float32"))
    parser.add_argument("--layers", default="", help="comma-separated substrings of the layer names")
    parser.add_argument("--top", type=int, default=20, help="functions listed by cumulative time")
    parser.add_argument("--target", type=float, default=500.0, help="examples/s overall")
    parser.add_argument("--floor", type=float, default=300.0, help="examples/s every layer must reach")
    args = parser.parse_args(argv)
    import reference_layers  # noqa: F401 - registers the layers

    wanted = [s for s in args.layers.split(",") if s]
    names = [s.name for s in gk.registry if not wanted or any(w in s.name for w in wanted)]
    if not names:
        parser.error(f"--layers {args.layers!r} matches no registered layer")
    report(names, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
