"""pytest plugin (entry point ``pytest11``): markers for gradient-check tests."""

from __future__ import annotations

from typing import Any


def pytest_configure(config: Any) -> None:
    config.addinivalue_line("markers", "gradcheck: a gradient check of a registered layer")
    config.addinivalue_line("markers", "gpu: needs a CUDA GPU (CuPy or torch-CUDA); skipped without one")
