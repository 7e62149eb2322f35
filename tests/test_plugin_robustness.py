"""The pytest plugin's share of issue 16, driven through ``pytester``: the hostile zoo as items (a
layer that crashes, exits, forks or hangs fails only its own item), the time limit as an option
and an ini key, crashed xdist workers' items as errors in the reports, honest reports after an
interrupt or an early stop, strict option parsing (usage errors, exit 4), null for non-finite
numbers and control characters made visible in the terminal, JUnit, JSON and Markdown. (The CLI's
share, and in-process checks, are in test_robustness.py.)"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import hypothesis  # noqa: F401 - loaded before pytester snapshots sys.modules (see test_pytest_plugin)
import numpy  # noqa: F401
import pytest

from tests.support import hostile_layers
from tests.support.registry import registry_restored  # noqa: F401 (autouse)

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[1]
ZOO = ROOT / "tests" / "support" / "hostile_layers.py"
ARGS = (
    "-p",
    "no:cacheprovider",
    "--gradcheck-profile=dev",
    "--gradcheck-max-examples=5",
    "--gradcheck-dtypes=float64",
)
RAW = ("\x1b", "\x07", "\x00", "\u202e")

# under pytest-xdist's --dist loadgroup (the README's test command) this file runs on one
# worker: its module-scoped fixtures (CLI runs, pytest sessions) are set up once, not per worker
pytestmark = pytest.mark.xdist_group("tests/test_plugin_robustness.py")

LAYERS = """
import os
import numpy as np
import gradcheck_kit as gk


X = np.linspace(-1.0, 1.0, 6)


def backward(dy, x):
    return (dy * (1 - np.tanh(x) ** 2),)


def spins(x):
    while True:
        pass


def interrupts(x):
    raise KeyboardInterrupt


def exits(x):
    os._exit(0)


