"""The JSON report checked field by field before anything reads it (``gradcheck-kit show``,
``Run.from_dict``): every known field of the run, its entries, their property and check results,
inputs and findings must have its type and range; the first that does not is named in a
``gk.InvalidArgument`` (``report.entries[0].result.check.inputs[0].shape[1]=-2 must be an int
>= 0``). Fields may be missing (older or hand-written files), unknown ones are kept, and no
input can reach a recursion limit: nesting is measured without recursion first.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import InvalidArgument

SCHEMA = 1
MAX_DEPTH = 48  # the deepest report nests ~14 levels, plus an element map's dimensions


class Rule:
    """A test of one JSON value and what it accepts, in words."""

    def __init__(self, accepted: str, test: Callable[[Any], bool]) -> None:
        self.accepted, self.test = accepted, test

    def check(self, value: Any, where: str) -> None:
        if not self.test(value):
            raise InvalidArgument(self.refusal(value, where))

    def refusal(self, value: Any, where: str) -> str:
        return f"{where}={short(value)} must be {self.accepted}"


class OneOf(Rule):
    def __init__(self, *values: str) -> None:
        super().__init__(f"one of {', '.join(values)}", lambda v: isinstance(v, str) and v in values)
        self.values = values

    def refusal(self, value: Any, where: str) -> str:
        return f"{where}={short(value)} is unknown; accepted: {', '.join(self.values)}"


class Nullable(Rule):
    def __init__(self, rule: Rule) -> None:
        super().__init__(f"{rule.accepted} or null", lambda v: True)
        self.rule = rule

    def check(self, value: Any, where: str) -> None:
        if value is None:
            return
        if not self.rule.test(value):  # the value itself; what it holds is the rule's to name
            raise InvalidArgument(f"{where}={short(value)} must be {self.accepted}")
        self.rule.check(value, where)


class ListOf(Rule):
    def __init__(self, rule: Rule, accepted: str | None = None) -> None:
        super().__init__(accepted or f"a list of ({rule.accepted})", lambda v: isinstance(v, list))
        self.rule = rule

    def check(self, value: Any, where: str) -> None:
        super().check(value, where)
        for k, item in enumerate(value):
            self.rule.check(item, f"{where}[{k}]")


class Obj(Rule):
    """A JSON object whose known ``fields`` (when present) follow their rules."""

    def __init__(self, fields: dict[str, Rule], name: str = "a JSON object") -> None:
        super().__init__(name, lambda v: isinstance(v, dict))
        self.fields = fields

    def refusal(self, value: Any, where: str) -> str:
        return f"{where} must be {self.accepted}, got {type(value).__name__}: {short(value)}"

    def check(self, value: Any, where: str) -> None:
        super().check(value, where)
        for key, rule in self.fields.items():
            if key in value:
                rule.check(value[key], f"{where}.{key}")


class Grid(Rule):
    """A nested list (an element map) whose leaves pass ``leaf``."""

    def __init__(self, leaf: Rule) -> None:
        super().__init__(f"nested lists of ({leaf.accepted})", lambda v: isinstance(v, list))
        self.leaf = leaf

    def check(self, value: Any, where: str) -> None:
        stack = [(value, where)]
        while stack:
            item, at = stack.pop()
            if isinstance(item, list):
                stack.extend((v, f"{at}[{k}]") for k, v in enumerate(item))
            elif at == where:
                super().check(item, at)
            else:
                self.leaf.check(item, at)


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _count(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


STR = Rule("a string", lambda v: isinstance(v, str))
BOOL = Rule("true or false", lambda v: isinstance(v, bool))
NUMBER = Rule("a finite number", _number)
SIZE = Rule("a number >= 0", lambda v: _number(v) and v >= 0)
COUNT = Rule("an int >= 0", _count)
ANY_OBJECT = Obj({})
OPT_STR, OPT_NUMBER, OPT_SIZE, OPT_COUNT = (Nullable(r) for r in (STR, NUMBER, SIZE, COUNT))
STRINGS, INDEX = ListOf(STR, "a list of strings"), ListOf(COUNT, "a list of ints >= 0")
one_of = OneOf


TAYLOR = Obj(
    {
        "steps": ListOf(OPT_NUMBER),
        "residuals": ListOf(OPT_NUMBER),
        "orders": Nullable(ListOf(OPT_NUMBER)),
        "order": OPT_NUMBER,
    }
)
EVIDENCE = Obj({"taylor": Nullable(TAYLOR), "patterns": ListOf(ANY_OBJECT), "where": OPT_STR})
INPUT_REPORT = Obj(
    {
        "name": STR,
        "index": COUNT,
        "shape": INDEX,
        "dtype": STR,
        "mode": STR,
        "passed": BOOL,
        "checked": COUNT,
        "max_abs_err": OPT_SIZE,
        "max_rel_err": OPT_SIZE,
        "worst_index": Nullable(INDEX),
        "analytic": OPT_NUMBER,
        "numeric": OPT_NUMBER,
        "tolerance": OPT_NUMBER,
        "kinks": COUNT,
        "failing": COUNT,
        "cause": OPT_STR,
        "note": OPT_STR,
        "taylor_orders": Nullable(ListOf(OPT_NUMBER)),
        "evidence": EVIDENCE,
        "error_map": Grid(OPT_NUMBER),
        "failing_map": Grid(BOOL),
    }
)
FINDING = Obj(
    {
        "kind": STR,
        "severity": one_of("error", "warning"),
        "message": STR,
        "input": OPT_STR,
        "where": Nullable(INDEX),
        "details": ANY_OBJECT,
        "traceback": OPT_STR,
    }
)
CHECK = Obj(
    {
        "schema": COUNT,
        "layer": STR,
        "backend": STR,
        "case": STR,
        "seed": COUNT,
        "passed": BOOL,
        "cause": OPT_STR,
        "max_abs_err": OPT_SIZE,
        "max_rel_err": OPT_SIZE,
        "kinks": COUNT,
        "patterns": STRINGS,
        "inputs": ListOf(INPUT_REPORT),
        "findings": ListOf(FINDING),
        "calls": Obj({}),
        "seconds": OPT_SIZE,
        "settings": ANY_OBJECT,
    },
    "a check result (a JSON object)",
)
REPLAY = Obj({k: OPT_STR for k in ("reproduce_failure", "blob", "database", "database_key", "call")})
PROPERTY = Obj(
    {
        "layer": STR,
        "backend": STR,
        "profile": OPT_STR,
        "seed": OPT_COUNT,
        "passed": BOOL,
        "examples": COUNT,
        "failing_examples": COUNT,
        "seconds": OPT_SIZE,
        "max_rel_err": OPT_SIZE,
        "max_abs_err": OPT_SIZE,
        "kinks": COUNT,
        "case": OPT_STR,
        "cause": OPT_STR,
        "reference": BOOL,
        "drawn": Nullable(ANY_OBJECT),
        "check": Nullable(CHECK),
        "search_check": Nullable(CHECK),
        "larger_check": Nullable(CHECK),
        "replay": REPLAY,
        "notes": STRINGS,
    },
    "a property result (a JSON object)",
)
INPUT_ROW = Obj(
    {
        "name": STR,
        "shape": Nullable(INDEX),
        "dtype": OPT_STR,
        "passed": Nullable(BOOL),
        "max_abs_err": OPT_SIZE,
        "max_rel_err": OPT_SIZE,
        "kinks": OPT_COUNT,
        "failing": OPT_COUNT,
        "worst_index": Nullable(INDEX),
        "cause": OPT_STR,
    }
)
WHAT = Obj({"layer": STR, "backend": STR, "dtype": OPT_STR})


def entry_rule(statuses: tuple[str, ...]) -> Obj:
    return Obj(
        {
            "layer": STR,
            "backend": STR,
            "dtype": OPT_STR,
            "status": one_of(*statuses),
            "reason": OPT_STR,
            "seconds": OPT_SIZE,
            "kind": Nullable(one_of("property", "check")),
            "examples": OPT_COUNT,
            "max_abs_err": OPT_SIZE,
            "max_rel_err": OPT_SIZE,
            "kinks": OPT_COUNT,
            "cause": OPT_STR,
            "patterns": STRINGS,
            "case": OPT_STR,
            "message": OPT_STR,
            "inputs": ListOf(INPUT_ROW),
            "reference": Nullable(BOOL),
            "result": Nullable(ANY_OBJECT),
        }
    )


def check_entry(data: Any, where: str, statuses: tuple[str, ...]) -> None:
    """Raise ``gk.InvalidArgument`` naming the first malformed field of an entry's JSON."""
    for key in ("layer", "backend", "status"):
        if isinstance(data, dict) and key not in data:
            raise InvalidArgument(f"{where} has no {key!r}; accepted: an object with {key!r}")
    entry_rule(statuses).check(data, where)
    result = data.get("result")
    if result is not None:
        is_property = data.get("kind") == "property" or (data.get("kind") is None and "examples" in result)
        (PROPERTY if is_property else CHECK).check(result, f"{where}.result")


