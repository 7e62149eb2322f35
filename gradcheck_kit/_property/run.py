"""Property testing: hypothesis draws valid cases of a registered layer, ``gk.check`` checks
each, and a failure shrinks to the smallest case that still fails.

The search and the shrinking check with random projections (``mode="projection"``: a wrong
gradient is caught with probability ~1 at a few forward calls); the minimal failing case is then
checked element by element for the report: which input, which elements, numeric vs analytic.

    result = gk.property_check("conv2d", max_examples=200)
    result.raise_for_failure()      # gk.GradientMismatch with the minimal case in words

    @gk.given_layer("conv2d", max_examples=50)
    def test_conv2d_backward_matches_finite_differences(case):
        gk.check_case(gk.registry.get("conv2d"), case, mode="projection").raise_for_failure()
"""

from __future__ import annotations

import ast
import contextlib
import os
import re
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from hypothesis import Phase, given, reproduce_failure, settings
from hypothesis import __version__ as hypothesis_version
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st
from hypothesis.database import ExampleDatabase
from hypothesis.errors import DidNotReproduce, Flaky
from hypothesis.reporting import with_reporter

from .. import profiles
from .._checks.stages import check_case
from .._result import CheckResult
from ..errors import InvalidArgument
from ..registry import Case, LayerSpec
from .cases import layer_cases, replay_target, resolve_layer
from .result import PropertyResult, describe_case

# -- running ------------------------------------------------------------------------------------


class _Mismatch(Exception):
    """Raised inside the hypothesis test when a check fails (hypothesis then shrinks)."""


class _Run:
    """Checks one case per hypothesis example and keeps running totals (no per-example lists)."""

    def __init__(self, spec: LayerSpec, mode: str, options: dict[str, Any]) -> None:
        self.spec, self.mode, self.options = spec, mode, options
        self.examples = self.failing = self.kinks = 0
        self.seconds = 0.0
        self.max_rel_err: float | None = None  # (None: no example measured a gradient)
        self.max_abs_err: float | None = None
        self.last: tuple[Case, CheckResult] | None = None
        self.first: tuple[Case, CheckResult] | None = None  # before shrinking: usually larger

    def __call__(self, case: Case) -> None:
        started = time.perf_counter()
        result = check_case(self.spec, case, mode=self.mode, seed=_case_seed(case), **self.options)
        self.seconds += time.perf_counter() - started
        self.examples += 1
        self.kinks += result.kinks
        if result.max_rel_err is not None and result.max_abs_err is not None:
            self.max_rel_err = max(self.max_rel_err or 0.0, result.max_rel_err)
            self.max_abs_err = max(self.max_abs_err or 0.0, result.max_abs_err)
        if not result.passed:
            self.failing += 1
            self.last = (case, result)
            self.first = self.first or (case, result)
            raise _Mismatch(result.cause or "check failed")


def _case_seed(case: Case) -> int:
    return int(case.meta.get("seed", 0)) % 2**32


