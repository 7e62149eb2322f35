"""The runnable examples under examples/ run as a user runs them (a subprocess in the example's
folder, this checkout importable) and print what their READMEs promise; every Python snippet of
the documentation under docs/ runs too.

``python -m tests.test_examples docs/page.md ...`` runs the snippets of the pages given: each
page's ```python blocks in order, in one namespace, in a fresh temporary folder, with the global
registry emptied first. A block whose first line is ``# examples/<path>.py`` is compared with
that file instead of run; one right after a ``<!-- skip -->`` line is left alone.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from gradcheck_kit import __version__

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
DOCS = ROOT / "docs"
TIMEOUT = 120  # seconds per example; each takes a few on two cores
# the pytest gate with few examples per item: its verdicts, not its search, are under test here
FEW = ["--gradcheck-max-examples=5", "-p", "no:cacheprovider"]


def run(args: list[str], folder: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    env.update(GRADCHECK_DATABASE="none", PYTHONDONTWRITEBYTECODE="1")
    for name in ("HYPOTHESIS_PROFILE", "PYTEST_ADDOPTS", "PYTEST_PLUGINS"):
        env.pop(name, None)
    return subprocess.run(
        [sys.executable, *args], cwd=folder, env=env, capture_output=True, text=True, timeout=TIMEOUT
    )


def assert_ran(proc: subprocess.CompletedProcess[str], code: int, *lines: str) -> None:
    output = proc.stdout + proc.stderr
    assert proc.returncode == code, output
    for line in lines:
        assert line in output, output


def test_numpy_layer_example_passes_the_right_backward_and_names_the_planted_bug():
    proc = run(["check_layer.py"], EXAMPLES / "numpy_layer")
    assert_ran(
        proc,
        0,
        "gradcheck dense_tanh [numpy] PASSED",
        "gradcheck dense_tanh [numpy] FAILED",
        "likely cause: sum over the batch missing",
        "patterns: ['batch_sum_missing']",
    )


def test_cs231n_example_passes_affine_relu_and_conv_and_names_the_padding_crop():
    proc = run(["check_layers.py"], EXAMPLES / "cs231n_cache_style")
    assert_ran(
        proc,
        0,
        "gradcheck affine_forward [numpy] PASSED",
        "gradcheck relu_forward [numpy] PASSED",
        "gradcheck conv_forward_naive [numpy] PASSED",
        "patterns: ['padding_crop']",
    )


def test_mytorch_example_finds_weights_one_level_down_and_names_the_constant_factor():
    proc = run(["check_layers.py"], EXAMPLES / "mytorch_class")
    assert_ran(
        proc,
        0,
        "Conv1d weights: conv1d_stride1.W (gradient conv1d_stride1.dLdW)",
        "gradcheck Conv1d [numpy] PASSED",
        "gradcheck LinearMeanBug [numpy] FAILED",
        "patterns: ['constant_factor']",
    )


# not pytest.importorskip: importing torch here too would double this test's time
needs_torch = pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch is not installed")


@needs_torch
def test_torch_function_example_passes_with_a_reference_and_names_the_constant_factor():
    proc = run(["check_function.py"], EXAMPLES / "torch_function")
    assert_ran(
        proc,
        0,
        "gradcheck LinearFunction [torch] PASSED",
        "gradcheck ScaledSoftplus [torch] FAILED",
        "patterns: ['constant_factor']",
    )


def test_notebook_style_example_runs_as_a_script():
    proc = run(["notebook_style.py"], EXAMPLES)
    assert_ran(proc, 0, "gradcheck softmax [numpy] PASSED", "gradcheck softmax [numpy] FAILED", "cause: x:")


def test_pytest_gate_example_collects_the_registered_layers_and_passes():
    proc = run(["-m", "pytest", *FEW], EXAMPLES / "pytest_gate")
    assert_ran(
        proc,
        0,
        f"gradcheck-kit {__version__}: seed=0, profile=ci, backends=numpy, dtypes=float64,float32",
        "pyproject.toml ....",
        "PASSED: 5 passed",
    )


def test_pytest_gate_example_fails_on_the_planted_bug_with_its_minimal_case():
    args = ["-m", "pytest", *FEW, "-o", "gradcheck_modules=buggy_layers", "pyproject.toml"]
    proc = run(args, EXAMPLES / "pytest_gate")
    assert_ran(
        proc,
        1,
        "FAILED pyproject.toml::gradcheck[my_linear_buggy-numpy-float64]",
        "minimal configuration: my_linear_buggy",
        "cause: b: sum over the batch missing",
    )


# -- the documentation's snippets ------------------------------------------------------------------

BLOCK = re.compile(r"(?P<before>[^\n]*)\n```python\n(?P<code>.*?)\n```", re.S)
SOURCE = re.compile(r"# (examples/\S+\.py)")
EXAMPLE_MODULES = ("layers", "mytorch_layers", "my_layers", "buggy_layers")


def snippets(page: Path) -> list[str]:
    return [m["code"] for m in BLOCK.finditer(page.read_text()) if "<!-- skip -->" not in m["before"]]


def run_page(page: Path) -> None:
    import gradcheck_kit as gk

    for name in gk.registry.names():
        gk.registry.remove(name)
    for module in EXAMPLE_MODULES:
        sys.modules.pop(module, None)
    namespace: dict[str, object] = {"__name__": f"docs.{page.stem}"}
    with tempfile.TemporaryDirectory(prefix=f"docs-{page.stem}-") as folder:
        os.chdir(folder)  # files a snippet writes land here
        for k, code in enumerate(snippets(page)):
            source = SOURCE.fullmatch(code.splitlines()[0])
            if source:
                shown, wanted = code.split("\n", 1)[1].strip(), (ROOT / source[1]).read_text().strip()
                assert shown == wanted, f"{page.name} block {k} differs from {source[1]}"
                continue
            exec(compile(code, f"{page.name} block {k}", "exec"), namespace)
        os.chdir(ROOT)


def run_pages(pages: list[str]) -> int:
    sys.path[:0] = [str(folder) for folder in sorted(EXAMPLES.iterdir()) if folder.is_dir()]
    for page in pages:
        run_page(Path(page).resolve())
    return 0


def test_every_python_snippet_in_the_docs_runs():
    pages = sorted(str(p) for p in DOCS.rglob("*.md") if snippets(p))
    for optional in ("torch", "jax"):  # pages using an extra that is not installed
        if importlib.util.find_spec(optional) is None:
            pages = [p for p in pages if f"import {optional}" not in Path(p).read_text()]
    assert any(p.endswith("getting-started.md") for p in pages)
    proc = run(["-m", "tests.test_examples", *pages], ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr


if __name__ == "__main__":
    raise SystemExit(run_pages(sys.argv[1:]))
