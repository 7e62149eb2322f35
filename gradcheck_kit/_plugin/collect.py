"""Registered layers as pytest items: one ``GradcheckItem`` per (layer, backend, dtype), named
``gradcheck[<layer>-<backend>-<dtype>]``, under one ``GradcheckFile`` collector for the ini file
that configures the run (node ids ``pyproject.toml::gradcheck[conv2d-numpy-float64]``).

Every xdist worker collects the same items in the same order: layers sorted by name, then the
backends and dtypes in the order the options give them.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import pytest

from gradcheck_kit._ground.formatting import visible
from gradcheck_kit._ground.vocabulary import DEFAULT_BACKENDS, DEFAULT_DTYPES, dtype_problem

from . import state
from .layers import load_layers
from .settings import Settings

VIRTUAL_NODEID = "gradcheck"  # the collector's node id when there is no ini file


def item_name(layer: str, backend: str, dtype: str) -> str:
    """``gradcheck[conv2d-numpy-float64]`` (control characters in a layer name made visible:
    pytest prints node ids as they are)."""
    return f"gradcheck[{visible(layer)}-{backend}-{dtype}]"


def parse_item_name(nodeid: str) -> dict[str, str] | None:
    """(layer, backend, dtype) of a gradcheck item's node id (None for any other test)."""
    name = nodeid.rpartition("::")[2]
    if not (name.startswith("gradcheck[") and name.endswith("]")) or name.count("-") < 2:
        return None
    layer, backend, dtype = name[len("gradcheck[") : -1].rsplit("-", 2)
    return {"layer": layer, "backend": backend, "dtype": dtype}


def base_dir(config: pytest.Config) -> Path:
    """Where ``gradcheck_modules`` paths are relative to: the ini file's folder, else the rootdir."""
    return config.inipath.parent if config.inipath is not None else config.rootpath


def new_collector(parent: Any) -> GradcheckFile:
    """The collector attached to the session (when the run was not pointed at the ini file)."""
    config = parent.config
    if config.inipath is None:
        return GradcheckFile.from_parent(parent, path=config.rootpath, nodeid=VIRTUAL_NODEID)
    try:
        nodeid = config.inipath.relative_to(config.rootpath).as_posix()
    except ValueError:  # the ini file lies outside the rootdir (-c elsewhere/pytest.ini)
        nodeid = config.inipath.name
    return GradcheckFile.from_parent(parent, path=config.inipath, nodeid=nodeid)


# -- the nodes ----------------------------------------------------------------------------------


class GradcheckFile(pytest.File):
    """The gradcheck items of the run; its path is the ini file that names ``gradcheck_modules``."""

    def collect(self) -> Any:
        from gradcheck_kit.registry import registry

        settings, before = state.settings(self.config), set(registry.names())
        try:
            specs = load_layers(settings, base_dir(self.config))
        finally:  # what this run registered is dropped at unconfigure
            state.get(self.config).registered |= set(registry.names()) - before
        problems: dict[str, str | None] = {}
        for spec in specs:
            for backend in _backends(spec, settings):
                if backend not in problems:
                    problems[backend] = state.backend_problem(self.config, backend)
                for dtype in settings.dtypes:
                    name = item_name(spec.name, backend, dtype)
                    item = GradcheckItem.from_parent(self, name=name, spec=spec, backend=backend, dtype=dtype)
                    reason = problems[backend] or dtype_problem(backend, dtype) or _mismatch(spec, backend)
                    if reason is not None:  # skipped with the reason, at the layer's line
                        item.add_marker(pytest.mark.skip(reason=reason))
                    yield item


def _backends(spec: Any, settings: Settings) -> tuple[str, ...]:
    """The backends asked for, else the layer's own (torch for a ``torch.autograd.Function``)."""
    if settings.backends_given:
        return settings.backends
    from gradcheck_kit._property.cases import native_backend

    return (native_backend(spec) or DEFAULT_BACKENDS[0],)


def _mismatch(spec: Any, backend: str) -> str | None:
    from gradcheck_kit._property.cases import backend_mismatch

    return backend_mismatch(spec, backend)


