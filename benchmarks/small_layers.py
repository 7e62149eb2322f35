"""Where gradcheck-kit is slower than torch's fast gradcheck on the small layers courses assign,
measured side by side in one run, float64, on NumPy.

Every layer is a correct specimen of the realistic zoo (``tests/support/realistic``): CS231n
cache-style functions and mytorch-style classes at the sizes students use. For each, in turns
(the order rotating every repeat, so none always pays cold caches), best and median of N:

- ``gk auto`` / ``gk proj``: ``specimens.run(specimen, mode=...)``, the zoo's one driver, which
  checks the specimen exactly as a user would (adapter, weight discovery, ``gk.check``), with
  the layer calls the check made (``result.calls``: forward/backward);
- ``torch fast`` / ``torch slow``: ``torch.autograd.gradcheck(fast_mode=True / False)`` on the
  same (forward, backward) pair and inputs, wrapped in a ``torch.autograd.Function`` (forward
  converts the tensors to NumPy float64 and back, backward calls the layer's backward), with
  its pass/fail and the layer calls it made;
- ``fwd+bwd``: one forward and one backward of that pair (the unit). Cache-style backward re-runs
  forward to rebuild its cache, and class-style calls run on a copy of the layer object, in every
  contender alike.

Cells are "best/median" in ms; the ratios are of bests and of medians.

    python benchmarks/small_layers.py [--repeats 5] [--layers conv,maxpool]
    python benchmarks/small_layers.py --profile cs231n-affine [--mode projection] [--checks 50]

``--profile`` cProfiles that many checks of one layer instead and prints the gradcheck_kit
functions by cumulative time, with their call counts per check.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

# tests.support.realistic, and this checkout's package, not whichever one an editable install points at
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from check_cost import interleaved  # the sibling benchmark: runs in turns, the order rotating

import gradcheck_kit as gk
from tests.support.realistic.specimens import RealSpecimen, by_name, run

# The correct specimens of the layers courses assign: affine, relu, conv (naive, stride/pad),
# max pool, batch norm, layer norm, softmax loss; cache style first, then class style.
LAYERS = (
    "cs231n-affine",
    "cs231n-relu",
    "cs231n-conv-naive",
    "cs231n-conv-naive-stride1",
    "cs231n-maxpool-mask-no-ties",
    "cs231n-maxpool-argmax-ties",
    "cs231n-batchnorm",
    "cs231n-spatial-batchnorm",
    "cs231n-layernorm",
    "cs231n-softmax-loss",
    "mytorch-linear",
    "mytorch-relu",
    "mytorch-conv1d-strided-member",
    "mytorch-conv2d-strided-padded-member",
    "mytorch-maxpool2d-strided-member",
    "mytorch-batchnorm1d-train",
)
UNIT_CALLS = 20  # fwd+bwd pairs per timed unit call: one alone is too short for perf_counter


@dataclass
class Subject:
    """What ``run`` hands ``gk.check`` for one specimen: the pair, inputs and params."""

    specimen: RealSpecimen
    forward: Callable[..., Any]
    backward: Callable[..., Any]
    inputs: tuple[Any, ...]
    params: dict[str, Any]

    @property
    def elements(self) -> int:
        return sum(int(np.size(x)) for x in self.inputs if _floating(x))


@dataclass
class Outcomes:
    """The last calls and every verdict a contender produced while it was timed."""

    calls: dict[str, int] = field(default_factory=dict)
    verdicts: list[bool] = field(default_factory=list)

    def record(self, passed: bool, calls: dict[str, int]) -> None:
        self.verdicts.append(passed)
        self.calls = dict(calls)

    def verdict(self) -> str:
        failed, total = len(self.verdicts) - sum(self.verdicts), len(self.verdicts)
        return f"FAIL {failed}/{total}" if failed else "pass"

    def call_cell(self) -> str:
        return f"{self.calls.get('forward', 0)}/{self.calls.get('backward', 0)}"


def _floating(x: Any) -> bool:
    return isinstance(x, np.ndarray) and np.issubdtype(x.dtype, np.floating)


def subject(specimen: RealSpecimen) -> Subject:
    """Captured by standing in for ``gk.check`` during one ``run``: the torch wrapper and the
    unit then get exactly the pair the gk timings check (the same adapter, the same discovered
    weights), however ``run`` builds it now or later."""
    captured: dict[str, Any] = {}

    def capture(forward: Any, backward: Any, inputs: Any, params: Any = None, **options: Any) -> None:
        captured.update(forward=forward, backward=backward, inputs=tuple(inputs), params=dict(params or {}))

    original = gk.check
    gk.check = capture  # type: ignore[assignment]
    try:
        run(specimen, dtype="float64", seed=0)
    finally:
        gk.check = original  # type: ignore[assignment]
    if not captured:
        raise RuntimeError(f"{specimen.name}: run() never called gk.check")
    return Subject(specimen, **captured)


# -- the contenders -----------------------------------------------------------------------------


def gk_contender(specimen: RealSpecimen, mode: str, outcomes: Outcomes) -> Callable[[], None]:
    def check() -> None:
        result = run(specimen, dtype="float64", seed=0, mode=mode)
        outcomes.record(result.passed, result.calls)

    return check


def torch_function(subj: Subject, counts: dict[str, int]) -> Callable[..., Any]:
    """The layer as torch sees a custom op: NumPy float64 in, the layer's own backward out."""
    import torch

    forward, backward, params = subj.forward, subj.backward, subj.params

    def arrays(tensors: tuple[Any, ...]) -> list[Any]:
        return [t.detach().numpy() for t in tensors]

    def tensor(a: Any) -> Any:
        return torch.from_numpy(np.array(a, dtype=np.float64))  # a copy: the layer may reuse buffers

    class Layer(torch.autograd.Function):
        @staticmethod
        def forward(ctx: Any, *tensors: Any) -> Any:
            ctx.save_for_backward(*tensors)
            counts["forward"] += 1
            return tensor(forward(*arrays(tensors), **params))

        @staticmethod
        def backward(ctx: Any, grad: Any) -> Any:
            counts["backward"] += 1
            grads = backward(grad.detach().numpy(), *arrays(ctx.saved_tensors), **params)
            grads = grads if isinstance(grads, (tuple, list)) else (grads,)
            return tuple(None if g is None else tensor(g) for g in grads)

    return Layer.apply


