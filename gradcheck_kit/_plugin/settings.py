"""The plugin's options and ini keys, read once per run into a frozen ``Settings``; the global
seed and the per-item seed (global seed + crc32(node id), as pytest-randomly does).

Standard library and pytest only: this module is imported with the plugin by every pytest run.
"""

from __future__ import annotations

import random
import re
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest

from gradcheck_kit._ground.parsing import ascii_float, ascii_int
from gradcheck_kit._ground.vocabulary import (
    BACKEND_PATTERN,
    BACKENDS_ACCEPTED,
    CASE_DTYPES,
    DEFAULT_BACKENDS,
    DEFAULT_DTYPES,
    DEFAULT_TIMEOUT,
    ENTRY_POINT_GROUP,
    GPU_BACKEND_PATTERN,
)

_BACKEND = re.compile(BACKEND_PATTERN)
_GPU_BACKEND = re.compile(GPU_BACKEND_PATTERN)
_SHARD = re.compile(r"([0-9]+)/([0-9]+)", re.ASCII)
NO_LIMIT_ABOVE = 1e8  # seconds: longer timeouts mean none (as gk.check's timeout does)

# (option dest, ini key or None, help); the option is --gradcheck-<dest with - for _>
OPTIONS = (
    (
        "backends",
        "gradcheck_backends",
        "comma-separated backends: numpy, torch, torch:cuda, cupy, "
        "cupy:1, jax ... (default: each layer's own: torch for a torch.autograd.Function or cases of torch "
        "tensors, else numpy); an unavailable one, or one a layer cannot run on, gives skipped items",
    ),
    (
        "dtypes",
        "gradcheck_dtypes",
        "comma-separated dtypes each layer is checked in (default: float64,float32)",
    ),
    (
        "profile",
        "gradcheck_profile",
        "hypothesis profile dev, ci or thorough (default: $HYPOTHESIS_PROFILE "
        "when it names one of these, else ci)",
    ),
    ("max_examples", "gradcheck_max_examples", "examples per item (default: the profile's: 20, 50, 500)"),
    (
        "timeout",
        "gradcheck_timeout",
        f"time limit of one check in seconds (default {DEFAULT_TIMEOUT:g}; inf: none); a worker process "
        "that stays quiet longer, plus a grace period, is killed and its item fails",
    ),
    (
        "isolation",
        "gradcheck_isolation",
        "on (default): each item is checked in a worker process, so that a layer that crashes, exits "
        "or hangs fails only its item; off: in the pytest process (to debug a layer)",
    ),
    ("seed", None, "global seed: an int >= 0 or 'random' (default 0); each item uses seed + crc32(node id)"),
    ("report", None, "write the JSON report of every gradcheck item to PATH"),
    ("md", None, "write a Markdown summary to PATH (e.g. $GITHUB_STEP_SUMMARY)"),
    (
        "gpus",
        None,
        "comma-separated GPU ids spread over pytest-xdist workers, one per worker, through "
        "CUDA_VISIBLE_DEVICES (default: $CUDA_VISIBLE_DEVICES, else every GPU nvidia-smi lists, when a GPU "
        "backend is asked for)",
    ),
    (
        "shard",
        None,
        "K/N: keep only the K-th of N round-robin shards of the gradcheck items (the others are "
        "deselected), to split one suite over CI jobs or hosts",
    ),
)


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("gradcheck", "gradcheck-kit: gradient checks of registered layers")
    for dest, _, text in OPTIONS:
        flag = "--gradcheck-" + dest.replace("_", "-")
        metavars = {"report": "PATH", "md": "PATH", "shard": "K/N", "seed": "SEED", "isolation": "on|off"}
        metavar = metavars.get(dest, dest.upper())
        group.addoption(flag, dest=f"gradcheck_{dest}", default=None, metavar=metavar, help=text)
    add_ini(parser)


def add_ini(parser: pytest.Parser) -> None:
    """The ini keys (``gradcheck_modules``, ``gradcheck_backends``, ...). Registering them again
    is harmless: the ``gradcheck_kit_ini`` plugin (``_plugin/ini.py``) does it too, so that they
    stay known when this plugin is disabled (``-p no:gradcheck_kit``)."""
    for dest, ini, _ in OPTIONS:
        if ini is not None:
            parser.addini(ini, f"default of --gradcheck-{dest.replace('_', '-')}", default="")
    parser.addini(
        "gradcheck_modules",
        "modules (dotted names or .py paths relative to the ini file) whose registered layers become "
        "gradcheck items",
        type="linelist",
        default=[],
    )
    parser.addini(
        "gradcheck_entry_points",
        f"also collect the layers of installed packages advertised under the entry-point group "
        f"{ENTRY_POINT_GROUP!r} (default true)",
        type="bool",
        default=True,
    )


@dataclass(frozen=True)
class Settings:
    """Everything a run of the plugin needs to know, validated."""

    seed: int
    backends: tuple[str, ...] = DEFAULT_BACKENDS
    dtypes: tuple[str, ...] = DEFAULT_DTYPES
    profile: str | None = None  # None: resolved lazily (it needs hypothesis)
    max_examples: int | None = None
    timeout: float | None = DEFAULT_TIMEOUT
    isolation: bool = True
    report: Path | None = None
    markdown: Path | None = None
    gpus: tuple[str, ...] = ()
    shard: tuple[int, int] | None = None
    modules: tuple[str, ...] = ()
    entry_points: bool = True
    explicit: bool = False  # a --gradcheck-* option or a gradcheck_* ini key was given
    backends_given: bool = False  # False: each layer on its own backend (torch for a Function)

    def item_seed(self, nodeid: str) -> int:
        return self.seed + zlib.crc32(nodeid.encode())

    @property
    def gpu_backends(self) -> tuple[str, ...]:
        return tuple(b for b in self.backends if _GPU_BACKEND.fullmatch(b))

    def resolved_profile(self) -> str:
        """The profile's name: the option or ini value, else ``$HYPOTHESIS_PROFILE`` when it
        names one of ours, else ``ci`` (imports hypothesis)."""
        from gradcheck_kit import profiles

        if self.profile is not None:
            return profiles.profile_name(self.profile)
        try:
            return profiles.profile_name(None)
        except Exception:  # $HYPOTHESIS_PROFILE names a profile of the project's own
            return profiles.DEFAULT_PROFILE


