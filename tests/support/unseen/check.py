"""gradcheck-kit's verdict on an unseen case, the one place that imports it: the case's layer is
handed to gk.check the way its style is written (a plain pair, ``gk.from_cache_style``,
``gk.from_layer_object``, ``gk.from_autograd_function`` on torch tensors), with the case's
inputs and nothing of the ground truth (no reference).
"""

from __future__ import annotations

import copy
import warnings
from typing import Any

import numpy as np
import torch

import gradcheck_kit as gk

from .truth import Case


def check(case: Case, mode: str = "auto") -> gk.CheckResult:
    """``gk.check`` of the case at gk's default seed. Anything raised on the way becomes a failed
    result with an ``exception`` finding, so a battery counts it like any other verdict."""
    spec = case.specimen
    try:
        forward, backward, inputs = _as_gk_sees_it(case)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the layers' own overflow warnings, and gk's advice
            return gk.check(
                forward,
                backward,
                tuple(_copy(a) for a in inputs),
                copy.deepcopy(spec.params),
                mode=mode,
                name=spec.name,
            )
    except Exception as exc:  # the verdict is "failed", with what was raised as its cause
        message = f"raised before a verdict: {type(exc).__name__}: {exc}".splitlines()[0]
        return gk.CheckResult(
            name=spec.name,
            backend="numpy",
            case="-",
            seed=0,
            findings=[gk.Finding("exception", message)],
            settings={"raised": type(exc).__name__},
        )


def _as_gk_sees_it(case: Case) -> tuple[Any, Any, tuple[Any, ...]]:
    spec = case.specimen
    if spec.style == "plain":
        return spec.forward, spec.backward, case.inputs
    if spec.style == "cache":
        return *gk.from_cache_style(spec.forward, spec.backward), case.inputs
    if spec.style == "function":
        tensors = tuple(torch.from_numpy(np.array(a, copy=True)) for a in case.inputs)
        return *gk.from_autograd_function(spec.function), tensors
    layer = copy.deepcopy(case.prototype)  # gk runs its own copy; the case's stays untouched
    pair = gk.from_layer_object(layer)
    if tuple(pair.weight_paths) != tuple(path for path, _ in spec.weights):
        # discovery found other weights than the specimen names: check the named ones
        pair = gk.from_layer_object(layer, weights=dict(spec.weights))
    return pair.forward, pair.backward, (*case.inputs[: case.n_inputs], *pair.weights)


def _copy(a: Any) -> Any:
    return a.clone() if isinstance(a, torch.Tensor) else np.array(a, copy=True)
