"""What a wheel ships beyond the code: the PEP 561 marker ``py.typed`` (declared as package data,
so type checkers read the package's hints) and the licence as a PEP 639 expression."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import gradcheck_kit

ROOT = Path(__file__).resolve().parents[1]


def _pyproject() -> dict[str, Any]:
    try:
        import tomllib
    except ImportError:  # Python 3.10
        tomllib = pytest.importorskip("tomli")
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_the_package_ships_py_typed_declared_as_package_data():
    assert (Path(gradcheck_kit.__file__).parent / "py.typed").is_file()
    assert "py.typed" in _pyproject()["tool"]["setuptools"]["package-data"]["gradcheck_kit"]


def test_the_licence_is_an_spdx_expression_with_its_file_for_a_setuptools_that_reads_pep_639():
    project = _pyproject()
    assert project["project"]["license"] == "MIT"
    assert project["project"]["license-files"] == ["LICENSE"] and (ROOT / "LICENSE").is_file()
    assert "setuptools>=77" in project["build-system"]["requires"]  # the first to read PEP 639
