"""The realistic zoo's catalogue and its one driver.

``specimens()`` lists every layer (correct or with one planted bug) with how to build a trial of
it; ``run(specimen, dtype=..., seed=..., mode=...)`` builds the trial and checks it. ``run`` is
the single place that knows how each style is checked, so switching class-style layers to a new
adapter means editing ``run`` (``_check_layer``) only.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import gradcheck_kit as gk

from . import cs231n as cs
from . import functional as fn
from . import mytorch as mt

BOTH = ("float64", "float32")
Maker = Callable[[np.random.Generator, str], Any]


@dataclass
class Trial:
    """What ``run`` needs. Cache/functional/degenerate styles: the (forward, backward) pair,
    inputs, params and extra gk.check options. Class style: the layer object, its positional
    inputs (``(A,)``), forward's keyword params and ``weights``: weight path -> gradient path as
    the course names them (``{"conv1d_stride1.W": "conv1d_stride1.dLdW"}``)."""

    forward: Callable[..., Any] | None = None
    backward: Callable[..., Any] | None = None
    inputs: tuple[Any, ...] = ()
    params: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    layer: Any = None
    weights: dict[str, str] = field(default_factory=dict)
    input_names: tuple[str, ...] = ("A",)


@dataclass
class RealSpecimen:
    name: str
    style: str  # "cache" | "class" | "functional" | "degenerate"
    buggy: bool
    bug: str | None  # one line: what is wrong (None when correct)
    expect: str | None  # the finding kind or pattern a good diagnosis names, when clear
    build: Callable[[np.random.Generator, str], Trial]
    dtypes: tuple[str, ...] = BOTH

    def trial(self, dtype: str = "float64", seed: int = 0) -> Trial:
        return self.build(np.random.default_rng(seed), dtype)


# -- the driver ----------------------------------------------------------------------------------


def run(
    specimen: RealSpecimen, *, dtype: str = "float64", seed: int = 0, mode: str = "auto"
) -> gk.CheckResult:
    """Build ``specimen``'s trial from ``default_rng(seed)`` in ``dtype`` and ``gk.check`` it.
    Anything raised while checking (an adapter refusing the layer, gk.check itself) becomes a
    failed result with an ``exception`` finding, so a battery counts it like any other verdict."""
    trial = specimen.trial(dtype, seed)  # outside the try: a broken specimen is the zoo's bug
    try:
        if trial.layer is not None:
            return _check_layer(trial, name=specimen.name, seed=seed, mode=mode)
        return gk.check(
            trial.forward,
            trial.backward,
            trial.inputs,
            trial.params,
            seed=seed,
            mode=mode,
            name=specimen.name,
            **trial.options,
        )
    except Exception as exc:  # the verdict is "failed", with what was raised as its cause
        return _raised(specimen.name, seed, exc)


def _check_layer(trial: Trial, *, name: str, seed: int, mode: str) -> gk.CheckResult:
    """A stateful layer: through an auto-discovering ``gk.from_layer_object(layer)`` when the
    engine has one (it returns an object with ``weights``), else exactly as the README says:
    ``gk.check(*gk.from_layer_object(layer, {"W": "dLdW", ...}), (A, W, ...))``."""
    discovered = _discover(trial)
    if discovered is not None:
        arrays = discovered.weights
        arrays = list(arrays.values()) if isinstance(arrays, Mapping) else list(arrays)
        forward, backward = discovered.forward, discovered.backward
    else:
        forward, backward = gk.from_layer_object(trial.layer, trial.weights, inputs=trial.input_names)
        arrays = mt.weight_arrays(trial.layer, list(trial.weights))
    inputs = (*trial.inputs, *arrays)
    return gk.check(forward, backward, inputs, trial.params, seed=seed, mode=mode, name=name, **trial.options)


def _discover(trial: Trial) -> Any:
    try:
        pair = gk.from_layer_object(trial.layer, inputs=trial.input_names)
    except Exception:
        return None
    return pair if hasattr(pair, "weights") else None


def _raised(name: str, seed: int, exc: Exception) -> gk.CheckResult:
    message = f"raised before a verdict: {type(exc).__name__}: {exc}"
    finding = gk.Finding("exception", message.splitlines()[0])
    return gk.CheckResult(
        name=name,
        backend="numpy",
        case="-",
        seed=seed,
        findings=[finding],
        settings={"raised": type(exc).__name__},
    )


# -- input makers: each is (rng, dtype) -> array --------------------------------------------------


def normal(*shape: int, scale: float = 1.0, shift: float = 0.0) -> Maker:
    return lambda rng, dtype: (rng.standard_normal(shape) * scale + shift).astype(dtype)


def quantized(*shape: int, low: int = -2, high: int = 2, step: float = 1.0) -> Maker:
    """Values on a grid (integers times ``step``): ties in every pooling window, exact zeros."""
    return lambda rng, dtype: (rng.integers(low, high + 1, size=shape) * step).astype(dtype)


def labels(n: int, classes: int) -> Maker:
    return lambda rng, dtype: rng.integers(0, classes, size=n)


def fixed(value: Any) -> Maker:
    return lambda rng, dtype: np.array(value)


def scalar(value: float) -> Maker:
    return lambda rng, dtype: np.asarray(value, dtype=dtype)


def inputs(*makers: Maker) -> Callable[[np.random.Generator, str], tuple[Any, ...]]:
    return lambda rng, dtype: tuple(make(rng, dtype) for make in makers)


# -- trial builders per style ---------------------------------------------------------------------


def cache(
    forward: Callable[..., Any],
    backward: Callable[..., Any],
    make: Callable[..., tuple[Any, ...]],
    params: Mapping[str, Any] | None = None,
    **options: Any,
) -> Callable[[np.random.Generator, str], Trial]:
    """A CS231n (out, cache) pair, wrapped with gk.from_cache_style. ``params`` is deep-copied
    per trial: forwards such as batchnorm's update their param dict."""
    pair = gk.from_cache_style(forward, backward)
    return plain(*pair, make, params, **options)


