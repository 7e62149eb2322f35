"""Exceptions raised by gradcheck-kit itself (never by the layers it checks)."""

from __future__ import annotations

from typing import Any


class GradcheckError(Exception):
    """Base class of every error gradcheck-kit raises on purpose."""


class InvalidArgument(GradcheckError, ValueError):
    """A caller passed a value gradcheck-kit cannot work with; the message names it and the rule."""


class RegistrationError(GradcheckError):
    """A layer could not be registered; ``layer`` is its name, ``obj`` what was offered."""

    def __init__(self, message: str, *, layer: str, obj: Any = None) -> None:
        super().__init__(f"layer {layer!r}: {message}")
        self.layer = layer
        self.obj = obj


class GradientMismatch(GradcheckError, AssertionError):
    """A check failed; the message is the full human report, ``result`` the structured one."""

    def __init__(self, report: str, result: Any = None) -> None:
        super().__init__(report)
        self.result = result


class CheckTimeout(GradcheckError):
    """A layer call ran longer than the per-check time limit."""
