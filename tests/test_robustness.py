"""Misbehaving layers never break the harness, and the run is the most trusted part of the gate
(issue 16): one verdict each, a one-line cause, bounded time, the next layer still runs, through
gk.check, the CLI (here) and the pytest plugin (test_plugin_robustness.py):

- process faults (a segfault, os._exit with any code, a signal, fork, a loop swallowing the
  timeout, a non-daemon thread) cost only their own entry, named with the last stage;
- reports are honest and incremental (a killed run leaves its finished entries, an interrupted
  one says so), with null for every non-finite number;
- outputs are checked and resolved before the run, replaced atomically with the umask's mode,
  streams written through, stdout carrying only the report;
- control characters from user code are visible in every output;
- `show` validates every field and has no reachable recursion limit;
- the edges: every timeout, strict numbers, unknown devices, memory, mutation and output types
  blamed on the right call, unmeasured errors null.
(Bad configuration on the command line, exit 2 naming the value, is also covered in
test_cli.py.)"""

from __future__ import annotations

import ast
import json
import os
import signal
import stat
import subprocess
import sys
import threading
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

import gradcheck_kit as gk
from gradcheck_kit.cli import main
from tests.support import hostile_layers

# under pytest-xdist's --dist loadgroup (the README's test command) this file runs on one
# worker: its module-scoped fixtures (CLI runs, pytest sessions) are set up once, not per worker
pytestmark = pytest.mark.xdist_group("tests/test_robustness.py")

HOSTILE = sorted(hostile_layers.HOSTILE)
FAULTS = hostile_layers.PROCESS_FAULTS
ROOT = Path(__file__).resolve().parents[1]
ZOO = ROOT / "tests" / "support" / "hostile_layers.py"
RAW = ("\x1b", "\x07", "\x00", "\u202e")  # control characters that must never come out raw


def cli(
    *args: str, cwd: Path | None = None, timeout: float = 180, **options
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NO_COLOR": "1"}
    command = [sys.executable, "-m", "gradcheck_kit.cli", *args]
    return subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, **options
    )


def start_cli(*args: str, cwd: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NO_COLOR": "1"}
    command = [sys.executable, "-m", "gradcheck_kit.cli", *args]
    return subprocess.Popen(
        command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def entries_by_layer(data: dict) -> dict[str, dict]:
    return {e["layer"]: e for e in data["entries"]}


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


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("mutates_its_input_on_the_second_call", "forward wrote, on its second call, into x"),
        # complex outputs of real inputs are checked through their real view (an FFT is a
        # layer); this one's backward hands the real input a complex gradient
        ("complex_output", "gradient for x has dtype complex128; the input is float64"),
        ("bool_second_output", "forward returned output 1 as bool, which gets no grad_output"),
        ("raises_memory_error", "forward raised MemoryError"),
    ],
)
def test_a_fault_is_blamed_on_the_call_that_made_it_and_says_what_happened(name, words):
    spec = gk.registry.get(f"hostile.{name}")
    result = gk.check_case(spec, spec.cases[0])
    assert result.cause.startswith(words), result.cause
    assert "backward raised" not in result.cause and "please report it" not in result.cause


# -- process faults, through the CLI -------------------------------------------------------------


@pytest.fixture(scope="module")
def zoo_run(tmp_path_factory):
    """The whole zoo through the CLI, two workers, every output format at once."""
    out = tmp_path_factory.mktemp("zoo")
    outputs = [f"--output={out / name}" for name in ("zoo.json", "zoo.md", "zoo.html", "zoo.txt")]
    args = ["check", str(ZOO), "--dtype", "float64", "--timeout", "0.5", "--database", "none"]
    started = time.perf_counter()
    done = cli(*args, "--jobs", "2", *outputs)
    return done, json.loads((out / "zoo.json").read_text()), out, time.perf_counter() - started


