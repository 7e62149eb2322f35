"""pytest plugin (entry point ``pytest11``): the layers a project registers with ``gk.register``
become test items, one per (layer, backend, dtype), and hand-written tests get a ``gradcheck``
fixture. See README, "Use in your project".

- Items ``gradcheck[<layer>-<backend>-<dtype>]`` come from the modules named by the ini key
  ``gradcheck_modules`` and from installed packages advertising the entry-point group
  ``gradcheck_kit.layers``; they live under the ini file (``pyproject.toml::gradcheck[...]``).
- Options ``--gradcheck-*``; markers ``gradcheck`` and ``gpu``; a report header line
  ``gradcheck-kit <version>: seed=…, profile=…, backends=…, dtypes=…`` makes every run
  reproducible; each item's seed is the global seed + crc32(node id).
- pytest-xdist: the controller hands its seed (and a GPU) to each worker; outcomes travel back
  on the test reports, so ``-n 4`` summarizes and reports what a serial run does.
- Each item is checked in a worker process (``--gradcheck-isolation``, default on), with a time
  limit per check (``--gradcheck-timeout``, default 60 s, as the CLI's): a layer that crashes,
  exits or hangs fails its own item. The reports are written as items finish and say when the
  session was interrupted or did not run every item; a crashed xdist worker's item is an error.

Importing this module costs nothing beyond pytest and the standard library (the engine, NumPy
and Hypothesis load when a run collects gradcheck items or uses the fixture), and a run that
uses none of it sees no header, no summary and no items.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import pytest

from ._plugin import outcomes as _outcomes
from ._plugin import settings as _settings
from ._plugin import state as _state
from ._plugin.collect import GradcheckFile, GradcheckItem, new_collector


def pytest_addoption(parser: pytest.Parser) -> None:
    _settings.add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "gradcheck: a gradient check of a registered layer")
    config.addinivalue_line("markers", "gpu: needs a CUDA GPU (CuPy or torch-CUDA); skipped without one")
    settings = _settings.read(config)
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None:  # an xdist worker: the controller's seed and this worker's GPU
        if "gradcheck_seed" in workerinput:
            settings = dataclasses.replace(settings, seed=int(workerinput["gradcheck_seed"]))
        if workerinput.get("gradcheck_gpu") is not None:
            os.environ["CUDA_VISIBLE_DEVICES"] = str(workerinput["gradcheck_gpu"])
    _state.install(config, settings)
    if workerinput is None:
        _outcomes.open_reports(config)  # a report that cannot be written: a usage error, now
        config.pluginmanager.register(_Controller(config), "gradcheck-kit-controller")


def pytest_unconfigure(config: pytest.Config) -> None:
    if _state.KEY in config.stash:
        _state.close_pool(config)
        _state.forget_layers(config)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """pytest-xdist, on the controller: each worker gets the seed and, round-robin, a GPU."""
    config = node.config
    node.workerinput["gradcheck_seed"] = _state.settings(config).seed
    gpu = _settings.gpu_for(str(node.workerinput.get("workerid", "")), _state.gpus(config))
    if gpu is not None:
        node.workerinput["gradcheck_gpu"] = gpu


def pytest_report_header(config: pytest.Config) -> str | None:
    return header(config) if _state.engaged(config) else None


def header(config: pytest.Config) -> str:
    """``gradcheck-kit 0.1.0: seed=0, profile=ci, backends=numpy, dtypes=float64,float32`` (the
    CLI's header), then what else the run was given."""
    from gradcheck_kit.report import Run

    settings = _state.settings(config)
    run = Run(
        seed=settings.seed,
        profile=settings.resolved_profile(),
        backends=list(settings.backends),
        dtypes=list(settings.dtypes),
    )
    extra = [f"max_examples={settings.max_examples}"] if settings.max_examples else []
    if settings.shard:
        extra.append(f"shard={settings.shard[0]}/{settings.shard[1]}")
    gpus = _state.gpus(config) if getattr(config.option, "numprocesses", None) else ()
    if gpus:
        extra.append(f"gpus={','.join(gpus)} (one per xdist worker)")
    return ", ".join([run.header(), *extra])


# -- collection ---------------------------------------------------------------------------------


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> GradcheckFile | None:
    """The ini file named on the command line (``pytest pyproject.toml``, or one item:
    ``pytest 'pyproject.toml::gradcheck[conv2d-numpy-float64]'``) collects the items."""
    config = parent.config
    if config.inipath is None or file_path != config.inipath or not parent.session.isinitpath(file_path):
        return None
    return GradcheckFile.from_parent(parent, path=file_path)


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Any:
    """Attach the items to the session unless the run was pointed at particular files or tests."""
    report = yield
    if isinstance(collector, pytest.Session) and report.passed and _collects_automatically(collector):
        report.result.append(new_collector(collector))
    return report


def _collects_automatically(session: pytest.Session) -> bool:
    """Yes for ``pytest``, ``pytest tests/`` and any run given a directory; no when every
    argument names a file or a test (``pytest tests/test_x.py``, ``pytest a.py::test_b``) and
    when the ini file itself was named (pytest_collect_file collects it then)."""
    config = session.config
    if config.inipath is not None and session.isinitpath(config.inipath):
        return False
    if not _state.has_layers(config):
        return False
    if config.args_source != pytest.Config.ArgsSource.ARGS:
        return True
    base = config.invocation_params.dir
    return any("::" not in arg and (base / arg).is_dir() for arg in config.args)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[Any]) -> None:
    for item in items:
        if "gradcheck" in getattr(item, "fixturenames", ()):
            item.add_marker("gradcheck")
    shard = _state.settings(config).shard
    if shard is not None:
        ours = [item for item in items if isinstance(item, GradcheckItem)]
        dropped = {id(item) for i, item in enumerate(ours) if i % shard[1] != shard[0] - 1}
        if dropped:
            config.hook.pytest_deselected(items=[item for item in items if id(item) in dropped])
            items[:] = [item for item in items if id(item) not in dropped]


