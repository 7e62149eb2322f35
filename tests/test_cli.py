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
from tests.support.torch_sources import CUBE

# under pytest-xdist's --dist loadgroup (the README's test command) this file runs on one
# worker: its module-scoped fixtures (CLI runs, pytest sessions) are set up once, not per worker
pytestmark = pytest.mark.xdist_group("tests/test_cli.py")

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


# -- bfloat16 -----------------------------------------------------------------------------------

BF16_LAYERS = """
import numpy as np
from hypothesis import strategies as st
import gradcheck_kit as gk


def cases():
    return st.integers(0, 2**31).map(lambda s: gk.Case((np.random.default_rng(s).normal(size=(16, 8)),)))


def silu(x):
    return x * x.sigmoid()


def silu_backward(dy, x):  # as kernels do: upcast inside, cast back
    s = x.float().sigmoid()
    return ((dy.float() * s * (1 + x.float() * (1 - s))).to(x.dtype),)


def silu_backward_x105(dy, x):
    return (silu_backward(dy, x)[0] * 1.05,)


gk.register("silu", silu, silu_backward, cases=cases())
gk.register("silu_x105", silu, silu_backward_x105, cases=cases())
"""


def test_bfloat16_cases_run_on_torch_and_are_skipped_with_the_reason_on_numpy(tmp_path, capsys):
    pytest.importorskip("torch")
    path = tmp_path / "bf16_layers.py"
    path.write_text(BF16_LAYERS)
    report = tmp_path / "run.json"
    args = ["check", str(path), "--backend", "numpy,torch", "--dtype", "bfloat16", "--max-examples", "3"]
    code = main([*args, "--database", "none", "--no-isolation", "--output", str(report)])

    entries = {(e["layer"], e["backend"]): e for e in json.loads(report.read_text())["entries"]}
    assert code == 1
    assert entries["silu", "torch"]["status"] == "passed"
    failed = entries["silu_x105", "torch"]
    assert failed["status"] == "failed" and "constant factor" in failed["result"]["cause"]
    assert "bfloat16[" in json.dumps(failed["result"])  # the layer was fed bfloat16 tensors
    for layer in ("silu", "silu_x105"):
        skipped = entries[layer, "numpy"]
        assert skipped["status"] == "skipped" and "numpy has no bfloat16" in skipped["reason"]


# -- python -m, list's inputs and params, each layer's own backend ------------------------------


def test_python_dash_m_gradcheck_kit_is_the_gradcheck_kit_command(layers):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NO_COLOR": "1"}
    run = [sys.executable, "-m", "gradcheck_kit"]
    version = subprocess.run([*run, "--version"], env=env, capture_output=True, text=True, timeout=60)
    assert version.returncode == 0 and version.stdout.startswith("gradcheck-kit ")
    listed = subprocess.run(
        [*run, "list", str(layers / "good_layers.py")], env=env, capture_output=True, text=True
    )
    assert listed.returncode == 0 and listed.stdout.startswith("good_tanh inputs=x")
    usage = subprocess.run(
        [*run, "check", "--backend", "torch:meta"], env=env, capture_output=True, text=True
    )
    assert usage.returncode == 2 and "'torch:meta' is unknown" in usage.stderr


CS231N_LAYERS = """
import numpy as np
import gradcheck_kit as gk


def conv_forward(x, w, b, conv_param):
    return x * w + b * conv_param["scale"]


def conv_backward(dy, x, w, b, conv_param):
    return dy * w, dy * x, dy * conv_param["scale"]


X = np.linspace(-1.0, 1.0, 3)
gk.register("cs_conv", conv_forward, conv_backward, cases=[gk.Case((X, X, X), {"conv_param": {"scale": 2}})])
"""