class GradcheckItem(pytest.Item):
    """``gk.property_check`` of one layer on one backend in one dtype, seeded with the run's
    seed + crc32(node id), in a worker process unless isolation is off; a failure shows the
    minimal failing case, a crash or a hang what the layer did to its process."""

    def __init__(self, *, spec: Any, backend: str, dtype: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.spec, self.backend, self.dtype = spec, backend, dtype
        self.entry: dict[str, Any] | None = None  # the JSON entry of the check
        self.seed_key = self.nodeid  # the node id as collected (a plugin may rewrite it later)
        self.add_marker("gradcheck")
        if backend.startswith(("cupy", "torch:cuda", "jax:gpu", "jax:cuda", "jax:rocm", "jax:tpu")):
            self.add_marker("gpu")

    @property
    def seed(self) -> int:

        return state.settings(self.config).item_seed(self.seed_key)

    def setup(self) -> None:
        from gradcheck_kit._property.cases import layer_cases

        reason = state.backend_problem(self.config, self.backend)
        if reason is not None:
            pytest.skip(reason)
        layer_cases(self.spec, backend=self.backend, dtypes=(self.dtype,))  # no cases: an error

    def runtest(self) -> None:
        from .isolated import run_item

        self.entry = run_item(self, base_dir(self.config))
        if self.entry["status"] != "passed":
            pytest.fail(failure_text(self), pytrace=False)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        from gradcheck_kit.errors import GradcheckError

        if isinstance(excinfo.value, GradcheckError):  # e.g. a layer registered without cases
            return visible(f"{self.name}: {type(excinfo.value).__name__}: {excinfo.value}")
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple[Any, int | None, str]:
        """Where the layer's forward is defined (``-vv`` shows it, junit's file and line)."""
        try:
            source = inspect.getsourcefile(self.spec.forward)
            line = self.spec.forward.__code__.co_firstlineno - 1
        except (TypeError, AttributeError):
            source, line = None, None
        return (Path(source) if source else self.path), line, self.name


def failure_text(item: GradcheckItem) -> str:
    """First line: the verdict in one line (pytest's short summary shows it); then the
    property run's message (minimal case, cause, failing elements, replay), or why the item has
    no verdict (a crash, a hang, a harness error), and how to rerun. Control characters from
    the layer are made visible."""
    data, settings = item.entry or {}, state.settings(item.config)
    check = (data.get("result") or {}).get("check") or {}
    what = f"{item.spec.name} [{item.backend}, {item.dtype}]"
    if data.get("status") == "failed":
        cause = check.get("cause") or data.get("cause") or data.get("reason") or "check failed"
        head = [f"{what}: {cause}; minimal case {data.get('case')}", data.get("message") or ""]
    else:
        head = [f"{what} {data.get('status')}: {data.get('reason')}"]
    lines = [
        *head,
        "  rerun:",
        f"    pytest {' '.join(rerun_arguments(item, settings))}",
        f"    (item seed {item.seed} = --gradcheck-seed {settings.seed} + crc32({item.seed_key!r}))",
    ]
    return visible("\n".join(lines))


def rerun_arguments(item: GradcheckItem, settings: Settings) -> list[str]:
    """What reruns this item alone with the same seed and search: its selector, the seed, and
    the options that made it exist and shaped its search."""
    args = [_rerun_selector(item), f"--gradcheck-seed={settings.seed}"]
    if item.backend not in DEFAULT_BACKENDS:
        args.append(f"--gradcheck-backends={item.backend}")
    if item.dtype not in DEFAULT_DTYPES:
        args.append(f"--gradcheck-dtypes={item.dtype}")
    if settings.profile is not None:
        args.append(f"--gradcheck-profile={settings.profile}")
    if settings.max_examples is not None:
        args.append(f"--gradcheck-max-examples={settings.max_examples}")
    return args


def _rerun_selector(item: GradcheckItem) -> str:
    """The node id, or ``-k <name>`` when the collector is virtual (no ini file to name)."""
    if item.parent is not None and item.parent.nodeid == VIRTUAL_NODEID:
        return f"-k {_quote(item.name)}"
    return _quote(item.nodeid)


def _quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"