def plain(
    forward: Callable[..., Any],
    backward: Callable[..., Any],
    make: Callable[..., tuple[Any, ...]],
    params: Mapping[str, Any] | None = None,
    **options: Any,
) -> Callable[[np.random.Generator, str], Trial]:
    def build(rng: np.random.Generator, dtype: str) -> Trial:
        return Trial(forward, backward, make(rng, dtype), copy.deepcopy(dict(params or {})), dict(options))

    return build


def layer(
    factory: Callable[[], Any],
    make: Maker,
    weights: Mapping[str, str] | None = None,
    params: Mapping[str, Any] | None = None,
) -> Callable[[np.random.Generator, str], Trial]:
    """A stateful layer: a fresh object per trial, its weights (dotted paths) drawn N(0, 1) in
    the trial's dtype, their gradient buffers (where __init__ made them) zeroed in that dtype."""
    weights = dict(weights or {})

    def build(rng: np.random.Generator, dtype: str) -> Trial:
        obj = factory()
        for path, grad_path in weights.items():
            shape = np.shape(mt.resolve(obj, path))
            mt.assign(obj, path, rng.standard_normal(shape).astype(dtype))
            if mt.has(obj, grad_path):
                mt.assign(obj, grad_path, np.zeros(shape, dtype=dtype))
        return Trial(layer=obj, inputs=(make(rng, dtype),), params=dict(params or {}), weights=weights)

    return build


# -- the catalogue --------------------------------------------------------------------------------


def ok(name: str, style: str, build: Callable[..., Trial], dtypes: Sequence[str] = BOTH) -> RealSpecimen:
    return RealSpecimen(name, style, False, None, None, build, tuple(dtypes))


def bug(
    name: str,
    style: str,
    build: Callable[..., Trial],
    what: str,
    expect: str | None = None,
    dtypes: Sequence[str] = BOTH,
) -> RealSpecimen:
    return RealSpecimen(name, style, True, what, expect, build, tuple(dtypes))


def specimens() -> list[RealSpecimen]:
    found = [*_cs231n(), *_cs231n_bugs(), *_mytorch(), *_mytorch_bugs(), *_kernels(), *_kernel_bugs()]
    found += _degenerate()
    names = [s.name for s in found]
    assert len(names) == len(set(names)), "specimen names must be unique"
    return found


def by_name(name: str) -> RealSpecimen:
    return next(s for s in specimens() if s.name == name)


CONV_S2P1 = {"conv_param": {"stride": 2, "pad": 1}}
CONV_S1P1 = {"conv_param": {"stride": 1, "pad": 1}}
POOL_2S2 = {"pool_param": {"pool_height": 2, "pool_width": 2, "stride": 2}}
POOL_2S1 = {"pool_param": {"pool_height": 2, "pool_width": 2, "stride": 1}}
TRAIN = {"bn_param": {"mode": "train"}}
DROPOUT_TRAIN = {"dropout_param": {"mode": "train", "p": 0.6, "seed": 123}}


