"""What each gradcheck test leaves behind and where it goes.

Every gradcheck item (and every test that used the ``gradcheck`` fixture) attaches the JSON of
its ``report.Entry`` objects to its pytest report, as the attribute ``gradcheck_entries``. pytest
serializes report attributes, so under pytest-xdist the entries reach the controller with the
reports; serial runs take the same path. The controller gathers them into a ``report.Run`` —
sorted by layer, backend and dtype, not by arrival — for the terminal summary and the JSON and
Markdown reports, which is why ``-n 4`` prints and writes what a serial run does.

The controller also knows every gradcheck item collected (from the session, or from each xdist
worker's collection), so the reports are honest about a run that did not finish: they are
written as items finish and say ``incomplete`` until the session ends, ``interrupted`` after
Ctrl-C (or a KeyboardInterrupt in a layer checked in the pytest process), and list the items
that did not run; an item whose xdist worker crashed is an ``error`` entry with xdist's words.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from gradcheck_kit._ground.formatting import visible

from . import state
from .collect import GradcheckItem, parse_item_name

ATTRIBUTE = "gradcheck_entries"


# -- on the process that runs the test ----------------------------------------------------------


def attach(item: pytest.Item, call: pytest.CallInfo[None], report: pytest.TestReport) -> None:
    entries = _item_entries(item, call, report)
    if call.when == "call":
        entries += [
            _from_result(result, dtype) for result, dtype in item.stash.get(state.FIXTURE_RESULTS, [])
        ]
    if entries:
        setattr(report, ATTRIBUTE, json.dumps(entries, default=_plain, allow_nan=False))


def _item_entries(item: pytest.Item, call: pytest.CallInfo[None], report: pytest.TestReport) -> list[Any]:
    from gradcheck_kit.report import Entry

    if not isinstance(item, GradcheckItem):
        return []
    where = (item.spec.name, item.backend, item.dtype)
    if call.when == "setup" and report.skipped and call.excinfo is not None:
        return [Entry.skipped(*where, _reason(call.excinfo)).to_dict()]
    if call.when == "setup" and report.failed and call.excinfo is not None:
        return [Entry.errored(*where, _reason(call.excinfo)).to_dict()]
    if call.when == "call" and item.entry is not None:
        return [item.entry]
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


def expect(config: pytest.Config, nodeids: list[str]) -> None:
    """Note the gradcheck items a process collected: the reports list those that never ran."""
    for nodeid in nodeids:
        what = parse_item_name(nodeid)
        if what is not None and "::" in nodeid:
            state.get(config).expected[nodeid] = what


def record(config: pytest.Config, report: pytest.TestReport) -> bool:
    """Keep the entries a report carries; an expected item's failure that carries none (its
    xdist worker crashed) becomes an error entry. Whether anything was kept."""
    current = state.get(config)
    text = getattr(report, ATTRIBUTE, None)
    if text:
        current.entries += [(report.nodeid, entry) for entry in json.loads(text)]
        return True
    known = {nodeid for nodeid, _ in current.entries}
    what = current.expected.get(report.nodeid)
    if what is None or not report.failed or report.nodeid in known:
        return False
    from gradcheck_kit.report import Entry

    reason = f"the item ended without a result: {_first_line(report.longreprtext)}"
    entry = Entry.errored(what["layer"], what["backend"], what["dtype"], reason)
    current.entries.append((report.nodeid, entry.to_dict()))
    return True


def _first_line(text: str) -> str:
    """The first line that says something (not xdist's ``[gw0] linux -- Python 3.11`` header)."""
    lines = [line.strip() for line in str(text).splitlines()]
    return next((line for line in lines if line and not line.startswith("[gw")), "(no detail)")


def build_run(config: pytest.Config, run_state: str | None = None) -> Any:
    """The run so far; ``run_state`` None: complete unless expected items did not run."""
    from gradcheck_kit.report import COMPLETE, INCOMPLETE, Entry, Run

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
    ran = {nodeid for nodeid, _ in current.entries}
    not_run = [what for nodeid, what in current.expected.items() if nodeid not in ran]
    if run_state is None:
        run_state = INCOMPLETE if not_run else COMPLETE
    return Run(
        entries,
        seed=settings.seed,
        profile=settings.resolved_profile(),
        backends=backends,
        dtypes=dtypes,
        targets=list(settings.modules),
        started=current.started_at,
        seconds=time.perf_counter() - current.started,
        state=run_state,
        not_run=not_run,
    )


def open_reports(config: pytest.Config) -> None:
    """Check ``--gradcheck-report`` (JSON) and ``--gradcheck-md`` (Markdown) before the session
    starts: a usage error naming the one that cannot be written."""
    settings = state.settings(config)
    chosen = [
        ("--gradcheck-report", settings.report, "json"),
        ("--gradcheck-md", settings.markdown, "markdown"),
    ]
    if all(path is None for _, path, _ in chosen):
        return
    from gradcheck_kit.errors import InvalidArgument
    from gradcheck_kit.report import ReportWriter, output

    outputs = []
    for flag, path, fmt in chosen:
        if path is None:
            continue
        try:
            outputs.append(output(str(path), fmt))
        except InvalidArgument as exc:
            raise pytest.UsageError(str(exc).replace("--output", flag, 1)) from None
    state.get(config).writer = ReportWriter(outputs)


def update_reports(config: pytest.Config) -> None:
    """Rewrite the reports with the run so far (``incomplete``)."""
    from gradcheck_kit.report import INCOMPLETE

    writer = state.get(config).writer
    if writer is not None:
        writer.update(build_run(config, INCOMPLETE))


def write_reports(config: pytest.Config, run_state: str | None = None) -> list[str]:
    """Write ``--gradcheck-report`` (JSON) and ``--gradcheck-md`` (Markdown) once more, for the
    session's end; their paths."""
    writer = state.get(config).writer
    if writer is None:
        return []
    return [str(out) for out in writer.finish(build_run(config, run_state))]


def summary_lines(run: Any) -> list[tuple[str, dict[str, bool]]]:
    """The terminal summary: the header, the table of ``render.rows`` (the CLI's and the
    reports' rows), the minimal case of each failure, the counts. (line, markup) pairs."""
    from gradcheck_kit.report.rows import COLUMNS, rows, title

    table = [dict(zip(COLUMNS, COLUMNS)), *rows(run)]
    widths = {c: max(len(r[c]) for r in table) for c in COLUMNS[:-1]}
    out: list[tuple[str, dict[str, bool]]] = [(visible(run.header()), {"bold": True})]
    for row in table:
        line = "  ".join([*(row[c].ljust(widths[c]) for c in COLUMNS[:-1]), row["cause"]]).rstrip()
        bad = row["verdict"] in ("FAILED", "ERROR", "CRASHED", "TIMEOUT")
        out.append((line, {"red": True} if bad else {"yellow": True} if row["verdict"] == "SKIPPED" else {}))
    for entry in run.entries:
        data = entry.to_dict()
        if data["status"] == "failed":
            text = f"{title(data)}: minimal case {data['case']}; cause: {data['cause']}"
            out.append((visible(text), {"red": True}))
        elif data["status"] in ("error", "crashed", "timeout"):
            out.append((visible(f"{title(data)}: {data['reason']}"), {"red": True}))
    out += [(visible(line), {"red": True}) for line in run.unfinished()]
    out.append((f"{'PASSED' if run.passed else 'FAILED'}: {run.summary()}", {"bold": True}))
    return out
