"""Numbers and values as reports show them: one formatting for text, tables and JSON."""

from __future__ import annotations

import math
import numbers
from typing import Any


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


def one_line(text: str, limit: int = 240) -> str:
    """``text`` with its whitespace folded, cut to ``limit`` characters."""
    line = " ".join(str(text).split())
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
