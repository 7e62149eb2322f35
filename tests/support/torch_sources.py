"""Source text of a small ``torch.autograd.Function`` for tests that write layer modules to disk
(the CLI's and the plugin's) or exec it in-process (``cube_function()``)."""

from __future__ import annotations

from typing import Any

CUBE = """
import torch


class Cube(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x**3

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return 3 * x**2 * grad
"""


def cube_function() -> Any:
    """The ``Cube`` Function of ``CUBE``, defined in a fresh namespace (needs torch)."""
    namespace: dict[str, Any] = {}
    exec(CUBE, namespace)
    return namespace["Cube"]
