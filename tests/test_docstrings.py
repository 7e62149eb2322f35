"""The API reference is generated from docstrings (mkdocstrings, numpy style), so every public
function, class, method and property has a numpydoc docstring with the sections its signature
calls for, and every example in them runs.

Public means: the names in ``gradcheck_kit.__all__`` and ``gradcheck_kit.report.__all__``, the
functions and classes that ``gradcheck_kit.strategies``, ``profiles``, ``registry`` and ``errors``
define themselves, the classes public functions return (``from_layer_object``'s pair), and the
public methods and properties those classes define.
"""

from __future__ import annotations

import builtins
import dataclasses
import doctest
import importlib
import inspect
import re
import typing
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import gradcheck_kit as gk

MODULES = ("strategies", "profiles", "registry", "errors")
KNOWN_EXCEPTIONS: set[str] = set()
HEADER = re.compile(r"^(?P<title>[A-Z][A-Za-z ]*)\n(?P<dashes>-+)[ \t]*$", re.MULTILINE)
ENTRY = re.compile(r"^(?P<names>[*\w][\w, *.]*?)(?:\s:\s.*|\s*:)?$")
RAISE = re.compile(r"\braise\s+(?P<name>[A-Za-z_][\w.]*)\(")


# -- what is public -------------------------------------------------------------------------------


def _module(name: str) -> Any:
    return importlib.import_module(f"gradcheck_kit.{name}")  # the module: gk.registry is an instance


def _is_api(obj: Any) -> bool:
    return inspect.isfunction(obj) or inspect.isclass(obj)


def _top_level() -> dict[str, Any]:
    """Public path -> object, each object once (under its first path: ``gk.Case``, not
    ``gradcheck_kit.registry.Case``)."""
    found = {f"gradcheck_kit.{n}": getattr(gk, n) for n in gk.__all__}
    report = _module("report")
    found.update({f"gradcheck_kit.report.{n}": getattr(report, n) for n in report.__all__})
    for name in MODULES:
        module = _module(name)
        found.update(
            (f"{module.__name__}.{n}", obj)
            for n, obj in vars(module).items()
            if not n.startswith("_") and _is_api(obj) and obj.__module__ == module.__name__
        )
    found.update(_returned_classes(found))
    unique: dict[int, tuple[str, Any]] = {}
    for path, obj in found.items():
        if _is_api(obj) and path not in KNOWN_EXCEPTIONS:
            unique.setdefault(id(obj), (path, obj))
    return dict(unique.values())


def _returned_classes(found: dict[str, Any]) -> dict[str, Any]:
    """Classes of the package that public functions return, under ``<function>().``"""
    returned = {}
    for path, obj in found.items():
        if not inspect.isfunction(obj) or path in KNOWN_EXCEPTIONS:
            continue
        try:
            kind = typing.get_type_hints(obj).get("return")
        except Exception:  # annotations naming what only type checkers import
            continue
        if inspect.isclass(kind) and kind.__module__.startswith("gradcheck_kit."):
            returned[f"{path}().{kind.__name__}"] = kind
    return returned


def _members(path: str, cls: type) -> Iterator[tuple[str, Any]]:
    """The public methods and properties ``cls`` defines itself (not inherited ones)."""
    for name, attr in vars(cls).items():
        if name.startswith("_"):
            continue
        if isinstance(attr, (staticmethod, classmethod)):
            attr = attr.__func__
        if isinstance(attr, property) or inspect.isfunction(attr):
            yield f"{path}.{name}", attr


def _api(top_level: dict[str, Any]) -> dict[str, Any]:
    objects = dict(top_level)
    for path, obj in top_level.items():
        if inspect.isclass(obj):
            objects.update(_members(path, obj))
    return objects


TOP_LEVEL = _top_level()  # functions and classes: they need an example
API = _api(TOP_LEVEL)  # and their methods and properties


# -- reading a numpydoc docstring -------------------------------------------------------------------


