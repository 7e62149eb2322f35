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
    """Where failing examples are kept: ``path``, else ``$GRADCHECK_DATABASE``, else the default.

    Parameters
    ----------
    path : str or os.PathLike, optional
        A folder, or ``none``/``off``/empty for no database (default: ``$GRADCHECK_DATABASE``,
        else ``.hypothesis/gradcheck``).

    Returns
    -------
    pathlib.Path or None
        The folder; None when the chosen value is ``none``, ``off`` or empty.

    Examples
    --------
    >>> from gradcheck_kit import profiles
    >>> profiles.database_path("off") is None, profiles.database_path("ci-db").name
    (True, 'ci-db')
    """
    chosen = os.fspath(path) if path is not None else os.environ.get(DATABASE_ENV, str(DEFAULT_DATABASE))
    return None if chosen.strip().lower() in _OFF else Path(chosen)


def database(path: str | os.PathLike[str] | None = None) -> ExampleDatabase | None:
    """A ``DirectoryBasedExampleDatabase`` at ``database_path(path)`` (None when turned off).

    Parameters
    ----------
    path : str or os.PathLike, optional
        As for ``database_path``.

    Returns
    -------
    hypothesis.database.ExampleDatabase or None

    Examples
    --------
    >>> import tempfile
    >>> from gradcheck_kit import profiles
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     print(type(profiles.database(folder)).__name__, profiles.database("none"))
    DirectoryBasedExampleDatabase None
    """
    where = database_path(path)
    return None if where is None else DirectoryBasedExampleDatabase(str(where))


_registered: list[bool] = []


def register_profiles(*, database_at: str | os.PathLike[str] | None = None) -> None:
    """(Re-)register the profiles ``dev``, ``ci`` and ``thorough`` with hypothesis.

    Ours replace hypothesis' built-in ``ci`` profile; re-registering the loaded profile changes
    hypothesis' default settings too.

    Parameters
    ----------
    database_at : str or os.PathLike, optional
        Where their example database lives (see ``database_path``).

    Examples
    --------
    >>> from hypothesis import settings
    >>> from gradcheck_kit import profiles
    >>> profiles.register_profiles(database_at="none")
    >>> settings.get_profile("thorough").max_examples, settings.get_profile("thorough").database
    (500, None)
    >>> profiles.register_profiles()  # back to the default database
    """
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
    """The profile to use: ``name``, else ``$HYPOTHESIS_PROFILE``, else ``ci``.

    Parameters
    ----------
    name : str, optional
        ``dev``, ``ci`` or ``thorough``.

    Returns
    -------
    str
        The chosen name.

    Raises
    ------
    InvalidArgument
        For a name (given, or from the environment) that is none of ours.

    Examples
    --------
    >>> from gradcheck_kit import profiles
    >>> profiles.profile_name("dev")
    'dev'
    >>> profiles.profile_name("fast")
    Traceback (most recent call last):
    ...
    gradcheck_kit.errors.InvalidArgument: profile='fast' is unknown; accepted: dev, ci, thorough
    """
    chosen = name if name is not None else os.environ.get(PROFILE_ENV, DEFAULT_PROFILE)
    if chosen not in PROFILES:
        raise InvalidArgument(f"profile={chosen!r} is unknown; accepted: {', '.join(PROFILES)}")
    return chosen


def load_profile(name: str | None = None, *, database_at: str | os.PathLike[str] | None = None) -> str:
    """Register the profiles and make ``profile_name(name)`` hypothesis' default.

    Call ``load_profile()`` from a ``conftest.py`` (as this project's does) to pick the profile
    from ``$HYPOTHESIS_PROFILE``.

    Parameters
    ----------
    name : str, optional
        ``dev``, ``ci`` or ``thorough`` (default: ``$HYPOTHESIS_PROFILE``, else ``ci``).
    database_at : str or os.PathLike, optional
        Where the example database lives (see ``database_path``).

    Returns
    -------
    str
        The loaded profile's name.

    Raises
    ------
    InvalidArgument
        As ``profile_name``.

    Examples
    --------
    >>> from hypothesis import settings
    >>> from gradcheck_kit import profiles
    >>> profiles.load_profile("dev", database_at="none"), settings.default.max_examples
    ('dev', 20)
    >>> _ = profiles.load_profile()  # back to $HYPOTHESIS_PROFILE (default ci), as conftest.py does
    """
    chosen = profile_name(name)
    register_profiles(database_at=database_at)
    settings.load_profile(chosen)
    return chosen


def get_profile(name: str | None = None) -> settings:
    """The settings of one of our profiles (``profile_name(name)``), registered on first use.

    Parameters
    ----------
    name : str, optional
        ``dev``, ``ci`` or ``thorough`` (default: ``$HYPOTHESIS_PROFILE``, else ``ci``).

    Returns
    -------
    hypothesis.settings

    Raises
    ------
    InvalidArgument
        As ``profile_name``.

    Examples
    --------
    >>> from gradcheck_kit import profiles
    >>> profiles.get_profile("thorough").max_examples, profiles.get_profile("dev").deadline
    (500, None)
    """
    chosen = profile_name(name)
    if not _registered:
        register_profiles()
    return settings.get_profile(chosen)
