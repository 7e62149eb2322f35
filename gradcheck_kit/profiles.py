"""Hypothesis settings profiles for property tests: ``dev``, ``ci`` and ``thorough``.

Every profile has ``deadline=None`` (a gradient check's cost depends on the drawn shape, not on
a regression), prints the ``@reproduce_failure`` blob, skips hypothesis' ``explain`` phase (it
re-runs the failing example many times) and keeps failing examples in a directory database, so a
failure found once is replayed first on the next run. The database lives at
``$GRADCHECK_DATABASE`` (``none`` turns it off) or ``.hypothesis/gradcheck``.

The top-level ``conftest.py`` loads the profile named by ``$HYPOTHESIS_PROFILE`` (default ``ci``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, settings
from hypothesis.database import DirectoryBasedExampleDatabase, ExampleDatabase

from .errors import InvalidArgument

PROFILES: dict[str, int] = {"dev": 20, "ci": 50, "thorough": 500}  # name -> max_examples
DEFAULT_PROFILE = "ci"
DATABASE_ENV = "GRADCHECK_DATABASE"
PROFILE_ENV = "HYPOTHESIS_PROFILE"
DEFAULT_DATABASE = Path(".hypothesis") / "gradcheck"
PHASES = (Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink)
_OFF = ("", "none", "off")


def database_path(path: str | os.PathLike[str] | None = None) -> Path | None:
    """Where failing examples are kept: ``path``, else ``$GRADCHECK_DATABASE``, else
    ``.hypothesis/gradcheck``; None when the chosen value is ``none``/``off``/empty."""
    chosen = os.fspath(path) if path is not None else os.environ.get(DATABASE_ENV, str(DEFAULT_DATABASE))
    return None if chosen.strip().lower() in _OFF else Path(chosen)


def database(path: str | os.PathLike[str] | None = None) -> ExampleDatabase | None:
    """A ``DirectoryBasedExampleDatabase`` at ``database_path(path)`` (None when turned off)."""
    where = database_path(path)
    return None if where is None else DirectoryBasedExampleDatabase(str(where))


_registered: list[bool] = []


def register_profiles(*, database_at: str | os.PathLike[str] | None = None) -> None:
    """(Re-)register ``dev``, ``ci`` and ``thorough`` with the database at ``database_at``
    (ours replace hypothesis' built-in ``ci`` profile)."""
    db = database(database_at)
    for name, examples in PROFILES.items():
        settings.register_profile(name, **_common(db), max_examples=examples)
    _registered[:] = [True]


def _common(db: ExampleDatabase | None) -> dict[str, Any]:
    return {
        "deadline": None,
        "print_blob": True,
        "database": db,
        "phases": PHASES,
        "report_multiple_bugs": False,
        "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
    }


def profile_name(name: str | None = None) -> str:
    """``name``, else ``$HYPOTHESIS_PROFILE``, else ``ci``; unknown names raise InvalidArgument."""
    chosen = name if name is not None else os.environ.get(PROFILE_ENV, DEFAULT_PROFILE)
    if chosen not in PROFILES:
        raise InvalidArgument(f"profile={chosen!r} is unknown; accepted: {', '.join(PROFILES)}")
    return chosen


def load_profile(name: str | None = None, *, database_at: str | os.PathLike[str] | None = None) -> str:
    """Register the profiles and make ``profile_name(name)`` hypothesis' default; returns it."""
    chosen = profile_name(name)
    register_profiles(database_at=database_at)
    settings.load_profile(chosen)
    return chosen


def get_profile(name: str | None = None) -> settings:
    """The settings of one of our profiles (``profile_name(name)``), registered on first use."""
    chosen = profile_name(name)
    if not _registered:
        register_profiles()
    return settings.get_profile(chosen)
