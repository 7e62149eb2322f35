"""Hostile layers: each misbehaves in its own way. Importing this module registers all of them
(``hostile.<name>``), so the CLI can run the whole zoo: every one must end in one failed result
with a one-line cause, in bounded time, and the run must go on to the next."""

from __future__ import annotations

import contextlib
import sys
import time
from typing import Any

import numpy as np

import gradcheck_kit as gk

X = np.linspace(-1.0, 1.0, 6).reshape(2, 3)


def _tanh_backward(dy: np.ndarray, x: np.ndarray) -> tuple[np.ndarray]:
    return (dy * (1 - np.tanh(x) ** 2),)


def _forever(*args: Any) -> None:
    while True:
        pass


def _recurse(depth: int = 0) -> int:
    return _recurse(depth + 1) + 1


_calls = {"n": 0}


def _counting(x: np.ndarray) -> np.ndarray:
    _calls["n"] += 1
    return np.tanh(x) * (1 + 1e-2 * _calls["n"])


def _raise(message: str) -> Any:
    raise RuntimeError(message)


def _mutating_forward(x: np.ndarray) -> np.ndarray:
    out = np.tanh(x)
    x *= 2
    return out


def _mutating_backward(dy: np.ndarray, x: np.ndarray) -> tuple[np.ndarray]:
    dy *= 1 - np.tanh(x) ** 2
    return (dy,)


def _noisy_backward(dy: np.ndarray, x: np.ndarray) -> tuple[np.ndarray]:
    return (_tanh_backward(dy, x)[0] * (1 + 1e-2 * np.random.default_rng().standard_normal(x.shape)),)


def _nan_forward(x: np.ndarray) -> np.ndarray:
    out = np.tanh(x)
    out[0, 1] = np.nan
    return out


def _inf_backward(dy: np.ndarray, x: np.ndarray) -> tuple[np.ndarray]:
    dx = _tanh_backward(dy, x)[0]
    dx[1, 0] = np.inf
    return (dx,)


def _huge(x: np.ndarray) -> np.ndarray:
    return np.zeros((1 << 16, 1 << 16))  # 32 GiB, never touched


def _torch_gradient(dy: np.ndarray, x: np.ndarray) -> tuple[Any]:
    import torch

    return (torch.as_tensor(_tanh_backward(dy, x)[0]),)


HOSTILE: dict[str, tuple[Any, Any]] = {
    "raises_in_forward": (lambda x: _raise("forward exploded"), _tanh_backward),
    "raises_in_backward": (np.tanh, lambda dy, x: _raise("backward exploded")),
    "hangs_in_a_loop": (lambda x: _forever(), _tanh_backward),
    "sleeps_forever": (lambda x: time.sleep(3600), _tanh_backward),
    "hangs_in_backward": (np.tanh, lambda dy, x: _forever()),
    "calls_sys_exit": (lambda x: sys.exit(3), _tanh_backward),
    "recurses_forever": (lambda x: _recurse(), _tanh_backward),
    "forward_returns_none": (lambda x: None, _tanh_backward),
    "forward_returns_a_list": (lambda x: [np.tanh(x)], _tanh_backward),
    "forward_returns_a_dict": (lambda x: {"y": np.tanh(x)}, _tanh_backward),
    "forward_returns_a_string": (lambda x: "tanh", _tanh_backward),
    "backward_returns_none": (np.tanh, lambda dy, x: None),
    "backward_returns_too_many": (np.tanh, lambda dy, x: (dy, dy)),
    "backward_wrong_shape": (np.tanh, lambda dy, x: (dy.T,)),
    "backward_integer_dtype": (np.tanh, lambda dy, x: (dy.astype(np.int64),)),
    "backward_a_generator": (np.tanh, lambda dy, x: (g for g in (dy,))),
    "backward_torch_for_numpy": (np.tanh, _torch_gradient),
    "forward_nan": (_nan_forward, _tanh_backward),
    "backward_inf": (np.tanh, _inf_backward),
    "mutates_its_input": (_mutating_forward, _tanh_backward),
    "mutates_grad_output": (np.tanh, _mutating_backward),
    "huge_output": (_huge, _tanh_backward),
    "different_on_every_call": (_counting, _tanh_backward),
    "random_backward": (np.tanh, _noisy_backward),
    "wrong_gradient": (np.tanh, lambda dy, x: (dy * np.tanh(x),)),
}


def _named(fn: Any, name: str) -> Any:
    """Give each lambda its own qualified name: registration keys re-imports on it."""
    with contextlib.suppress(AttributeError, TypeError):
        fn.__qualname__ = fn.__name__ = name
    return fn


for _name, (_forward, _backward) in HOSTILE.items():
    if _forward is np.tanh:
        _forward = _named(lambda x: np.tanh(x), f"{_name}.forward")
    gk.register(
        f"hostile.{_name}",
        _named(_forward, f"{_name}.forward"),
        _named(_backward, f"{_name}.backward"),
        cases=[gk.Case((X.copy(),))],
    )
