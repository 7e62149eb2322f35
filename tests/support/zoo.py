"""A zoo of small NumPy layers for testing the engine: correct ones at hard spots (kinks, exact
zeros, ties, float32, steep kernels, saturated logits) and ones with planted backward bugs.

Each entry is ``Specimen(name, forward, backward, make_inputs, params, buggy, cause)``; ``cause``
names the planted bug (the diagnosis tests use it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Specimen:
    name: str
    forward: Callable[..., Any]
    backward: Callable[..., Any]
    make_inputs: Callable[[np.random.Generator, str], tuple[Any, ...]]
    params: dict[str, Any] = field(default_factory=dict)
    buggy: bool = False
    cause: str | None = None

    def inputs(self, dtype: str = "float64", seed: int = 0) -> tuple[Any, ...]:
        return self.make_inputs(np.random.default_rng(seed), dtype)


def _normal(rng: np.random.Generator, shape: tuple[int, ...], dtype: str, scale: float = 1.0) -> np.ndarray:
    return (rng.standard_normal(shape) * scale).astype(dtype)


# -- convolution (loops over kernel taps only) ------------------------------------------------


def _windows(xp: np.ndarray, i: int, j: int, stride: int, oh: int, ow: int) -> np.ndarray:
    return xp[:, :, i : i + stride * oh : stride, j : j + stride * ow : stride]


def _geometry(x: np.ndarray, w: np.ndarray, stride: int, padding: int) -> tuple[int, int]:
    h, wd = x.shape[2] + 2 * padding, x.shape[3] + 2 * padding
    return (h - w.shape[2]) // stride + 1, (wd - w.shape[3]) // stride + 1


def _pad(x: np.ndarray, p: int) -> np.ndarray:
    return np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))


def conv2d(x: np.ndarray, w: np.ndarray, b: np.ndarray, *, stride: int = 1, padding: int = 0) -> np.ndarray:
    oh, ow = _geometry(x, w, stride, padding)
    xp = _pad(x, padding)
    out = np.zeros((x.shape[0], w.shape[0], oh, ow), dtype=np.result_type(x, w))
    for i in range(w.shape[2]):
        for j in range(w.shape[3]):
            out += np.einsum("nchw,fc->nfhw", _windows(xp, i, j, stride, oh, ow), w[:, :, i, j])
    return out + b[None, :, None, None]


def conv2d_backward_with(bug: str | None = None) -> Callable[..., Any]:
    def backward(
        dy: np.ndarray, x: np.ndarray, w: np.ndarray, b: np.ndarray, *, stride: int = 1, padding: int = 0
    ) -> tuple[np.ndarray, ...]:
        oh, ow = _geometry(x, w, stride, padding)
        xp = _pad(x, padding)
        dxp, dw = np.zeros_like(xp), np.zeros_like(w)
        kh, kw = w.shape[2], w.shape[3]
        for i in range(kh):
            for j in range(kw):
                win = _windows(xp, i, j, stride, oh, ow)
                wi, wj = (kh - 1 - i, kw - 1 - j) if bug == "no_rotation" else (i, j)
                di, dj = (kh - 1 - i, kw - 1 - j) if bug == "dw_flipped" else (i, j)
                dy_w = dy[:1] if bug == "batch_sum" else dy
                dw[:, :, di, dj] = np.einsum("nchw,nfhw->fc", win[: dy_w.shape[0]], dy_w)
                tap = w[:, :, wi, wj]
                contrib = np.einsum(
                    "nfhw,fc->nchw",
                    dy[:, :1] if bug == "filter_sum" else dy,
                    tap[:1] if bug == "filter_sum" else tap,
                )
                if bug == "stride_not_dilated":
                    dxp[:, :, i : i + oh, j : j + ow] += contrib
                else:
                    dxp[:, :, i : i + stride * oh : stride, j : j + stride * ow : stride] += contrib
        h, wd = x.shape[2], x.shape[3]
        dx = (
            dxp[:, :, :h, :wd]
            if bug == "padding_crop"
            else dxp[:, :, padding : padding + h, padding : padding + wd]
        )
        if bug == "border_zeroed":  # cropped too much, then zero-padded back to shape
            inner = dx[:, :, padding : h - padding, padding : wd - padding]
            dx = np.pad(inner, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
        db = dy.sum(axis=(0, 2, 3))
        if bug == "db_scale":
            db = db / dy.shape[0]
        return dx, dw, db

    return backward


def _conv_inputs(
    n: int, c: int, h: int, wd: int, f: int, k: tuple[int, int]
) -> Callable[[np.random.Generator, str], tuple[Any, ...]]:
    def make(rng: np.random.Generator, dtype: str) -> tuple[Any, ...]:
        return _normal(rng, (n, c, h, wd), dtype), _normal(rng, (f, c, *k), dtype), _normal(rng, (f,), dtype)

    return make


# -- pooling -----------------------------------------------------------------------------------


def maxpool2d(x: np.ndarray, *, kernel: int = 2, stride: int = 2) -> np.ndarray:
    oh, ow = (x.shape[2] - kernel) // stride + 1, (x.shape[3] - kernel) // stride + 1
    out = np.full((*x.shape[:2], oh, ow), -np.inf, dtype=x.dtype)
    for i in range(kernel):
        for j in range(kernel):
            out = np.maximum(out, x[:, :, i : i + stride * oh : stride, j : j + stride * ow : stride])
    return out


def maxpool2d_backward_with(bug: str | None = None) -> Callable[..., Any]:
    def backward(dy: np.ndarray, x: np.ndarray, *, kernel: int = 2, stride: int = 2) -> tuple[np.ndarray]:
        out = maxpool2d(x, kernel=kernel, stride=stride)
        oh, ow = out.shape[2:]
        dx = np.zeros_like(x)
        taken = np.zeros(out.shape, dtype=bool)  # the first max in each window takes the gradient
        for i in range(kernel):
            for j in range(kernel):
                sl = (
                    slice(None),
                    slice(None),
                    slice(i, i + stride * oh, stride),
                    slice(j, j + stride * ow, stride),
                )
                hit = (x[sl] == out) & ~taken
                taken |= hit
                if bug == "overwrite":
                    dx[sl] = np.where(hit, dy, dx[sl])
                else:
                    dx[sl] += np.where(hit, dy, 0)
        return (dx,)

    return backward


def avgpool2d(x: np.ndarray, *, kernel: int = 2, stride: int = 2) -> np.ndarray:
    oh, ow = (x.shape[2] - kernel) // stride + 1, (x.shape[3] - kernel) // stride + 1
    out = np.zeros((*x.shape[:2], oh, ow), dtype=x.dtype)
    for i in range(kernel):
        for j in range(kernel):
            out += x[:, :, i : i + stride * oh : stride, j : j + stride * ow : stride]
    return out / kernel**2


def avgpool2d_backward_with(bug: str | None = None) -> Callable[..., Any]:
    def backward(dy: np.ndarray, x: np.ndarray, *, kernel: int = 2, stride: int = 2) -> tuple[np.ndarray]:
        oh, ow = dy.shape[2:]
        dx = np.zeros_like(x)
        share = dy if bug == "missing_scale" else dy / kernel**2
        for i in range(kernel):
            for j in range(kernel):
                dx[:, :, i : i + stride * oh : stride, j : j + stride * ow : stride] += share
        return (dx,)

    return backward


# -- activations, losses, norms ----------------------------------------------------------------


def linear(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    return x @ w


def linear_backward_with(bug: str | None = None) -> Callable[..., Any]:
    def backward(dy: np.ndarray, x: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        dw = x.T @ dy
        return dy @ w.T, dw.T if bug == "transposed" else dw

    return backward


def relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0)


def relu_backward_ge(dy: np.ndarray, x: np.ndarray) -> tuple[np.ndarray]:
    return (dy * (x >= 0),)


def relu_backward_gt(dy: np.ndarray, x: np.ndarray) -> tuple[np.ndarray]:
    return (dy * (x > 0),)


def relu_backward_no_chain(dy: np.ndarray, x: np.ndarray) -> tuple[np.ndarray]:
    return ((x > 0).astype(x.dtype),)


def relu_backward_mutating(dy: np.ndarray, x: np.ndarray) -> tuple[np.ndarray]:
    dy[x <= 0] = 0  # in-place on grad_output: the classic CS231n slip
    return (dy,)


def abs_forward(x: np.ndarray) -> np.ndarray:
    return np.abs(x)


def abs_backward(dy: np.ndarray, x: np.ndarray) -> tuple[np.ndarray]:
    return (dy * np.sign(x),)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


def sigmoid_backward_with(bug: str | None = None) -> Callable[..., Any]:
    def backward(dy: np.ndarray, x: np.ndarray) -> tuple[np.ndarray]:
        s = sigmoid(x)
        return (dy * s if bug == "missing_factor" else dy * s * (1 - s),)

    return backward


def softmax_ce(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return -log_p[np.arange(len(labels)), labels].mean()


def softmax_ce_backward_with(bug: str | None = None) -> Callable[..., Any]:
    def backward(dy: np.ndarray, logits: np.ndarray, labels: np.ndarray) -> tuple[Any, None]:
        shifted = logits - logits.max(axis=1, keepdims=True)
        p = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
        p[np.arange(len(labels)), labels] -= 1
        scale = 1.0 if bug == "missing_mean" else 1.0 / len(labels)
        sign = -1.0 if bug == "sign" else 1.0
        return (sign * dy * p * scale).astype(logits.dtype), None

    return backward


def _ce_inputs(scale: float) -> Callable[[np.random.Generator, str], tuple[Any, ...]]:
    def make(rng: np.random.Generator, dtype: str) -> tuple[Any, ...]:
        return _normal(rng, (4, 5), dtype, scale), rng.integers(0, 5, size=4)

    return make


def batchnorm(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, *, eps: float = 1e-5) -> np.ndarray:
    mu, var = x.mean(0), x.var(0)
    return gamma * (x - mu) / np.sqrt(var + eps) + beta


def batchnorm_backward_with(bug: str | None = None) -> Callable[..., Any]:
    def backward(
        dy: np.ndarray, x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, *, eps: float = 1e-5
    ) -> tuple[np.ndarray, ...]:
        n = x.shape[0]
        mu, var = x.mean(0), x.var(0)
        inv = 1 / np.sqrt(var + eps)
        xhat = (x - mu) * inv
        dxhat = dy * gamma
        if bug == "missing_mean_term":
            dx = inv / n * (n * dxhat - xhat * (dxhat * xhat).sum(0))
        else:
            dx = inv / n * (n * dxhat - dxhat.sum(0) - xhat * (dxhat * xhat).sum(0))
        return dx, (dy * xhat).sum(0), dy.sum(0)

    return backward


def layernorm(x: np.ndarray, *, eps: float = 1e-5) -> np.ndarray:
    mu, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps)


def layernorm_backward_with(bug: str | None = None) -> Callable[..., Any]:
    def backward(dy: np.ndarray, x: np.ndarray, *, eps: float = 1e-5) -> tuple[np.ndarray]:
        d = x.shape[-1]
        mu, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
        inv = 1 / np.sqrt(var + (0.0 if bug == "eps_dropped" else eps))
        xhat = (x - mu) * inv
        return (inv / d * (d * dy - dy.sum(-1, keepdims=True) - xhat * (dy * xhat).sum(-1, keepdims=True)),)

    return backward


# -- Gaussian filter (the seed's layer): O(n) = sum_m X(n - m) g(m) ------------------------------


def _taps(m_half: int) -> np.ndarray:
    return np.arange(-m_half, m_half + 1, dtype=np.float64)


def _kernel(mu: np.ndarray, sigma: np.ndarray, m_half: int) -> np.ndarray:
    m = _taps(m_half).astype(mu.dtype)
    return np.exp(-0.5 * ((m - mu) / sigma) ** 2) / (sigma * np.sqrt(2 * np.pi))


def _filter(x: np.ndarray, g: np.ndarray, m_half: int) -> np.ndarray:
    n = x.shape[-1]
    padded = np.pad(x, (m_half, m_half))
    out = np.zeros_like(x)
    for k, m in enumerate(range(-m_half, m_half + 1)):
        out += padded[m_half - m : m_half - m + n] * g[k]  # X(n - m) g(m)
    return out


def gaussian(x: np.ndarray, mu: np.ndarray, sigma: np.ndarray, *, m_half: int = 4) -> np.ndarray:
    return _filter(x, _kernel(mu, sigma, m_half), m_half)


def gaussian_backward_with(bug: str | None = None) -> Callable[..., Any]:
    def backward(
        dy: np.ndarray, x: np.ndarray, mu: np.ndarray, sigma: np.ndarray, *, m_half: int = 4
    ) -> tuple[np.ndarray, ...]:
        m = _taps(m_half).astype(x.dtype)
        g = _kernel(mu, sigma, m_half)
        dg_dmu = g * (m - mu) / sigma**2  # eq. 51
        dg_dsigma = g * ((m - mu) ** 2 / sigma**3 - 1 / sigma)  # eq. 48 (times sigma*sqrt(2pi) folded in g)
        if bug == "dsigma_uses_dmu":
            dg_dsigma = dg_dmu  # the seed's typo in eqs. 71-72, taken literally
        dmu = np.sum(dy * _filter(x, dg_dmu, m_half))
        dsigma = np.sum(dy * _filter(x, dg_dsigma, m_half))
        # dX(i) = sum_k dY(k) g(k - i): correlation of dY with g; a convolution only if g is symmetric
        g_used = g[::-1] if bug == "convolution_not_correlation" else g
        dx = _filter(dy, g_used[::-1], m_half)
        return dx, np.asarray(dmu, dtype=x.dtype), np.asarray(dsigma, dtype=x.dtype)

    return backward


def _gaussian_inputs(
    mu: float, sigma: float, n: int = 12
) -> Callable[[np.random.Generator, str], tuple[Any, ...]]:
    def make(rng: np.random.Generator, dtype: str) -> tuple[Any, ...]:
        return _normal(rng, (n,), dtype), np.asarray(mu, dtype=dtype), np.asarray(sigma, dtype=dtype)

    return make


# -- the zoo -----------------------------------------------------------------------------------


def _linear_inputs(rng: np.random.Generator, dtype: str) -> tuple[Any, ...]:
    return _normal(rng, (5, 4), dtype), _normal(rng, (4, 4), dtype)


def _relu_inputs_with_zeros(rng: np.random.Generator, dtype: str) -> tuple[Any, ...]:
    x = _normal(rng, (3, 7), dtype)
    x[:, ::2] = 0
    return (x,)


def _pool_inputs_with_ties(rng: np.random.Generator, dtype: str) -> tuple[Any, ...]:
    x = rng.integers(-2, 3, size=(2, 2, 6, 6)).astype(dtype)
    return (x,)


def _pool_inputs(rng: np.random.Generator, dtype: str) -> tuple[Any, ...]:
    return (_normal(rng, (2, 2, 7, 6), dtype),)


def _bn_inputs(rng: np.random.Generator, dtype: str) -> tuple[Any, ...]:
    return _normal(rng, (6, 4), dtype, 2.0) + 3, _normal(rng, (4,), dtype), _normal(rng, (4,), dtype)


def _ln_inputs(rng: np.random.Generator, dtype: str) -> tuple[Any, ...]:
    return (_normal(rng, (3, 5), dtype) * 0.01,)


CONV = dict(make_inputs=_conv_inputs(2, 3, 6, 5, 4, (3, 2)), params={"stride": 2, "padding": 1})


def specimens() -> list[Specimen]:
    S = Specimen
    correct = [
        S("conv2d", conv2d, conv2d_backward_with(None), **CONV),
        S("linear", linear, linear_backward_with(None), _linear_inputs),
        S("conv2d-stride1", conv2d, conv2d_backward_with(None), _conv_inputs(2, 2, 5, 5, 3, (2, 2))),
        S("relu-ge-at-zeros", relu, relu_backward_ge, _relu_inputs_with_zeros),
        S("relu-gt-at-zeros", relu, relu_backward_gt, _relu_inputs_with_zeros),
        S("abs-at-zeros", abs_forward, abs_backward, _relu_inputs_with_zeros),
        S(
            "maxpool-ties",
            maxpool2d,
            maxpool2d_backward_with(None),
            _pool_inputs_with_ties,
            {"kernel": 3, "stride": 2},
        ),
        S(
            "maxpool-overlap",
            maxpool2d,
            maxpool2d_backward_with(None),
            _pool_inputs,
            {"kernel": 3, "stride": 1},
        ),
        S("avgpool", avgpool2d, avgpool2d_backward_with(None), _pool_inputs, {"kernel": 3, "stride": 2}),
        S(
            "sigmoid-saturated",
            sigmoid,
            sigmoid_backward_with(None),
            lambda r, d: (_normal(r, (4, 6), d, 12.0),),
        ),
        S("softmax-ce", softmax_ce, softmax_ce_backward_with(None), _ce_inputs(1.0)),
        S("softmax-ce-1e4", softmax_ce, softmax_ce_backward_with(None), _ce_inputs(1e4)),
        S("batchnorm", batchnorm, batchnorm_backward_with(None), _bn_inputs),
        S("layernorm-small-var", layernorm, layernorm_backward_with(None), _ln_inputs),
        S("gaussian", gaussian, gaussian_backward_with(None), _gaussian_inputs(0.7, 1.3)),
        S("gaussian-steep", gaussian, gaussian_backward_with(None), _gaussian_inputs(0.35, 0.25)),
    ]
    bugs = [
        S(
            "conv2d-no-rotation",
            conv2d,
            conv2d_backward_with("no_rotation"),
            buggy=True,
            cause="kernel_not_rotated",
            **CONV,
        ),
        S(
            "conv2d-dw-flipped",
            conv2d,
            conv2d_backward_with("dw_flipped"),
            buggy=True,
            cause="dw_flipped",
            **CONV,
        ),
        S(
            "conv2d-batch-sum",
            conv2d,
            conv2d_backward_with("batch_sum"),
            buggy=True,
            cause="batch_sum_missing",
            **CONV,
        ),
        S(
            "conv2d-filter-sum",
            conv2d,
            conv2d_backward_with("filter_sum"),
            buggy=True,
            cause="filter_sum_missing",
            **CONV,
        ),
        S(
            "conv2d-stride-not-dilated",
            conv2d,
            conv2d_backward_with("stride_not_dilated"),
            buggy=True,
            cause="stride_grid",
            **CONV,
        ),
        S(
            "conv2d-padding-crop",
            conv2d,
            conv2d_backward_with("padding_crop"),
            buggy=True,
            cause="padding_crop",
            **CONV,
        ),
        S(
            "conv2d-border-zeroed",
            conv2d,
            conv2d_backward_with("border_zeroed"),
            _conv_inputs(2, 2, 7, 6, 3, (3, 3)),
            {"padding": 1},
            True,
            "border_only",
        ),
        S(
            "conv2d-stride1-no-rotation",
            conv2d,
            conv2d_backward_with("no_rotation"),
            _conv_inputs(2, 2, 5, 6, 3, (3, 2)),
            {"padding": 1},
            True,
            "kernel_not_rotated",
        ),
        S(
            "linear-dw-transposed",
            linear,
            linear_backward_with("transposed"),
            _linear_inputs,
            buggy=True,
            cause="transposed_axes",
        ),
        S(
            "conv2d-db-scale",
            conv2d,
            conv2d_backward_with("db_scale"),
            buggy=True,
            cause="constant_factor",
            **CONV,
        ),
        S(
            "maxpool-overwrite",
            maxpool2d,
            maxpool2d_backward_with("overwrite"),
            _pool_inputs,
            {"kernel": 3, "stride": 1},
            True,
            "overwrite_not_accumulate",
        ),
        S(
            "avgpool-missing-scale",
            avgpool2d,
            avgpool2d_backward_with("missing_scale"),
            _pool_inputs,
            {"kernel": 3, "stride": 2},
            True,
            "constant_factor",
        ),
        S(
            "relu-no-chain",
            relu,
            relu_backward_no_chain,
            _relu_inputs_with_zeros,
            buggy=True,
            cause="grad_output_ignored",
        ),
        S(
            "relu-mutates-dy",
            relu,
            relu_backward_mutating,
            _relu_inputs_with_zeros,
            buggy=True,
            cause="mutation",
        ),
        S(
            "sigmoid-missing-factor",
            sigmoid,
            sigmoid_backward_with("missing_factor"),
            lambda r, d: (_normal(r, (4, 6), d),),
            buggy=True,
            cause="missing_chain_factor",
        ),
        S(
            "softmax-ce-missing-mean",
            softmax_ce,
            softmax_ce_backward_with("missing_mean"),
            _ce_inputs(1.0),
            buggy=True,
            cause="constant_factor",
        ),
        S(
            "softmax-ce-sign",
            softmax_ce,
            softmax_ce_backward_with("sign"),
            _ce_inputs(1.0),
            buggy=True,
            cause="sign_flipped",
        ),
        S(
            "batchnorm-missing-term",
            batchnorm,
            batchnorm_backward_with("missing_mean_term"),
            _bn_inputs,
            buggy=True,
            cause="missing_mean_term",
        ),
        S("layernorm-eps-dropped", layernorm, layernorm_backward_with("eps_dropped"), _ln_inputs, buggy=True),
        S(
            "gaussian-dsigma-typo",
            gaussian,
            gaussian_backward_with("dsigma_uses_dmu"),
            _gaussian_inputs(0.7, 1.3),
            buggy=True,
        ),
        S(
            "gaussian-convolution",
            gaussian,
            gaussian_backward_with("convolution_not_correlation"),
            _gaussian_inputs(0.7, 1.3),
            buggy=True,
            cause="kernel_not_rotated",
        ),
    ]
    return correct + bugs


def by_name(name: str) -> Specimen:
    return next(s for s in specimens() if s.name == name)
