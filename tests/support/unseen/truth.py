"""The ground truth of the unseen battery, per case and independent of gradcheck-kit (nothing here
imports it). A case is a specimen at one dtype and seed; ``label`` runs the specimen's own
backward for two random ``dy`` and compares each gradient with torch float64 autograd of the
specimen's reference forward (or with its subgradient test). The label is what was measured,
not what the specimen meant: a planted bug that gives the right gradient on a case is
``correct`` there. Only ``expect`` overrides it: ``contract`` (must fail whatever the gradient)
and ``hazard`` (no verdict is right), and both must be seen by the measurement too.
"""

from __future__ import annotations

import contextlib
import copy
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .specimen import Array, Specimen

# above this worst relative error a gradient is buggy; a right one's rounding stays far below
TOLERANCE = {"float64": 1e-6, "float32": 1e-5}
# an input's error is relative to its own largest true gradient, but never to less than this
# fraction of the case's largest: a true gradient of ~0 (a bias that normalization removes) is
# judged against the case's scale, and float32 rounding of it against a tenth of that
GRADIENT_FLOOR = {"float64": 1e-6, "float32": 0.1}
DY_SEED = 12345  # the dys are the same for every case
REPEATS = 2
LAYER_SEED = 1000  # a layer's weights come from default_rng(LAYER_SEED + seed)


class BrokenSpecimen(Exception):
    """The specimen, not the layer under test, is wrong: its reference disagrees with its
    forward, or the contract breach it declares is not seen."""


@dataclass
class Case:
    """A specimen at one dtype and seed: ``inputs`` (a layer's weights appended after its own
    inputs), and its forward and backward run on them as its style is written."""

    specimen: Specimen
    dtype: str
    seed: int
    inputs: tuple[Any, ...]
    n_inputs: int  # how many of ``inputs`` the forward takes (a layer's weights follow)
    prototype: Any = None  # the layer style's object, never run itself

    def forward(self, *inputs: Any) -> Any:
        s = self.specimen
        if s.style == "plain":
            return s.forward(*inputs, **s.params)
        if s.style == "cache":
            return s.forward(*inputs, **s.params)[0]
        if s.style == "function":
            with torch.no_grad():
                return s.function.apply(*map(_tensor, inputs), **s.params).numpy()
        return self._run_layer(None, inputs)

    def backward(self, dy: Any, *inputs: Any) -> tuple[Any, ...]:
        s = self.specimen
        if s.style == "plain":
            return _as_tuple(s.backward(dy, *inputs, **s.params))
        if s.style == "cache":
            return _as_tuple(s.backward(dy, s.forward(*inputs, **s.params)[1]))
        if s.style == "function":
            return self._run_function(dy, inputs)
        return self._run_layer(dy, inputs)

    def _run_function(self, dy: Any, inputs: tuple[Any, ...]) -> tuple[Any, ...]:
        """The Function's backward, reached through autograd as in real use: one gradient per
        floating input, None for the others (labels)."""
        tensors = [_tensor(a).requires_grad_(_floating(a)) for a in inputs]
        out = self.specimen.function.apply(*tensors, **self.specimen.params)
        wrt = [t for t in tensors if t.requires_grad]
        grads = iter(torch.autograd.grad(out, wrt, torch.from_numpy(np.asarray(dy)), allow_unused=True))
        found = [next(grads) if t.requires_grad else None for t in tensors]
        return tuple(None if g is None else g.numpy() for g in found)

    def _run_layer(self, dy: Any, inputs: tuple[Any, ...]) -> Any:
        """A fresh copy of the prototype given these weights and zeroed gradient buffers; with
        ``dy``, the input gradients followed by the weight gradients it accumulated."""
        layer = copy.deepcopy(self.prototype)
        for (weight, grad), value in zip(self.specimen.weights, inputs[self.n_inputs :]):
            assign(layer, weight, value.copy())
            assign(layer, grad, np.zeros_like(value))
        out = layer.forward(*inputs[: self.n_inputs])
        if dy is None:
            return out
        grads = _as_tuple(layer.backward(dy))
        return grads + tuple(np.array(resolve(layer, grad)) for _, grad in self.specimen.weights)


