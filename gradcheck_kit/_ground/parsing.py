"""Numbers typed on a command line or in an ini file, read strictly: ASCII digits only.

Python's ``int`` and ``float`` accept far more than a user means: other scripts' digits
(``"١٢"``), underscores (``"1_000"``), surrounding spaces; and ``str.isdigit`` says yes to
``"²"``, which ``int`` then refuses with a traceback. These return None for anything but plain
ASCII, so that every option can refuse it with a usage error naming the value. Standard library
only: the pytest plugin reads its options with them in every run.
"""

from __future__ import annotations

import math
import re

_INTEGER = re.compile(r"[0-9]+", re.ASCII)
_DECIMAL = re.compile(r"[+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?", re.ASCII)
_INFINITY = ("inf", "+inf", "infinity", "+infinity")


def ascii_int(text: str) -> int | None:
    """``int(text)`` for a string of ASCII digits (``"0"``, ``"12"``), else None."""
    return int(text) if isinstance(text, str) and _INTEGER.fullmatch(text) else None


def ascii_float(text: str, *, infinite: bool = False) -> float | None:
    """A non-negative decimal number in ASCII (``"0.5"``, ``"1e-3"``, ``".5"``), else None;
    ``inf`` (``infinity``) too when ``infinite``."""
    if not isinstance(text, str):
        return None
    if infinite and text.lower() in _INFINITY:
        return math.inf
    if not _DECIMAL.fullmatch(text):
        return None
    value = float(text)
    return value if math.isfinite(value) else (math.inf if infinite else None)
