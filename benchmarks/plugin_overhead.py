"""What the pytest plugin and the CLI's main job cost beyond the checks they run, side by side in
one run, every number from fresh subprocesses (best and median of ``--repeats``, in turns, the
order rotating every round).

    python benchmarks/plugin_overhead.py [--repeats 5] [--tests 200] [--items 60]
                                         [--skip-cli] [--cli-repeats 1]

1. Import: wall time of ``python -c "import pytest"``, ``"import gradcheck_kit"`` and ``"import
   gradcheck_kit.pytest_plugin"`` (and of ``"pass"``), the import alone by ``python -X
   importtime`` (the plugin's: with pytest imported first), and which of NumPy, Hypothesis,
   torch, rich and array-api-compat each leaves in ``sys.modules`` (the plugin module should
   load none; where it does, the import chain that pulls it in is printed).
2. A project that does not use the plugin: ``--tests`` trivial tests, no gradcheck configuration,
   ``python -m pytest -q -p no:cacheprovider`` with the plugin auto-loaded (entry point
   ``pytest11``), with ``-p no:gradcheck_kit`` and with ``-p no:gradcheck_kit_ini`` as well (as if
   gradcheck-kit were not installed); the last test records which heavy modules the run loaded.
   One more plugin-on run under cProfile gives the time spent in the plugin's hooks (its share
   of the run, which the noise of whole-run wall times hides).
3. Per gradcheck item: a project registering ``--items`` cheap NumPy element-wise layers, one
   fixed float64 case each (one example per item), run with the default isolation (one worker
   process) and ``--gradcheck-isolation=off``, against the same checks called directly in one
   process: ``gk.check`` on each case, and ``gk.property_check`` (what an item runs). ``item``
   is the median item (its whole ``pytest_runtest_protocol``), ``first item`` the first (with
   isolation it starts the worker, which imports the layers), ``entry`` what the plugin timed
   the check itself at; ``before items``/``after items`` the session up to the first item
   (interpreter, pytest, plugins, collection) and after the last (summary, exit). Overhead per
   item is ``item`` minus ``gk.check`` (and minus ``gk.property_check``); ``fixed`` is before +
   after items; ``wall-checks`` the session's wall time minus the sum of the direct checks.
4. The main job, ``gradcheck-kit check reference_layers --backend numpy`` from the repository
   root: default, ``--jobs 1``, ``--jobs auto`` and ``--no-isolation`` (``--cli-repeats`` runs of
   each, ~10-20 s a run; ``--skip-cli`` skips it), with its entries, so per-entry costs.

Differences are of the bests and of the medians, not per-round differences.
"""

from __future__ import annotations

import argparse
import json
import os
import pstats
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

# this checkout's package, here and in every subprocess, not whichever one an editable install points at
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import gradcheck_kit as gk  # noqa: E402

