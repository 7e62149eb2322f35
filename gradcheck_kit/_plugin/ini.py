"""The plugin's ini keys on their own (entry point ``pytest11: gradcheck_kit_ini``).

``-p no:gradcheck_kit`` disables the plugin, and with it the registration of ``gradcheck_modules``
and the other ``gradcheck_*`` keys a project's ini file sets: pytest would then warn "Unknown
config option: gradcheck_modules" (an error under ``--strict-config``). This plugin, loaded
even then, registers those keys and nothing else: no options, no items, no hooks beyond this
one. ``-p no:gradcheck_kit_ini`` disables it too.
"""

from __future__ import annotations

import pytest

from .settings import add_ini


def pytest_addoption(parser: pytest.Parser) -> None:
    add_ini(parser)