def _conv_inputs(n: int, c: int, h: int, f: int, k: int) -> Callable[..., tuple[Any, ...]]:
    return inputs(normal(n, c, h, h), normal(f, c, k, k), normal(f))


AFFINE_IN = inputs(normal(4, 3, 2), normal(6, 5), normal(5))  # x is (N, d1, d2), D = 6
SANDWICH_IN = inputs(normal(4, 5), normal(5, 6), normal(6))
DENSE_IN = inputs(normal(4, 6))
CONV_IN = _conv_inputs(2, 3, 5, 3, 3)
POOL_TIES = inputs(quantized(2, 2, 4, 4))  # integers in [-2, 2]: ties in almost every window
# the notebook's data: far from zero mean and unit variance, so the normalization matters
BN_IN = inputs(normal(6, 4, scale=5.0, shift=12.0), normal(4), normal(4))
LN_IN = inputs(normal(4, 6, scale=3.0, shift=1.0), normal(6), normal(6))
SBN_IN = inputs(normal(2, 3, 3, 3, scale=2.0, shift=1.0), normal(3), normal(3))
LOSS_IN = inputs(normal(5, 4, scale=2.0), labels(5, 4))


def _conv(backward: Callable[..., Any], make: Any = CONV_IN, params: Any = CONV_S2P1) -> Any:
    return cache(cs.conv_forward_naive, backward, make, params)


def _pool(backward: Callable[..., Any], make: Any = POOL_TIES, params: Any = POOL_2S2) -> Any:
    return cache(cs.max_pool_forward_naive, backward, make, params)


def _norm(forward: Callable[..., Any], backward: Callable[..., Any]) -> Any:
    make, params = {
        cs.batchnorm_forward: (BN_IN, TRAIN),
        cs.layernorm_forward: (LN_IN, {"ln_param": {}}),
        cs.spatial_batchnorm_forward: (SBN_IN, TRAIN),
    }[forward]
    return cache(forward, backward, make, params)


def _loss(loss_fn: Callable[..., Any]) -> Any:
    return plain(*cs.loss_pair(loss_fn), LOSS_IN)


def _cs231n() -> list[RealSpecimen]:
    c = "cache"
    relu_at_zeros = inputs(quantized(4, 6, step=0.5))
    test_mode = {"dropout_param": {"mode": "test", "p": 0.5}}
    return [
        ok("cs231n-affine", c, cache(cs.affine_forward, cs.affine_backward, AFFINE_IN)),
        ok("cs231n-relu", c, cache(cs.relu_forward, cs.relu_backward, DENSE_IN)),
        ok("cs231n-relu-ge-at-zeros", c, cache(cs.relu_forward, cs.relu_backward_ge, relu_at_zeros)),
        ok("cs231n-relu-where-at-zeros", c, cache(cs.relu_forward, cs.relu_backward_where, relu_at_zeros)),
        ok("cs231n-affine-relu", c, cache(cs.affine_relu_forward, cs.affine_relu_backward, SANDWICH_IN)),
        ok("cs231n-conv-naive", c, _conv(cs.conv_backward_naive)),
        ok(
            "cs231n-conv-naive-stride1",
            c,
            _conv(cs.conv_backward_naive, _conv_inputs(2, 2, 4, 3, 3), CONV_S1P1),
        ),
        ok(
            "cs231n-conv-naive-float64-output",
            c,
            cache(cs.conv_forward_naive_default_dtype, cs.conv_backward_naive, CONV_IN, CONV_S2P1),
            dtypes=("float32",),
        ),
        ok("cs231n-maxpool-mask-no-ties", c, _pool(cs.max_pool_backward_mask, inputs(normal(2, 2, 4, 4)))),
        ok("cs231n-maxpool-argmax-ties", c, _pool(cs.max_pool_backward_argmax)),
        ok("cs231n-maxpool-split-ties", c, _pool(cs.max_pool_backward_split)),
        ok(
            "cs231n-maxpool-argmax-overlap",
            c,
            _pool(cs.max_pool_backward_argmax, inputs(normal(2, 2, 5, 5)), POOL_2S1),
        ),
        ok("cs231n-batchnorm", c, _norm(cs.batchnorm_forward, cs.batchnorm_backward)),
        ok("cs231n-batchnorm-alt", c, _norm(cs.batchnorm_forward, cs.batchnorm_backward_alt)),
        ok("cs231n-layernorm", c, _norm(cs.layernorm_forward, cs.layernorm_backward)),
        ok("cs231n-spatial-batchnorm", c, _norm(cs.spatial_batchnorm_forward, cs.spatial_batchnorm_backward)),
        ok("cs231n-softmax-loss", c, _loss(cs.softmax_loss)),
        ok("cs231n-svm-loss", c, _loss(cs.svm_loss)),
        ok(
            "cs231n-dropout-test-mode", c, cache(cs.dropout_forward, cs.dropout_backward, DENSE_IN, test_mode)
        ),
        ok(
            "cs231n-dropout-train-seeded",
            c,
            cache(cs.dropout_forward, cs.dropout_backward, DENSE_IN, DROPOUT_TRAIN),
        ),
    ]