def test_the_hostile_zoo_runs_through_the_cli_with_one_clear_verdict_each_and_no_crash(zoo_run):
    done, data, _, seconds = zoo_run
    assert done.returncode == 1, done.stderr[-3000:]  # failures and crashes: not usage (2), not 0
    entries = entries_by_layer(data)
    assert len(entries) == len(HOSTILE) + len(FAULTS) and data["state"] == "complete"
    for name in HOSTILE:
        entry = entries[f"hostile.{name}"]
        assert entry["status"] == "failed" and entry["cause"] and "\n" not in entry["cause"], name
    assert "printf from a layer" in done.stderr and "print from a layer" in done.stderr
    assert "from a layer" not in done.stdout  # stdout carries the report alone
    assert done.stdout.startswith("gradcheck-kit ") and seconds < 120


@pytest.mark.parametrize("name", sorted(FAULTS))
def test_a_process_fault_costs_only_its_own_entry_naming_the_layer_the_exit_and_the_last_stage(zoo_run, name):
    status, words = FAULTS[name][1:]
    entry = entries_by_layer(zoo_run[1])[f"hostile.process.{name}"]
    assert entry["status"] == status, entry["reason"] or entry["cause"]
    text = entry["reason"] or entry["cause"] or ""
    assert words in text
    if status in ("crashed", "timeout"):
        assert f"layer 'hostile.process.{name}' [numpy, float64]" in text and "\n" not in text


def test_control_characters_from_user_code_are_visible_in_every_output(zoo_run, tmp_path):
    done, data, out, _ = zoo_run
    rendered = {p.name: p.read_text() for p in out.iterdir()}
    rendered["stdout (text)"] = done.stdout
    rendered["show --format text"] = cli("show", str(out / "zoo.json"), "--format", "text").stdout
    for name, text in rendered.items():
        assert not any(c in text for c in RAW), name
    for name in ("zoo.md", "zoo.txt", "stdout (text)", "show --format text"):
        assert "\\x1b]0;pwned\\x07" in rendered[name] and "\\u202e" in rendered[name], name
    assert "\\x1b]0;pwned\\x07" in rendered["zoo.html"]
    layer = f"hostile.control_characters{hostile_layers.CONTROL}"
    assert entries_by_layer(data)[layer]["status"] == "failed"  # the data keeps the name


def test_the_rich_table_shows_control_characters_escaped(zoo_run):
    import io

    from rich.console import Console

    stream = io.StringIO()
    gk.report.render_table(gk.report.Run.from_dict(zoo_run[1]), Console(file=stream, width=300))
    assert not any(c in stream.getvalue() for c in RAW) and "\\x1b]0;pwned" in stream.getvalue()


SMALL = [f"{ZOO}:hostile.{n}" for n in ("wrong_gradient", "mutates_grad_output", "forward_nan")]
SMALL += [f"{ZOO}:hostile.process.exits_with_3", "reference_layers:tanh", "reference_layers:relu"]


def _verdicts(stdout: str) -> list[dict]:
    entries = json.loads(stdout)["entries"]
    for entry in entries:
        entry.pop("seconds")
        for key in ("result", "message"):
            entry.pop(key)
    return entries


def test_jobs_2_and_no_isolation_give_the_results_of_a_serial_run():
    fast = ["--dtype", "float64", "--max-examples", "5", "--database", "none", "--format", "json"]
    serial, parallel = cli("check", *SMALL, *fast), cli("check", *SMALL, *fast, "--jobs", "2")
    assert serial.returncode == parallel.returncode == 1
    assert _verdicts(parallel.stdout) == _verdicts(serial.stdout)
    in_process = cli("check", *SMALL[:3], *SMALL[4:], *fast, "--no-isolation")
    assert in_process.returncode == 1
    assert _verdicts(in_process.stdout) == [
        e for e in _verdicts(serial.stdout) if "exits_with_3" not in e["layer"]
    ]


# -- honest, incremental reports -----------------------------------------------------------------