gk.register("a_wrong", np.tanh, lambda dy, x: (dy * np.tanh(x),), cases=[gk.Case((X,))])
gk.register("b_good", np.tanh, backward, cases=[gk.Case((X,))])
NEAR_0 = np.array([1e-12, 4.0])
gk.register("c_sqrt_near_0", np.sqrt, lambda dy, x: (dy * 0.6 / np.sqrt(x),), cases=[gk.Case((NEAR_0,))])
gk.register("d_raises", lambda x: 1 / 0, backward, cases=[gk.Case((X,))])
"""
FAULTY = {
    "spins": 'gk.register("e_spins", spins, backward, cases=[gk.Case((X,))])\n',
    "interrupts": 'gk.register("a0_interrupts", interrupts, backward, cases=[gk.Case((X,))])\n',
    "exits": 'gk.register("e_exits", exits, backward, cases=[gk.Case((X,))])\n',
}


@pytest.fixture(autouse=True)
def _this_checkout(monkeypatch: pytest.MonkeyPatch) -> None:
    """pytest in a subprocess loads the plugin of this checkout, not of an installed copy."""
    monkeypatch.setenv("PYTHONPATH", str(ROOT))


def project(pytester: pytest.Pytester, *faults: str, ini: str = "") -> pytest.Pytester:
    pytester.makepyfile(tp_layers=LAYERS + "".join(FAULTY[f] for f in faults))
    pytester.makefile(
        ".toml",
        pyproject=f'[tool.pytest.ini_options]\ngradcheck_modules = ["tp_layers.py"]\n'
        f"gradcheck_entry_points = false\n{ini}",
    )
    return pytester


def report(where: pytest.Pytester | Path, name: str = "r.json") -> dict:
    def refuse(constant: str) -> None:
        raise AssertionError(f"{constant} in a JSON report")

    folder = where.path if isinstance(where, pytest.Pytester) else where
    return json.loads((folder / name).read_text(), parse_constant=refuse)


def by_layer(data: dict) -> dict[str, dict]:
    return {e["layer"]: e for e in data["entries"]}


# -- the zoo as items ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def zoo_session(tmp_path_factory):
    """The whole zoo as items, in a pytest subprocess with two xdist workers (once per module)."""
    import os
    import subprocess
    import sys

    folder = tmp_path_factory.mktemp("zoo_items")
    ini = f'gradcheck_modules = ["{ZOO.as_posix()}"]\ngradcheck_entry_points = false\n'
    (folder / "pyproject.toml").write_text(f"[tool.pytest.ini_options]\n{ini}")
    outputs = ("--gradcheck-report=r.json", "--gradcheck-md=r.md", "--junitxml=j.xml")
    command = [sys.executable, "-m", "pytest", *ARGS, "--gradcheck-timeout=0.5", "-n", "2", *outputs]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=300)
    return folder, done


def test_the_hostile_zoo_as_items_fails_each_fault_alone_and_the_session_goes_on(zoo_session):
    folder, done = zoo_session
    assert done.returncode == pytest.ExitCode.TESTS_FAILED, done.stdout[-3000:]
    data = report(folder)
    entries = by_layer(data)
    assert data["state"] == "complete" and data["not_run"] == []
    assert len(entries) == len(hostile_layers.HOSTILE) + len(hostile_layers.PROCESS_FAULTS)
    for name in hostile_layers.HOSTILE:
        assert entries[f"hostile.{name}"]["status"] == "failed", name
    for name, (_, status, words) in hostile_layers.PROCESS_FAULTS.items():
        entry = entries[f"hostile.process.{name}"]
        assert entry["status"] == status and words in (entry["reason"] or entry["cause"] or ""), name
    assert f"{len(entries) - 2} failed, 2 passed" in done.stdout  # passing: the thread, the printf


def test_control_characters_are_visible_in_the_terminal_junit_and_markdown(zoo_session):
    folder, done = zoo_session
    texts = {
        "terminal": done.stdout,
        "junit": (folder / "j.xml").read_text(),
        "markdown": (folder / "r.md").read_text(),
    }
    for name, text in texts.items():
        assert not any(c in text for c in RAW), name
        assert "\\x1b]0;pwned\\x07" in text, name
    failures = [c.find("failure") for c in ET.parse(folder / "j.xml").getroot().iter("testcase")]
    assert any("\\x1b]0;pwned" in (f.get("message") or "") for f in failures if f is not None)


# -- the time limit ------------------------------------------------------------------------------


def test_the_timeout_is_an_ini_key_too_and_stops_a_spinning_layer(pytester):
    project(pytester, "spins", ini="gradcheck_timeout = 0.5\n")
    result = pytester.runpytest(*ARGS, "-k", "spins or good", "--gradcheck-report=r.json")
    result.assert_outcomes(passed=1, failed=1)
    spun = by_layer(report(pytester))["e_spins"]
    assert spun["status"] == "failed" and "timeout=0.5 s" in spun["cause"]


def test_every_positive_timeout_works_tiny_ones_time_out_inf_is_no_limit(pytester):
    project(pytester)
    tiny = pytester.runpytest(*ARGS, "-k", "good", "--gradcheck-timeout=1e-9", "--gradcheck-report=r.json")
    tiny.assert_outcomes(failed=1)
    assert "ran longer than timeout=1e-09 s" in by_layer(report(pytester))["b_good"]["cause"]
    pytester.runpytest(*ARGS, "-k", "good", "--gradcheck-timeout=inf").assert_outcomes(passed=1)


# -- crashes and interrupts without isolation ------------------------------------------------------


def test_under_xdist_a_crashed_worker_s_item_is_an_error_in_the_reports(pytester):
    project(pytester, "exits")
    options = ("-n", "2", "--gradcheck-isolation=off", "--gradcheck-report=r.json", "-k", "exits or good")
    result = pytester.runpytest_subprocess(*ARGS, *options, timeout=120)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    entries = by_layer(report(pytester))
    assert entries["b_good"]["status"] == "passed"
    assert entries["e_exits"]["status"] == "error" and "crashed" in entries["e_exits"]["reason"]


def test_an_interrupted_session_says_so_and_lists_what_did_not_run(pytester):
    project(pytester, "interrupts")
    options = ("--gradcheck-isolation=off", "--gradcheck-report=r.json", "--gradcheck-md=r.md")
    result = pytester.runpytest_subprocess(*ARGS, *options, timeout=120)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    data = report(pytester)
    assert data["state"] == "interrupted" and data["passed"] is False
    assert {w["layer"] for w in data["not_run"]} >= {"b_good", "d_raises"}
    assert "interrupted" in (pytester.path / "r.md").read_text()


def test_with_isolation_a_keyboard_interrupt_in_a_layer_fails_its_item_only(pytester):
    project(pytester, "interrupts")
    result = pytester.runpytest(*ARGS, "-k", "interrupts or good", "--gradcheck-report=r.json")
    result.assert_outcomes(passed=1, failed=1)
    assert by_layer(report(pytester))["a0_interrupts"]["cause"] == "forward raised KeyboardInterrupt"


def test_a_session_stopped_early_is_incomplete_not_passed(pytester):
    project(pytester)
    result = pytester.runpytest(*ARGS, "-x", "--gradcheck-report=r.json")
    result.assert_outcomes(failed=1)
    data = report(pytester)
    assert data["state"] == "incomplete" and data["passed"] is False
    assert [e["layer"] for e in data["entries"]] == ["a_wrong"] and len(data["not_run"]) == 3


# -- numbers in the reports ------------------------------------------------------------------------


def test_non_finite_numbers_and_unmeasured_errors_are_null_in_the_plugin_s_reports(pytester):
    project(pytester)
    pytester.runpytest(*ARGS, "-k", "sqrt or raises", "--gradcheck-report=r.json").assert_outcomes(failed=2)
    entries = by_layer(report(pytester))  # parsed refusing NaN and Infinity
    assert entries["d_raises"]["max_abs_err"] is None and entries["d_raises"]["max_rel_err"] is None
    assert entries["c_sqrt_near_0"]["status"] == "failed"


# -- usage errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "accepted"),
    [
        ("--gradcheck-seed=²", "an int >= 0 or 'random'"),
        ("--gradcheck-max-examples=١٢", "an int >= 1"),
        ("--gradcheck-shard=١/٢", "K/N with 1 <= K <= N"),
        ("--gradcheck-timeout=0", "a number of seconds > 0, or inf (no limit)"),
        ("--gradcheck-timeout=soon", "a number of seconds > 0, or inf (no limit)"),
        ("--gradcheck-isolation=maybe", "on or off"),
        ("--gradcheck-backends=torch:meta", "numpy, torch, torch:cpu, torch:cuda[:N], cupy[:N]"),
    ],
)
def test_options_parse_strictly_with_a_usage_error_naming_the_value(pytester, option, accepted):
    project(pytester)
    result = pytester.runpytest(option)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    name, _, value = option.partition("=")
    assert f"ERROR: {name}={value!r} is invalid; accepted: {accepted}" in result.stderr.str()


def test_a_report_that_cannot_be_written_is_a_usage_error_before_anything_runs(pytester):
    project(pytester)
    (pytester.path / "a_file").write_text("not a folder")
    result = pytester.runpytest(*ARGS, "--gradcheck-report=a_file/r.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "--gradcheck-report='" in result.stderr.str() and "Not a directory" in result.stderr.str()