def _cs231n_bugs() -> list[RealSpecimen]:
    c = "cache"
    square = inputs(normal(4, 5), normal(5, 4), normal(4))  # N == M = 4
    return [
        bug(
            "cs231n-affine-dx-not-reshaped",
            c,
            cache(cs.affine_forward, cs.affine_backward_no_reshape, AFFINE_IN),
            "dx is returned (N, D) instead of x's (N, d1, d2)",
            "shape",
        ),
        bug(
            "cs231n-affine-db-wrong-axis",
            c,
            cache(cs.affine_forward, cs.affine_backward_db_axis1, square),
            "db = dout.sum(axis=1) (per sample) instead of axis=0; N == M hides the shape",
        ),
        bug(
            "cs231n-relu-forgets-dout",
            c,
            cache(cs.relu_forward, cs.relu_backward_no_dout, DENSE_IN),
            "dx = 1[x > 0], not multiplied by dout",
            "grad_output_ignored",
        ),
        bug(
            "cs231n-relu-inplace-dout",
            c,
            cache(cs.relu_forward, cs.relu_backward_inplace, DENSE_IN),
            "dx = dout; dx[x <= 0] = 0 writes into the upstream gradient",
            "mutation",
        ),
        bug(
            "cs231n-affine-relu-skips-relu",
            c,
            cache(cs.affine_relu_forward, cs.affine_relu_backward_skips_relu, SANDWICH_IN),
            "the sandwich backward skips relu_backward (dout goes straight to the affine layer)",
            "missing_chain_factor",
        ),
        bug(
            "cs231n-conv-dw-last-image",
            c,
            _conv(cs.conv_backward_naive_dw_last_image),
            "dw re-zeroed inside the batch loop: only the last image contributes",
            "batch_sum_missing",
        ),
        bug(
            "cs231n-conv-db-wrong-axis",
            c,
            _conv(cs.conv_backward_naive_db_wrong_axis, _conv_inputs(3, 2, 4, 3, 3), CONV_S1P1),
            "db sums over (1, 2, 3) instead of (0, 2, 3); N == F hides the shape",
        ),
        bug(
            "cs231n-conv-flipped-dx",
            c,
            _conv(cs.conv_backward_naive_flipped_dx),
            "dx scatters the 180-degree-rotated kernel",
            "kernel_not_rotated",
        ),
        bug(
            "cs231n-conv-negative-crop-pad0",
            c,
            _conv(
                cs.conv_backward_naive_negative_crop,
                _conv_inputs(2, 2, 5, 2, 3),
                {"conv_param": {"stride": 1, "pad": 0}},
            ),
            "dx = dxp[:, :, pad:-pad, pad:-pad] is empty for pad = 0",
            "shape",
        ),
        bug(
            "cs231n-maxpool-mask-ties",
            c,
            _pool(cs.max_pool_backward_mask),
            "mask = (window == max) gives the full dout to every tied maximum",
            "tie_gradient_duplicated",
        ),
        bug(
            "cs231n-maxpool-assign-overlap",
            c,
            _pool(cs.max_pool_backward_assign, inputs(normal(2, 2, 5, 5)), POOL_2S1),
            "dx[...] = dout instead of += with overlapping windows (stride 1 < pool 2)",
            "overwrite_not_accumulate",
        ),
        bug(
            "cs231n-batchnorm-missing-mean-term",
            c,
            _norm(cs.batchnorm_forward, cs.batchnorm_backward_no_mean_term),
            "dx lacks the - sum(dxhat) term (the gradient through the batch mean)",
            "missing_mean_term",
        ),
        bug(
            "cs231n-batchnorm-missing-var-term",
            c,
            _norm(cs.batchnorm_forward, cs.batchnorm_backward_no_var_term),
            "dx lacks the - xhat * sum(dxhat * xhat) term (the gradient through the variance)",
            "missing_normalized_term",
        ),
        bug(
            "cs231n-layernorm-batch-axis",
            c,
            _norm(cs.layernorm_forward, cs.layernorm_backward_batch_axis),
            "dx copied from batchnorm: reduces over axis 0 instead of the features",
        ),
        bug(
            "cs231n-spatial-batchnorm-no-transpose",
            c,
            _norm(cs.spatial_batchnorm_forward, cs.spatial_batchnorm_backward_no_transpose),
            "dout reshaped to (-1, C) without moving C last",
        ),
        bug(
            "cs231n-softmax-loss-not-averaged",
            c,
            _loss(cs.softmax_loss_not_averaged),
            "dx not divided by N while the loss is averaged",
            "constant_factor",
        ),
        bug(
            "cs231n-svm-loss-counts-correct-class",
            c,
            _loss(cs.svm_loss_counts_correct_class),
            "dx counts the correct class's own margin (always 1) in each row's count",
        ),
        bug(
            "cs231n-dropout-backward-unscaled",
            c,
            cache(cs.dropout_forward, cs.dropout_backward_unscaled, DENSE_IN, DROPOUT_TRAIN),
            "backward applies the keep mask without the 1/p scale",
            "constant_factor",
        ),
    ]