def _own_doc(obj: Any) -> str:
    """The object's own docstring: a class's is not inherited, nor the signature dataclasses and
    named tuples write in place of a missing one."""
    if isinstance(obj, property):
        obj = obj.fget
    doc = vars(obj).get("__doc__") if inspect.isclass(obj) else obj.__doc__
    if not doc or (inspect.isclass(obj) and doc.startswith(f"{obj.__name__}(")):
        return ""
    return inspect.cleandoc(doc)


def _sections(doc: str) -> tuple[str, dict[str, str]]:
    """(summary, {header: body}) of a numpydoc docstring."""
    headers = list(HEADER.finditer(doc))
    summary = doc[: headers[0].start()] if headers else doc
    bodies = {}
    for this, following in zip(headers, [*headers[1:], None]):
        end = following.start() if following is not None else len(doc)
        bodies[this["title"]] = doc[this.end() : end]
    return summary.strip(), bodies


def _entries(body: str) -> list[str]:
    """The unindented lines of a section: ``name : type`` (Parameters) or ``type`` (Raises)."""
    return [line.strip() for line in body.splitlines() if line.strip() and not line[0].isspace()]


def _names(body: str) -> set[str]:
    """The parameter names a Parameters or Attributes section documents (``rtol, atol : float``
    documents two, ``**options`` one)."""
    names = set()
    for line in _entries(body):
        found = ENTRY.match(line)
        if found:
            names.update(n.strip().lstrip("*") for n in found["names"].split(","))
    return names


def _function(obj: Any) -> Callable[..., Any] | None:
    if isinstance(obj, property):
        return None
    return obj if inspect.isfunction(obj) else None


def _parameters(obj: Any) -> list[str]:
    """What a Parameters section must name: a function's parameters (without self and cls),
    or the arguments a class with its own ``__init__`` takes."""
    if inspect.isclass(obj):
        init = vars(obj).get("__init__")
        if init is None or _fields(obj):
            return []
        obj = init
    function = _function(obj)
    if function is None:
        return []
    names = list(inspect.signature(function).parameters)
    if names and names[0] in ("self", "cls"):
        names = names[1:]
    return names


def _fields(cls: type) -> list[str]:
    if dataclasses.is_dataclass(cls):
        return [f.name for f in dataclasses.fields(cls)]
    return list(getattr(cls, "_fields", ()))


def _returns_something(obj: Any) -> bool:
    function = obj.fget if isinstance(obj, property) else _function(obj)
    if function is None:
        return False
    annotation = inspect.signature(function).return_annotation
    return annotation not in (inspect.Signature.empty, None, "None")


def _raised(obj: Any) -> set[str]:
    """Names of the exception classes the function's own body raises (``raise X(...)``)."""
    function = _function(obj)
    if function is None:
        return set()
    raised = set()
    for name in RAISE.findall(inspect.getsource(function)):
        head, *rest = name.split(".")
        value = function.__globals__.get(head, getattr(builtins, head, None))
        for attribute in rest:
            value = getattr(value, attribute, None)
        if inspect.isclass(value) and issubclass(value, BaseException):
            raised.add(value.__name__)
    return raised


