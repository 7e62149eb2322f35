"""The pytest plugin, driven through ``pytester`` on a throwaway project with one correct layer
(``tp_tanh``) and one with a planted bug (``tp_square``: the backward forgets the 2 of 2x)."""

from __future__ import annotations

import json
import re
import sys
import xml.etree.ElementTree as ET
import zlib
from pathlib import Path

import hypothesis  # noqa: F401 - loaded before pytester snapshots sys.modules, because
import numpy  # noqa: F401 - a C extension such as numpy cannot be imported twice in one process
import pytest

import gradcheck_kit as gk
import gradcheck_kit._checks.stages
from tests.support.registry import registry_restored  # noqa: F401 (autouse)
from tests.support.torch_sources import CUBE

pytest_plugins = ["pytester"]

ARGS = ("-p", "no:cacheprovider", "--gradcheck-profile=dev", "--gradcheck-max-examples=10")
ITEMS = [
    f"pyproject.toml::gradcheck[tp_{layer}-numpy-{dtype}]"
    for layer in ("square", "tanh")
    for dtype in ("float64", "float32")
]
BUGGY = [nodeid for nodeid in ITEMS if "tp_square" in nodeid]

LAYERS = """
import numpy as np

import gradcheck_kit as gk
from gradcheck_kit import strategies as gks


def _case(rng, *, shape):
    return gk.Case((gks.values(rng, shape, "float64"),))


CASES = gks.cases(_case, shape=gks.array_shapes(min_dims=1, max_dims=2, max_side=4))


def tanh_forward(x):
    return np.tanh(x)


def tanh_backward(dy, x):
    return (dy * (1 - np.tanh(x) ** 2),)


def square_forward(x):
    return x**2


def square_backward(dy, x):
    return (dy * x,)  # the bug: d(x^2)/dx is 2x


gk.register("tp_tanh", tanh_forward, tanh_backward, cases=CASES)
gk.register("tp_square", square_forward, square_backward, cases=CASES)
"""

PYPROJECT = """
[tool.pytest.ini_options]
gradcheck_modules = ["tp_layers.py"]
gradcheck_entry_points = false
"""


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(tp_layers=LAYERS)
    pytester.makefile(".toml", pyproject=PYPROJECT)
    pytester.mkdir("tests")
    pytester.path.joinpath("tests", "test_plain.py").write_text("def test_plain():\n    pass\n")
    return pytester


def failed_nodeids(result: pytest.RunResult) -> set[str]:
    return {report.nodeid for report in result.reprec.getfailures()}  # type: ignore[attr-defined]


def collected(pytester: pytest.Pytester, *args: str) -> list[str]:
    result = pytester.runpytest(*ARGS, "--co", "-q", *args)
    return [line for line in result.outlines if "::" in line]


# -- acceptance ---------------------------------------------------------------------------------


def test_only_the_buggy_layer_fails_with_its_minimal_case_and_both_reports_are_written(project):
    result = project.runpytest(*ARGS, "--gradcheck-report=out/run.json", "--gradcheck-md=out/run.md")

    result.assert_outcomes(passed=3, failed=2)
    assert failed_nodeids(result) == set(BUGGY)
    out = result.stdout.str()
    assert "seed=0, profile=dev, backends=numpy, dtypes=float64,float32, max_examples=10" in out
    assert "tp_square [numpy, float64]: x: gradient off by a constant factor" in out
    assert "minimal case tp_square: x float64[" in out and "minimal case tp_square: x float32[" in out
    result.stdout.re_match_lines(
        [r"tp_square\s+numpy\s+float64\s+x\s+.*FAILED", r"tp_tanh\s+numpy\s+float64\s+all\s+.*ok"]
    )

    run = json.loads((project.path / "out" / "run.json").read_text())
    assert run["schema"] == 1 and run["seed"] == 0 and run["counts"]["failed"] == 2
    entries = {(e["layer"], e["dtype"]): e for e in run["entries"]}
    assert [e["status"] for e in entries.values()] == ["failed", "failed", "passed", "passed"]
    assert entries["tp_square", "float64"]["case"].startswith("tp_square: x float64[")
    for (layer, dtype), entry in entries.items():
        nodeid = f"pyproject.toml::gradcheck[{layer}-numpy-{dtype}]"
        assert entry["result"]["seed"] == zlib.crc32(nodeid.encode())  # global seed 0 + crc32
    markdown = (project.path / "out" / "run.md").read_text()
    assert markdown.startswith("## gradcheck-kit: ❌ failed") and "<details>" in markdown