def property_check(
    layer_or_name: Any,
    *,
    backend: str = "numpy",
    max_examples: int | None = None,
    profile: str | None = None,
    seed: int | None = None,
    database: str | os.PathLike[str] | ExampleDatabase | bool | None = None,
    dtypes: Sequence[str] | None = None,
    mode: str = "projection",
    blob: str | bytes | None = None,
    **check_options: Any,
) -> PropertyResult:
    """Property-test a layer: check many drawn cases, and shrink a failure to the minimal one.

    Each case the layer's ``cases`` strategy draws is checked with
    ``gk.check_case(..., mode=mode, **check_options)``; a failure shrinks to the minimal failing
    case, which is then re-checked element-wise for the report. Where that case is too small to
    name a bug pattern, a larger failing case is diagnosed too (``larger_check``).

    Parameters
    ----------
    layer_or_name : LayerSpec, str or class
        A spec, a registered layer's name, ``'package.module:name'`` or ``'path/to/file.py:name'``
        (the module is imported first, which registers the layer: what a failure's ``replay``
        line names) or a class decorated with ``gk.register``.
    backend : str, default "numpy"
        ``numpy``, ``torch``, ``torch:cuda``, ``cupy`` or ``jax``.
    max_examples : int, optional
        Cases to draw (default: the profile's: 20, 50 or 500).
    profile : {"dev", "ci", "thorough"}, optional
        Hypothesis settings (default: ``$HYPOTHESIS_PROFILE``, else ``ci``).
    seed : int, optional
        Makes the run deterministic (None means 0).
    database : str, path, ExampleDatabase or bool, optional
        Where failures are kept and replayed first next time: None or True for the profile's
        (``$GRADCHECK_DATABASE``), a path or an ``ExampleDatabase``, False for none.
    dtypes : sequence of str, optional
        Cast every drawn case to one of these floating dtypes (see ``gk.layer_cases``).
    mode : {"projection", "elementwise", "auto"}, default "projection"
        The check used while searching and shrinking.
    blob : str or bytes, optional
        Replay exactly the case a failure message printed.
    **check_options
        Passed to ``gk.check_case``; ``reference=True`` adds the layer's torch reference to
        every check (off by default: slow on CPU).

    Returns
    -------
    PropertyResult
        ``passed``, counts and errors; on failure the minimal case, its check and ``replay``.

    Raises
    ------
    InvalidArgument
        For a bad ``seed``, ``max_examples``, ``profile``, ``dtypes``, an unknown layer, a layer
        without cases or an unavailable backend. What the cases strategy or hypothesis itself
        raises propagates: it is not a verdict on the layer.

    Examples
    --------
    >>> import numpy as np, gradcheck_kit as gk
    >>> spec = gk.register("tanh", forward=np.tanh, backward=lambda dy, x: (dy * (1 - np.tanh(x) ** 2),),
    ...                    cases=[gk.Case((np.linspace(-1.0, 1.0, 4),))], into=gk.Registry())
    >>> gk.property_check(spec, max_examples=3, database=False).passed
    True
    """
    spec = resolve_layer(layer_or_name)
    chosen = profiles.profile_name(profile)
    seed = 0 if seed is None else seed
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise InvalidArgument(f"seed={seed!r} must be a non-negative int (or None for 0)")
    strategy = layer_cases(spec, backend=backend, dtypes=dtypes)
    run_settings = _settings(chosen, max_examples, database)
    key = f"gradcheck-kit:{spec.name}:{backend}:{','.join(dtypes) if dtypes else 'drawn'}"
    run = _Run(spec, mode, _check_options(spec, check_options))
    test = _hypothesis_test(run, strategy, run_settings, seed, key, blob)
    result = PropertyResult(spec.name, backend, chosen, seed, database_key=key)
    result.reference = run.options.get("reference") is not None
    result.database = _database_label(run_settings.database)
    result.blob = blob.decode() if isinstance(blob, bytes) else blob
    started = time.perf_counter()
    failure = _execute(test, result)
    result.seconds = time.perf_counter() - started
    _collect(result, run)
    if isinstance(failure, (_Mismatch, Flaky)) and run.last is not None:
        _explain_failure(result, run, dtypes, strategy)
    elif failure is not None:
        raise failure  # the cases strategy or hypothesis itself failed: not a verdict on the layer
    return result


def _check_options(spec: LayerSpec, options: dict[str, Any]) -> dict[str, Any]:
    """The torch reference is off unless asked for (``reference=True`` means the layer's own):
    on CPU it costs 10-100x a projection check for a small convolution."""
    reference = options.get("reference")
    return {**options, "reference": spec.reference if reference is True else reference or None}


def _settings(profile: str, max_examples: int | None, database: Any) -> settings:
    overrides: dict[str, Any] = {"deadline": None, "print_blob": True}
    overrides["phases"] = profiles.PHASES
    overrides["report_multiple_bugs"] = False
    if _examples(max_examples) is not None:
        overrides["max_examples"] = max_examples
    if database is False:
        overrides["database"] = None
    elif isinstance(database, ExampleDatabase):
        overrides["database"] = database
    elif database is not None and database is not True:
        overrides["database"] = profiles.database(database)
    return settings(profiles.get_profile(profile), **overrides)


def _examples(value: Any) -> int | None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise InvalidArgument(f"max_examples={value!r} must be a positive int (or None)")
    return value


def _database_label(db: Any) -> str | None:
    if db is None:
        return None
    path = getattr(db, "path", None)
    return str(path) if path is not None else type(db).__name__