SLOW_LAYERS = """
import os, time
from pathlib import Path
import numpy as np
import gradcheck_kit as gk

X = np.linspace(-1.0, 1.0, 6)
def backward(dy, x):
    return (dy * (1 - np.tanh(x) ** 2),)
def hangs(x):
    Path("hanging.pid").write_text(str(os.getpid()))
    time.sleep(3600)
gk.register("a_fast", np.tanh, backward, cases=[gk.Case((X,))])
gk.register("b_hangs", hangs, backward, cases=[gk.Case((X,))])
gk.register("c_never_reached", np.tanh, backward, cases=[gk.Case((X,))])
"""


def _wait_for(condition, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


def _first_entry_written(path: Path) -> bool:
    try:
        return len(json.loads(path.read_text())["entries"]) >= 1
    except (OSError, ValueError, KeyError):
        return False


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return Path(f"/proc/{pid}/status").exists() and "zombie" in Path(f"/proc/{pid}/status").read_text()


@pytest.mark.parametrize("how", ["SIGKILL", "SIGINT", "SIGTERM"])
def test_a_killed_or_interrupted_run_leaves_the_finished_entries_and_says_what_did_not_run(tmp_path, how):
    (tmp_path / "slow_layers.py").write_text(SLOW_LAYERS)
    report = tmp_path / "run.json"
    run = start_cli(
        "check",
        "slow_layers.py",
        "--dtype",
        "float64",
        "--timeout",
        "inf",
        "--output",
        "run.json",
        "--output",
        "run.md",
        cwd=tmp_path,
    )
    _wait_for(lambda: _first_entry_written(report) and (tmp_path / "hanging.pid").exists())
    run.send_signal(getattr(signal, how))
    code = run.wait(timeout=30)
    data = json.loads(report.read_text())
    assert [e["layer"] for e in data["entries"]] == ["a_fast"] and data["passed"] is False
    assert [w["layer"] for w in data["not_run"]] == ["b_hangs", "c_never_reached"]
    if how == "SIGKILL":  # no chance to write again: the last incremental write says so
        assert data["state"] == "incomplete" and code == -signal.SIGKILL
    else:
        assert data["state"] == "interrupted" and code == 128 + getattr(signal, how)
        assert "INTERRUPTED" in (tmp_path / "run.md").read_text()
    worker = int((tmp_path / "hanging.pid").read_text())
    _wait_for(lambda: _gone(worker), 10)  # the busy worker does not outlive the run


# -- outputs -------------------------------------------------------------------------------------

MARKED_LAYERS = """
from pathlib import Path
import numpy as np
import gradcheck_kit as gk
Path("imported.marker").write_text("the layers were imported")
gk.register("tanh_ok", np.tanh, lambda dy, x: (dy * (1 - np.tanh(x) ** 2),), cases=[gk.Case((np.ones(3),))])
"""


@pytest.mark.parametrize(
    ("output", "words"),
    [
        ("a_file.txt/report.json", "Not a directory; accepted: a path in a writable folder"),
        ("a_folder", "is a directory"),
        ("a_folder/", "is a directory"),
    ],
)
def test_an_output_that_cannot_be_written_stops_the_run_before_it_starts(tmp_path, output, words):
    (tmp_path / "marked.py").write_text(MARKED_LAYERS)
    (tmp_path / "a_file.txt").write_text("not a folder")
    (tmp_path / "a_folder").mkdir()
    started = time.perf_counter()
    done = cli("check", "marked.py", "--format", "json", "--output", output, cwd=tmp_path)
    assert done.returncode == 2 and words in done.stderr and done.stdout == ""
    assert not (tmp_path / "imported.marker").exists() and time.perf_counter() - started < 20


def test_files_get_the_umask_mode_streams_are_written_through_and_symlinks_followed(tmp_path):
    (tmp_path / "marked.py").write_text(MARKED_LAYERS)
    fifo = tmp_path / "report.fifo"
    os.mkfifo(fifo)
    (tmp_path / "real.md").write_text("old")
    (tmp_path / "link.md").symlink_to("real.md")
    received: list[str] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_text()), daemon=True)
    reader.start()
    outputs = ["--output", str(fifo), "--output", "/dev/null", "--output", "link.md", "--output", "new.txt"]
    done = cli(
        "check", "marked.py", "--format", "json", *outputs, cwd=tmp_path, preexec_fn=lambda: os.umask(0o027)
    )
    reader.join(30)
    assert done.returncode == 0, done.stderr
    assert json.loads(received[0])["passed"] is True and stat.S_ISFIFO(fifo.stat().st_mode)
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    assert (tmp_path / "link.md").is_symlink() and (tmp_path / "real.md").read_text().startswith(
        "## gradcheck-kit"
    )
    assert stat.S_IMODE((tmp_path / "new.txt").stat().st_mode) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no temporaries