def test_xdist_runs_the_same_items_to_the_same_verdicts_and_summary_with_one_gpu_per_worker(
    project, monkeypatch
):
    monkeypatch.setenv("GRADCHECK_DATABASE", "none")  # the second run must not replay the first's
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).resolve().parents[1]))  # this checkout's plugin
    project.makeconftest(  # each xdist worker writes down the GPU it was given
        "import os\n\n\ndef pytest_sessionstart(session):\n"
        "    worker = os.environ.get('PYTEST_XDIST_WORKER', 'serial')\n"
        "    with open(f'gpu-{worker}.txt', 'w') as f:\n"
        "        f.write(os.environ.get('CUDA_VISIBLE_DEVICES', 'unset'))\n"
    )
    serial = project.runpytest_subprocess(*ARGS, "--gradcheck-report=serial.json")
    spread = ("-n", "2", "--gradcheck-gpus=3,5", "--gradcheck-report=parallel.json")
    parallel = project.runpytest_subprocess(*ARGS, *spread)

    for result in (serial, parallel):
        result.assert_outcomes(passed=3, failed=2)
        result.stdout.fnmatch_lines(["FAILED pyproject.toml::gradcheck?tp_square-numpy-float64? - *"])
    assert summary(serial) == summary(parallel)
    assert verdicts(project.path / "serial.json") == verdicts(project.path / "parallel.json")
    workers = {p.stem: p.read_text() for p in project.path.glob("gpu-gw*.txt")}
    assert workers == {"gpu-gw0": "3", "gpu-gw1": "5"}


def summary(result: pytest.RunResult) -> list[str]:
    """The gradcheck section of the terminal summary without its last line (the duration)."""
    lines = result.outlines
    start = next(i for i, line in enumerate(lines) if re.fullmatch(r"=+ gradcheck =+", line))
    end = next(i for i in range(start, len(lines)) if lines[i].startswith(("PASSED: ", "FAILED: ")))
    return lines[start:end]


def verdicts(path: Path) -> list[tuple[object, ...]]:
    keys = ("layer", "backend", "dtype", "status", "examples", "case", "cause", "max_rel_err", "kinks")
    entries = json.loads(path.read_text())["entries"]
    return [(*(e[k] for k in keys), e["result"]["seed"]) for e in entries]


def test_an_unavailable_backend_gives_skipped_items_with_the_reason(project):
    result = project.runpytest(
        *ARGS, "--gradcheck-backends=numpy,cupy:99", "-rs", "--gradcheck-report=r.json"
    )

    result.assert_outcomes(passed=3, failed=2, skipped=4)
    result.stdout.fnmatch_lines(["SKIPPED ?4? tp_layers.py*: backend='cupy:99'*"])
    skipped = [
        e for e in json.loads((project.path / "r.json").read_text())["entries"] if e["status"] == "skipped"
    ]
    assert len(skipped) == 4 and all("cupy:99" in e["reason"] for e in skipped)


def test_junitxml_has_one_testcase_per_item_and_the_minimal_case_in_each_failure(project):
    result = project.runpytest(*ARGS, "--junitxml=junit.xml")

    assert result.ret == pytest.ExitCode.TESTS_FAILED
    cases = ET.parse(project.path / "junit.xml").getroot().iter("testcase")
    failures = {c.get("name"): c.find("failure") for c in cases if c.get("classname") == "pyproject.toml"}
    assert sorted(failures) == sorted(nodeid.split("::")[1] for nodeid in ITEMS)
    failed = {name: f.get("message") for name, f in failures.items() if f is not None}
    assert sorted(failed) == ["gradcheck[tp_square-numpy-float32]", "gradcheck[tp_square-numpy-float64]"]
    assert "minimal case tp_square: x float32[" in failed["gradcheck[tp_square-numpy-float32]"]


def test_layers_advertised_by_an_installed_package_become_items_unless_turned_off(pytester):
    site = pytester.mkdir("site")
    site.joinpath("tp_ep_layers.py").write_text(LAYERS.replace('"tp_', '"tp_ep_'))
    info = site / "tp_fakepkg-0.1.dist-info"
    info.mkdir()
    info.joinpath("METADATA").write_text("Metadata-Version: 2.1\nName: tp-fakepkg\nVersion: 0.1\n")
    info.joinpath("entry_points.txt").write_text("[gradcheck_kit.layers]\nfake = tp_ep_layers\n")
    pytester.syspathinsert(site)

    items = collected(pytester, "--gradcheck-dtypes=float64")
    assert items == [f"gradcheck::gradcheck[tp_ep_{layer}-numpy-float64]" for layer in ("square", "tanh")]
    pytester.makeini("[pytest]\ngradcheck_entry_points = false\n")
    assert collected(pytester) == []


# -- collection ---------------------------------------------------------------------------------