def test_list_tells_inputs_from_the_params_that_the_cases_give_positionally_named(tmp_path, capsys):
    (tmp_path / "cs_layers.py").write_text(CS231N_LAYERS)
    assert main(["list", str(tmp_path / "cs_layers.py"), "--no-isolation", "--format", "text"]) == 0
    assert capsys.readouterr().out.startswith("cs_conv inputs=x,w,b params=conv_param cases=1 fixed")
    assert main(["list", str(tmp_path / "cs_layers.py"), "--no-isolation", "--format", "json"]) == 0
    layer = json.loads(capsys.readouterr().out)["layers"][0]
    assert layer["inputs"] == ["x", "w", "b"] and layer["params"] == {"conv_param": "required"}


def test_every_reference_layer_description_is_one_plain_sentence_without_seed_references():
    import gradcheck_kit as gk
    import reference_layers  # noqa: F401

    for spec in gk.registry.from_module("reference_layers"):
        words = spec.description
        assert words[0].isupper() or words[0].isdigit(), words
        assert words.endswith(".") and words.count(". ") == 0 and "seed" not in words, words


TORCH_LAYERS = (
    CUBE
    + """
import numpy as np
from hypothesis import strategies as st
import gradcheck_kit as gk


def square(x):
    return x * x


def square_backward(dy, x):
    return (2 * x * dy,)


X = torch.linspace(-1, 1, 5, dtype=torch.float64)
gk.register("cube_function", *gk.from_autograd_function(Cube), cases=[gk.Case((X,))])
gk.register("torch_cases", square, square_backward, cases=st.just(gk.Case((X,))))
gk.register("numpy_tanh", np.tanh, lambda dy, x: (dy * (1 - np.tanh(x) ** 2),), cases=[gk.Case((X.numpy(),))])
"""
)


@pytest.fixture
def torch_layers(tmp_path, request):
    """The layers above in a file of a name of its own, checked in this process; unregistered
    afterwards."""
    pytest.importorskip("torch")
    import gradcheck_kit as gk

    module = f"torch_layers_{abs(hash(request.node.name)) % 10**8}"
    (tmp_path / f"{module}.py").write_text(TORCH_LAYERS)
    yield tmp_path / f"{module}.py"
    for name in ("cube_function", "torch_cases", "numpy_tanh"):
        gk.registry.remove(name)
    sys.modules.pop(module, None)


def _entries(report: Path) -> dict[tuple[str, str], dict]:
    return {(e["layer"], e["backend"]): e for e in json.loads(report.read_text())["entries"]}


def test_a_torch_function_and_cases_of_torch_tensors_run_on_torch_without_a_backend_option(
    torch_layers, tmp_path
):
    report = tmp_path / "run.json"
    code = main(["check", str(torch_layers), *FAST, "--no-isolation", "--output", str(report)])
    assert code == 0
    assert set(_entries(report)) == {
        ("cube_function", "torch"),
        ("torch_cases", "torch"),
        ("numpy_tanh", "numpy"),
    }
    assert all(e["status"] == "passed" for e in _entries(report).values())
    assert json.loads(report.read_text())["backends"] == ["torch", "numpy"]


def test_a_torch_layer_forced_onto_numpy_is_skipped_with_the_reason_never_a_gradient_failure(
    torch_layers, tmp_path
):
    report = tmp_path / "run.json"
    args = ["check", str(torch_layers), *FAST, "--backend", "numpy", "--output", str(report)]
    assert main([*args, "--no-isolation"]) == 0
    entries = _entries(report)
    function, cases = entries["cube_function", "numpy"], entries["torch_cases", "numpy"]
    assert function["status"] == "skipped" and "'cube_function' runs on torch" in function["reason"]
    assert (
        "torch.autograd.Function" in function["reason"] and "accepted: --backend torch" in function["reason"]
    )
    assert cases["status"] == "skipped" and "its cases hold torch tensors" in cases["reason"]
    assert entries["numpy_tanh", "numpy"]["status"] == "passed"


# -- merge --------------------------------------------------------------------------------------