def test_dev_stdout_as_an_output_carries_the_report_once_and_nothing_else(tmp_path):
    (tmp_path / "marked.py").write_text(MARKED_LAYERS)
    done = cli("check", "marked.py", "--format", "json", "--output", "/dev/stdout", cwd=tmp_path)
    assert done.returncode == 0 and json.loads(done.stdout)["passed"] is True


WANDERING_LAYERS = """
import os
import numpy as np
import gradcheck_kit as gk
def forward(x):
    os.makedirs("elsewhere", exist_ok=True)
    os.chdir("elsewhere")
    return np.tanh(x)
gk.register("wanders", forward, lambda dy, x: (dy * (1 - np.tanh(x) ** 2),), cases=[gk.Case((np.ones(3),))])
"""


def test_a_layer_that_changes_directory_cannot_move_a_relative_output(tmp_path):
    (tmp_path / "wandering.py").write_text(WANDERING_LAYERS)
    done = cli(
        "check", str(tmp_path / "wandering.py"), "--no-isolation", "--output", "run.json", cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "run.json").exists() and not list((tmp_path / "elsewhere").rglob("run.json"))


def test_c_level_printf_goes_to_stderr_in_process_too():
    target = f"{ZOO}:hostile.process.prints_from_c"
    done = cli("check", target, "--no-isolation", "--dtype", "float64", "--format", "json")
    assert done.returncode == 0 and json.loads(done.stdout)["passed"] is True
    assert "printf from a layer" in done.stderr and "printf" not in done.stdout


# -- non-finite numbers --------------------------------------------------------------------------


def _json_writers() -> list[str]:
    """Every call of json.dump/json.dumps in the package that does not pass allow_nan=False."""
    loose = []
    for path in (ROOT / "gradcheck_kit").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            is_dump = isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            if (
                is_dump
                and node.func.attr in ("dump", "dumps")
                and getattr(node.func.value, "id", "") == "json"
            ):
                strict = any(
                    k.arg == "allow_nan" and getattr(k.value, "value", True) is False for k in node.keywords
                )
                if not strict:
                    loose.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return loose


def test_every_json_writer_refuses_nan_so_non_finite_numbers_are_null_everywhere():
    assert _json_writers() == []


SQRT_LAYERS = """
import numpy as np
import gradcheck_kit as gk

X = np.array([1e-12, 1e-10, 4.0])
# 1.2x too large: near 0 its probes' Taylor test steps out of sqrt's domain (NaN orders)
gk.register("sqrt_near_0", np.sqrt, lambda dy, x: (dy * 0.6 / np.sqrt(x),), cases=[gk.Case((X,))])
gk.register("raises", lambda x: 1 / 0, lambda dy, x: (dy,), cases=[gk.Case((X,))])
"""


def _strict(text: str) -> dict:
    def refuse(constant: str) -> None:
        raise AssertionError(f"{constant} in a JSON report")

    return json.loads(text, parse_constant=refuse)


