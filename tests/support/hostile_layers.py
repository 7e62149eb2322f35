"""Hostile layers: each misbehaves in its own way. Importing this module registers all of them,
so the CLI and the pytest plugin can run the whole zoo:

- ``HOSTILE`` (``hostile.<name>``): every one must end in one failed result with a one-line
  cause, in bounded time, even checked in-process with ``gk.check_case``, and the run must go on;
- ``PROCESS_FAULTS`` (``hostile.process.<name>``): what no in-process check survives (a
  segfault, ``os._exit``, ``fork``, a loop that swallows the timeout, a KeyboardInterrupt) or
  what must not leak into the run (a non-daemon thread, C-level printf): checked only in a
  worker process, each with the status and words its entry must show.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import threading
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


_last: list[Any] = [None, None]  # the array of the previous call, and its values then


def _mutating_on_second_call(x: np.ndarray) -> np.ndarray:
    """Writes into its input only when called again on the same array with the same values:
    the contract stage's second call, never the first (nor a finite-difference probe)."""
    again = x is _last[0] and np.array_equal(x, _last[1])
    _last[0], _last[1] = x, x.copy()
    out = np.tanh(x)
    if again:
        x *= 2
    return out


def _complex_output(x: np.ndarray) -> np.ndarray:
    return np.exp(1j * x)


def _with_a_bool_output(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.tanh(x), x > 0


def _sums_its_grad_outputs(dy: Any, x: np.ndarray) -> tuple[np.ndarray]:
    return (dy[0] * (1 - np.tanh(x) ** 2) + dy[1],)  # dy[1] is None: the bool output has none


def _out_of_memory(x: np.ndarray) -> np.ndarray:
    raise MemoryError("Unable to allocate 64.0 GiB for an array with shape (1 << 33,)")


# ESC (a clear screen, an OSC window title, an OSC-8 link), BEL, NUL and a bidi override
CONTROL = "\x1b[2J\x1b]0;pwned\x07\x1b]8;;http://evil.example\x07click\x1b]8;;\x07\x00\u202e"


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
    "mutates_its_input_on_the_second_call": (_mutating_on_second_call, _tanh_backward),
    "complex_output": (_complex_output, _tanh_backward),
    "bool_second_output": (_with_a_bool_output, _sums_its_grad_outputs),
    "raises_memory_error": (_out_of_memory, _tanh_backward),
    f"control_characters{CONTROL}": (lambda x: _raise(f"boom{CONTROL}"), _tanh_backward),
}


# -- faults no in-process check survives ---------------------------------------------------------

_calls_before_exit = {"n": 0}


def _exits_on_third_call(x: np.ndarray) -> np.ndarray:
    _calls_before_exit["n"] += 1
    if _calls_before_exit["n"] >= 3:
        os._exit(0)
    return np.tanh(x)


def _swallows_every_exception(x: np.ndarray) -> np.ndarray:
    while True:
        try:
            time.sleep(0.05)
        except BaseException:  # the check's CheckTimeout too: only a kill stops this
            continue


def _forks(x: np.ndarray) -> np.ndarray:
    os.fork()
    return np.tanh(x)


def _interrupts(x: np.ndarray) -> np.ndarray:
    raise KeyboardInterrupt


def _leaves_a_thread(x: np.ndarray) -> np.ndarray:
    threading.Thread(target=time.sleep, args=(3600,), daemon=False).start()
    return np.tanh(x)


def _prints_from_c(x: np.ndarray) -> np.ndarray:
    ctypes.CDLL(None).printf(b"printf from a layer\n")
    print("print from a layer")
    return np.tanh(x)


# name: (forward, status of its entry, words its reason or cause must hold)
PROCESS_FAULTS: dict[str, tuple[Any, str, str]] = {
    "exits_with_0": (lambda x: os._exit(0), "crashed", "exit code 0 during 'forward, call 1'"),
    "exits_with_3": (lambda x: os._exit(3), "crashed", "exit code 3 during 'forward, call 1'"),
    "exits_in_finite_differences": (_exits_on_third_call, "crashed", "exit code 0 during 'forward"),
    "segfaults": (lambda x: ctypes.string_at(0), "crashed", "signal 11 (SIGSEGV) during 'forward"),
    "kills_itself": (lambda x: os.kill(os.getpid(), signal.SIGKILL), "crashed", "signal 9 (SIGKILL)"),
    "forks": (_forks, "crashed", "called fork() during 'forward"),
    "swallows_every_exception": (_swallows_every_exception, "timeout", "made no progress for"),
    "raises_keyboard_interrupt": (_interrupts, "failed", "forward raised KeyboardInterrupt"),
    "leaves_a_thread_running": (_leaves_a_thread, "passed", ""),
    "prints_from_c": (_prints_from_c, "passed", ""),
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

for _name, (_forward, _, _) in PROCESS_FAULTS.items():
    gk.register(
        f"hostile.process.{_name}",
        _named(_forward, f"process.{_name}.forward"),
        _named(lambda dy, x: _tanh_backward(dy, x), f"process.{_name}.backward"),
        cases=[gk.Case((X.copy(),))],
    )
