"""Where a check is: the stage of the last layer call (``forward``, ``backward``, ``forward
(finite differences)``) and the harness phase before it.

Nothing listens by default, and a mark then costs one comparison. A worker process of the CLI or
the pytest plugin installs a listener that writes each mark into memory its parent can read, so
that a layer which kills its process (a segfault, ``os._exit``) or hangs past the time limit is
reported with the last stage it reached.
"""

from __future__ import annotations

from collections.abc import Callable

_listener: Callable[[str], None] | None = None


def mark(stage: str) -> None:
    """Record that the check entered ``stage`` (one short line)."""
    if _listener is not None:
        _listener(stage)


def listen(listener: Callable[[str], None] | None) -> None:
    """Send every mark to ``listener`` from now on (None: to nobody)."""
    global _listener
    _listener = listener
