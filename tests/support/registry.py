"""A fixture for test modules whose in-process runs register throwaway layers in the global
registry: ``from tests.support.registry import registry_restored`` and mark it autouse there."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import gradcheck_kit as gk


@pytest.fixture(autouse=True)
def registry_restored() -> Iterator[None]:
    """Take out, after each test, the layers it registered."""
    before = set(gk.registry.names())
    yield
    for name in set(gk.registry.names()) - before:
        gk.registry.remove(name)