LINEAR = {"W": "dLdW", "b": "dLdb"}
CONV1 = {"conv1d_stride1.W": "conv1d_stride1.dLdW", "conv1d_stride1.b": "conv1d_stride1.dLdb"}
CONV2 = {"conv2d_stride1.W": "conv2d_stride1.dLdW", "conv2d_stride1.b": "conv2d_stride1.dLdb"}
BN = {"BW": "dLdBW", "Bb": "dLdBb"}


def _mytorch() -> list[RealSpecimen]:
    k = "class"
    return [
        ok("mytorch-linear", k, layer(lambda: mt.Linear(4, 3), normal(5, 4), LINEAR)),
        ok("mytorch-linear-dW-db", k, layer(lambda: mt.LinearDW(4, 3), normal(5, 4), {"W": "dW", "b": "db"})),
        ok(
            "mytorch-linear-float64-ones",
            k,
            layer(lambda: mt.LinearFloat64Ones(4, 3), normal(5, 4), LINEAR),
            dtypes=("float32",),
        ),
        ok("mytorch-sigmoid", k, layer(mt.Sigmoid, normal(4, 5, scale=2.0))),
        ok("mytorch-tanh", k, layer(mt.Tanh, normal(4, 5, scale=2.0))),
        ok("mytorch-relu", k, layer(mt.ReLU, normal(4, 5))),
        ok("mytorch-gelu", k, layer(mt.GELU, normal(4, 5, scale=2.0))),
        ok(
            "mytorch-conv1d-stride1-accumulating",
            k,
            layer(lambda: mt.Conv1d_stride1(2, 3, 3), normal(2, 2, 8), LINEAR),
        ),
        ok(
            "mytorch-conv2d-stride1-fill-rebind",
            k,
            layer(lambda: mt.Conv2d_stride1(2, 2, 2), normal(2, 2, 5, 5), LINEAR),
        ),
        ok("mytorch-conv1d-strided-member", k, layer(lambda: mt.Conv1d(2, 3, 3, 2), normal(2, 2, 9), CONV1)),
        ok(
            "mytorch-conv2d-strided-padded-member",
            k,
            layer(lambda: mt.Conv2d(2, 2, 3, 2, 1), normal(2, 2, 5, 5), CONV2),
        ),
        ok(
            "mytorch-convtranspose1d-member",
            k,
            layer(lambda: mt.ConvTranspose1d(2, 2, 2, 2), normal(2, 2, 4), CONV1),
        ),
        ok("mytorch-downsample1d-view", k, layer(lambda: mt.Downsample1d(2), normal(2, 2, 7))),
        ok("mytorch-downsample2d-view", k, layer(lambda: mt.Downsample2d(2), normal(2, 2, 5, 5))),
        ok("mytorch-upsample1d", k, layer(lambda: mt.Upsample1d(3), normal(2, 2, 4))),
        ok("mytorch-upsample2d", k, layer(lambda: mt.Upsample2d(2), normal(2, 2, 3, 3))),
        ok("mytorch-flatten-view", k, layer(mt.Flatten, normal(2, 3, 4))),
        ok("mytorch-maxpool2d-stride1", k, layer(lambda: mt.MaxPool2d_stride1(2), normal(2, 2, 4, 4))),
        ok(
            "mytorch-maxpool2d-stride1-ties", k, layer(lambda: mt.MaxPool2d_stride1(2), quantized(2, 2, 4, 4))
        ),
        ok("mytorch-meanpool2d-stride1", k, layer(lambda: mt.MeanPool2d_stride1(2), normal(2, 2, 4, 4))),
        ok("mytorch-maxpool2d-strided-member", k, layer(lambda: mt.MaxPool2d(2, 2), normal(2, 2, 5, 5))),
        ok("mytorch-meanpool2d-strided-member", k, layer(lambda: mt.MeanPool2d(3, 2), normal(2, 2, 6, 6))),
        ok(
            "mytorch-batchnorm1d-train",
            k,
            layer(lambda: mt.BatchNorm1d(4), normal(6, 4, scale=2.0, shift=1.0), BN, {"eval": False}),
        ),
    ]


