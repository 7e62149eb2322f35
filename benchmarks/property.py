"""Property-testing throughput: examples per second of ``gk.property_check`` for every registered
reference layer on NumPy, measured side by side in one run, with the share of the time spent
inside ``gk.check`` (the rest is hypothesis drawing and building the cases), and the ceiling:
the examples/s of the same hypothesis run over the same cases strategy with an empty test body
(hypothesis' own per-example work plus drawing the case; no check can make a run faster).

    python benchmarks/property.py [--examples 200] [--dtype float64] [--reference]
                                  [--hotspots conv2d] [--target 200]

``--reference`` adds each layer's torch reference to every check (off in property tests by
default); ``--hotspots LAYER`` prints a cProfile of one property run of that layer by function.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import time
from pathlib import Path

from hypothesis import Phase, given, settings
from hypothesis import seed as hypothesis_seed

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout, not an installed one

import gradcheck_kit as gk


def measure(name: str, examples: int, dtype: str, reference: bool) -> gk.PropertyResult:
    options = {"dtypes": (dtype,), "database": False, "reference": reference}
    gk.property_check(name, max_examples=5, **options)  # warm-up: imports, first-call caches
    return gk.property_check(name, max_examples=examples, **options)


def ceiling(name: str, examples: int, dtype: str) -> float:
    """Examples/s of hypothesis alone: the layer's cases drawn, nothing checked (the same
    settings as ``property_check``'s: no deadline, no database, generation only)."""
    strategy = gk.layer_cases(name, dtypes=(dtype,))
    drawn = []
    quiet = settings(max_examples=examples, database=None, deadline=None, phases=[Phase.generate])

    def empty(case: gk.Case) -> None:
        drawn.append(case)

    test = quiet(hypothesis_seed(0)(given(case=strategy)(empty)))
    test()  # warm-up
    drawn.clear()
    start = time.perf_counter()
    test()
    return len(drawn) / (time.perf_counter() - start)


def row(result: gk.PropertyResult, target: float, alone: float) -> str:
    rate = result.examples_per_second
    per_check = 1e3 * result.check_seconds / max(result.examples, 1)
    share = result.check_seconds / result.seconds if result.seconds else 0.0
    verdict = "ok" if rate >= target else "SLOW"
    passed = "passed" if result.passed else "FAILED"
    return (
        f"{result.layer:28} {result.examples:8} {result.seconds:8.2f} {rate:10.0f} {per_check:10.2f} "
        f"{share:8.0%} {alone:10.0f}  {verdict:4}  {passed}"
    )


def hotspots(name: str, examples: int, dtype: str, reference: bool, top: int = 25) -> str:
    profiler = cProfile.Profile()
    profiler.enable()
    measure(name, examples, dtype, reference)
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(top)
    return out.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=200)
    parser.add_argument("--dtype", default="float64", choices=("float64", "float32"))
    parser.add_argument("--reference", action="store_true", help="add the torch reference to every check")
    parser.add_argument("--target", type=float, default=200.0, help="examples/s a small layer must reach")
    parser.add_argument("--hotspots", metavar="LAYER", help="cProfile one layer's property run instead")
    args = parser.parse_args(argv)
    import reference_layers  # noqa: F401 - registers the layers

    if args.hotspots:
        print(hotspots(args.hotspots, args.examples, args.dtype, args.reference))
        return 0
    reference = "with" if args.reference else "without"
    setup = f"{args.dtype}, {args.examples} examples per layer, {reference} torch reference"
    print(f"property_check on numpy, {setup}")
    header = (
        f"{'layer':28} {'examples':>8} {'seconds':>8} {'examples/s':>10} {'check ms':>10} {'in check':>8}"
        f" {'hyp. alone':>10}"
    )
    print(header + "  target")
    results = [measure(spec.name, args.examples, args.dtype, args.reference) for spec in gk.registry]
    alone = [ceiling(spec.name, args.examples, args.dtype) for spec in gk.registry]
    for result, rate in zip(results, alone):
        print(row(result, args.target, rate))
    total = sum(r.examples for r in results) / sum(r.seconds for r in results)
    cap = len(alone) / sum(1 / rate for rate in alone)  # the same examples per layer: harmonic mean
    slow = [r.layer for r in results if r.examples_per_second < args.target]
    print(f"overall {total:.0f} examples/s; below {args.target:.0f}/s: {', '.join(slow) or 'none'}")
    print(f"hypothesis alone (empty test body, same strategies): {cap:.0f} examples/s overall")
    return 0


if __name__ == "__main__":
    sys.exit(main())
