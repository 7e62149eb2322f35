"""What every part of a check beyond the first-order gradient starts from (``Context``), and
how its cost is measured."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .._engine.calls import LayerCalls, Observed
from .._engine.evaluation import Evaluation
from .._engine.plan import Plan
from .._result import SKIPPED, CheckPart

FIRST_ORDER_FAILED = "not checked: the first-order gradient failed"


@dataclass
class Context:
    """What the parts start from: the plan, its calls, what the contract stages observed, where
    finite differences ran, and whether the first-order check passed."""

    plan: Plan
    calls: LayerCalls
    observed: Observed
    evaluation: Evaluation | None
    first_order_passed: bool


def offered(context: Context, name: str) -> Callable[..., Any]:
    """The layer's Extras callable ``name`` (a part runs only where the layer offers it)."""
    fn = getattr(context.plan.extras, name, None)
    if not callable(fn):
        raise RuntimeError(f"the layer offers no {name}")  # a part's applies() rules this out
    return fn


def skipped(name: str, why: str) -> CheckPart:
    return CheckPart(name, SKIPPED, why)


def measured(calls: LayerCalls, run: Callable[[], CheckPart]) -> CheckPart:
    """``run()``'s part with its cost: the calls it added to ``calls.counter`` and its seconds."""
    before, started = Counter(calls.counter), time.perf_counter()
    part = run()
    part.calls = {k: v for k, v in (calls.counter - before).items() if v}
    part.seconds = time.perf_counter() - started
    return part