def _mytorch_bugs() -> list[RealSpecimen]:
    k = "class"
    return [
        bug(
            "mytorch-linear-dLdW-averaged",
            k,
            layer(lambda: mt.LinearAveragedDW(4, 3), normal(5, 4), LINEAR),
            "dLdW divided by the batch size",
            "constant_factor",
        ),
        bug(
            "mytorch-linear-dLdb-wrong-axis",
            k,
            layer(lambda: mt.LinearDbWrongAxis(4, 3), normal(3, 4), LINEAR),
            "dLdb sums over the features instead of the batch; N == out hides the shape",
        ),
        bug(
            "mytorch-linear-dW-transposed",
            k,
            layer(lambda: mt.LinearDWTransposed(4, 4), normal(5, 4), {"W": "dW", "b": "db"}),
            "dW = A^T dLdZ, the transpose of the (out, in) gradient (W square)",
            "transposed_axes",
        ),
        bug(
            "mytorch-linear-forgets-dLdZ",
            k,
            layer(lambda: mt.LinearNoUpstream(4, 3), normal(5, 4), LINEAR),
            "backward uses ones in place of dLdZ",
            "grad_output_ignored",
        ),
        bug(
            "mytorch-linear-never-sets-dLdb",
            k,
            layer(lambda: mt.LinearForgetsDb(4, 3), normal(5, 4), LINEAR),
            "dLdb stays the zeros from __init__",
            "gradient_never_written",
        ),
        bug(
            "mytorch-tanh-applied-twice",
            k,
            layer(mt.TanhTwice, normal(4, 5)),
            "tanh' evaluated at the stored output A instead of Z",
        ),
        bug(
            "mytorch-sigmoid-ignores-dLdA",
            k,
            layer(mt.SigmoidIgnoresUpstream, normal(4, 5)),
            "returns dA/dZ without multiplying by dLdA",
            "grad_output_ignored",
        ),
        bug(
            "mytorch-relu-inplace-dLdA",
            k,
            layer(mt.ReLUInPlace, normal(4, 5)),
            "zeroes the incoming dLdA in place",
            "mutation",
        ),
        bug(
            "mytorch-conv1d-stride1-not-flipped",
            k,
            layer(lambda: mt.Conv1dStride1NotFlipped(2, 3, 3), normal(2, 2, 8), LINEAR),
            "dLdA correlates with W instead of W flipped",
            "kernel_not_rotated",
        ),
        bug(
            "mytorch-conv1d-stride1-dLdb-wrong-axis",
            k,
            layer(lambda: mt.Conv1dStride1DbWrongAxis(2, 3, 3), normal(3, 2, 8), LINEAR),
            "dLdb sums over (1, 2) instead of (0, 2); N == out hides the shape",
        ),
        bug(
            "mytorch-conv2d-stride1-not-flipped",
            k,
            layer(lambda: mt.Conv2dStride1NotFlipped(2, 2, 2), normal(2, 2, 5, 5), LINEAR),
            "dLdA uses W unrotated",
            "kernel_not_rotated",
        ),
        bug(
            "mytorch-conv2d-stride1-dLdW-first-sample",
            k,
            layer(lambda: mt.Conv2dStride1FirstSample(2, 2, 2), normal(2, 2, 5, 5), LINEAR),
            "dLdW from sample 0 only",
            "batch_sum_missing",
        ),
        bug(
            "mytorch-conv1d-strided-packed-downsample",
            k,
            layer(lambda: mt.Conv1dPackedDownsample(2, 3, 3, 2), normal(2, 2, 9), CONV1),
            "the member Downsample1d packs dLdZ into the first positions (no stride grid)",
            "stride_grid",
        ),
        bug(
            "mytorch-downsample1d-packed",
            k,
            layer(lambda: mt.Downsample1dPacked(2), normal(2, 2, 7)),
            "dLdZ placed at positions 0..W_out-1 instead of every k-th",
            "stride_grid",
        ),
        bug(
            "mytorch-upsample1d-summed",
            k,
            layer(lambda: mt.Upsample1dSummed(3), normal(2, 2, 4)),
            "backward sums blocks of k instead of selecting every k-th",
        ),
        bug(
            "mytorch-meanpool2d-stride1-unscaled",
            k,
            layer(lambda: mt.MeanPool2dStride1Unscaled(2), normal(2, 2, 4, 4)),
            "dLdZ spread over the window without / k^2",
            "constant_factor",
        ),
        bug(
            "mytorch-batchnorm1d-no-mean-path",
            k,
            layer(
                lambda: mt.BatchNorm1dNoMeanPath(4), normal(6, 4, scale=2.0, shift=1.0), BN, {"eval": False}
            ),
            "dLdZ drops the dLdM / N term",
            "missing_mean_term",
        ),
    ]


