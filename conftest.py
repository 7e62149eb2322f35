"""Loads the hypothesis profile named by ``$HYPOTHESIS_PROFILE`` (``dev``, ``ci`` or
``thorough``; default ``ci``) with the example database at ``$GRADCHECK_DATABASE``
(default ``.hypothesis/gradcheck``): see ``gradcheck_kit.profiles``."""

from __future__ import annotations

import pytest

from gradcheck_kit import profiles

profiles.load_profile()


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups
def pytest_collection_modifyitems(items: list) -> None:
    """Under pytest-xdist's ``--dist loadgroup`` (the README's test command), a file's tests that
    use its module-scoped fixtures run on one worker, so each fixture's setup (a CLI run over the
    hostile zoo, a pytest session) is paid once, not once per worker."""
    for item in items:
        info = getattr(item, "_fixtureinfo", None)
        if info is None:
            continue
        if any(
            (info.name2fixturedefs.get(name) or (None,))[-1] is not None
            and info.name2fixturedefs[name][-1].scope == "module"
            for name in info.names_closure
        ):
            item.add_marker(pytest.mark.xdist_group(f"{item.nodeid.split('::')[0]}:module-fixtures"))