def test_nan_in_taylor_orders_and_unmeasured_errors_are_null_in_the_cli_s_reports(tmp_path):
    (tmp_path / "sqrt_layers.py").write_text(SQRT_LAYERS)
    x = np.array([1e-12, 1e-10, 4.0])
    with np.errstate(invalid="ignore"):
        result = gk.check(np.sqrt, lambda dy, x: (dy * 0.6 / np.sqrt(x),), (x,))  # 1.2x too large
    assert any(np.isnan(o) for r in result.inputs for o in r.taylor_orders or [])  # the numbers hold NaN
    _strict(json.dumps(result.to_dict(), allow_nan=False))  # ... their JSON form null
    done = cli(
        "check",
        "sqrt_layers.py",
        "--dtype",
        "float64",
        "--output",
        "r.json",
        "--output",
        "r.txt",
        cwd=tmp_path,
    )
    assert done.returncode == 1, done.stderr
    data = _strict((tmp_path / "r.json").read_text())
    raised = entries_by_layer(data)["raises"]
    assert raised["max_abs_err"] is None and raised["max_rel_err"] is None
    row = next(line for line in (tmp_path / "r.txt").read_text().splitlines() if line.startswith("raises"))
    assert row.split()[4:6] == ["-", "-"]  # max abs err, max rel err: not measured


# -- show ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def saved(zoo_run):
    return zoo_run[1]


def _failing_entry(data: dict) -> int:
    return next(k for k, e in enumerate(data["entries"]) if e["layer"] == "hostile.wrong_gradient")


# (path in the report, a wrong value, the words of the refusal)
MALFORMED = [
    ("seconds", "soon", "report.seconds='soon' must be a number >= 0"),
    ("seconds", -1, "report.seconds=-1 must be a number >= 0"),
    ("seed", -3, "report.seed=-3 must be an int >= 0"),
    ("seed", 1.5, "report.seed=1.5 must be an int >= 0"),
    ("profile", 3, "report.profile=3 must be a string"),
    ("backends", "numpy", "report.backends='numpy' must be a list of strings"),
    ("targets", [1], "report.targets[0]=1 must be a string"),
    ("state", "half", "report.state='half' is unknown; accepted: complete, incomplete, interrupted"),
    ("counts", [], "report.counts must be a JSON object"),
    ("counts.failed", -1, "report.counts.failed=-1 must be an int >= 0"),
    ("not_run", {}, "report.not_run={} must be a list"),
    ("entries", {}, "report.entries={} must be a list"),
    ("E.layer", None, ".layer=None must be a string"),
    ("E.status", "maybe", ".status='maybe' is unknown; accepted: passed, failed"),
    ("E.seconds", "1s", ".seconds='1s' must be a number >= 0"),
    ("E.examples", -2, ".examples=-2 must be an int >= 0"),
    ("E.max_rel_err", "big", ".max_rel_err='big' must be a number >= 0"),
    ("E.kinks", True, ".kinks=True must be an int >= 0"),
    ("E.patterns", "sign", ".patterns='sign' must be a list of strings"),
    ("E.inputs", [3], ".inputs[0] must be a JSON object, got int"),
    ("E.inputs.0.shape", "3x4", ".inputs[0].shape='3x4' must be a list of ints >= 0"),
    ("E.inputs.0.failing", -1, ".inputs[0].failing=-1 must be an int >= 0"),
    ("E.kind", "batch", ".kind='batch' must be one of property, check or null"),
    ("E.result", [], ".result=[] must be a JSON object or null"),
    ("E.result.examples", "many", ".result.examples='many' must be an int >= 0"),
    ("E.result.replay", "x", ".result.replay must be a JSON object"),
    ("E.result.replay.call", 5, ".result.replay.call=5 must be a string"),
    ("E.result.notes", [None], ".result.notes[0]=None must be a string"),
    ("E.result.check", 3, ".result.check=3 must be a check result (a JSON object) or null"),
    ("E.result.check.inputs.0.shape.1", -2, ".result.check.inputs[0].shape[1]=-2 must be an int >= 0"),
    (
        "E.result.check.inputs.0.error_map.0.0",
        "x",
        ".result.check.inputs[0].error_map[0][0]='x' must be a finite number",
    ),
    (
        "E.result.check.inputs.0.failing_map.0",
        7,
        ".result.check.inputs[0].failing_map[0]=7 must be true or false",
    ),
    ("E.result.check.inputs.0.evidence.taylor.steps", 1, ".evidence.taylor.steps=1 must be a list of"),
    (
        "E.result.check.inputs.0.evidence.taylor.residuals.0",
        "a",
        ".taylor.residuals[0]='a' must be a finite number",
    ),
    (
        "E.result.check.findings",
        [{"severity": "fatal"}],
        ".result.check.findings[0].severity='fatal' is unknown",
    ),
    ("E.result.check.calls", [], ".result.check.calls must be a JSON object"),
    ("E.result.check.seed", "zero", ".result.check.seed='zero' must be an int >= 0"),
]


