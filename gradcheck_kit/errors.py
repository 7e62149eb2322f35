"""Exceptions raised by gradcheck-kit itself (never by the layers it checks)."""

from __future__ import annotations

from typing import Any


class GradcheckError(Exception):
    """Base class of every error gradcheck-kit raises on purpose.

    Whatever a checked layer raises is reported as a finding of the check, not raised.

    Examples
    --------
    >>> import gradcheck_kit as gk
    >>> all(issubclass(e, gk.GradcheckError) for e in (gk.InvalidArgument, gk.GradientMismatch))
    True
    """


class InvalidArgument(GradcheckError, ValueError):
    """A caller passed a value gradcheck-kit cannot work with.

    The message names the value, the rule it breaks and what is accepted. It is a ``ValueError``.

    Examples
    --------
    >>> import gradcheck_kit as gk
    >>> try:
    ...     gk.Registry().get("conv2d")
    ... except gk.InvalidArgument as exc:
    ...     print(exc)
    layer 'conv2d' is not registered; known: none registered
    """


class RegistrationError(GradcheckError):
    """A layer could not be registered.

    Parameters
    ----------
    message : str
        What is wrong; the exception's text is ``layer '<layer>': <message>``.
    layer : str
        The name the layer was to be registered under.
    obj : object, optional
        What was offered (the callable, class or cases at fault).

    Attributes
    ----------
    layer : str
        The layer's name.
    obj : object or None
        What was offered.

    Examples
    --------
    >>> import numpy as np, gradcheck_kit as gk
    >>> try:
    ...     gk.register("tanh", forward=np.tanh, backward="dtanh", into=gk.Registry())
    ... except gk.RegistrationError as exc:
    ...     print(exc, "|", exc.obj)
    layer 'tanh': backward='dtanh' is not callable | dtanh
    """

    def __init__(self, message: str, *, layer: str, obj: Any = None) -> None:
        super().__init__(f"layer {layer!r}: {message}")
        self.layer = layer
        self.obj = obj


class GradientMismatch(GradcheckError, AssertionError):
    """A check failed; raised by ``raise_for_failure``.

    It is an ``AssertionError``, so pytest reports it as a test failure.

    Parameters
    ----------
    report : str
        The full human report (the exception's text).
    result : CheckResult or PropertyResult, optional
        The structured result that failed.

    Attributes
    ----------
    result : CheckResult or PropertyResult or None
        The structured result that failed.

    Examples
    --------
    >>> import numpy as np, gradcheck_kit as gk
    >>> result = gk.check(np.tanh, lambda dy, x: (dy,), (np.linspace(-1.0, 1.0, 3),))
    >>> try:
    ...     result.raise_for_failure()
    ... except gk.GradientMismatch as exc:
    ...     print(str(exc).splitlines()[0], exc.result is result)
    gradcheck tanh [numpy] FAILED True
    """

    def __init__(self, report: str, result: Any = None) -> None:
        super().__init__(report)
        self.result = result


class CheckTimeout(GradcheckError):
    """A layer call ran longer than the per-check time limit.

    ``gk.check(..., timeout=)`` raises it inside the layer's call and reports it as a
    ``timeout`` finding: callers of ``gk.check`` see the finding, not the exception.

    Examples
    --------
    >>> import time, numpy as np, gradcheck_kit as gk
    >>> def hangs(x):
    ...     time.sleep(10)
    >>> result = gk.check(hangs, lambda dy, x: (dy,), (np.ones(2),), timeout=0.05)
    >>> print(result.finding("timeout").message)
    the check ran longer than timeout=0.05 s (calls so far: ...); the layer hangs or is too slow
    """