def _kernels() -> list[RealSpecimen]:
    f = "functional"
    ids = fixed([1, 3, 1, 0, 3, 3, 4])
    return [
        ok(
            "kernel-matmul-f32",
            f,
            plain(fn.matmul_f32, fn.matmul_f32_backward, inputs(normal(4, 5), normal(5, 3))),
        ),
        ok(
            "kernel-gelu-tanh-f32",
            f,
            plain(fn.gelu_tanh, fn.gelu_tanh_backward, inputs(normal(4, 6, scale=2.0))),
        ),
        ok("kernel-silu-f32", f, plain(fn.silu_f32, fn.silu_f32_backward, inputs(normal(4, 6, scale=2.0)))),
        ok(
            "kernel-silu-f32-out",
            f,
            plain(fn.silu_f32_out, fn.silu_f32_out_backward, inputs(normal(4, 6, scale=2.0))),
        ),
        ok(
            "kernel-bias-gelu-f32",
            f,
            plain(fn.bias_gelu_f32, fn.bias_gelu_f32_backward, inputs(normal(4, 6), normal(6))),
        ),
        ok("kernel-softmax", f, plain(fn.softmax, fn.softmax_backward, inputs(normal(3, 5, scale=2.0)))),
        ok(
            "kernel-log-softmax",
            f,
            plain(fn.log_softmax, fn.log_softmax_backward, inputs(normal(3, 5, scale=2.0))),
        ),
        ok(
            "kernel-softmax-xent-f32",
            f,
            plain(
                fn.softmax_xent_f32,
                fn.softmax_xent_f32_backward,
                inputs(normal(4, 5, scale=2.0), labels(4, 5)),
            ),
        ),
        ok(
            "kernel-softmax-xent-f32-cast-back",
            f,
            plain(
                fn.softmax_xent_f32_cast_back,
                fn.softmax_xent_f32_cast_back_backward,
                inputs(normal(4, 5, scale=2.0), labels(4, 5)),
            ),
        ),
        ok(
            "kernel-layer-norm-f32",
            f,
            plain(
                fn.layer_norm_f32,
                fn.layer_norm_f32_backward,
                inputs(normal(3, 8, scale=2.0, shift=0.5), normal(8), normal(8)),
            ),
        ),
        ok("kernel-rms-norm", f, plain(fn.rms_norm, fn.rms_norm_backward, inputs(normal(3, 8), normal(8)))),
        ok(
            "kernel-attention",
            f,
            plain(
                fn.attention, fn.attention_backward, inputs(normal(2, 4, 3), normal(2, 4, 3), normal(2, 4, 3))
            ),
        ),
        ok(
            "kernel-conv1d-im2col",
            f,
            plain(fn.conv1d_im2col, fn.conv1d_im2col_backward, inputs(normal(2, 2, 9), normal(3, 2, 3))),
        ),
        ok(
            "kernel-conv1d-im2col-stride2",
            f,
            plain(
                fn.conv1d_im2col,
                fn.conv1d_im2col_backward,
                inputs(normal(2, 2, 9), normal(3, 2, 3)),
                {"stride": 2},
            ),
        ),
        ok("kernel-embedding", f, plain(fn.embedding, fn.embedding_backward, inputs(ids, normal(5, 4)))),
        ok(
            "kernel-scaled-tanh-0d",
            f,
            plain(fn.scaled_tanh, fn.scaled_tanh_backward, inputs(normal(4, 3), scalar(0.7))),
        ),
    ]