def test_items_are_collected_for_directories_and_the_ini_file_but_not_for_named_test_files(project):
    plain = "tests/test_plain.py::test_plain"
    assert collected(project) == [plain, *ITEMS]
    assert collected(project, "tests") == [plain, *ITEMS]
    assert collected(project, "tests/test_plain.py") == [plain]
    assert collected(project, "pyproject.toml") == ITEMS
    assert collected(project, ITEMS[2]) == [ITEMS[2]]
    assert collected(project, "-m", "gradcheck and not gpu", "-k", "tanh and float32") == [ITEMS[3]]


def test_shards_partition_the_items(project):
    first = collected(project, "pyproject.toml", "--gradcheck-shard=1/2")
    second = collected(project, "pyproject.toml", "--gradcheck-shard=2/2")
    assert len(first) == len(second) == 2 and sorted(first + second) == sorted(ITEMS)


def test_a_module_that_cannot_be_imported_is_a_collection_error_naming_it(project):
    project.makefile(".toml", pyproject=PYPROJECT.replace("tp_layers.py", "tp_missing_module"))
    result = project.runpytest(*ARGS)

    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*cannot import gradcheck_modules entry 'tp_missing_module'*"])
    assert "ModuleNotFoundError" in result.stdout.str()


@pytest.mark.parametrize(
    ("option", "accepted"),
    [
        ("--gradcheck-seed=-1", "an int >= 0 or 'random'"),
        ("--gradcheck-backends=numpy,cuda", "numpy, torch, torch:cpu, torch:cuda[:N], cupy[:N]"),
        ("--gradcheck-dtypes=float8", "float64, float32, float16, bfloat16"),
        ("--gradcheck-profile=fast", "dev, ci, thorough"),
        ("--gradcheck-max-examples=0", "an int >= 1"),
        ("--gradcheck-shard=3/2", "K/N with 1 <= K <= N"),
    ],
)
def test_an_invalid_option_is_a_usage_error_naming_it_and_what_is_accepted(project, option, accepted):
    result = project.runpytest(option)

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    name, _, value = option.partition("=")
    assert f"ERROR: {name}={value!r} is invalid; accepted: {accepted}" in result.stderr.str()


# -- seeds, fixture, quiet when unused ---------------------------------------------------------


def test_a_random_seed_is_printed_in_the_header_and_recorded_in_the_report(project):
    result = project.runpytest(*ARGS, "--co", "--gradcheck-seed=random", "--gradcheck-report=r.json")

    seed = int(re.search(r"gradcheck-kit [^:]+: seed=(\d+),", result.stdout.str()).group(1))
    assert json.loads((project.path / "r.json").read_text())["seed"] == seed


FIXTURE_TESTS = """
import numpy as np
import pytest
import zlib

import gradcheck_kit as gk
import tp_layers


def test_seed_is_the_global_seed_plus_crc32_of_the_node_id(gradcheck, request):
    assert gradcheck.seed == 11 + zlib.crc32(request.node.nodeid.encode())


def test_correct_layer_passes(gradcheck):
    assert gradcheck("tp_tanh", dtypes=["float32"]).passed


def test_buggy_layer_fails(gradcheck):
    gradcheck("tp_square")


def test_one_input(gradcheck):
    x = np.linspace(-1.0, 1.0, 5)
    assert gradcheck.check(tp_layers.tanh_forward, tp_layers.tanh_backward, (x,)).passed


def test_unavailable_backend(gradcheck):
    gradcheck("tp_tanh", backend="cupy:99")


def test_without_the_fixture():
    pass
"""


def test_the_fixture_checks_with_the_runs_settings_and_fails_with_the_minimal_case(project):
    project.makepyfile(test_hand=FIXTURE_TESTS)
    result = project.runpytest(*ARGS, "--gradcheck-seed=11", "-m", "gradcheck", "-rs", "test_hand.py")

    result.assert_outcomes(passed=3, failed=1, skipped=1, deselected=1)
    assert failed_nodeids(result) == {"test_hand.py::test_buggy_layer_fails"}
    result.stdout.fnmatch_lines(
        [
            "*GradientMismatch: property_check tp_square ?numpy? FAILED*",
            "*minimal configuration: tp_square: x *",
        ]
    )
    result.stdout.fnmatch_lines(["SKIPPED ?1? test_hand.py:*: backend='cupy:99'*"])
    result.stdout.re_match_lines(
        [r"tanh_forward\s+numpy\s+.*ok", r"tp_square\s+numpy\s+float\d\d\s+x\s+.*FAILED"]
    )


def test_a_project_that_does_not_use_the_plugin_sees_nothing_of_it(pytester, monkeypatch):
    monkeypatch.setattr("gradcheck_kit._plugin.settings.entry_points", lambda group: [])
    pytester.makepyfile(test_a="def test_a():\n    pass\n")
    # (pytest's own note that an in-process session cannot rewrite an imported package is not ours)
    quiet = ("-W", "ignore::pytest.PytestAssertRewriteWarning")
    result = pytester.runpytest("-p", "no:cacheprovider", *quiet)

    result.assert_outcomes(passed=1)
    lines = [line for line in result.outlines if "gradcheck" in line]
    assert [line for line in lines if not line.startswith("plugins:")] == []  # no header, no summary


