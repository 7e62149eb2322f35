"""The run model shared by the CLI and the pytest plugin, and its text renderers.

A ``Run`` is a header (version, seed, profile, backends, dtypes, start time), one ``Entry``
per (layer, backend, dtype) that ran (passed, failed, skipped, error, or crashed or timeout when
its worker process died or was killed), with the ``PropertyResult`` or ``CheckResult`` behind
it, and its ``state``: complete, or incomplete (still running, or ended with entries not run:
``not_run`` lists them) or interrupted; only a complete run can pass. ``Run.to_dict()`` is the
JSON report (``"schema": 1``, documented in the README): non-finite numbers are null in it;
``Run.from_dict`` reads one back and refuses a malformed one with ``gk.InvalidArgument``
(``schema``). Every renderer works from the JSON form, so a saved run re-renders exactly like a
live one.

    run = Run(entries=[Entry.from_result(gk.property_check("conv2d"), dtype="float64")])
    write_atomic("report.json", run.to_json())
    print(render_text(Run.from_dict(json.loads(Path("report.json").read_text()))))
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from .._ground.formatting import finite_or_none, jsonable
from .._version import __version__
from ..errors import InvalidArgument
from . import schema

SCHEMA = schema.SCHEMA
PASSED, FAILED, SKIPPED, ERROR = "passed", "failed", "skipped", "error"
CRASHED, TIMEOUT = "crashed", "timeout"  # its worker process died, or was killed when it hung
STATUSES = (PASSED, FAILED, SKIPPED, ERROR, CRASHED, TIMEOUT)
COMPLETE, INCOMPLETE, INTERRUPTED = "complete", "incomplete", "interrupted"
STATES = (COMPLETE, INCOMPLETE, INTERRUPTED)
MAX_MAP_ELEMENTS = 65_536  # element maps of larger inputs are left out of the JSON


# -- the model ----------------------------------------------------------------------------------


@dataclass
class Entry:
    """One (layer, backend, dtype) outcome of a run: passed, failed, skipped, error, crashed or timeout.

    Build one with ``from_result``, ``skipped``, ``errored`` or ``lost``, or read one back with
    ``from_dict``.

    Attributes
    ----------
    layer, backend : str
        The layer's name and the backend it ran on.
    dtype : str or None
        The dtype it was checked in (None: not one in particular).
    status : {"passed", "failed", "skipped", "error", "crashed", "timeout"}
        The outcome (an unknown one raises ``gk.InvalidArgument``): ``crashed`` and
        ``timeout`` when the layer took its worker process down or hung it.
    result : PropertyResult, CheckResult or None
        The live result (None when skipped, errored, crashed, timed out, or read back from JSON).
    reason : str or None
        Why it failed, was skipped, errored, crashed or timed out.
    seconds : float
        How long it took.
    data : dict or None
        The result's JSON form (``result_dict(result)``, by default from ``result``; non-finite
        numbers null).
    stored : dict or None
        The entry JSON it was read from (``from_dict``); ``to_dict`` returns it as it is.

    Examples
    --------
    >>> import numpy as np, gradcheck_kit as gk
    >>> from gradcheck_kit.report import Entry, Run
    >>> result = gk.check(np.tanh, lambda dy, x: (dy,), (np.linspace(-1.0, 1.0, 3),))
    >>> entry = Entry.from_result(result)
    >>> entry.status, entry.kind, entry.dtype, entry.reason
    ('failed', 'check', 'float64', "x: missing chain-rule factor: ...")
    """

    layer: str
    backend: str
    dtype: str | None
    status: str
    result: Any = None
    reason: str | None = None
    seconds: float = 0.0
    data: dict[str, Any] | None = field(default=None, repr=False)
    stored: dict[str, Any] | None = field(default=None, repr=False)  # the entry JSON it was read from

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise InvalidArgument(f"status={self.status!r} is unknown; accepted: {', '.join(STATUSES)}")
        if self.data is None and self.result is not None:
            self.data = result_dict(self.result)
        elif self.data is not None and self.stored is None:
            self.data = jsonable(self.data)  # NaN and inf become null, as in every writer

    @classmethod
    def from_result(cls, result: Any, *, dtype: str | None = None, seconds: float | None = None) -> Entry:
        """An entry for a ``PropertyResult`` or ``CheckResult``: passed or failed, with its cause.

        Parameters
        ----------
        result : PropertyResult or CheckResult
            The result.
        dtype : str, optional
            The dtype it was checked in (default: its first input's).
        seconds : float, optional
            How long it took (default: the result's own ``seconds``).

        Returns
        -------
        Entry
        """
        data = result_dict(result)
        status = PASSED if result.passed else FAILED
        reason = None if result.passed else _cause(data)
        took = seconds if seconds is not None else float(getattr(result, "seconds", 0.0))
        dtype = dtype if dtype is not None else _first_dtype(data)
        return cls(
            result.layer if hasattr(result, "layer") else result.name,
            result.backend,
            dtype,
            status,
            result=result,
            reason=reason,
            seconds=took,
            data=data,
        )

    @classmethod
    def skipped(cls, layer: str, backend: str, dtype: str | None, reason: str) -> Entry:
        """An entry for a layer that was not run (an unavailable backend, a deselected dtype).

        Parameters
        ----------
        layer, backend : str
            The layer's name and the backend.
        dtype : str or None
            The dtype.
        reason : str
            Why it was skipped.

        Returns
        -------
        Entry
        """
        return cls(layer, backend, dtype, SKIPPED, reason=reason)

    @classmethod
    def errored(cls, layer: str, backend: str, dtype: str | None, reason: str, seconds: float = 0.0) -> Entry:
        """An entry for a layer the harness could not judge (bad strategy, unusable configuration).

        Parameters
        ----------
        layer, backend : str
            The layer's name and the backend.
        dtype : str or None
            The dtype.
        reason : str
            What went wrong.
        seconds : float, default 0.0
            How long it ran.

        Returns
        -------
        Entry
        """
        return cls(layer, backend, dtype, ERROR, reason=reason, seconds=seconds)

    @classmethod
    def lost(
        cls, layer: str, backend: str, dtype: str | None, status: str, reason: str, seconds: float = 0.0
    ) -> Entry:
        """An entry for a layer that took its worker process down (crashed) or hung it (timeout).

        Parameters
        ----------
        layer, backend : str
            The layer's name and the backend.
        dtype : str or None
            The dtype.
        status : {"crashed", "timeout"}
            How the worker was lost (any status of ``STATUSES`` is accepted; an unknown one
            raises ``gk.InvalidArgument``).
        reason : str
            What happened (the signal or exit status, the time limit that ran out).
        seconds : float, default 0.0
            How long it ran.

        Returns
        -------
        Entry
            Without a result.
        """
        return cls(layer, backend, dtype, status, reason=reason, seconds=seconds)

    @property
    def kind(self) -> str | None:
        """What produced the result: ``property`` (a property test) or ``check`` (one check).

        Returns
        -------
        str or None
            None without a result.
        """
        if self.data is None:
            return None
        return "property" if "examples" in self.data else "check"

    @property
    def check(self) -> dict[str, Any] | None:
        """The element-wise check behind the verdict (the minimal failing case of a property run).

        Returns
        -------
        dict or None
            The check's JSON form; None without one.
        """
        if self.data is None:
            return None
        return self.data.get("check") if self.kind == "property" else self.data

    def to_dict(self) -> dict[str, Any]:
        """The entry's JSON form (one item of the report's ``entries``; see the JSON schema).

        Returns
        -------
        dict
            The verdict, errors, cause, patterns, case, message, per-input rows and the full
            ``result``; an entry read back returns the JSON it was read from.
        """
        if self.stored is not None:
            return dict(self.stored)
        data, check = self.data or {}, self.check or {}
        return {
            "layer": self.layer,
            "backend": self.backend,
            "dtype": self.dtype,
            "status": self.status,
            "reason": self.reason,
            "seconds": round(float(self.seconds), 6),
            "kind": self.kind,
            "examples": data.get("examples", 1 if self.kind == "check" else None),
            "max_abs_err": finite_or_none(data.get("max_abs_err", check.get("max_abs_err"))),
            "max_rel_err": finite_or_none(data.get("max_rel_err")),
            "kinks": data.get("kinks"),
            "cause": _cause(data) if self.status == FAILED else None,  # (null: not measured)
            "patterns": list(check.get("patterns") or []),
            "case": data.get("case") if self.kind == "property" else check.get("case"),
            "message": _message(self.result),
            "inputs": [_input_row(r) for r in check.get("inputs") or []],
            "reference": _referenced(data),
            "result": self.data,
        }

    @classmethod
    def from_dict(cls, data: Any, where: str = "entry") -> Entry:
        """An entry read back from its JSON form (``to_dict``), checked field by field.

        Parameters
        ----------
        data : dict
            The entry's JSON form.
        where : str, default "entry"
            Where it sits in the report, for error messages (``report.entries[3]``).

        Returns
        -------
        Entry
            With ``result`` None; renderers read ``stored`` (with defaults for missing keys).

        Raises
        ------
        InvalidArgument
            Naming the first field whose type or range is wrong (``entry.status='ok' is
            unknown``, a malformed ``result``, its inputs or findings) and what is accepted, or
            data nested deeper than a report can be.
        """
        schema.check_depth(data, where)
        schema.check_entry(data, where, STATUSES)
        return cls.read(data)

    @classmethod
    def read(cls, data: dict[str, Any]) -> Entry:
        """An entry of JSON already checked, read back without checking it again.

        ``Run.from_dict`` checks the whole report first (``schema.check_run``), then reads its
        entries with this; ``from_dict`` checks one entry, then reads it with this.

        Parameters
        ----------
        data : dict
            The entry's JSON form, already checked (``schema.check_entry``).

        Returns
        -------
        Entry
            With ``result`` None; ``stored`` is ``data`` with defaults for missing keys.
        """
        return cls(
            data["layer"],
            data["backend"],
            data.get("dtype"),
            data["status"],
            reason=data.get("reason"),
            seconds=data.get("seconds") or 0.0,
            data=data.get("result"),
            stored=_filled(data),
        )


@dataclass
class Run:
    """Entries plus the header that makes the run reproducible.

    Attributes
    ----------
    entries : list of Entry
        One per (layer, backend, dtype).
    version : str
        gradcheck-kit's version.
    seed : int or None
        The run's seed.
    profile : str or None
        The hypothesis profile.
    backends, dtypes : list of str
        The backends and dtypes asked for.
    targets : list of str
        The modules (or files) the layers were loaded from.
    started : str
        When the run started (ISO 8601, UTC; default: now).
    seconds : float or None
        How long it took (None: not recorded).
    state : {"complete", "incomplete", "interrupted"}
        Whether the run finished: ``incomplete`` while it runs, or when it ended with entries
        not run; ``interrupted`` when it was stopped. Only a complete run can pass.
    not_run : list of dict
        The (``layer``, ``backend``, ``dtype``) of each entry an unfinished run did not run.

    Examples
    --------
    >>> import numpy as np, gradcheck_kit as gk
    >>> from gradcheck_kit.report import Entry, Run
    >>> result = gk.check(np.tanh, lambda dy, x: (dy,), (np.linspace(-1.0, 1.0, 3),))
    >>> run = Run([Entry.from_result(result), Entry.skipped("conv2d", "cupy", None, "no cupy")], seed=0)
    >>> run.passed, run.summary(), run.exit_code
    (False, '1 failed, 1 skipped in 0.0 s', 1)
    >>> stopped = Run(state="interrupted", not_run=[{"layer": "relu", "backend": "numpy", "dtype": None}])
    >>> stopped.passed, stopped.summary(), stopped.exit_code
    (False, 'no entries, 1 not run (interrupted) in 0.0 s', 2)
    """

    entries: list[Entry] = field(default_factory=list)
    version: str = __version__
    seed: int | None = None
    profile: str | None = None
    backends: list[str] = field(default_factory=list)
    dtypes: list[str] = field(default_factory=list)
    targets: list[str] = field(default_factory=list)
    started: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    seconds: float | None = 0.0
    state: str = COMPLETE
    not_run: list[dict[str, Any]] = field(default_factory=list)  # (layer, backend, dtype) never run

    @property
    def passed(self) -> bool:
        """Whether the run finished and every entry passed or was skipped.

        Returns
        -------
        bool
            True when ``state`` is complete and no entry failed, errored, crashed or timed out
            (skipped entries do not count against a run); False for an incomplete or
            interrupted run, whatever its entries.
        """
        return self.state == COMPLETE and all(e.status in (PASSED, SKIPPED) for e in self.entries)

    @property
    def counts(self) -> dict[str, int]:
        """How many entries have each status.

        Returns
        -------
        dict of str to int
            Every status in ``STATUSES``, zeros included.
        """
        return {s: sum(1 for e in self.entries if e.status == s) for s in STATUSES}

    @property
    def exit_code(self) -> int:
        """The command line's exit status for this run.

        Returns
        -------
        int
            0 when it passed; 1 for a gradient or contract failure, or a layer that crashed or
            hung its worker (``crashed``, ``timeout``); 2 when an entry could not be run at all
            (``error``) or the run did not finish (incomplete or interrupted), whatever else.
        """
        counts = self.counts
        if counts[ERROR] or self.state != COMPLETE:
            return 2
        return 1 if counts[FAILED] or counts[CRASHED] or counts[TIMEOUT] else 0

    def header(self) -> str:
        """The header line that makes the run reproducible.

        Returns
        -------
        str
            Such as ``gradcheck-kit 0.1.0: seed=0, profile=ci, backends=numpy, dtypes=float64``.
        """
        parts = [f"seed={self.seed}", f"profile={self.profile}", f"backends={','.join(self.backends) or '-'}"]
        if self.dtypes:
            parts.append(f"dtypes={','.join(self.dtypes)}")
        return f"gradcheck-kit {self.version}: " + ", ".join(parts)

    def unfinished(self) -> list[str]:
        """Lines saying that the run did not finish, and what it did not run.

        Returns
        -------
        list of str
            Empty for a complete run; else ``INCOMPLETE: the run is incomplete: 3 entries ran,
            2 did not`` (``INTERRUPTED: the run was interrupted: ...``) followed by one
            ``  not run: layer [backend, dtype]`` line per item of ``not_run``.
        """
        if self.state == COMPLETE:
            return []
        how = "was interrupted" if self.state == INTERRUPTED else "is incomplete"
        ran, missing = len(self.entries), len(self.not_run)
        lines = [f"{self.state.upper()}: the run {how}: {ran} entries ran, {missing} did not"]
        lines += [f"  not run: {_title(w)}" for w in self.not_run]
        return lines

    def notes(self) -> list[str]:
        """Footer lines of a passing run: what it could not see.

        Returns
        -------
        list of str
            A note when the run passed and some entries were checked without a torch
            reference; else empty.
        """
        unreferenced = [
            e for e in self.entries if e.status == PASSED and e.to_dict().get("reference") is False
        ]
        if not self.passed or not unreferenced:
            return []
        return [
            f"note: {len(unreferenced)} passing entr{'y was' if len(unreferenced) == 1 else 'ies were'} "
            "checked without a reference: a bug in a forward whose backward is its exact gradient "
            "passes any gradient check; `--reference` compares layers registered with reference= "
            "(a torch function of the same math) with it"
        ]

    def summary(self) -> str:
        """The counts in one line: ``17 passed, 1 failed in 12.3 s``.

        Returns
        -------
        str
            Statuses with a zero count are left out (``no entries`` when there are none); an
            unfinished run adds ``, 3 not run (incomplete)``; the seconds are ``-`` when not
            recorded or not finite.
        """
        counts = ", ".join(f"{n} {s}" for s, n in self.counts.items() if n) or "no entries"
        if self.state != COMPLETE:
            counts += f", {len(self.not_run)} not run ({self.state})"
        seconds = self.seconds if self.seconds is not None and math.isfinite(self.seconds) else None
        return f"{counts} in {'-' if seconds is None else f'{seconds:.1f}'} s"

    def to_dict(self) -> dict[str, Any]:
        """The JSON report (``"schema": 1``): the header, verdict, counts and every entry.

        Returns
        -------
        dict
        """
        return {
            "schema": SCHEMA,
            "tool": "gradcheck-kit",
            "version": self.version,
            "started": self.started,
            "seconds": finite_or_none(round(float(self.seconds), 6)) if self.seconds is not None else None,
            "seed": self.seed,
            "profile": self.profile,
            "backends": list(self.backends),
            "dtypes": list(self.dtypes),
            "targets": list(self.targets),
            "state": self.state,
            "passed": self.passed,
            "counts": self.counts,
            "entries": [e.to_dict() for e in self.entries],
            "not_run": [dict(w) for w in self.not_run],
        }

    def to_json(self) -> str:
        """The JSON report as text, written by ``dumps``: indented, ending with a newline.

        Returns
        -------
        str
            ``to_dict()`` as JSON (non-finite numbers are null in it, control characters
            escaped); ``load`` and ``from_dict`` read it back.
        """
        return dumps(self.to_dict(), indent=2) + "\n"

    @classmethod
    def from_dict(cls, data: Any) -> Run:
        """A run read back from ``to_dict()``, checked field by field first.

        Parameters
        ----------
        data : dict
            The JSON report (fields may be missing in older or hand-written files; unknown ones
            are kept).

        Returns
        -------
        Run
            Its entries read back (``result`` None), with the ``state`` and ``not_run`` it
            records (complete and none when missing).

        Raises
        ------
        InvalidArgument
            Naming the first field whose type or range is wrong (an unsupported ``schema``,
            ``entries`` missing or not a list, an unknown status or state, a malformed entry or
            result, nesting deeper than a report can be) and what is accepted.
        """
        schema.check_run(data, STATUSES, STATES)
        entries = [Entry.read(e) for e in data["entries"]]  # (checked with the run)
        return cls(
            entries,
            version=str(data.get("version", "?")),
            seed=data.get("seed"),
            profile=data.get("profile"),
            backends=list(data.get("backends", [])),
            dtypes=list(data.get("dtypes", [])),
            targets=list(data.get("targets", [])),
            started=str(data.get("started", "")),
            seconds=data.get("seconds", 0.0),
            state=data.get("state", COMPLETE),
            not_run=[dict(w) for w in data.get("not_run", [])],
        )


def dumps(data: Any, **options: Any) -> str:
    r"""JSON text of ``data`` as every writer of gradcheck-kit writes it.

    Non-finite numbers are refused (``allow_nan=False``: the writers make them null first), and
    every control character is escaped (``json`` escapes all but DEL, escaped here as
    ``\u007f``).

    Parameters
    ----------
    data : object
        A JSON-able value (dicts, lists, strings, finite numbers, booleans, None).
    **options
        Passed on to ``json.dumps`` (``indent``, ``sort_keys``, ...).

    Returns
    -------
    str

    Raises
    ------
    ValueError
        When ``data`` holds NaN or an infinity.

    Examples
    --------
    >>> from gradcheck_kit.report import dumps
    >>> print(dumps({"layer": "conv" + chr(127), "max_rel_err": None}))
    {"layer": "conv\u007f", "max_rel_err": null}
    """
    return json.dumps(data, allow_nan=False, **options).replace("\x7f", "\\u007f")


def load(path: str | os.PathLike[str]) -> Run:
    """Read a JSON report written by ``Run.to_json``, checked field by field.

    NaN, Infinity and numbers too large for a float read as null (what the writers write for
    them).

    Parameters
    ----------
    path : str or os.PathLike
        The report's file.

    Returns
    -------
    Run

    Raises
    ------
    InvalidArgument
        When the file cannot be read, is not JSON, nests too deep, or is not a report (naming
        the first malformed field, see ``Run.from_dict``).

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from gradcheck_kit.report import Entry, Run, load, write_atomic
    >>> run = Run([Entry.skipped("conv2d", "cupy", "float32", "cupy is not installed")], seed=0)
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = write_atomic(Path(folder) / "report.json", run.to_json())
    ...     print(load(path).entries[0].reason)
    cupy is not installed
    """
    return Run.from_dict(schema.read_json(path))


# -- the JSON form of results -------------------------------------------------------------------


def result_dict(result: Any) -> dict[str, Any]:
    """``result.to_dict()`` plus the element maps of each failing input, for pictures.

    The ``error_map`` and ``failing_map`` of each failing input of the element-wise check (a
    property run's minimal case) are added, for inputs of at most 65,536 elements; non-finite
    numbers are null.

    Parameters
    ----------
    result : CheckResult or PropertyResult
        The result.

    Returns
    -------
    dict
        Its JSON form.

    Examples
    --------
    >>> import numpy as np, gradcheck_kit as gk
    >>> from gradcheck_kit.report import result_dict
    >>> result = gk.check(np.tanh, lambda dy, x: (dy,), (np.linspace(-1.0, 1.0, 3),))
    >>> result_dict(result)["inputs"][0]["failing_map"]
    [True, False, True]
    """
    data = jsonable(result.to_dict())
    check = getattr(result, "check", None) if "examples" in data else result
    target = data.get("check") if "examples" in data else data
    if check is not None and target is not None:
        target["inputs"] = [_with_maps(report, row) for report, row in zip(check.inputs, target["inputs"])]
    return data


def _with_maps(report: Any, row: dict[str, Any]) -> dict[str, Any]:

    if report.passed or report.error_map is None or report.error_map.size > MAX_MAP_ELEMENTS:
        return row
    maps = {"error_map": jsonable(report.error_map)}
    if report.failing_map is not None:
        maps["failing_map"] = jsonable(report.failing_map.astype(bool))
    return {**row, **maps}


def _input_row(row: dict[str, Any]) -> dict[str, Any]:
    keys = (
        "name",
        "shape",
        "dtype",
        "passed",
        "max_abs_err",
        "max_rel_err",
        "kinks",
        "failing",
        "worst_index",
        "cause",
    )
    return {k: row.get(k) for k in keys}


def _cause(data: dict[str, Any]) -> str | None:
    if "examples" in data and data.get("cause"):  # a property run's, larger cases included
        return str(data["cause"])
    check = data.get("check") if "examples" in data else data
    if isinstance(check, dict) and check.get("cause"):
        return str(check["cause"])
    notes = data.get("notes") or []
    return str(notes[0]) if notes else None


def _referenced(data: dict[str, Any]) -> bool | None:
    """Whether a torch reference checked the forward (None: not recorded)."""
    if "examples" in data:
        return data.get("reference")
    return (data.get("settings") or {}).get("reference")


def _first_dtype(data: dict[str, Any]) -> str | None:
    check = data.get("check") if "examples" in data else data
    inputs = (check or {}).get("inputs") or []
    return inputs[0].get("dtype") if inputs else None


def _message(result: Any) -> str | None:
    if result is None:
        return None
    return str(getattr(result, "message", None) or result)


def _filled(data: dict[str, Any]) -> dict[str, Any]:
    """A stored entry with every key the renderers read (older or hand-written files may lack some)."""
    defaults: dict[str, Any] = {
        "dtype": None,
        "reason": None,
        "cause": None,
        "examples": None,
        "message": None,
        "max_abs_err": None,
        "max_rel_err": None,
        "kinks": None,
        "patterns": [],
        "inputs": [],
        "case": None,
        "kind": None,
        "result": None,
        "seconds": 0.0,
    }
    return {**data, **{key: value for key, value in defaults.items() if key not in data}}


def _title(what: dict[str, Any]) -> str:
    return f"{what.get('layer')} [{what.get('backend')}, {what.get('dtype') or '-'}]"