def _shard(path: Path, entries: list, **fields) -> str:
    from gradcheck_kit.report import Run

    run = Run(entries, **{"seed": 0, "profile": "ci", "backends": ["numpy"], "dtypes": ["float64"], **fields})
    path.write_text(run.to_json())
    return str(path)


@pytest.fixture
def shard_entries():
    import numpy as np

    import gradcheck_kit as gk
    from gradcheck_kit.report import Entry

    x = (np.linspace(-1.0, 1.0, 4),)
    good = gk.check(np.tanh, lambda dy, x: (dy * (1 - np.tanh(x) ** 2),), x)
    bad = gk.check(np.tanh, lambda dy, x: (dy,), x)
    return {
        "passed": Entry.from_result(good, dtype="float64"),
        "failed": Entry.from_result(bad, dtype="float64"),
        "skipped": Entry.skipped("conv2d", "cupy", "float32", "cupy is not installed"),
    }


def test_merge_concatenates_the_shards_in_order_and_recounts_into_one_run(tmp_path, capsys, shard_entries):
    first = _shard(tmp_path / "shard-1.json", [shard_entries["passed"]], seconds=1.5)
    second = _shard(
        tmp_path / "shard-2.json", [shard_entries["skipped"]], backends=["cupy"], dtypes=["float32"]
    )
    out = tmp_path / "merged" / "run.json"

    assert main(["merge", first, second, "--output", str(out)]) == 0
    run = json.loads(out.read_text())
    assert [(e["status"], e["backend"]) for e in run["entries"]] == [("passed", "numpy"), ("skipped", "cupy")]
    assert run["counts"]["passed"] == 1 and run["counts"]["skipped"] == 1 and run["passed"] is True
    assert run["state"] == "complete" and run["seed"] == 0 and run["profile"] == "ci"
    assert run["backends"] == ["numpy", "cupy"] and run["dtypes"] == ["float64", "float32"]
    assert run["seconds"] == 1.5
    assert "PASSED: 1 passed, 1 skipped" in capsys.readouterr().out


def test_merge_exits_with_the_merged_runs_code_and_an_unfinished_shard_leaves_it_unfinished(
    tmp_path, shard_entries
):
    passed = _shard(tmp_path / "a.json", [shard_entries["passed"]])
    failed = _shard(tmp_path / "b.json", [shard_entries["failed"]])
    stopped = _shard(
        tmp_path / "c.json",
        [],
        state="interrupted",
        not_run=[{"layer": "relu", "backend": "numpy", "dtype": None}],
    )

    assert main(["merge", passed, failed]) == 1
    assert main(["merge", passed, stopped, "--output", str(tmp_path / "m.json")]) == 2
    run = json.loads((tmp_path / "m.json").read_text())
    assert run["state"] == "interrupted" and run["not_run"][0]["layer"] == "relu" and run["passed"] is False


def test_merge_refuses_shards_of_different_runs_naming_each_seed_or_profile(tmp_path, capsys, shard_entries):
    one = _shard(tmp_path / "one.json", [shard_entries["passed"]], seed=0)
    other = _shard(tmp_path / "other.json", [shard_entries["passed"]], seed=7)
    dev = _shard(tmp_path / "dev.json", [shard_entries["passed"]], profile="dev")

    assert main(["merge", one, other]) == 2
    message = capsys.readouterr().err
    assert "the shards disagree on seed:" in message and "one.json seed=0" in message
    assert "other.json seed=7" in message and "accepted: shards of one run" in message
    assert main(["merge", one, dev]) == 2
    assert "disagree on profile:" in capsys.readouterr().err
    assert main(["merge", one, str(tmp_path / "missing.json")]) == 2
    (tmp_path / "bad.json").write_text('{"schema": 1, "entries": 3}')
    assert main(["merge", one, str(tmp_path / "bad.json")]) == 2
    assert "entries" in capsys.readouterr().err
