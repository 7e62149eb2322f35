"""The command line, driven as a subprocess: exit codes 0/1/2, targets, the JSON report schema,
Markdown and HTML outputs (escaped, well formed), `show`, `list`; the hostile-layer zoo through the
CLI is in test_robustness.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest

from gradcheck_kit.cli import main

ROOT = Path(__file__).resolve().parents[1]
HOSTILE = ROOT / "tests" / "support" / "hostile_layers.py"
SCRIPT_NAME = "<script>alert(1)</script>"
FAST = ["--dtype", "float64", "--max-examples", "3", "--database", "none"]

LAYERS = """
import numpy as np
from hypothesis import strategies as st
import gradcheck_kit as gk

X = np.linspace(-1.0, 1.0, 12).reshape(3, 4)


def forward(x):
    return np.tanh(x)


def backward(dy, x):
    return (dy * (1 - np.tanh(x) ** 2),)


def wrong_backward(dy, x):
    return (dy * np.tanh(x),)


gk.register("good_tanh", forward, backward, cases=[gk.Case((X,))])
"""
BUGGY = """
gk.register("bad_tanh", forward, wrong_backward, cases=[gk.Case((X,))])
gk.register({name!r}, forward, wrong_backward, cases=[gk.Case((X,))])
"""
EMPTY_STRATEGY = """
gk.register("never_drawn", forward, backward, cases=st.builds(lambda: gk.Case((X,))).filter(lambda c: False))
"""


def cli(*args: str, cwd: Path | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NO_COLOR": "1"}
    command = [sys.executable, "-m", "gradcheck_kit.cli", *args]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def layers(tmp_path_factory):
    folder = tmp_path_factory.mktemp("layers")
    (folder / "good_layers.py").write_text(LAYERS)
    (folder / "buggy_layers.py").write_text(LAYERS + BUGGY.format(name=SCRIPT_NAME))
    (folder / "undrawable_layers.py").write_text(LAYERS.replace("good_tanh", "drawable") + EMPTY_STRATEGY)
    (folder / "broken_layers.py").write_text("raise ValueError('cannot import me')\n")
    (folder / "no_layers.py").write_text("X = 1\n")
    return folder


@pytest.fixture(scope="module")
def buggy_run(layers):
    out = layers / "out"
    outputs = [f"--output={out / name}" for name in ("run.json", "run.md", "run.html")]
    started = time.perf_counter()
    done = cli("check", str(layers / "buggy_layers.py"), *FAST, *outputs)
    return done, out, time.perf_counter() - started


def test_a_correct_layer_passes_with_exit_code_0_and_a_plain_text_table(layers):
    done = cli("check", str(layers / "good_layers.py"), *FAST)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("gradcheck-kit ") and "seed=0" in lines[0]
    assert lines[1].split()[:4] == ["layer", "backend", "dtype", "input"]
    assert "good_tanh" in lines[2] and lines[2].split()[-1] == "ok"
    assert "┃" not in done.stdout and lines[-2].startswith("PASSED: 1 passed")
    assert lines[-1].startswith("note: 1 passing entry was checked without a reference")


def test_a_run_with_the_reference_says_nothing_about_forward_only_bugs(tmp_path):
    pytest.importorskip("torch")
    referenced = LAYERS.replace("cases=[gk.Case((X,))])", "cases=[gk.Case((X,))], reference=torch_tanh)")
    (tmp_path / "referenced.py").write_text("import torch\ntorch_tanh = torch.tanh\n" + referenced)
    done = cli("check", str(tmp_path / "referenced.py"), *FAST, "--reference")
    assert done.returncode == 0, done.stderr
    assert "without a reference" not in done.stdout


def test_a_wrong_gradient_fails_with_exit_code_1_and_names_the_input(buggy_run):
    done, _, seconds = buggy_run
    assert done.returncode == 1, done.stderr
    bad = next(line for line in done.stdout.splitlines() if line.startswith("bad_tanh"))
    assert bad.split()[3] == "x" and "FAILED" in bad
    assert "minimal configuration" in done.stdout and seconds < 30


def test_the_json_report_has_the_documented_schema(buggy_run):
    _, out, _ = buggy_run
    data = json.loads((out / "run.json").read_text())
    assert data["schema"] == 1 and data["passed"] is False
    header = {"tool", "version", "started", "seconds", "seed", "profile", "backends", "dtypes", "targets"}
    assert header | {"schema", "state", "passed", "counts", "entries", "not_run"} == set(data)
    assert data["state"] == "complete" and data["not_run"] == []
    assert data["counts"] == {"passed": 1, "failed": 2, "skipped": 0, "error": 0, "crashed": 0, "timeout": 0}
    assert [e["layer"] for e in data["entries"]] == sorted([SCRIPT_NAME, "bad_tanh", "good_tanh"])
    entry = next(e for e in data["entries"] if e["layer"] == "bad_tanh")
    assert (entry["status"], entry["backend"], entry["dtype"], entry["kind"]) == (
        "failed",
        "numpy",
        "float64",
        "property",
    )
    assert entry["inputs"][0]["name"] == "x" and entry["inputs"][0]["passed"] is False
    failing = entry["result"]["check"]["inputs"][0]
    assert len(failing["error_map"]) == 3 and len(failing["error_map"][0]) == 4
    assert set(failing["evidence"]["taylor"]) >= {"steps", "residuals", "orders"}


def test_markdown_is_a_compact_escaped_summary(buggy_run):
    _, out, _ = buggy_run
    md = (out / "run.md").read_text()
    assert md.startswith("## gradcheck-kit: ❌ failed") and SCRIPT_NAME not in md
    assert "&lt;script&gt;alert\\(1\\)&lt;/script&gt;" in md
    assert md.count("<details>") == 2


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.open: list[str] = []
        self.seen: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.seen.append(tag)
        if tag not in ("meta", "img", "br", "link"):
            self.open.append(tag)

    def handle_endtag(self, tag):
        assert self.open and self.open[-1] == tag, (tag, self.open[-5:])
        self.open.pop()


def test_the_html_report_is_one_well_formed_file_with_pictures_and_user_text_escaped(buggy_run):
    _, out, _ = buggy_run
    page = (out / "run.html").read_text()
    parser = _Tags()
    parser.feed(page)
    assert parser.open == [] and "script" not in parser.seen
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert page.count("data:image/png;base64,") == 4  # a heatmap and a Taylor plot per failing entry
    assert "http://" not in page and "https://" not in page


def test_outputs_are_written_atomically_without_leftover_temporary_files(buggy_run):
    _, out, _ = buggy_run
    assert sorted(os.listdir(out)) == ["run.html", "run.json", "run.md"]


def test_show_re_renders_a_saved_run_and_keeps_its_exit_code(buggy_run, tmp_path):
    done, out, _ = buggy_run
    shown = cli("show", str(out / "run.json"))
    assert shown.returncode == 1
    assert shown.stdout.splitlines()[1:] == done.stdout.splitlines()[1:]
    markdown = cli("show", str(out / "run.json"), "--format", "markdown")
    assert markdown.stdout == (out / "run.md").read_text()
    html = cli("show", str(out / "run.json"), f"--output={tmp_path / 'again.html'}")
    assert html.returncode == 1 and (tmp_path / "again.html").read_text().count("data:image/png") == 4


def test_a_module_layer_name_target_and_a_dotted_module_from_the_working_directory(layers):
    named = cli("check", f"{layers / 'buggy_layers.py'}:good_tanh", *FAST)
    assert named.returncode == 0 and "bad_tanh" not in named.stdout
    dotted = cli("check", "good_layers", *FAST, "--format", "json", cwd=layers)
    assert dotted.returncode == 0, dotted.stderr
    assert [e["layer"] for e in json.loads(dotted.stdout)["entries"]] == ["good_tanh"]


def test_list_shows_layers_with_their_inputs_and_params(layers):
    done = cli("list", str(layers / "buggy_layers.py"), "--format", "json")
    assert done.returncode == 0
    found = {layer["name"]: layer for layer in json.loads(done.stdout)["layers"]}
    assert set(found) == {"bad_tanh", "good_tanh", SCRIPT_NAME}
    assert found["good_tanh"]["inputs"] == ["x"] and found["good_tanh"]["cases"] == "1 fixed"
    text = cli("list", str(layers / "good_layers.py"))
    assert text.stdout.startswith("good_tanh inputs=x params=- cases=1 fixed")


def test_version_is_printed():
    done = cli("--version")
    assert done.returncode == 0 and done.stdout.startswith("gradcheck-kit ")


def test_a_strategy_that_cannot_produce_a_case_is_a_configuration_error_with_exit_code_2(layers):
    done = cli("check", str(layers / "undrawable_layers.py"), *FAST)
    assert done.returncode == 2
    row = next(line for line in done.stdout.splitlines() if line.startswith("never_drawn"))
    assert "ERROR" in row and "could not produce a case" in row and "accepted:" in row
    assert "drawable" in done.stdout


def test_a_threshold_on_the_relative_error_fails_a_layer_that_passes_otherwise(layers):
    done = cli("check", str(layers / "good_layers.py"), *FAST, "--max-rel-err", "1e-300")
    assert done.returncode == 1 and "exceeds --max-rel-err=1e-300" in done.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["check", "{good}", "--backend", "mlx"], "backend='mlx' is unknown; accepted: numpy, torch"),
        (["check", "{good}", "--dtype", "float8"], "--dtype='float8' is unknown; accepted: float64, float32"),
        (["check", "{good}:nope"], "layer 'nope' is not registered; known: "),
        (["check", "no_such_module_xyz"], "no module named 'no_such_module_xyz'; accepted: package.module"),
        (["check", "{folder}/missing.py"], "missing.py': no such file"),
        (["check", "{folder}/broken_layers.py"], "ValueError: cannot import me"),
        (["check", "{folder}/no_layers.py"], "registered no layer"),
        (["check", "not a module"], "'not a module' is not a module name or a .py path"),
        (["check", "{good}", "--output", "{folder}/report.pdf"], "cannot tell the format from its suffix"),
        (["show", "{folder}/good_layers.py"], "is not JSON (Expecting value at line 2, column 1)"),
        (["show", "{folder}/missing.json"], "cannot be read"),
    ],
)
def test_usage_and_import_errors_exit_2_naming_the_value_and_what_is_accepted(layers, capsys, args, message):
    filled = [a.format(good=layers / "good_layers.py", folder=layers) for a in args]
    assert main(filled) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("option", "value", "accepted"),
    [
        ("--max-examples", "0", "a positive integer"),
        ("--timeout", "0", "a finite number > 0"),
        ("--rtol", "-1", "a finite number >= 0"),
        ("--atol", "nan", "a finite number >= 0"),
        ("--max-rel-err", "inf", "a finite number > 0"),
        ("--seed", "-3", "an integer >= 0"),
        ("--profile", "fast", "choose from 'dev', 'ci', 'thorough'"),
    ],
)
def test_invalid_options_exit_2_naming_the_value_and_what_is_accepted(capsys, option, value, accepted):
    with pytest.raises(SystemExit) as stopped:
        main(["check", "x.py", f"{option}={value}"])
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert value in err and accepted in err


def test_a_malformed_report_for_show_exits_2_as_a_subprocess_too(tmp_path):
    path = tmp_path / "run.json"
    path.write_text(
        json.dumps({"schema": 1, "entries": [{"layer": "a", "backend": "numpy", "status": "maybe"}]})
    )
    done = cli("show", str(path))
    assert done.returncode == 2 and done.stdout == ""
    assert (
        "report.entries[0].status='maybe' is unknown; accepted: passed, failed, skipped, error" in done.stderr
    )


def test_what_a_layer_prints_goes_to_stderr_so_the_json_on_stdout_stays_clean(tmp_path):
    (tmp_path / "chatty_layers.py").write_text(
        LAYERS.replace("return np.tanh(x)", "print('hi'); return np.tanh(x)")
    )
    done = cli("check", str(tmp_path / "chatty_layers.py"), *FAST, "--format", "json")
    assert done.returncode == 0 and json.loads(done.stdout)["passed"] is True and "hi" in done.stderr


def test_the_output_format_comes_from_the_suffix_then_from_format():
    from gradcheck_kit.cli import _formats, build_parser

    args = build_parser().parse_args(
        ["check", "x", "--format", "json", "--output", "a.HTML", "--output", "b"]
    )
    assert _formats(args) == [("a.HTML", "html"), ("b", "json")]
