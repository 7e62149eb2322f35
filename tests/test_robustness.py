"""Misbehaving layers never break the harness: one failed result each, a one-line cause, bounded
time, and the next layer still runs, through gk.check and through the CLI. (Bad configuration on
the command line, exit 2 naming the value, is covered in test_cli.py; argument errors of
gk.check in test_arguments.py; escaping of user text in test_report.py and test_html.py.)"""

from __future__ import annotations

import time

import numpy as np
import pytest

import gradcheck_kit as gk
from tests.support import hostile_layers

HOSTILE = sorted(hostile_layers.HOSTILE)


@pytest.mark.parametrize("name", HOSTILE)
def test_each_hostile_layer_gets_one_failed_result_with_a_one_line_cause(name):
    spec = gk.registry.get(f"hostile.{name}")
    started = time.perf_counter()
    result = gk.check_case(spec, spec.cases[0], timeout=2.0)
    assert time.perf_counter() - started < 10
    assert not result.passed, str(result)
    assert result.cause and "\n" not in result.cause
    raised = [f for f in result.findings if f.kind == "exception"]
    assert all(f.traceback for f in raised)


def test_a_layer_returning_a_view_of_its_input_passes_with_a_warning():
    result = gk.check(lambda x: x[::-1], lambda dy, x: (dy[::-1],), (np.arange(6.0),))
    assert result.passed and not result.finding("aliasing").is_error


def test_a_hang_is_stopped_by_the_timeout_and_named():
    spec = gk.registry.get("hostile.hangs_in_a_loop")
    result = gk.check_case(spec, spec.cases[0], timeout=0.5)
    assert result.finding("timeout") is not None and "timeout=0.5" in result.cause


def test_a_sleep_is_interrupted_too():
    spec = gk.registry.get("hostile.sleeps_forever")
    started = time.perf_counter()
    result = gk.check_case(spec, spec.cases[0], timeout=0.5)
    assert result.finding("timeout") is not None and time.perf_counter() - started < 5


def test_a_timeout_works_outside_the_main_thread():
    from concurrent.futures import ThreadPoolExecutor

    spec = gk.registry.get("hostile.hangs_in_a_loop")
    with ThreadPoolExecutor(1) as pool:
        result = pool.submit(gk.check_case, spec, spec.cases[0], timeout=0.5).result(timeout=30)
    assert result.finding("timeout") is not None


def test_huge_outputs_are_refused_unread():
    spec = gk.registry.get("hostile.huge_output")
    result = gk.check_case(spec, spec.cases[0])
    assert "GiB of outputs" in result.cause or "MemoryError" in result.cause


def test_sys_exit_in_a_layer_does_not_end_the_run():
    spec = gk.registry.get("hostile.calls_sys_exit")
    assert "SystemExit" in gk.check_case(spec, spec.cases[0]).cause


def test_element_wise_mode_beyond_its_budget_switches_to_projections_and_says_so():
    x = np.random.default_rng(0).standard_normal((300, 200))
    result = gk.check(np.tanh, lambda dy, x: (dy * (1 - np.tanh(x) ** 2),), (x,), mode="elementwise")
    assert result.passed and result.settings["mode_used"] == "projection"
    assert result.finding("budget").severity == "warning"


def test_invalid_robustness_options_are_refused():
    with pytest.raises(gk.InvalidArgument, match="timeout=0 must be a positive number"):
        gk.check(np.tanh, lambda dy, x: (dy,), (np.ones(2),), timeout=0)
    with pytest.raises(gk.InvalidArgument, match="max_output_bytes=-1 must be a positive int"):
        gk.check(np.tanh, lambda dy, x: (dy,), (np.ones(2),), max_output_bytes=-1)


def test_the_same_seed_gives_the_same_verdicts_and_numbers_for_every_hostile_layer():
    deterministic = [n for n in HOSTILE if n not in ("different_on_every_call", "random_backward")]
    for name in deterministic[:8]:
        spec = gk.registry.get(f"hostile.{name}")
        first = gk.check_case(spec, spec.cases[0], timeout=2.0).to_dict()
        second = gk.check_case(spec, spec.cases[0], timeout=2.0).to_dict()
        for data in (first, second):
            data.pop("seconds")
            for f in data["findings"]:
                f.pop("traceback")
                f["message"] = f["message"].split(" (calls so far")[0]
        assert first == second, name


def test_a_timeout_never_interrupts_an_import(tmp_path, monkeypatch):
    (tmp_path / "slow_to_import.py").write_text("import time\ntime.sleep(0.8)\nfinished = True\n")
    monkeypatch.syspath_prepend(str(tmp_path))

    def forward(x):
        import slow_to_import

        time.sleep(0.5)  # the limit, deferred past the import, lands here
        return np.tanh(x) * slow_to_import.finished

    result = gk.check(forward, lambda dy, x: (dy * (1 - np.tanh(x) ** 2),), (np.ones(3),), timeout=0.2)
    import slow_to_import

    assert slow_to_import.finished is True  # the module finished importing: no half-loaded state
    assert result.finding("timeout") is not None


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("mutates_its_input", "forward wrote into x"),
        ("mutates_grad_output", "backward wrote into grad_output"),
        ("random_backward", "backward gave a different gradient"),
        ("different_on_every_call", "forward gave a different output"),
    ],
)
def test_the_cause_leads_with_what_makes_the_gradient_verdict_moot(name, words):
    spec = gk.registry.get(f"hostile.{name}")
    assert gk.check_case(spec, spec.cases[0]).cause.startswith(words)


def test_the_hostile_zoo_runs_through_the_cli_with_one_clear_verdict_each_and_no_crash(tmp_path):
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    args = ["check", str(root / "tests" / "support" / "hostile_layers.py"), "--dtype", "float64"]
    args += ["--timeout", "0.5", "--database", "none", "--output", str(tmp_path / "hostile.json")]
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "gradcheck_kit.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    assert done.returncode == 1, done.stderr[-2000:]  # failures, not a crash (139) or usage (2)
    entries = json.loads((tmp_path / "hostile.json").read_text())["entries"]
    assert len(entries) == len(HOSTILE) >= 20 and all(e["status"] == "failed" for e in entries)
    assert all(e["cause"] and "\n" not in e["cause"] for e in entries)
    assert time.perf_counter() - started < 60