def has_layers_to_collect(settings: Settings) -> bool:
    """Whether the run names layer modules, or installed packages advertise layers."""
    return bool(settings.modules) or (settings.entry_points and bool(entry_points(group=ENTRY_POINT_GROUP)))


def read(config: pytest.Config) -> Settings:
    """``Settings`` from the command line and the ini file; bad values raise ``pytest.UsageError``
    naming the option, the value and what is accepted."""
    raw = {dest: _raw(config, dest, ini) for dest, ini, _ in OPTIONS}
    settings = Settings(
        seed=_seed(raw["seed"]),
        backends=_backends(raw["backends"]),
        dtypes=_dtypes(raw["dtypes"]),
        profile=raw["profile"] or None,
        max_examples=_max_examples(raw["max_examples"]),
        timeout=_timeout(raw["timeout"]),
        isolation=_isolation(raw["isolation"]),
        report=_path(config, raw["report"]),
        markdown=_path(config, raw["md"]),
        gpus=tuple(split(raw["gpus"])),
        shard=_shard(raw["shard"]),
        modules=tuple(m for line in config.getini("gradcheck_modules") for m in split(line, spaces=False)),
        entry_points=bool(config.getini("gradcheck_entry_points")),
        explicit=any(v not in (None, "") for v in raw.values()),
        backends_given=bool(split(raw["backends"])),
    )
    if settings.profile is not None:
        _validate_profile(settings)
    return settings


def _raw(config: pytest.Config, dest: str, ini: str | None) -> str | None:
    value = config.getoption(f"gradcheck_{dest}")
    if value is None and ini is not None:
        value = config.getini(ini) or None
    return None if value is None else str(value).strip()


def split(text: str | None, *, spaces: bool = True) -> list[str]:
    """``"a, b c"`` -> ``["a", "b", "c"]`` (commas only when ``spaces`` is False: paths)."""
    if not text:
        return []
    parts = re.split(r"[,\s]+" if spaces else r",", text)
    return [p.strip() for p in parts if p.strip()]


def _usage(flag: str, value: Any, accepted: str) -> pytest.UsageError:
    return pytest.UsageError(f"--gradcheck-{flag}={value!r} is invalid; accepted: {accepted}")


def _seed(value: str | None) -> int:
    if value is None:
        return 0
    if value == "random":
        return random.Random().getrandbits(32)
    seed = ascii_int(value)
    if seed is None:
        raise _usage("seed", value, "an int >= 0 or 'random'")
    return seed


def _backends(value: str | None) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(split(value))) or DEFAULT_BACKENDS
    bad = [n for n in names if not _BACKEND.fullmatch(n)]
    if bad:
        raise _usage("backends", value, f"{BACKENDS_ACCEPTED}, comma-separated")
    return names


def _dtypes(value: str | None) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(split(value))) or DEFAULT_DTYPES
    if any(n not in CASE_DTYPES for n in names):
        raise _usage("dtypes", value, f"{', '.join(CASE_DTYPES)}, comma-separated")
    return names


def _max_examples(value: str | None) -> int | None:
    if value is None:
        return None
    examples = ascii_int(value)
    if examples is None or examples < 1:
        raise _usage("max-examples", value, "an int >= 1")
    return examples


def _timeout(value: str | None) -> float | None:
    if value is None:
        return DEFAULT_TIMEOUT
    seconds = ascii_float(value, infinite=True)
    if seconds is None or not seconds > 0:
        raise _usage("timeout", value, "a number of seconds > 0, or inf (no limit)")
    return seconds if seconds <= NO_LIMIT_ABOVE else None


def _isolation(value: str | None) -> bool:
    if value is None or value.lower() in ("on", "true", "yes", "1"):
        return True
    if value.lower() in ("off", "false", "no", "0"):
        return False
    raise _usage("isolation", value, "on or off")


def _path(config: pytest.Config, value: str | None) -> Path | None:
    return None if not value else config.invocation_params.dir / Path(value).expanduser()


def _shard(value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    found = _SHARD.fullmatch(value)
    if not found or not 1 <= int(found.group(1)) <= int(found.group(2)):
        raise _usage("shard", value, "K/N with 1 <= K <= N, e.g. 2/4")
    return int(found.group(1)), int(found.group(2))


def _validate_profile(settings: Settings) -> None:
    from gradcheck_kit.errors import InvalidArgument

    try:
        settings.resolved_profile()
    except InvalidArgument:
        raise _usage("profile", settings.profile, "dev, ci, thorough") from None


def gpu_for(worker: str, gpus: Iterable[str]) -> str | None:
    """The GPU of xdist worker ``gw<i>``: the i-th of ``gpus``, round-robin."""
    ids = list(gpus)
    digits = re.sub(r"[^0-9]", "", worker)
    return ids[int(digits) % len(ids)] if ids and digits else None
