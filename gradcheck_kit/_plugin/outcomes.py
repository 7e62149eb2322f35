"""What each gradcheck test leaves behind and where it goes.

Every gradcheck item (and every test that used the ``gradcheck`` fixture) attaches the JSON of
its ``report.Entry`` objects to its pytest report, as the attribute ``gradcheck_entries``. pytest
serializes report attributes, so under pytest-xdist the entries reach the controller with the
reports; serial runs take the same path. The controller gathers them into a ``report.Run`` —
sorted by layer, backend and dtype, not by arrival — for the terminal summary and the JSON and
Markdown reports, which is why ``-n 4`` prints and writes what a serial run does.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from . import state
from .collect import GradcheckItem

ATTRIBUTE = "gradcheck_entries"


# -- on the process that runs the test ----------------------------------------------------------


def attach(item: pytest.Item, call: pytest.CallInfo[None], report: pytest.TestReport) -> None:
    entries = _item_entries(item, call, report)
    if call.when == "call":
        entries += [
            _from_result(result, dtype) for result, dtype in item.stash.get(state.FIXTURE_RESULTS, [])
        ]
    if entries:
        setattr(report, ATTRIBUTE, json.dumps(entries, default=_plain))


def _item_entries(item: pytest.Item, call: pytest.CallInfo[None], report: pytest.TestReport) -> list[Any]:
    from gradcheck_kit.report import Entry

    if not isinstance(item, GradcheckItem):
        return []
    where = (item.spec.name, item.backend, item.dtype)
    if call.when == "setup" and report.skipped and call.excinfo is not None:
        return [Entry.skipped(*where, _reason(call.excinfo)).to_dict()]
    if call.when == "setup" and report.failed and call.excinfo is not None:
        return [Entry.errored(*where, _reason(call.excinfo)).to_dict()]
    if call.when == "call" and item.result is not None:
        return [_from_result(item.result, item.dtype)]
    if call.when == "call" and call.excinfo is not None:
        return [Entry.errored(*where, _reason(call.excinfo), seconds=call.duration).to_dict()]
    return []


def _from_result(result: Any, dtype: str | None) -> dict[str, Any]:
    from gradcheck_kit.report import Entry

    return Entry.from_result(result, dtype=dtype).to_dict()


def _reason(excinfo: pytest.ExceptionInfo[BaseException]) -> str:
    value = excinfo.value
    text = str(getattr(value, "msg", None) or value)
    return text if isinstance(value, pytest.skip.Exception) else f"{type(value).__name__}: {text}"


def _plain(value: Any) -> Any:
    """JSON for the odd value a result may hold (NumPy scalars and arrays, paths)."""
    for convert in ("tolist", "item"):
        if callable(getattr(value, convert, None)):
            return getattr(value, convert)()
    return str(value)


# -- on the controller --------------------------------------------------------------------------


def record(config: pytest.Config, report: pytest.TestReport) -> None:
    text = getattr(report, ATTRIBUTE, None)
    if text:
        state.get(config).entries += [(report.nodeid, entry) for entry in json.loads(text)]


def build_run(config: pytest.Config) -> Any:
    from gradcheck_kit.report import Entry, Run

    current = state.get(config)
    settings = current.settings
    backends, dtypes = list(settings.backends), list(settings.dtypes)

    def order(pair: tuple[str, dict[str, Any]]) -> tuple[Any, ...]:
        nodeid, entry = pair
        backend, dtype = entry.get("backend"), entry.get("dtype")
        rank_b = backends.index(backend) if backend in backends else len(backends)
        rank_d = dtypes.index(dtype) if dtype in dtypes else len(dtypes)
        return entry.get("layer", ""), rank_b, str(backend), rank_d, str(dtype), nodeid

    entries = [Entry.from_dict(entry) for _, entry in sorted(current.entries, key=order)]
    return Run(
        entries,
        seed=settings.seed,
        profile=settings.resolved_profile(),
        backends=backends,
        dtypes=dtypes,
        targets=list(settings.modules),
        started=current.started_at,
        seconds=time.perf_counter() - current.started,
    )


def write_reports(config: pytest.Config) -> list[str]:
    """Write ``--gradcheck-report`` (JSON) and ``--gradcheck-md`` (Markdown); their paths."""
    from gradcheck_kit.report import render_markdown, write_atomic

    settings = state.settings(config)
    if settings.report is None and settings.markdown is None:
        return []
    run, written = build_run(config), []
    if settings.report is not None:
        written.append(str(write_atomic(settings.report, run.to_json())))
    if settings.markdown is not None:
        written.append(str(write_atomic(settings.markdown, render_markdown(run))))
    return written


def summary_lines(run: Any) -> list[tuple[str, dict[str, bool]]]:
    """The terminal summary: the header, the table of ``render.rows`` (the CLI's and the
    reports' rows), the minimal case of each failure, the counts. (line, markup) pairs."""
    from gradcheck_kit.report.rows import COLUMNS, rows, title

    table = [dict(zip(COLUMNS, COLUMNS)), *rows(run)]
    widths = {c: max(len(r[c]) for r in table) for c in COLUMNS[:-1]}
    out: list[tuple[str, dict[str, bool]]] = [(run.header(), {"bold": True})]
    for row in table:
        line = "  ".join([*(row[c].ljust(widths[c]) for c in COLUMNS[:-1]), row["cause"]]).rstrip()
        bad = row["verdict"] in ("FAILED", "ERROR")
        out.append((line, {"red": True} if bad else {"yellow": True} if row["verdict"] == "SKIPPED" else {}))
    for entry in run.entries:
        data = entry.to_dict()
        if data["status"] == "failed":
            out.append((f"{title(data)}: minimal case {data['case']}; cause: {data['cause']}", {"red": True}))
        elif data["status"] == "error":
            out.append((f"{title(data)}: {data['reason']}", {"red": True}))
    out.append((f"{'PASSED' if run.passed else 'FAILED'}: {run.summary()}", {"bold": True}))
    return out