def build(specimen: Specimen, dtype: str, seed: int) -> Case:
    """The case's inputs from ``default_rng(seed)``; a layer's weights are its prototype's."""
    inputs = specimen.make(np.random.default_rng(seed), dtype)
    if specimen.style != "layer":
        return Case(specimen, dtype, seed, inputs, len(inputs))
    prototype = specimen.layer(np.random.default_rng(LAYER_SEED + seed), dtype)
    weights = tuple(np.array(resolve(prototype, path)) for path, _ in specimen.weights)
    return Case(specimen, dtype, seed, inputs + weights, len(inputs), prototype)


# -- the label -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Truth:
    label: str  # "correct" | "buggy" | "contract" | "hazard"
    error: float  # the backward's worst relative error (inf: a missing or misshapen gradient)
    notes: tuple[str, ...] = ()  # what else was seen: written inputs or dy, aliased results

    @property
    def buggy(self) -> bool:
        """A wrong verdict is a pass: the gradient is wrong or the contract broken."""
        return self.label in ("buggy", "contract")

    @property
    def judged(self) -> bool:
        return self.label != "hazard"


def label(case: Case) -> Truth:
    """Measure the case: two backward calls, each on fresh copies of the inputs and a random dy,
    their gradients' worst error, and whether they wrote into dy or the inputs or share memory."""
    spec = case.specimen
    rng = np.random.default_rng(DY_SEED)
    outputs = _as_tuple(case.forward(*_copies(case.inputs)))
    notes: list[str] = []
    worst, results = 0.0, []
    for _ in range(REPEATS):
        dys = _grad_outputs(rng, outputs)
        dy_copies = tuple(d.copy() for d in dys)
        inputs = _copies(case.inputs)
        grads = case.backward(dys if len(dys) > 1 else dys[0], *inputs)
        results.append([None if g is None else np.asarray(g) for g in grads])
        if any(not np.array_equal(d, c) for d, c in zip(dys, dy_copies)):
            notes.append("backward mutates dy")
        if any(not np.array_equal(a, c) for a, c in zip(inputs, case.inputs)):
            notes.append("forward/backward mutates inputs")
        worst = max(worst, _worst_error(case, grads, dy_copies, outputs, notes))
    if any(g0 is not None and g1 is not None and np.shares_memory(g0, g1) for g0, g1 in zip(*results)):
        notes.append("results of two backward calls share memory")
    notes = list(dict.fromkeys(notes))
    if spec.expect is not None:
        if not notes:
            raise BrokenSpecimen(
                f"{spec.name}: expect={spec.expect!r}, but no breach was seen ({case.dtype})"
            )
        return Truth(spec.expect, worst, tuple(notes))
    return Truth("buggy" if worst > TOLERANCE[case.dtype] else "correct", worst, tuple(notes))


def _grad_outputs(rng: np.random.Generator, outputs: tuple[Any, ...]) -> tuple[Array, ...]:
    """Random signs times magnitudes in [0.5, 1.5], in each output's dtype."""
    dys = []
    for o in outputs:
        d = rng.choice([-1, 1], size=o.shape) * rng.uniform(0.5, 1.5, size=o.shape)
        dys.append(np.asarray(d, dtype=np.asarray(o).dtype))
    return tuple(dys)


def _worst_error(
    case: Case, grads: tuple[Any, ...], dys: tuple[Array, ...], outputs: tuple[Any, ...], notes: list[str]
) -> float:
    """The worst relative error of ``grads`` against autograd's, or the subgradient test's
    distance for the first input where the specimen has one."""
    spec = case.specimen
    true_grads = _autograd(case, dys, outputs)
    scale = max([float(np.abs(t).max()) for t in true_grads if t is not None and t.size] + [0.0])
    floor = GRADIENT_FLOOR[case.dtype] * scale
    if len(grads) < len(case.inputs):
        notes.append(f"{len(grads)} gradients for {len(case.inputs)} inputs")
        return np.inf
    worst = 0.0
    for k, (a, g, true) in enumerate(zip(case.inputs, grads, true_grads)):
        if true is None:  # not floating: not differentiated
            continue
        if g is None or np.shape(g) != np.shape(a):
            notes.append(f"input {k}: shape {np.shape(g)} vs {np.shape(a)}")
            worst = np.inf
        elif spec.subgradient is not None and k < spec.subgradient_inputs:
            if k == 0:  # one test judges all the inputs it covers together
                arrays = [np.asarray(x) for x in case.inputs]
                worst = max(worst, float(spec.subgradient(arrays, list(grads), dys[0].astype(np.float64))[1]))
        else:
            error = np.abs(np.asarray(g, np.float64) - true).max() / max(np.abs(true).max(), floor, 1e-30)
            worst = max(worst, float(error))
    return worst