def _kernel_bugs() -> list[RealSpecimen]:
    f = "functional"
    return [
        bug(
            "kernel-matmul-f32-dA-untransposed",
            f,
            plain(fn.matmul_f32, fn.matmul_f32_backward_untransposed, inputs(normal(3, 4), normal(4, 4))),
            "dA = dY B instead of dY B^T (B square)",
        ),
        bug(
            "kernel-gelu-missing-term",
            f,
            plain(fn.gelu_tanh, fn.gelu_tanh_backward_missing_term, inputs(normal(4, 6, scale=2.0))),
            "gelu' without its x (1 - t^2) ... term",
        ),
        bug(
            "kernel-gelu-ignores-dy",
            f,
            plain(fn.gelu_tanh, fn.gelu_tanh_backward_ignores_dy, inputs(normal(4, 6, scale=2.0))),
            "returns gelu'(x), the gradient for dy = ones",
            "grad_output_ignored",
        ),
        bug(
            "kernel-silu-offset",
            f,
            plain(fn.silu_f32_out, fn.silu_f32_out_backward_offset, inputs(normal(4, 6, scale=2.0))),
            "dx = correct + 1e-3 (a float32 kernel: float32 out)",
            "not_linear_in_grad_output",
        ),
        bug(
            "kernel-softmax-no-subtraction",
            f,
            plain(fn.softmax, fn.softmax_backward_no_subtraction, inputs(normal(3, 5, scale=2.0))),
            "dx = y * dy (no - sum(dy * y))",
        ),
        bug(
            "kernel-attention-no-subtraction",
            f,
            plain(
                fn.attention,
                fn.attention_backward_no_subtraction,
                inputs(normal(2, 4, 3), normal(2, 4, 3), normal(2, 4, 3)),
            ),
            "dS = P * dP inside attention (softmax backward without the subtraction)",
        ),
        bug(
            "kernel-conv1d-im2col-fancy-add",
            f,
            plain(
                fn.conv1d_im2col,
                fn.conv1d_im2col_backward_fancy_add,
                inputs(normal(2, 2, 9), normal(3, 2, 3)),
            ),
            "col2im by dx[:, :, idx] += cols: overlapping windows do not accumulate",
            "overwrite_not_accumulate",
        ),
        bug(
            "kernel-embedding-fancy-add",
            f,
            plain(
                fn.embedding,
                fn.embedding_backward_fancy_add,
                inputs(fixed([1, 3, 1, 0, 3, 3, 4]), normal(5, 4)),
            ),
            "dW[ids] += dy: a repeated token gets one row's gradient",
            "overwrite_not_accumulate",
        ),
    ]


def _degenerate() -> list[RealSpecimen]:
    d = "degenerate"
    floats = inputs(normal(3, 4))
    return [
        ok(
            "degenerate-ignored-input-zero-gradient",
            d,
            plain(fn.tanh_ignoring_w, fn.tanh_ignoring_w_backward_zero, inputs(normal(3, 4), normal(3, 4))),
        ),
        bug(
            "degenerate-integer-inputs",
            d,
            plain(fn.double, fn.double_backward_wrong, inputs(fixed(np.arange(6).reshape(2, 3)))),
            "integer-only inputs with a wrong backward: nothing is differentiated",
            "nothing_differentiated",
            dtypes=("int64",),
        ),
        bug(
            "degenerate-wrt-empty",
            d,
            plain(fn.double, fn.double_backward_wrong, floats, wrt=[]),
            "wrt=[] with a wrong backward: nothing is differentiated",
            "nothing_differentiated",
        ),
        bug(
            "degenerate-wrt-only-labels",
            d,
            plain(*cs.loss_pair(cs.softmax_loss_not_averaged), inputs(normal(5, 4), labels(5, 4)), wrt=["y"]),
            "wrt names only the integer labels (dx is wrong): nothing is differentiated",
            None,
        ),
        bug(
            "degenerate-forward-ignores-input",
            d,
            plain(fn.tanh_ignoring_w, fn.tanh_ignoring_w_backward, inputs(normal(3, 4), normal(3, 4))),
            "forward never uses w; backward gives it a nonzero gradient",
            "forward_ignores_input",
        ),
        bug(
            "degenerate-backward-never-writes-db",
            d,
            plain(fn.affine, fn.affine_backward_zero_db, inputs(normal(4, 3), normal(3, 2), normal(2))),
            "db returned as the zeros it was initialised with",
            "gradient_never_written",
        ),
    ]