def problems(obj: Any, *, top_level: bool) -> list[str]:
    """What the docstring of ``obj`` lacks, in words (empty when it is complete); functions and
    classes (``top_level``) need an example, methods and properties may go without."""
    doc = _own_doc(obj)
    if not doc:
        return ["no docstring"]
    summary, sections = _sections(doc)
    found = []
    first = summary.split("\n\n", 1)[0]
    if not first or "\n" in first or not first.endswith("."):
        found.append("the summary is not one line ending with a period")
    for header in HEADER.finditer(doc):
        if len(header["dashes"]) != len(header["title"]):
            found.append(f"{header['title']!r} underlined with {len(header['dashes'])} dashes")
    for header, body in sections.items():
        if not body.strip():
            found.append(f"empty {header!r} section")
    wanted = _parameters(obj)
    if wanted:
        missing = [n for n in wanted if n not in _names(sections.get("Parameters", ""))]
        if "Parameters" not in sections:
            found.append("no 'Parameters' section")
        elif missing:
            found.append(f"'Parameters' does not name {missing}")
    fields = _fields(obj) if inspect.isclass(obj) else []
    if fields:
        missing = [n for n in fields if n not in _names(sections.get("Attributes", ""))]
        if "Attributes" not in sections:
            found.append("no 'Attributes' section for its fields")
        elif missing:
            found.append(f"'Attributes' does not name {missing}")
    if _returns_something(obj) and not {"Returns", "Yields"} & set(sections):
        found.append("no 'Returns' section")
    raised = _raised(obj)
    if raised:
        documented = {e.rsplit(".", 1)[-1] for e in _entries(sections.get("Raises", ""))}
        if "Raises" not in sections:
            found.append(f"no 'Raises' section (it raises {sorted(raised)})")
        elif raised - documented:
            found.append(f"'Raises' does not name {sorted(raised - documented)}")
    if "Example" in sections:  # numpydoc's name is Examples; mkdocstrings shows Example as prose
        found.append("an 'Example' section: call it 'Examples'")
    if top_level and ">>>" not in sections.get("Examples", ""):
        found.append("no 'Examples' section with a doctest")
    return found


# -- the tests --------------------------------------------------------------------------------------


def test_the_walk_finds_the_whole_public_api():
    expected = {
        "gradcheck_kit.check",
        "gradcheck_kit.CheckResult.raise_for_failure",
        "gradcheck_kit.CheckResult.passed",
        "gradcheck_kit.Registry.add",
        "gradcheck_kit.report.Run.to_json",
        "gradcheck_kit.report.Run.from_dict",
        "gradcheck_kit.report.Entry.from_result",
        "gradcheck_kit.strategies.conv_geometries",
        "gradcheck_kit.profiles.load_profile",
        "gradcheck_kit.registry.validate_pair",
        "gradcheck_kit.InvalidArgument",
        "gradcheck_kit.from_layer_object().LayerObjectFunctions.describe",
    }
    assert expected <= set(API)
    assert not KNOWN_EXCEPTIONS & set(API)
    assert len(API) > 100


@pytest.mark.parametrize("path", sorted(API))
def test_every_public_function_has_numpydoc_sections(path):
    assert problems(API[path], top_level=path in TOP_LEVEL) == []


def test_a_docstring_without_its_sections_is_caught():
    def shortened(x: int, *, y: str = "") -> int:
        """Something
        more.

        Parameters
        ----------
        x : int
            A number.

        Raises
        ---
        KeyError
            Never.
        """
        raise ValueError(y)

    assert problems(shortened, top_level=False) == [
        "the summary is not one line ending with a period",
        "'Raises' underlined with 3 dashes",
        "'Parameters' does not name ['y']",
        "no 'Returns' section",
        "'Raises' does not name ['ValueError']",
    ]
    assert problems(shortened, top_level=True)[-1] == "no 'Examples' section with a doctest"
    assert problems(lambda: None, top_level=False) == ["no docstring"]
    assert problems(gk.Case, top_level=True) == []


def _doctests() -> dict[str, doctest.DocTest]:
    finder = doctest.DocTestFinder(recurse=False)
    found = {}
    for path, obj in API.items():
        target = obj.fget if isinstance(obj, property) else obj
        for test in finder.find(target, path, module=False, globs={}):
            if test.examples:
                found[path] = test
    return found


DOCTESTS = _doctests()


def test_every_top_level_example_is_collected_as_a_doctest():
    assert set(TOP_LEVEL) - set(DOCTESTS) == set()


OPTIONAL = ("jax", "torch")  # optional extras: examples that import them skip without them


@pytest.mark.parametrize("path", sorted(DOCTESTS))
def test_every_example_in_the_docstrings_runs(path):
    source = "\n".join(example.source for example in DOCTESTS[path].examples)
    for name in OPTIONAL:
        if re.search(rf"^import {name}\b", source, re.MULTILINE):
            pytest.importorskip(name, reason=f"{path}'s example needs {name} (an optional extra)")
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    report: list[str] = []
    runner.run(DOCTESTS[path], out=report.append)
    assert runner.failures == 0, "".join(report)