def torch_inputs(subj: Subject) -> tuple[Any, ...]:
    import torch

    return tuple(
        torch.tensor(x, dtype=torch.float64, requires_grad=True) if _floating(x) else torch.as_tensor(x)
        for x in subj.inputs
    )


def torch_contender(subj: Subject, fast: bool, outcomes: Outcomes) -> Callable[[], None]:
    import torch
    from torch.autograd.gradcheck import GradcheckError

    tensors = torch_inputs(subj)

    def check() -> None:
        counts = {"forward": 0, "backward": 0}
        fn = torch_function(subj, counts)
        try:
            passed = bool(torch.autograd.gradcheck(fn, tensors, fast_mode=fast))
        except GradcheckError:  # a verdict, not a crash: recorded as a failure
            passed = False
        outcomes.record(passed, counts)

    return check


def unit_contender(subj: Subject) -> Callable[[], None]:
    forward, backward, inputs, params = subj.forward, subj.backward, subj.inputs, subj.params
    dy = np.random.default_rng(1).standard_normal(np.shape(forward(*inputs, **params)))

    def forward_backward() -> None:
        for _ in range(UNIT_CALLS):
            forward(*inputs, **params)
            backward(dy, *inputs, **params)

    return forward_backward


def in_layer(subj: Subject, mode: str) -> float:
    """The share of one check's time spent inside the pair's calls (timed around each call; for
    class-style layers that includes the adapter's copy of the layer object): the rest is the
    check's own overhead."""
    spent = [0.0]

    def timed(fn: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[0] += time.perf_counter() - start

        return call

    start = time.perf_counter()
    gk.check(timed(subj.forward), timed(subj.backward), subj.inputs, subj.params, seed=0, mode=mode)
    return spent[0] / (time.perf_counter() - start)


def measure(specimen: RealSpecimen, repeats: int) -> dict[str, Any]:
    subj = subject(specimen)
    outcomes = {name: Outcomes() for name in ("gk auto", "gk proj", "torch fast", "torch slow")}
    contenders = {
        "gk auto": gk_contender(specimen, "auto", outcomes["gk auto"]),
        "gk proj": gk_contender(specimen, "projection", outcomes["gk proj"]),
        "torch fast": torch_contender(subj, True, outcomes["torch fast"]),
        "torch slow": torch_contender(subj, False, outcomes["torch slow"]),
        "fwd+bwd": unit_contender(subj),
    }
    times = {name: 1e3 * t for name, t in interleaved(contenders, repeats).items()}
    times["fwd+bwd"] = times["fwd+bwd"] / UNIT_CALLS
    # the median of 3: a first check on a new code path (ties, kinks) can pay one-off costs
    shares = {
        mode: statistics.median(in_layer(subj, mode) for _ in range(3)) for mode in ("auto", "projection")
    }
    return {"subject": subj, "ms": times, "outcomes": outcomes, "in layer": shares}


# -- the table ----------------------------------------------------------------------------------

COLUMNS = (
    ("layer", 36),
    ("style", 5),
    ("elems", 5),
    ("fwd+bwd ms", 13),
    ("gk auto ms", 13),
    ("calls", 7),
    ("layer%", 6),
    ("gk proj ms", 13),
    ("calls", 6),
    ("layer%", 6),
    ("torch fast", 13),
    ("calls", 6),
    ("verdict", 7),
    ("torch slow", 13),
    ("verdict", 7),
    ("auto/fast", 11),
    ("proj/fast", 11),
)


def _ms(value: np.ndarray) -> str:
    return "/".join(f"{v:.3f}" if v < 1 else f"{v:.3g}" for v in value)


def _line(cells: list[str]) -> str:
    return " ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, (_, w)) in enumerate(zip(cells, COLUMNS)))


def row(measured: dict[str, Any]) -> str:
    subj, ms, out = measured["subject"], measured["ms"], measured["outcomes"]
    style = {"cache": "cache", "class": "class"}.get(subj.specimen.style, subj.specimen.style[:5])
    fast = ms["torch fast"]
    return _line(
        [
            subj.specimen.name,
            style,
            str(subj.elements),
            _ms(ms["fwd+bwd"]),
            _ms(ms["gk auto"]),
            out["gk auto"].call_cell(),
            f"{measured['in layer']['auto']:.0%}",
            _ms(ms["gk proj"]),
            out["gk proj"].call_cell(),
            f"{measured['in layer']['projection']:.0%}",
            _ms(fast),
            out["torch fast"].call_cell(),
            out["torch fast"].verdict(),
            _ms(ms["torch slow"]),
            out["torch slow"].verdict(),
            f"{ms['gk auto'][0] / fast[0]:.1f}/{ms['gk auto'][1] / fast[1]:.1f}",
            f"{ms['gk proj'][0] / fast[0]:.1f}/{ms['gk proj'][1] / fast[1]:.1f}",
        ]
    )


def summary(rows: list[dict[str, Any]]) -> str:
    """Medians over the layers of the best times, and of the per-layer ratios of bests."""

    def median(key: str) -> float:
        return statistics.median(r["ms"][key][0] for r in rows)

    def ratio(key: str) -> float:
        return statistics.median(r["ms"][key][0] / r["ms"]["torch fast"][0] for r in rows)

    auto, proj, fast, slow = (median(k) for k in ("gk auto", "gk proj", "torch fast", "torch slow"))
    return (
        f"median over {len(rows)} layers (best times): gk auto {auto:.2f} ms, gk projection {proj:.2f} ms, "
        f"torch fast {fast:.2f} ms, torch slow {slow:.2f} ms; gk auto / torch fast = {auto / fast:.1f}x "
        f"(median per-layer ratio {ratio('gk auto'):.1f}x), gk projection / torch fast = {proj / fast:.1f}x "
        f"(median per-layer ratio {ratio('gk proj'):.1f}x)"
    )


def table(names: list[str], repeats: int) -> None:
    print(f"small layers, float64, NumPy, gradcheck_kit from {Path(gk.__file__).parent};")
    print(f"cells best/median ms of {repeats} interleaved repeats;")
    print("calls forward/backward per check; layer%: share of a check's time inside the layer's calls;")
    print("ratios of bests/of medians")
    print(_line([c for c, _ in COLUMNS]))
    rows = []
    for name in names:
        rows.append(measure(by_name(name), repeats))
        print(row(rows[-1]), flush=True)
    print(summary(rows))


# -- the profile of one layer's checks ----------------------------------------------------------


def profile(name: str, mode: str, checks: int, top: int = 30) -> str:
    """cProfile ``checks`` checks of one layer; the gradcheck_kit functions by cumulative time,
    each with its calls per check (cProfile's own overhead inflates Python-heavy code)."""
    specimen = by_name(name)
    run(specimen, dtype="float64", seed=0, mode=mode)  # warm-up: imports, first-call caches
    profiler = cProfile.Profile()
    started = time.perf_counter()
    profiler.enable()
    for _ in range(checks):
        result = run(specimen, dtype="float64", seed=0, mode=mode)
    profiler.disable()
    elapsed = time.perf_counter() - started
    stats = pstats.Stats(profiler)
    lines = [
        f"{name}, mode={mode}: {checks} checks, {1e3 * elapsed / checks:.2f} ms per check under cProfile; "
        f"calls per check {result.calls}",
        f"{'cum ms/check':>12} {'self ms/check':>13} {'calls/check':>11}  function",
    ]
    entries = [(key, value) for key, value in stats.stats.items() if "gradcheck_kit" in key[0]]  # type: ignore[attr-defined]
    entries.sort(key=lambda kv: -kv[1][3])
    for (filename, lineno, function), (_, ncalls, tottime, cumtime, _) in entries[:top]:
        where = f"{filename.split('gradcheck_kit/')[-1]}:{lineno} {function}"
        lines.append(
            f"{1e3 * cumtime / checks:12.3f} {1e3 * tottime / checks:13.3f} {ncalls / checks:11.1f}  {where}"
        )
    return "\n".join([*lines, "", *own_time(stats.stats, checks, top)])  # type: ignore[attr-defined]


def own_time(stats: dict[Any, Any], checks: int, top: int) -> list[str]:
    """gradcheck_kit functions by own time plus the NumPy/builtin time they call (charged as in
    ``property_profile.attribute``); "layer" is the specimen's own code, the zoo's."""
    from property_profile import attribute  # the sibling benchmark's call-graph attribution

    def label(key: Any) -> str | None:
        path = key[0].replace("\\", "/")
        if "/gradcheck_kit/" in path:
            return f"{path.split('gradcheck_kit/')[-1]}:{key[1]} {key[2]}"
        return "layer" if "/tests/support/" in path else ("benchmark" if "/benchmarks/" in path else None)

    spent = sorted(attribute(stats, label).items(), key=lambda kv: -kv[1])
    lines = [f"{'ms/check':>8}  by own time + the NumPy/builtin time called from it"]
    return lines + [f"{1e3 * v / checks:8.3f}  {k}" for k, v in spent[:top]]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--layers", default="", help="comma-separated substrings of the layer names")
    parser.add_argument("--profile", metavar="LAYER", help="cProfile checks of one specimen instead")
    parser.add_argument("--mode", default="auto", choices=("auto", "projection", "elementwise"))
    parser.add_argument("--checks", type=int, default=30, help="checks to profile with --profile")
    args = parser.parse_args(argv)
    if args.profile:
        print(profile(args.profile, args.mode, args.checks))
        return 0
    wanted = [s for s in args.layers.split(",") if s]
    names = [n for n in LAYERS if not wanted or any(w in n for w in wanted)]
    if not names:
        parser.error(f"--layers {args.layers!r} matches none of: {', '.join(LAYERS)}")
    table(names, args.repeats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
