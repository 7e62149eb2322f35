"""The tree reads the way a check runs: the layering contracts hold (import-linter), there is no
import cycle, modules stay short, and the public API is the stated one."""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

import pytest

import gradcheck_kit as gk

PACKAGE = Path(gk.__file__).parent
PUBLIC_MODULES = ("errors", "registry", "strategies", "profiles", "report", "cli", "pytest_plugin")


def test_the_layering_contracts_of_pyproject_hold(monkeypatch, capsys):
    cli = pytest.importorskip("importlinter.cli")
    monkeypatch.chdir(PACKAGE.parent)
    code = cli.lint_imports(config_filename="pyproject.toml", no_cache=True, no_logo=True)
    out = capsys.readouterr().out
    assert code == 0, out
    assert " 0 broken" in out


def test_no_module_of_the_package_takes_part_in_an_import_cycle():
    grimp = pytest.importorskip("grimp")
    graph = grimp.build_graph("gradcheck_kit", include_external_packages=False)
    cycles = [
        (a, b)
        for a in graph.modules
        for b in graph.find_modules_directly_imported_by(a)
        if a != "gradcheck_kit" and graph.chain_exists(importer=b, imported=a)
    ]
    assert cycles == []


def _code_lines(path: Path) -> int:
    """Lines of a module outside its docstrings (the numpydoc API reference lives in those)."""
    text = path.read_text()
    documented = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
    docstrings = [
        node.body[0]
        for node in ast.walk(ast.parse(text))
        if isinstance(node, documented) and ast.get_docstring(node, clean=False) is not None
    ]
    return len(text.splitlines()) - sum(d.end_lineno - d.lineno + 1 for d in docstrings)


def test_modules_stay_under_500_lines_of_code():
    long = {p.relative_to(PACKAGE): n for p in PACKAGE.rglob("*.py") if (n := _code_lines(p)) > 500}
    assert long == {}


def test_every_module_outside_the_public_ones_is_private():
    names = {m.name for m in pkgutil.iter_modules([str(PACKAGE)])}
    assert {n for n in names if not n.startswith("_")} == set(PUBLIC_MODULES)


def test_the_public_api_is_what_all_lists_and_every_name_resolves():
    assert sorted(gk.__all__) == sorted(dir(gk))
    for name in gk.__all__:
        assert getattr(gk, name) is not None
    for module in ("report", "strategies", "profiles", "registry", "errors"):
        public = importlib.import_module(f"gradcheck_kit.{module}")
        for name in getattr(public, "__all__", []):
            assert hasattr(public, name), f"gradcheck_kit.{module}.{name}"
