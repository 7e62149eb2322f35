"""What isolation costs: per entry with a warm worker pool, and the main job in-process, in one
worker and in two, side by side in one run.

    python benchmarks/isolation.py [--entries 200] [--repeats 3] [--skip-main-job]

1. Per entry: the CLI's own task (``_targets.check_entry``: a property run of one layer, its
   JSON entry, the entry read back in the parent) for a layer so cheap that almost all of the
   time is the harness: ``--entries`` times in this process, then through a warm ``WorkerPool``
   (the worker already started and the layer already imported); the difference per entry is
   what isolation costs (target: under 50 ms).
2. The main job, ``gradcheck-kit check reference_layers --backend numpy``, as a user runs it:
   ``--no-isolation``, ``--jobs 1`` and ``--jobs 2``, wall time including starting the workers
   (best of ``--repeats``); ``--jobs 2`` should come close to 2x on two cores.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gradcheck_kit._isolation.entries import Job, check_entries  # noqa: E402
from gradcheck_kit._isolation.pool import WorkerPool  # noqa: E402
from gradcheck_kit._targets import check_entry  # noqa: E402

CHEAP = ROOT / "benchmarks" / "_cheap_layer.py"
CHEAP_SOURCE = """
import numpy as np
import gradcheck_kit as gk

X = np.linspace(-1.0, 1.0, 4)
gk.register("cheap_tanh", np.tanh, lambda dy, x: (dy * (1 - np.tanh(x) ** 2),), cases=[gk.Case((X,))])
"""
OPTIONS = {"profile": "ci", "seed": 0, "mode": "projection", "timeout": 60.0, "database": False}


def _jobs(count: int) -> list[Job]:
    args = ([str(CHEAP)], "cheap_tanh", "numpy", "float64", dict(OPTIONS))
    return [Job("cheap_tanh", "numpy", "float64", args) for _ in range(count)]


def per_entry(count: int) -> tuple[float, float, float]:
    """(seconds per entry in-process, through a warm pool, the pool's first entry)."""
    jobs = _jobs(count)
    list(check_entries(jobs[:5], check_entry, pool=None, timeout=60.0))  # warm-up: imports, caches
    started = time.perf_counter()
    list(check_entries(jobs, check_entry, pool=None, timeout=60.0))
    in_process = (time.perf_counter() - started) / count
    with WorkerPool(1) as pool:
        started = time.perf_counter()
        list(check_entries(jobs[:1], check_entry, pool=pool, timeout=60.0))  # starts it, imports the layer
        first = time.perf_counter() - started
        list(check_entries(jobs[:5], check_entry, pool=pool, timeout=60.0))
        started = time.perf_counter()
        list(check_entries(jobs, check_entry, pool=pool, timeout=60.0))
        isolated = (time.perf_counter() - started) / count
    return in_process, isolated, first


def main_job(extra: list[str], repeats: int) -> float:
    """Best wall time of the main job with ``extra`` arguments."""
    command = [sys.executable, "-m", "gradcheck_kit.cli", "check", "reference_layers", "--backend", "numpy"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        done = subprocess.run([*command, *extra], cwd=ROOT, env=env, capture_output=True, text=True)
        times.append(time.perf_counter() - started)
        if done.returncode != 0:
            raise SystemExit(f"the main job failed ({' '.join(extra)}): {done.stderr[-2000:]}")
    return min(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=200, help="entries of the cheap layer per way")
    parser.add_argument("--repeats", type=int, default=3, help="runs of the main job per way (best taken)")
    parser.add_argument("--skip-main-job", action="store_true")
    args = parser.parse_args(argv)
    CHEAP.write_text(CHEAP_SOURCE)
    try:
        in_process, isolated, first = per_entry(args.entries)
    finally:
        CHEAP.unlink(missing_ok=True)
    cost = 1e3 * (isolated - in_process)
    print(f"per entry ({args.entries} entries of a cheap layer, warm pool of 1 worker):")
    print(f"  {'in-process':>12} {'isolated':>10} {'cost':>8}   first entry (start + import)")
    print(
        f"  {1e3 * in_process:10.2f} ms {1e3 * isolated:7.2f} ms {cost:5.2f} ms   {first:.2f} s"
        f"   {'ok' if cost < 50 else 'OVER'} (target < 50 ms)"
    )
    if args.skip_main_job:
        return 0
    ways = {"--no-isolation": ["--no-isolation"], "--jobs 1": [], "--jobs 2": ["--jobs", "2"]}
    seconds = {name: main_job(extra, args.repeats) for name, extra in ways.items()}
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(
        f"main job: gradcheck-kit check reference_layers --backend numpy "
        f"(best of {args.repeats}, {cores} cores)"
    )
    print("  " + " ".join(f"{name:>15}" for name in seconds))
    print("  " + " ".join(f"{value:13.2f} s" for value in seconds.values()))
    print(
        f"  --jobs 2 speed-up over --jobs 1: {seconds['--jobs 1'] / seconds['--jobs 2']:.2f}x; "
        f"isolation (--jobs 1) over --no-isolation: {seconds['--jobs 1'] - seconds['--no-isolation']:+.2f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