def _set(data: dict, path: str, value: object) -> None:
    keys = [int(k) if k.isdigit() else k for k in path.split(".")]
    if keys[0] == "E":
        keys[0:1] = ["entries", _failing_entry(data)]
    target = data
    for key in keys[:-1]:
        target = target[key]
    target[keys[-1]] = value


@pytest.mark.parametrize(("path", "value", "words"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_show_refuses_every_malformed_field_with_exit_2_naming_it(
    saved, tmp_path, capsys, path, value, words
):
    data = json.loads(json.dumps(saved))
    _set(data, path, value)
    (tmp_path / "bad.json").write_text(json.dumps(data))
    assert main(["show", str(tmp_path / "bad.json")]) == 2
    captured = capsys.readouterr()
    assert words in captured.err and captured.out == "" and "Traceback" not in captured.err


def test_show_survives_100k_nested_brackets_and_deep_but_valid_json(tmp_path, capsys):
    (tmp_path / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    assert main(["show", str(tmp_path / "deep.json")]) == 2
    assert "nests deeper than 48 levels" in capsys.readouterr().err
    nested: object = {}
    for _ in range(300):
        nested = {"more": nested}
    report = {
        "schema": 1,
        "entries": [{"layer": "a", "backend": "numpy", "status": "passed", "result": nested}],
    }
    (tmp_path / "nested.json").write_text(json.dumps(report))
    assert main(["show", str(tmp_path / "nested.json")]) == 2
    assert "report nests deeper than 48 levels" in capsys.readouterr().err


def test_show_re_renders_a_report_with_nan_seconds_and_infinite_numbers(saved, tmp_path):
    text = json.dumps(saved).replace('"seconds": ', '"seconds": NaN, "was": ', 1)
    text = text.replace('"max_rel_err": ', '"max_rel_err": Infinity, "was_err": ', 1)
    (tmp_path / "nan.json").write_text(text)
    shown = cli("show", str(tmp_path / "nan.json"), "--format", "text")
    assert shown.returncode == 1, shown.stderr  # the saved run's code: it failed
    assert "in - s" in shown.stdout


# -- edges ---------------------------------------------------------------------------------------


def _tanh_backward(dy, x):
    return (dy * (1 - np.tanh(x) ** 2),)


@pytest.mark.parametrize("timeout", [1e-300, 1e-9, 1e-6, 1e-3])
def test_every_tiny_timeout_gives_a_timed_out_result_never_an_exception(timeout):
    result = gk.check(np.tanh, _tanh_backward, (np.linspace(-1, 1, 50),), timeout=timeout)
    assert result.passed or result.finding("timeout") is not None


@pytest.mark.parametrize("timeout", [1e8 + 1, 1e300, float("inf")])
def test_an_infinite_or_huge_timeout_means_no_limit(timeout):
    assert gk.check(np.tanh, _tanh_backward, (np.linspace(-1, 1, 5),), timeout=timeout).passed


def test_tiny_and_infinite_timeouts_through_the_cli(tmp_path):
    (tmp_path / "marked.py").write_text(MARKED_LAYERS)
    tiny = cli("check", "marked.py", "--timeout", "1e-9", "--format", "json", cwd=tmp_path)
    entries = json.loads(tiny.stdout)["entries"]
    assert tiny.returncode == 1 and all(e["status"] == "failed" and "timeout" in e["cause"] for e in entries)
    for huge in ("inf", "1e300"):
        assert cli("check", "marked.py", "--timeout", huge, cwd=tmp_path).returncode == 0


@pytest.mark.parametrize(
    ("option", "accepted"),
    [
        ("--backend=torch:meta", "is unknown; accepted: numpy, torch, torch:cpu, torch:cuda[:N], cupy[:N]"),
        ("--backend=cupy:²", "is unknown; accepted"),
        ("--seed=²", "--seed='²' is invalid; accepted: an integer >= 0"),
        ("--max-examples=١٢", "--max-examples='١٢' is invalid; accepted: a positive integer"),
        ("--timeout=１", "--timeout='１' is invalid; accepted: a finite number > 0 (or inf: no limit)"),
        ("--timeout=nan", "--timeout='nan' is invalid"),
        ("--rtol=1_0", "--rtol='1_0' is invalid"),
        ("--jobs=0", "--jobs='0' is invalid; accepted: a positive integer or auto"),
        ("--jobs=²", "--jobs='²' is invalid"),
    ],
)
def test_options_parse_strictly_and_unknown_devices_are_refused_at_parse_time(
    tmp_path, monkeypatch, capsys, option, accepted
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "marked.py").write_text(MARKED_LAYERS)
    try:
        code = main(["check", str(tmp_path / "marked.py"), option])
    except SystemExit as stopped:
        code = stopped.code
    assert code == 2 and accepted in capsys.readouterr().err
    assert not (tmp_path / "imported.marker").exists()


def _large_output_layer(inputs: int, side: int, dtype: str = "float64"):
    """``inputs`` inputs, inputs x side outputs: the outputs are nearly all the layer's own arrays."""
    x = np.linspace(-1, 1, inputs).astype(dtype)

    def forward(x):
        return np.multiply.outer(np.tanh(x), np.ones(side, dtype=x.dtype))

    def backward(dy, x):
        return (dy.sum(axis=1) * (1 - np.tanh(x) ** 2),)

    own = 2 * x.nbytes + 2 * forward(x).nbytes  # x, y, grad_output, dx
    return forward, backward, x, own


@pytest.mark.parametrize("mode", ["projection", "auto"])
def test_a_check_peaks_at_under_3_times_the_layer_s_own_arrays(mode):
    forward, backward, x, own = _large_output_layer(8, 1 << 20)  # 64 MiB of outputs
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        result = gk.check(forward, backward, (x,), mode=mode)
        peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    assert result.passed, result.cause
    assert peak <= 3 * own, f"{peak / own:.2f}x the layer's own arrays"


def test_a_memory_error_inside_the_harness_is_a_memory_finding_not_a_harness_bug(monkeypatch):
    from gradcheck_kit._checks import stages

    def out_of_memory(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(stages, "signed_magnitudes", out_of_memory)
    result = gk.check(np.tanh, _tanh_backward, (np.ones(3),))
    assert result.finding("memory") is not None and "please report it" not in result.cause
    assert result.cause.startswith("the check ran out of memory (MemoryError)")


def test_a_check_whose_forward_raised_has_no_max_error():
    result = gk.check(lambda x: 1 / 0, _tanh_backward, (np.ones(3),))
    assert result.max_abs_err is None and result.to_dict()["max_rel_err"] is None
