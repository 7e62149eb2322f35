"""Numbers and values as reports show them: one formatting for text, tables and JSON."""

from __future__ import annotations

import math
import numbers
import re
from typing import Any

# Characters that act on a terminal or hide text instead of showing: C0/C1 controls but newline
# and tab (ESC starts colour, clear-screen, OSC window titles and OSC-8 links; BEL rings; NUL
# cuts C strings), DEL, lone surrogates (they cannot even be encoded), bidirectional overrides
# and isolates (they reorder what is shown), and the Unicode line separators.
_HIDDEN = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]")


def finite_or_none(value: Any) -> float | None:
    """``value`` as a float when it is a finite real number (NumPy's included), else None
    (JSON's null): not a bool, not a string."""
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def num(value: Any, digits: int = 3) -> str:
    """``1.23e-05``; ``-`` for a value that was not measured (None) or is not finite."""
    number = finite_or_none(value)
    return "-" if number is None else f"{number:.{digits}g}"


def visible(text: Any) -> str:
    """``text`` with every control character written out as its escape (``\\x1b``,
    ``\\u202e``): user text (layer names, exception messages) reaches terminals and reports
    shown as it is, never acting on them. Newlines and tabs stay."""
    return _HIDDEN.sub(_escape, str(text))


def _escape(found: re.Match[str]) -> str:
    code = ord(found.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def one_line(text: str, limit: int = 240) -> str:
    """``text`` with its whitespace folded and control characters made visible, cut to
    ``limit`` characters."""
    line = " ".join(visible(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def jsonable(value: Any) -> Any:
    """``value`` with NumPy arrays and scalars as lists and numbers, non-finite floats as None,
    tuples as lists, keys as strings, and anything else as its repr."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if hasattr(value, "tolist") and hasattr(value, "dtype"):  # NumPy arrays and scalars
        return jsonable(value.tolist())
    if isinstance(value, float):
        return finite_or_none(value)
    if isinstance(value, (str, int, bool)) or value is None:
        return value
    return repr(value)