def _hypothesis_test(
    run: _Run,
    strategy: st.SearchStrategy[Case],
    run_settings: settings,
    seed: int,
    key: str,
    blob: str | bytes | None,
) -> Callable[[], None]:
    def property_of_layer(case: Case) -> None:
        run(case)

    # settings last: @seed alone would switch the example database off
    test = run_settings(hypothesis_seed(seed)(given(case=strategy)(property_of_layer)))
    test._hypothesis_internal_database_key = key.encode()  # type: ignore[attr-defined]
    if blob is not None:
        text = blob.decode() if isinstance(blob, bytes) else blob
        test = reproduce_failure(hypothesis_version, text.encode())(test)
    return test


def _execute(test: Callable[[], None], result: PropertyResult) -> BaseException | None:
    """Run the hypothesis test; the exception it ends with, or None when every example passed."""
    try:
        with with_reporter(_quiet):  # the result says everything hypothesis would print
            test()
    except _Mismatch as exc:
        _read_blob(result, exc)
        return exc
    except Flaky as exc:
        result.notes.append(f"hypothesis reported a flaky failure: {str(exc).splitlines()[0]}")
        _read_blob(result, exc)
        return exc
    except DidNotReproduce as exc:
        result.notes.append(f"the blob did not reproduce a failure: {exc}")
    except Exception as exc:
        return exc
    return None


def _quiet(text: object) -> None:
    pass


_BLOB = re.compile(r"(@reproduce_failure\((.*?)\))")


def _read_blob(result: PropertyResult, exc: BaseException) -> None:
    for note in getattr(exc, "__notes__", []):
        found = _BLOB.search(note)
        if found:
            result.reproduce = found.group(1)
            _, blob = ast.literal_eval(f"({found.group(2)})")
            result.blob = blob.decode() if isinstance(blob, bytes) else str(blob)


def _collect(result: PropertyResult, run: _Run) -> None:
    result.examples, result.failing_examples = run.examples, run.failing
    result.kinks, result.max_rel_err, result.check_seconds = run.kinks, run.max_rel_err, run.seconds
    result.max_abs_err = run.max_abs_err


def _explain_failure(result: PropertyResult, run: _Run, dtypes: Sequence[str] | None, strategy: Any) -> None:
    case, found = run.last  # type: ignore[misc]  # the last failure is hypothesis' final replay
    result.case, result.search_check = case, found
    result.description = describe_case(run.spec, case)
    options = {**run.options, "mode": "elementwise", "seed": _case_seed(case)}
    recheck = check_case(run.spec, case, **options)
    result.check = recheck if not recheck.passed else found
    if recheck.passed:
        result.notes.append(f"the element-wise re-check passed; the {run.mode} check failed: {found.cause}")
    _diagnose_larger(result, run, options, strategy)
    args = [repr(replay_target(run.spec)), f"backend={result.backend!r}"]  # 'module:name': self-contained
    if dtypes:
        args.append(f"dtypes={tuple(dtypes)!r}")
    if result.blob:
        args.append(f"blob={result.blob!r}")
    result.replay = f"gk.property_check({', '.join(args)})"


LARGER_EXAMPLES = 50  # cases drawn when looking for a larger failing one to diagnose
LARGER_ELEMENTS = 12  # ... in which the failing input has at least this many elements


def _diagnose_larger(result: PropertyResult, run: _Run, options: dict[str, Any], strategy: Any) -> None:
    """A minimal case is often too small to tell bug patterns apart (a 1x1 kernel is its own
    rotation, two numbers fit any ratio), so it names none. Then more cases of the same layer
    and dtypes are drawn, without shrinking, until one fails whose failing input is large
    enough, and that one is diagnosed; the report says it comes from a larger case."""
    check = result.check
    if check is None or check.patterns:
        return
    failing = [r.name for r in check.inputs if not r.passed]
    if not failing:
        return
    case = _larger_failing_case(run, strategy, failing[0], result.seed)
    if case is None:
        return
    larger = check_case(run.spec, case, **{**options, "mode": "auto", "seed": _case_seed(case)})
    if larger.patterns and not larger.passed:
        result.larger_check = larger
        result.notes.append(
            f"on a larger failing case ({describe_case(run.spec, case)}), the cause: {larger.cause}"
        )