@pytest.fixture
def gradcheck(request: pytest.FixtureRequest) -> Any:
    """Gradient checks in a hand-written test with the run's seed (this test's: the global seed
    + crc32(node id)), profile, max examples, backends, dtypes and example database:
    ``gradcheck("my_layer", ...)`` property-checks a registered layer, ``gradcheck.check(forward,
    backward, inputs, params)`` checks one input; a failure raises ``gk.GradientMismatch`` with
    the minimal case, an unavailable backend skips the test."""
    from ._plugin.fixture import Gradcheck

    return Gradcheck(request.node)


# -- outcomes -----------------------------------------------------------------------------------


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if isinstance(item, GradcheckItem) or _state.FIXTURE_RESULTS in item.stash:
        _outcomes.attach(item, call, report)
    return report


class _Controller:
    """Hooks of the process that reports (the only one without xdist, the controller with it)."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.written: list[str] = []

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        _outcomes.expect(
            self.config, [item.nodeid for item in session.items if isinstance(item, GradcheckItem)]
        )

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        _outcomes.expect(self.config, ids)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if _outcomes.record(self.config, report):
            _outcomes.update_reports(self.config)

    def pytest_sessionfinish(self, exitstatus: int) -> None:
        interrupted = exitstatus == pytest.ExitCode.INTERRUPTED
        self.written = _outcomes.write_reports(self.config, "interrupted" if interrupted else None)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not _state.get(self.config).entries and not self.written:
            return
        terminalreporter.write_sep("=", "gradcheck")
        for line, markup in _outcomes.summary_lines(_outcomes.build_run(self.config)):
            terminalreporter.write_line(line, **markup)
        for path in self.written:
            terminalreporter.write_line(f"gradcheck report written to {path}")