def _autograd(case: Case, dys: tuple[Array, ...], outputs: tuple[Any, ...]) -> list[Array | None]:
    """torch float64 autograd of the reference at the case's inputs, one gradient per floating
    input (zeros where the output does not depend on it), None for the others."""
    spec = case.specimen
    with _float64_default():
        leaves = [_leaf(a) for a in case.inputs]
        reference_out = _as_tuple(spec.reference(*leaves, **spec.params))
        wrt = [t for t in leaves if t.requires_grad]
        dy_tensors = [torch.tensor(d.astype(np.float64)) for d in dys]
        grads = iter(torch.autograd.grad(reference_out, wrt, dy_tensors, allow_unused=True))
    _check_reference(case, outputs, reference_out)
    found: list[Array | None] = []
    for a in case.inputs:
        if not _floating(a):
            found.append(None)
            continue
        g = next(grads)
        found.append(np.zeros(np.shape(a)) if g is None else g.numpy())
    return found


def _check_reference(case: Case, outputs: tuple[Any, ...], reference_out: tuple[torch.Tensor, ...]) -> None:
    """The truth is only as good as the reference: it must compute the forward's values."""
    error = max(
        float(np.abs(np.asarray(o, np.float64) - r.detach().numpy()).max())
        for o, r in zip(outputs, reference_out)
    )
    size = max(1, max(float(np.abs(np.asarray(o)).max()) for o in outputs))
    if error > 1e-4 * size:
        where = f"{case.specimen.name} ({case.dtype}, seed {case.seed})"
        raise BrokenSpecimen(f"{where}: the reference's forward differs from the layer's by {error:.2e}")


@contextlib.contextmanager
def _float64_default() -> Iterator[None]:
    """torch's default dtype float64 while a reference runs (constants it makes are float64)."""
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        yield
    finally:
        torch.set_default_dtype(before)


def _leaf(a: Any) -> torch.Tensor:
    if _floating(a):
        return torch.tensor(np.asarray(a, dtype=np.float64), requires_grad=True)
    return torch.tensor(a)


def _tensor(a: Any) -> torch.Tensor:
    """The function style's view of an array: a tensor of its own dtype, never sharing memory."""
    return torch.from_numpy(np.array(a, copy=True))


def _floating(a: Any) -> bool:
    return bool(np.issubdtype(np.asarray(a).dtype, np.floating))


def _as_tuple(value: Any) -> tuple[Any, ...]:
    return tuple(value) if isinstance(value, (tuple, list)) else (value,)


def _copies(arrays: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(np.array(a, copy=True) for a in arrays)


# -- dotted paths with indices: "layers[0].W" ----------------------------------------------------------

_STEP = re.compile(r"[A-Za-z_]\w*|\[\d+\]")


def _steps(path: str) -> list[str | int]:
    return [int(s[1:-1]) if s.startswith("[") else s for s in _STEP.findall(path)]


def _step(obj: Any, step: str | int) -> Any:
    return obj[step] if isinstance(step, int) else getattr(obj, step)


def resolve(obj: Any, path: str) -> Any:
    for step in _steps(path):
        obj = _step(obj, step)
    return obj


def assign(obj: Any, path: str, value: Any) -> None:
    *owners, last = _steps(path)
    for step in owners:
        obj = _step(obj, step)
    if isinstance(last, int):
        obj[last] = value
    else:
        setattr(obj, last, value)