HEAVY = ("numpy", "hypothesis", "torch", "rich", "array_api_compat")
PYTEST = (sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider")
MODULES_ENV = "PLUGIN_OVERHEAD_OUT"  # where a project's probe (test or conftest) writes its JSON


def environment() -> dict[str, str]:
    """This checkout first on ``PYTHONPATH``; nothing that would change what pytest loads."""
    env = {
        k: v for k, v in os.environ.items() if k not in ("PYTEST_ADDOPTS", "PYTEST_DISABLE_PLUGIN_AUTOLOAD")
    }
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    return env


ENV = environment()


# -- running and summarizing --------------------------------------------------------------------


def execute(command: Sequence[str], cwd: Path, **env: str) -> tuple[float, str]:
    """(wall seconds, output) of a subprocess; a failure stops the benchmark with its output."""
    started = time.perf_counter()
    done = subprocess.run(list(command), cwd=cwd, env={**ENV, **env}, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        tail = (done.stdout + done.stderr)[-3000:]
        raise SystemExit(f"{' '.join(command)} (in {cwd}) exited {done.returncode}:\n{tail}")
    return seconds, done.stdout + done.stderr


def rounds(runs: dict[str, Callable[[], Any]], repeats: int) -> dict[str, list[Any]]:
    """Each run ``repeats`` times in turns, the order rotating every round, so that none always
    follows the same neighbour's disk and cache traffic."""
    names = list(runs)
    results: dict[str, list[Any]] = {name: [] for name in names}
    for round_ in range(repeats):
        for name in names[round_ % len(names) :] + names[: round_ % len(names)]:
            results[name].append(runs[name]())
    return results


def best_median(values: Sequence[float]) -> tuple[float, float]:
    return min(values), statistics.median(values)


def cell(values: Sequence[float], scale: float = 1.0, width: int = 13) -> str:
    """``best/median`` of ``values`` times ``scale``."""
    best, median = best_median(values)
    return "/".join(_number(scale * v) for v in (best, median)).rjust(width)


def delta(values: Sequence[float], base: Sequence[float], scale: float = 1.0, width: int = 13) -> str:
    """``best - best/median - median``: differences of the summaries (the best of per-round
    differences would be the luckiest noise)."""
    (best, median), (base_best, base_median) = best_median(values), best_median(base)
    return "/".join(_number(scale * v) for v in (best - base_best, median - base_median)).rjust(width)


def _number(x: float) -> str:
    return f"{x:.0f}" if abs(x) >= 100 else f"{x:.3g}" if abs(x) >= 10 else f"{x:.2f}"


def column(results: list[dict[str, Any]], key: str) -> list[float]:
    return [r[key] for r in results]


# -- 1. import ----------------------------------------------------------------------------------

IMPORTS = {
    "python (pass)": "pass",
    "import pytest": "import pytest",
    "import gradcheck_kit": "import gradcheck_kit",
    "import gradcheck_kit.pytest_plugin": "import gradcheck_kit.pytest_plugin",
}
LOADED = (  # what the import left loaded; where gradcheck_kit would come from (not importing it)
    "import importlib.util, json, sys\n{code}\n"
    "print(json.dumps({{'modules': len(sys.modules), 'heavy': [m for m in {heavy!r} if m in sys.modules], "
    "'file': importlib.util.find_spec('gradcheck_kit').origin}}))"
)


def import_lines(code: str) -> list[tuple[int, str, int]]:
    """``python -X importtime -c code``: (nesting level, module, cumulative µs), in its order
    (each module after the modules it imported)."""
    _, output = execute([sys.executable, "-X", "importtime", "-c", code], ROOT)
    lines = []
    for line in output.splitlines():
        found = re.match(r"import time:\s+(\d+) \|\s+(\d+) \| ( *)(\S+)", line)
        if found:
            lines.append((len(found.group(3)) // 2, found.group(4), int(found.group(2))))
    return lines


def own_import_seconds(code: str, first: str) -> float:
    """Seconds of the top-level imports from the first one named ``first`` on (what ``code``
    adds beyond the interpreter's start-up and whatever it imported before)."""
    lines = import_lines(code)
    start = next(i for i, (level, name, _) in enumerate(lines) if level == 0 and name == first)
    return sum(us for level, _, us in lines[start:] if level == 0) / 1e6


def import_chain(code: str, module: str) -> list[str]:
    """The modules through which ``code`` first imported ``module``, outermost first."""
    lines = import_lines(code)
    at = next((i for i, (_, name, _) in enumerate(lines) if name == module), None)
    if at is None:
        return []
    chain, level = [module], lines[at][0]
    for depth, name, _ in lines[at + 1 :]:
        if depth < level:
            chain.append(name)
            level = depth
    return chain[::-1]


def loaded(code: str) -> dict[str, Any]:
    _, output = execute([sys.executable, "-c", LOADED.format(code=code, heavy=HEAVY)], ROOT)
    found = json.loads(output.strip().splitlines()[-1])
    if not Path(found["file"]).resolve().is_relative_to(ROOT):
        raise SystemExit(f"the subprocesses import gradcheck_kit from {found['file']}, not from {ROOT}")
    return found


def imports(repeats: int) -> None:
    walls = rounds(
        {
            name: (lambda c=code: execute([sys.executable, "-c", c], ROOT)[0])
            for name, code in IMPORTS.items()
        },
        repeats,
    )
    own = rounds(
        {
            "pytest": lambda: own_import_seconds("import pytest", "pytest"),
            "gradcheck_kit": lambda: own_import_seconds("import gradcheck_kit", "gradcheck_kit"),
            "plugin": lambda: own_import_seconds(
                "import pytest; import gradcheck_kit.pytest_plugin", "gradcheck_kit.pytest_plugin"
            ),
        },
        repeats,
    )
    print(f"1. import (fresh interpreters; ms best/median of {repeats}; -X importtime: the import alone)")
    print(f"  {'':36} {'wall ms':>13} {'minus pass':>13} {'importtime ms':>14}  modules  heavy ones loaded")
    python = walls["python (pass)"]
    importtime = {"import pytest": "pytest", "import gradcheck_kit": "gradcheck_kit"}
    for name, code in IMPORTS.items():
        after = loaded(code)
        timed = cell(own[importtime[name]], 1e3, 14) if name in importtime else ""
        print(
            f"  {name:36} {cell(walls[name], 1e3)} {delta(walls[name], python, 1e3)} {timed:>14}  "
            f"{after['modules']:7d}  {', '.join(after['heavy']) or '-'}"
        )
    beyond = delta(walls["import gradcheck_kit.pytest_plugin"], walls["import pytest"], 1e3).strip()
    print(
        f"  the plugin module beyond pytest: wall {beyond} ms, "
        f"importtime {cell(own['plugin'], 1e3).strip()} ms (gradcheck_kit + the plugin, pytest loaded first)"
    )
    import_notes()


def import_notes() -> None:
    """What the plugin module should not import but does, and its modules compiled every time."""
    heavy = loaded("import gradcheck_kit.pytest_plugin")["heavy"]
    for module in ("numpy", "hypothesis", "torch"):
        if module in heavy:
            chain = import_chain("import pytest; import gradcheck_kit.pytest_plugin", module)
            print(f"  {module} IS loaded by the plugin module: {' -> '.join(chain)}")
    stale = stale_bytecode()
    if stale:
        print(
            f"  compiled again at every import (the .pyc is missing or older than the source"
            f"{', PYTHONDONTWRITEBYTECODE is set' if os.environ.get('PYTHONDONTWRITEBYTECODE') else ''}): "
            f"{', '.join(stale)}"
        )


def stale_bytecode() -> list[str]:
    """The gradcheck_kit modules the plugin imports whose cached bytecode cannot be used."""
    import importlib.util

    import gradcheck_kit.pytest_plugin  # noqa: F401 - here, in the benchmark's own process

    stale = []
    for name, module in sorted(sys.modules.items()):
        source = getattr(module, "__file__", None) or ""
        if name.startswith("gradcheck_kit") and source.endswith(".py"):
            cached = Path(importlib.util.cache_from_source(source))
            if not cached.exists() or cached.stat().st_mtime < Path(source).stat().st_mtime:
                stale.append(name)
    return stale


# -- 2. a project that does not use the plugin --------------------------------------------------

PROBE_TEST = """
import json, os, sys


def test_zz_records_the_heavy_modules():
    with open(os.environ["{env}"], "w") as out:
        json.dump([m for m in {heavy!r} if m in sys.modules], out)
"""
PLAIN_WAYS = {
    "plugin auto-loaded": (),
    "-p no:gradcheck_kit": ("-p", "no:gradcheck_kit"),
    "both off (not installed)": ("-p", "no:gradcheck_kit", "-p", "no:gradcheck_kit_ini"),
}


def plain_project(where: Path, tests: int) -> None:
    """``tests`` tests in files of 20, the last one the probe; a pytest.ini with no gradcheck key."""
    (where / "pytest.ini").write_text("[pytest]\n")
    for start in range(0, tests - 1, 20):
        body = "".join(
            f"def test_{i}():\n    assert True\n\n\n" for i in range(start, min(start + 20, tests - 1))
        )
        (where / f"test_trivial_{start:04d}.py").write_text(body)
    (where / "test_zz_probe.py").write_text(PROBE_TEST.format(env=MODULES_ENV, heavy=HEAVY))


def plain_run(where: Path, extra: Sequence[str], tests: int) -> dict[str, Any]:
    probe = where / "heavy.json"
    seconds, output = execute([*PYTEST, *extra], where, **{MODULES_ENV: str(probe)})
    if f"{tests} passed" not in output:
        raise SystemExit(
            f"pytest {' '.join(extra)} in the plain project did not pass {tests} tests:\n{output}"
        )
    return {"wall": seconds, "heavy": json.loads(probe.read_text()), "visible": "gradcheck" in output.lower()}


def plain(repeats: int, tests: int) -> None:
    with tempfile.TemporaryDirectory(prefix="plugin-overhead-plain-") as tmp:
        where = Path(tmp)
        plain_project(where, tests)
        runs = {name: (lambda e=extra: plain_run(where, e, tests)) for name, extra in PLAIN_WAYS.items()}
        results = rounds(runs, repeats)
        hooks = profiled_hooks(where)
    base = column(results["both off (not installed)"], "wall")
    print(
        f"2. a project that does not use it: {tests} trivial tests, no gradcheck configuration, "
        f"python {' '.join(PYTEST[1:])} (best/median of {repeats})"
    )
    print(
        f"  {'':26} {'wall ms':>13} {'+ms vs off':>13} {'+ms/test':>13}  "
        "gradcheck in output  heavy modules loaded"
    )
    for name, result in results.items():
        walls = column(result, "wall")
        heavy = ", ".join(result[-1]["heavy"]) or "-"
        visible = "yes" if any(r["visible"] for r in result) else "no"
        print(
            f"  {name:26} {cell(walls, 1e3)} {delta(walls, base, 1e3)} {delta(walls, base, 1e3 / tests)}  "
            f"{visible:19}  {heavy}"
        )
    total = sum(seconds for _, seconds, _ in hooks)
    top = ", ".join(f"{name} {1e3 * seconds:.2f} ms x{calls}" for name, seconds, calls in hooks[:5])
    print(
        f"  in the plugin's hooks, one plugin-on run under cProfile (inflated; xN: calls as cProfile counts "
        f"them, a wrapper's resumptions too): {1e3 * total:.1f} ms: {top}"
    )


def profiled_hooks(where: Path) -> list[tuple[str, float, int]]:
    """(function, cumulative seconds, calls) of the gradcheck_kit functions that code outside the
    package called during one plugin-on run (pytest's hooks, mostly), largest first; module
    bodies (the import, measured in part 1) left out."""
    out = where / "run.prof"
    command = [sys.executable, "-m", "cProfile", "-o", str(out), *PYTEST[1:]]
    execute(command, where, **{MODULES_ENV: str(where / "heavy.json")})

    def ours(key: tuple[str, int, str]) -> bool:
        return "/gradcheck_kit/" in key[0].replace("\\", "/")

    found = []
    for key, (_, calls, _, cumulative, callers) in pstats.Stats(str(out)).stats.items():  # type: ignore[attr-defined]
        if ours(key) and key[2] != "<module>" and not any(ours(caller) for caller in callers):
            found.append((key[2], cumulative, calls))
    return sorted(found, key=lambda f: -f[1])


# -- 3. per gradcheck item ----------------------------------------------------------------------

LAYERS = """
import numpy as np

import gradcheck_kit as gk

X = np.linspace(-1.0, 1.0, 8).reshape(2, 4)
FUNCTIONS = {{
    "tanh": (np.tanh, lambda dy, x: (dy * (1 - np.tanh(x) ** 2),)),
    "sin": (np.sin, lambda dy, x: (dy * np.cos(x),)),
    "exp": (np.exp, lambda dy, x: (dy * np.exp(x),)),
    "square": (np.square, lambda dy, x: (2 * dy * x,)),
}}
NAMES = []
for i in range({items}):
    kind = list(FUNCTIONS)[i % len(FUNCTIONS)]
    NAMES.append(f"{{kind}}_{{i:03d}}")
    gk.register(NAMES[-1], *FUNCTIONS[kind], cases=[gk.Case((X,))])
"""
GRADCHECK_INI = """[pytest]
gradcheck_modules = ew_layers.py
gradcheck_entry_points = false
gradcheck_dtypes = float64
"""
TIMING_CONFTEST = """
import json, os, time

import pytest

ITEMS = []  # (perf_counter at the start, seconds, the seconds the plugin's entry says the check took)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item, nextitem):
    started = time.perf_counter()
    try:
        return (yield)
    finally:
        entry = getattr(item, "entry", None) or {{}}
        ITEMS.append((started, time.perf_counter() - started, entry.get("seconds")))


def pytest_unconfigure(config):
    with open(os.environ["{env}"], "w") as out:
        json.dump({{"items": ITEMS}}, out)
"""
DIRECT = """
import json, sys, time

import gradcheck_kit as gk
from gradcheck_kit.registry import registry

import ew_layers

checks, properties, examples = [], [], 0
for name in ew_layers.NAMES:
    spec = registry.get(name)
    case = spec.cases[0]
    started = time.perf_counter()
    passed = gk.check(spec.forward, spec.backward, case.inputs, case.params, mode="projection", seed=0).passed
    checks.append(time.perf_counter() - started)
    started = time.perf_counter()
    result = gk.property_check(spec, dtypes=["float64"], database=sys.argv[1], seed=0)
    properties.append(time.perf_counter() - started)
    if not (passed and result.passed):
        raise SystemExit(f"{name} failed")
    examples += result.examples
json.dump({"check": checks, "property": properties, "examples": examples}, sys.stdout)
"""
ITEM_WAYS = {"isolation on (default)": (), "isolation off": ("--gradcheck-isolation=off",)}


def gradcheck_project(where: Path, items: int) -> None:
    (where / "ew_layers.py").write_text(LAYERS.format(items=items))
    (where / "pytest.ini").write_text(GRADCHECK_INI)
    (where / "conftest.py").write_text(TIMING_CONFTEST.format(env=MODULES_ENV))
    (where / "_direct.py").write_text(DIRECT)


def items_run(where: Path, extra: Sequence[str], items: int) -> dict[str, Any]:
    """The session's wall time, split into its items, before them and after them."""
    out = where / "times.json"
    started = time.perf_counter()  # CLOCK_MONOTONIC on Linux: the same clock as the subprocess's
    seconds, output = execute([*PYTEST, *extra], where, **{MODULES_ENV: str(out)})
    ended = started + seconds
    if f"{items} passed" not in output:
        raise SystemExit(f"pytest {' '.join(extra)} did not pass {items} gradcheck items:\n{output}")
    timed = json.loads(out.read_text())["items"]
    durations = [d for _, d, _ in timed]
    return {
        "wall": seconds,
        "item": statistics.median(durations),
        "first": durations[0],
        "entry": statistics.median(e for _, _, e in timed),
        "before": timed[0][0] - started,
        "after": ended - (timed[-1][0] + timed[-1][1]),
    }


def direct_run(where: Path) -> dict[str, Any]:
    database = str(where / ".hypothesis" / "gradcheck")  # the plugin's default for this project
    seconds, output = execute([sys.executable, "_direct.py", database], where)
    found = json.loads(output)
    return {
        "wall": seconds,
        "check": statistics.median(found["check"]),
        "check sum": sum(found["check"]),
        "property": statistics.median(found["property"]),
        "property sum": sum(found["property"]),
        "examples": found["examples"],
    }


def per_item(repeats: int, items: int) -> None:
    with tempfile.TemporaryDirectory(prefix="plugin-overhead-items-") as tmp:
        where = Path(tmp)
        gradcheck_project(where, items)
        runs: dict[str, Callable[[], Any]] = {
            name: (lambda e=extra: items_run(where, e, items)) for name, extra in ITEM_WAYS.items()
        }
        runs["direct"] = lambda: direct_run(where)
        results = rounds(runs, repeats)
    direct = results.pop("direct")
    print(
        f"3. per gradcheck item: {items} NumPy element-wise layers, one fixed (2, 4) float64 case each "
        f"({direct[-1]['examples'] / items:g} example per item), python {' '.join(PYTEST[1:])}; "
        f"best/median of {repeats}"
    )
    print(
        f"  {'pytest':24} {'wall s':>13} {'wall/item ms':>13} {'item ms':>13} {'first item ms':>13} "
        f"{'entry ms':>13} {'before items s':>15} {'after items s':>14}"
    )
    for name, result in results.items():
        walls = column(result, "wall")
        print(
            f"  {name:24} {cell(walls)} {cell(walls, 1e3 / items)} {cell(column(result, 'item'), 1e3)} "
            f"{cell(column(result, 'first'), 1e3)} {cell(column(result, 'entry'), 1e3)} "
            f"{cell(column(result, 'before'), 1.0, 15)} {cell(column(result, 'after'), 1.0, 14)}"
        )
    print(
        f"  {'direct, one process':24} {'wall s':>13} {'gk.check ms':>13} {'property ms':>13} {'sums s':>13}"
    )
    check, prop, sums = column(direct, "check"), column(direct, "property"), column(direct, "check sum")
    print(
        f"  {'':24} {cell(column(direct, 'wall'))} {cell(check, 1e3)} {cell(prop, 1e3)} "
        f"{cell(sums)} (gk.check), {cell(column(direct, 'property sum')).strip()} (gk.property_check)"
    )
    print(f"  {'overhead':24} {'per item ms':>13} {'beyond prop.':>13} {'fixed s':>13} {'wall-checks s':>13}")
    for name, result in results.items():
        print(
            f"  {name:24} {delta(column(result, 'item'), check, 1e3)} "
            f"{delta(column(result, 'item'), prop, 1e3)} "
            f"{cell([r['before'] + r['after'] for r in result])} {delta(column(result, 'wall'), sums)}"
        )


# -- 4. the CLI's main job ----------------------------------------------------------------------

MAIN_JOB = (sys.executable, "-m", "gradcheck_kit.cli", "check", "reference_layers", "--backend", "numpy")
CLI_WAYS = {
    "default": (),
    "--jobs 1": ("--jobs", "1"),
    "--jobs auto": ("--jobs", "auto"),
    "--no-isolation": ("--no-isolation",),
}


def cli_run(extra: Sequence[str]) -> dict[str, Any]:
    seconds, output = execute([*MAIN_JOB, *extra], ROOT)
    lines = output.splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("layer "))
    entries = next((i for i, line in enumerate(lines[head + 1 :]) if not line.strip()), len(lines) - head - 1)
    summary = re.search(r"^(?:PASSED|FAILED): .* in ([0-9.]+) s", output, re.MULTILINE)
    return {
        "wall": seconds,
        "entries": entries,
        "reported": float(summary.group(1)) if summary else float("nan"),
    }


def main_job(repeats: int) -> None:
    results = rounds({name: (lambda e=extra: cli_run(e)) for name, extra in CLI_WAYS.items()}, repeats)
    entries = results["default"][-1]["entries"]
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(
        f"4. the main job: gradcheck-kit check reference_layers --backend numpy, {entries} entries, "
        f"{cores} cores (s best/median of {repeats})"
    )
    own = "its 'in ... s'"  # the time the CLI's own summary line reports
    print(f"  {'':16} {'wall s':>13} {own:>15} {'ms/entry':>13} {'+ms/entry vs --no-isolation':>28}")
    base = column(results["--no-isolation"], "wall")
    for name, result in results.items():
        walls = column(result, "wall")
        print(
            f"  {name:16} {cell(walls)} {cell(column(result, 'reported'), 1.0, 15)} "
            f"{cell(walls, 1e3 / entries)} {delta(walls, base, 1e3 / entries, 28)}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="runs of each way in parts 1-3")
    parser.add_argument("--tests", type=int, default=200, help="trivial tests of the project in part 2")
    parser.add_argument("--items", type=int, default=60, help="gradcheck items (layers) in part 3")
    parser.add_argument("--cli-repeats", type=int, default=1, help="runs of each way of the main job")
    parser.add_argument("--skip-cli", action="store_true", help="skip part 4 (the main job)")
    args = parser.parse_args(argv)
    if min(args.repeats, args.cli_repeats, args.items) < 1 or args.tests < 2:
        parser.error("--repeats, --cli-repeats and --items must be >= 1, --tests >= 2")
    print(f"gradcheck_kit from {Path(gk.__file__).parent}, python {sys.version.split()[0]}")
    imports(args.repeats)
    plain(args.repeats, args.tests)
    per_item(args.repeats, args.items)
    if not args.skip_cli:
        main_job(args.cli_repeats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
