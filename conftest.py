"""Loads the hypothesis profile named by ``$HYPOTHESIS_PROFILE`` (``dev``, ``ci`` or
``thorough``; default ``ci``) with the example database at ``$GRADCHECK_DATABASE``
(default ``.hypothesis/gradcheck``): see ``gradcheck_kit.profiles``."""

from __future__ import annotations

from gradcheck_kit import profiles

profiles.load_profile()


def pytest_collection_modifyitems(items: list) -> None:
    """Under pytest-xdist's ``--dist loadgroup`` (the README's test command), tests that share
    a module-scoped fixture run on one worker, so its setup (a CLI run over the hostile zoo, a
    pytest session) is paid once, not once per worker."""
    import pytest

    for item in items:
        info = getattr(item, "_fixtureinfo", None)
        if info is None:
            continue
        for name in info.names_closure:
            definitions = info.name2fixturedefs.get(name) or ()
            if definitions and definitions[-1].scope == "module":
                item.add_marker(pytest.mark.xdist_group(f"{item.nodeid.split('::')[0]}:{name}"))
                break