def check_run(data: Any, statuses: tuple[str, ...], states: tuple[str, ...]) -> None:
    """Raise ``gk.InvalidArgument`` naming the first malformed field of a run's JSON."""
    check_depth(data, "report")
    Obj({}).check(data, "report")
    if data.get("schema") != SCHEMA:
        raise InvalidArgument(
            f"report.schema={short(data.get('schema'))} is not supported; accepted: {SCHEMA}"
        )
    header = Obj(
        {
            "tool": STR,
            "version": STR,
            "started": STR,
            "seconds": OPT_SIZE,
            "seed": OPT_COUNT,
            "profile": OPT_STR,
            "backends": STRINGS,
            "dtypes": STRINGS,
            "targets": STRINGS,
            "passed": BOOL,
            "counts": Obj({s: COUNT for s in statuses}),
            "state": one_of(*states),
            "not_run": ListOf(WHAT),
            "entries": Rule("a list", lambda v: isinstance(v, list)),
        }
    )
    header.check(data, "report")
    if "entries" not in data:
        raise InvalidArgument("report has no 'entries'; accepted: an object with 'entries' (a list)")
    for k, entry in enumerate(data["entries"]):
        check_entry(entry, f"report.entries[{k}]", statuses)


def check_depth(data: Any, where: str) -> None:
    """Refuse data nested deeper than ``MAX_DEPTH``, measured without recursion."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise InvalidArgument(
                f"{where} nests deeper than {MAX_DEPTH} levels; accepted: a gradcheck-kit report"
            )
        children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))


def read_json(path: str | os.PathLike[str]) -> Any:
    """The JSON value in ``path``: NaN, Infinity and numbers too large for a float read as null
    (what the writers write for them); ``gk.InvalidArgument`` for anything that is not JSON."""
    name = os.fspath(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidArgument(f"report {name!r} cannot be read: {exc}") from None
    try:
        return json.loads(text, parse_constant=lambda _: None, parse_float=_finite)
    except json.JSONDecodeError as exc:
        raise InvalidArgument(
            f"report {name!r} is not JSON ({exc.msg} at line {exc.lineno}, column {exc.colno}); "
            "accepted: a file written by `gradcheck-kit check --format json`"
        ) from None
    except RecursionError:
        raise InvalidArgument(
            f"report {name!r} nests deeper than {MAX_DEPTH} levels; accepted: a gradcheck-kit report"
        ) from None
    except ValueError as exc:  # an integer of more digits than Python converts
        raise InvalidArgument(f"report {name!r} cannot be read as JSON: {exc}") from None


def _finite(text: str) -> float | None:
    value = float(text)
    return value if math.isfinite(value) else None


def short(value: Any, limit: int = 80) -> str:
    """``repr(value)``, cut to ``limit`` characters (a repr shows control characters escaped)."""
    text = repr(value) if not isinstance(value, (dict, list)) else _shape(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _shape(value: dict[str, Any] | list[Any]) -> str:
    """A container in a few characters: its repr can be huge, or too deep to produce."""
    if isinstance(value, dict):
        return "{}" if not value else "{" + ", ".join(repr(k) for k in list(value)[:4]) + ": ...}"
    return "[]" if not value else f"[... {len(value)} items]"