def test_importing_the_plugin_loads_neither_the_engine_nor_hypothesis_nor_torch(pytester):
    code = (
        "import sys, gradcheck_kit.pytest_plugin\n"
        "heavy = ('hypothesis', 'torch', 'cupy', 'gradcheck_kit._property.run', 'gradcheck_kit.report')\n"
        "print('loaded:', [m for m in heavy if m in sys.modules])\n"
    )
    result = pytester.run(sys.executable, "-c", code)
    result.stdout.fnmatch_lines(["loaded: []"])


def test_a_session_leaves_the_registry_as_it_found_it(project):
    """A second in-process session may register the same names from other modules."""
    project.runpytest(*ARGS, "--co").assert_outcomes()
    assert "tp_tanh" not in gk.registry and "tp_square" not in gk.registry
    project.makepyfile(
        tp_other=LAYERS.replace("def tanh_", "def other_tanh_")
        .replace("tanh_forward,", "other_tanh_forward,")
        .replace("tanh_backward,", "other_tanh_backward,")
    )
    project.makefile(".toml", pyproject=PYPROJECT.replace("tp_layers.py", "tp_other.py"))

    assert collected(project, "pyproject.toml") == ITEMS


def test_bfloat16_items_on_a_backend_without_it_are_skipped_with_the_reason(project):
    result = project.runpytest(*ARGS, "pyproject.toml", "--gradcheck-dtypes=bfloat16", "-rs")

    assert result.ret == pytest.ExitCode.OK
    result.assert_outcomes(skipped=2)
    result.stdout.fnmatch_lines(["*numpy has no bfloat16; bfloat16 cases are checked on --backend torch*"])


# -- the ini keys without the plugin, each layer's own backend ----------------------------------


def test_disabling_the_plugin_leaves_its_ini_keys_known_even_under_strict_config(project):
    from importlib.metadata import entry_points

    installed = any(ep.name == "gradcheck_kit_ini" for ep in entry_points(group="pytest11"))
    ini = () if installed else ("-p", "gradcheck_kit._plugin.ini")  # (an install older than the entry point)
    result = project.runpytest("-p", "no:cacheprovider", *ini, "-p", "no:gradcheck_kit", "--strict-config")

    assert result.ret == pytest.ExitCode.OK
    result.assert_outcomes(passed=1)  # tests/test_plain.py, and no gradcheck items
    assert "Unknown config option" not in result.stdout.str() + result.stderr.str()


def test_the_ini_keys_are_registered_by_a_plugin_that_loads_nothing_else(pytester):
    code = (
        "import sys, gradcheck_kit._plugin.ini as ini\n"
        "heavy = ('hypothesis', 'numpy', 'gradcheck_kit._property.run', 'gradcheck_kit.pytest_plugin')\n"
        "hooks = [n for n in vars(ini) if n.startswith('pytest_')]\n"
        "print('loaded:', [m for m in heavy if m in sys.modules], hooks)\n"
    )
    result = pytester.run(sys.executable, "-c", code)
    result.stdout.fnmatch_lines(["loaded: [] ['pytest_addoption']"])
    pyproject = (Path(__file__).parents[1] / "pyproject.toml").read_text()
    assert 'gradcheck_kit_ini = "gradcheck_kit._plugin.ini"' in pyproject


TORCH_LAYERS = (
    CUBE
    + """
import gradcheck_kit as gk


X = torch.linspace(-1, 1, 5, dtype=torch.float64)
gk.register("tp_cube", *gk.from_autograd_function(Cube), cases=[gk.Case((X,))])
"""
)


def test_a_torch_function_is_collected_on_torch_by_default_and_skipped_with_the_reason_on_numpy(pytester):
    pytest.importorskip("torch")
    pytester.makepyfile(tp_torch_layers=TORCH_LAYERS)
    pytester.makefile(".toml", pyproject=PYPROJECT.replace("tp_layers.py", "tp_torch_layers.py"))

    assert collected(pytester, "pyproject.toml", "--gradcheck-dtypes=float64") == [
        "pyproject.toml::gradcheck[tp_cube-torch-float64]"
    ]
    result = pytester.runpytest(
        *ARGS, "pyproject.toml", "--gradcheck-dtypes=float64", "--gradcheck-backends=numpy", "-rs"
    )
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(
        ["*'tp_cube' runs on torch (a torch.autograd.Function), not on backend 'numpy'*"]
    )