class _Found(Exception):
    pass


def _larger_failing_case(run: _Run, strategy: Any, name: str, seed: int) -> Case | None:
    found: list[Case] = []
    names = run.spec.input_names

    def large_enough(case: Case) -> bool:
        index = names.index(name) if name in names else -1
        value = case.inputs[index] if 0 <= index < len(case.inputs) else None
        return value is not None and int(np.prod(getattr(value, "shape", ()))) >= LARGER_ELEMENTS

    def search(case: Case) -> None:
        if found:
            raise _Found  # hypothesis replays the failing example: fail again, not flakily
        if not large_enough(case):
            return
        options = {**run.options, "mode": run.mode, "seed": _case_seed(case)}
        if not check_case(run.spec, case, **options).passed:
            found.append(case)
            raise _Found

    test = settings(max_examples=LARGER_EXAMPLES, phases=[Phase.generate], database=None, deadline=None)(
        hypothesis_seed(seed + 1)(given(case=strategy)(search))
    )
    with contextlib.suppress(_Found), with_reporter(_quiet):
        test()
    return found[0] if found else None


# -- the decorator ------------------------------------------------------------------------------


def given_layer(
    layer: Any,
    *,
    backend: str = "numpy",
    dtypes: Sequence[str] | None = None,
    max_examples: int | None = None,
    argname: str = "case",
    settings_: settings | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``@given(case=layer_cases(layer, ...))`` for hand-written tests of a layer.

    The test receives a drawn ``gk.Case`` as ``case`` (or ``argname``) and checks it however it
    likes. It composes like ``@given``: other arguments, pytest fixtures and parametrize,
    ``@example``, ``@seed`` and ``@reproduce_failure`` work as usual. It applies ``@settings``
    itself: the loaded profile (or ``settings_``) with ``deadline=None`` (a gradient check's
    first call may import torch) and ``max_examples`` if given, so pass other settings as
    ``settings_=`` rather than stacking a second ``@settings``. Under pytest the test carries
    the ``gradcheck`` marker.

    Parameters
    ----------
    layer : LayerSpec, str or class
        A spec, a registered layer's name or a class decorated with ``gk.register``.
    backend : str, default "numpy"
        ``numpy``, ``torch``, ``torch:cuda``, ``cupy`` or ``jax``.
    dtypes : sequence of str, optional
        Cast every drawn case to one of these floating dtypes (see ``gk.layer_cases``).
    max_examples : int, optional
        Cases to draw (default: the settings').
    argname : str, default "case"
        The test's parameter that receives the case.
    settings_ : hypothesis.settings, optional
        Settings to start from instead of the loaded profile.

    Returns
    -------
    callable
        The decorator.

    Raises
    ------
    InvalidArgument
        As ``gk.layer_cases``, or for a ``max_examples`` that is not a positive int.

    Examples
    --------
    >>> import numpy as np, gradcheck_kit as gk
    >>> from hypothesis import settings
    >>> spec = gk.register("tanh", forward=np.tanh, backward=lambda dy, x: (dy * (1 - np.tanh(x) ** 2),),
    ...                    cases=[gk.Case((np.linspace(-1.0, 1.0, 4),))], into=gk.Registry())
    >>> @gk.given_layer(spec, max_examples=2, settings_=settings(database=None))
    ... def test_tanh_backward(case):
    ...     gk.check_case(spec, case, mode="projection").raise_for_failure()
    >>> test_tanh_backward()
    """
    strategy = layer_cases(layer, backend=backend, dtypes=dtypes)
    _examples(max_examples)

    def decorate(test: Callable[..., Any]) -> Callable[..., Any]:
        wrapped = given(**{argname: strategy})(test)
        extra: dict[str, Any] = {"deadline": None}
        if max_examples is not None:
            extra["max_examples"] = max_examples
        return _marked(settings(settings_ or settings.default, **extra)(wrapped))

    return decorate


def _marked(test: Callable[..., Any]) -> Callable[..., Any]:
    """Under pytest, a ``given_layer`` test carries the ``gradcheck`` marker (``-m gradcheck``)."""
    pytest = sys.modules.get("pytest")
    return pytest.mark.gradcheck(test) if pytest is not None else test
