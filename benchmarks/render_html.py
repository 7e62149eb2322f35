"""Render the CLI's HTML report in headless Chromium and save a screenshot to look at.

The report covers a 3x3 "same" convolution over NCHW images twice: once correct, once with the
border of dX forgotten (a padding bug: the heatmap must show a frame of errors around a clean
interior, the Taylor plot slope 1). Needs the Debian package ``chromium``
(``apt-get install -y chromium``); without it only the HTML is written.

    python benchmarks/render_html.py [--out DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAYERS = '''
"""A 3x3 'same' correlation over NCHW images: correct, and with the border of dx forgotten."""
import numpy as np
from hypothesis import strategies as st

import gradcheck_kit as gk

PAD = ((0, 0), (0, 0), (1, 1), (1, 1))


def blur(x, w):
    h, wd = x.shape[-2:]
    xp = np.pad(x, PAD)
    return sum(w[i, j] * xp[..., i : i + h, j : j + wd] for i in range(3) for j in range(3))


def blur_backward(dy, x, w):
    h, wd = x.shape[-2:]
    xp = np.pad(x, PAD)
    dxp, dw = np.zeros_like(xp), np.zeros_like(w)
    for i in range(3):
        for j in range(3):
            dxp[..., i : i + h, j : j + wd] += w[i, j] * dy
            dw[i, j] = np.sum(dy * xp[..., i : i + h, j : j + wd])
    return dxp[..., 1:-1, 1:-1], dw


def blur_backward_border_bug(dy, x, w):
    dx, dw = blur_backward(dy, x, w)
    dx[..., 0, :] = dx[..., -1, :] = dx[..., :, 0] = dx[..., :, -1] = 0
    return dx, dw


@st.composite
def images(draw):
    n, c = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    h, w, seed = draw(st.integers(8, 12)), draw(st.integers(9, 14)), draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    return gk.Case((rng.standard_normal((n, c, h, w)), rng.standard_normal((3, 3))), meta={"seed": seed})


gk.register("blur", blur, blur_backward, cases=images())
gk.register("blur <border bug>", blur, blur_backward_border_bug, cases=images())
'''
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1200,2000",
]


def write_report(folder: Path) -> Path:
    """Run ``gradcheck-kit check`` on the two layers; returns the HTML report's path."""
    (folder / "border_layers.py").write_text(LAYERS)
    report = folder / "report.html"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "gradcheck_kit.cli", "check", str(folder / "border_layers.py")]
    command += ["--database", "none", f"--output={report}", f"--output={folder / 'report.json'}"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    if done.returncode != 1:  # the bug must be found
        raise SystemExit(f"expected exit code 1, got {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return report


def screenshot(report: Path, png: Path) -> bool:
    """Save a screenshot of ``report`` with headless Chromium; False when it is not installed."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        return False
    command = [browser, *CHROMIUM_FLAGS, f"--screenshot={png}", report.resolve().as_uri()]
    subprocess.run(command, capture_output=True, timeout=120, check=True)
    return png.is_file()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=None, help="folder for the outputs (default: a temp folder)"
    )
    args = parser.parse_args()
    folder = args.out or Path(tempfile.mkdtemp(prefix="gradcheck-html-"))
    folder.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    report = write_report(folder)
    seconds = time.perf_counter() - started
    print(f"report:     {report} ({report.stat().st_size / 1024:.0f} KiB, {seconds:.1f} s)")
    png = folder / "report.png"
    if screenshot(report, png):
        print(f"screenshot: {png}")
    else:
        print("screenshot: skipped, chromium is not installed (apt-get install -y chromium)")


if __name__ == "__main__":
    main()
