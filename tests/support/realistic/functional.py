"""Kernel-author-style forward/backward pairs: plain functions, ``backward(dy, *inputs)``
returning one gradient per input. Many are written like float32 kernels: upcast (or downcast)
the inputs to float32 inside, compute and accumulate there, cast the result back to the
caller's dtype. Buggy variants carry one planted slip each, named in their docstring.
"""

from __future__ import annotations

from typing import Any

import numpy as np

F32 = np.float32
SQRT_2_OVER_PI = np.sqrt(2.0 / np.pi)
GELU_C = 0.044715

# -- matmul ----------------------------------------------------------------------------------------


def matmul_f32(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a.astype(F32) @ b.astype(F32)).astype(a.dtype)


def matmul_f32_backward(dy: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # Y = A B: dA = dY B^T, dB = A^T dY
    dy32, a32, b32 = dy.astype(F32), a.astype(F32), b.astype(F32)
    return (dy32 @ b32.T).astype(a.dtype), (a32.T @ dy32).astype(b.dtype)


def matmul_f32_backward_untransposed(
    dy: np.ndarray, a: np.ndarray, b: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """BUG: dA = dY B instead of dY B^T (shapes agree because B is square)."""
    dy32, a32, b32 = dy.astype(F32), a.astype(F32), b.astype(F32)
    return (dy32 @ b32).astype(a.dtype), (a32.T @ dy32).astype(b.dtype)


# -- activations -----------------------------------------------------------------------------------


def _gelu_inner(x32: np.ndarray) -> np.ndarray:
    return F32(SQRT_2_OVER_PI) * (x32 + F32(GELU_C) * x32 * x32 * x32)


def gelu_tanh(x: np.ndarray) -> np.ndarray:
    # the tanh approximation: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
    x32 = x.astype(F32)
    return (0.5 * x32 * (1 + np.tanh(_gelu_inner(x32)))).astype(x.dtype)


def _gelu_tanh_derivative(x32: np.ndarray, *, with_tanh_term: bool = True) -> np.ndarray:
    # d/dx = 0.5 (1 + t) + 0.5 x (1 - t^2) sqrt(2/pi) (1 + 3 c x^2), t = tanh(inner)
    t = np.tanh(_gelu_inner(x32))
    d = 0.5 * (1 + t)
    if with_tanh_term:
        d = d + 0.5 * x32 * (1 - t * t) * F32(SQRT_2_OVER_PI) * (1 + F32(3 * GELU_C) * x32 * x32)
    return d


def gelu_tanh_backward(dy: np.ndarray, x: np.ndarray) -> tuple[np.ndarray]:
    x32 = x.astype(F32)
    return ((dy.astype(F32) * _gelu_tanh_derivative(x32)).astype(x.dtype),)


def gelu_tanh_backward_missing_term(dy: np.ndarray, x: np.ndarray) -> tuple[np.ndarray]:
    """BUG: only the 0.5 (1 + tanh) part of the derivative; the x (1 - t^2) ... term is lost."""
    x32 = x.astype(F32)
    return ((dy.astype(F32) * _gelu_tanh_derivative(x32, with_tanh_term=False)).astype(x.dtype),)


def gelu_tanh_backward_ignores_dy(dy: np.ndarray, x: np.ndarray) -> tuple[np.ndarray]:
    """BUG: returns gelu'(x), the gradient for dy = ones, whatever dy is."""
    return (_gelu_tanh_derivative(x.astype(F32)).astype(x.dtype),)


def silu_f32(x: np.ndarray) -> np.ndarray:
    x32 = x.astype(F32)
    return (x32 / (1 + np.exp(-x32))).astype(x.dtype)


def silu_f32_backward(dy: np.ndarray, x: np.ndarray) -> tuple[np.ndarray]:
    # y = x s(x): dy/dx = s (1 + x (1 - s))
    x32 = x.astype(F32)
    s = 1 / (1 + np.exp(-x32))
    return ((dy.astype(F32) * s * (1 + x32 * (1 - s))).astype(x.dtype),)


def silu_f32_out(x: np.ndarray) -> np.ndarray:
    """The same SiLU kernel without the cast back: float32 out whatever comes in."""
    x32 = x.astype(F32)
    return x32 / (1 + np.exp(-x32))


def silu_f32_out_backward(dy: np.ndarray, x: np.ndarray) -> tuple[np.ndarray]:
    x32 = x.astype(F32)
    s = 1 / (1 + np.exp(-x32))
    return (dy.astype(F32) * s * (1 + x32 * (1 - s)),)


def silu_f32_out_backward_offset(dy: np.ndarray, x: np.ndarray) -> tuple[np.ndarray]:
    """BUG: the gradient carries an additive offset of 1e-3 (a stray bias term)."""
    (dx,) = silu_f32_out_backward(dy, x)
    return (dx + F32(1e-3),)


def bias_gelu_f32(x: np.ndarray, bias: np.ndarray) -> np.ndarray:
    # fused bias + GELU: y = gelu(x + bias), bias broadcast over rows
    return gelu_tanh(x.astype(F32) + bias.astype(F32)).astype(x.dtype)


def bias_gelu_f32_backward(dy: np.ndarray, x: np.ndarray, bias: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    g = dy.astype(F32) * _gelu_tanh_derivative(x.astype(F32) + bias.astype(F32))
    dbias = g.sum(axis=0, dtype=F32)  # accumulate the bias gradient in float32
    return g.astype(x.dtype), dbias.astype(bias.dtype)


def scaled_tanh(x: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    return np.tanh(alpha * x)


def scaled_tanh_backward(dy: np.ndarray, x: np.ndarray, alpha: np.ndarray) -> tuple[np.ndarray, float]:
    # y = tanh(a x): dx = dy a (1 - y^2), da = sum(dy x (1 - y^2)), a Python float for a 0-d a
    local = 1 - np.tanh(alpha * x) ** 2
    return dy * alpha * local, float(np.sum(dy * x * local))


# -- softmax family --------------------------------------------------------------------------------


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def softmax_backward(dy: np.ndarray, x: np.ndarray) -> tuple[np.ndarray]:
    # the Jacobian-vector product of softmax: y * (dy - sum(dy * y))
    y = softmax(x)
    return (y * (dy - (dy * y).sum(axis=-1, keepdims=True)),)


def softmax_backward_no_subtraction(dy: np.ndarray, x: np.ndarray) -> tuple[np.ndarray]:
    """BUG: y * dy, the diagonal of the Jacobian only (the - sum(dy * y) term is lost)."""
    return (softmax(x) * dy,)


def log_softmax(x: np.ndarray) -> np.ndarray:
    shifted = x - x.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def log_softmax_backward(dy: np.ndarray, x: np.ndarray) -> tuple[np.ndarray]:
    return (dy - softmax(x) * dy.sum(axis=-1, keepdims=True),)


def softmax_xent_f32(logits: np.ndarray, labels: np.ndarray) -> Any:
    """Mean cross-entropy of softmax(logits) in float32, ``sum / N`` as in most course code.
    The result is an ``np.float32`` scalar divided by a Python int: float32 under NumPy 2
    (NEP 50), but float64 under NumPy 1.x's value-based promotion, with float32 precision."""
    z = logits.astype(F32)
    z = z - z.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    n = logits.shape[0]
    return -logp[np.arange(n), labels].sum() / n


def _xent_f32_gradient(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    # d loss / d z = (softmax(z) - onehot(labels)) / N
    z = logits.astype(F32)
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    p[np.arange(len(labels)), labels] -= 1
    return p / logits.shape[0]


def softmax_xent_f32_backward(dy: Any, logits: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, None]:
    return _xent_f32_gradient(logits, labels) * dy, None


def softmax_xent_f32_cast_back(logits: np.ndarray, labels: np.ndarray) -> Any:
    """The same loss cast back to the caller's dtype (float64 in, float64 out, float32 inside)."""
    return np.asarray(softmax_xent_f32(logits, labels)).astype(logits.dtype)


def softmax_xent_f32_cast_back_backward(
    dy: Any, logits: np.ndarray, labels: np.ndarray
) -> tuple[np.ndarray, None]:
    return (_xent_f32_gradient(logits, labels) * dy.astype(F32)).astype(logits.dtype), None


# -- normalization ---------------------------------------------------------------------------------


def layer_norm_f32(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, *, eps: float = 1e-5) -> np.ndarray:
    x32 = x.astype(F32)
    mean = x32.mean(axis=-1, keepdims=True)
    xc = x32 - mean
    rstd = 1 / np.sqrt((xc * xc).mean(axis=-1, keepdims=True) + eps)
    return (xc * rstd * gamma.astype(F32) + beta.astype(F32)).astype(x.dtype)


def layer_norm_f32_backward(
    dy: np.ndarray, x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, *, eps: float = 1e-5
) -> tuple[np.ndarray, ...]:
    # dx = rstd (g - mean(g) - xhat mean(g xhat)), g = dy gamma, means over the last axis
    x32, dy32 = x.astype(F32), dy.astype(F32)
    D = x.shape[-1]
    xc = x32 - x32.mean(axis=-1, keepdims=True)
    rstd = 1 / np.sqrt((xc * xc).mean(axis=-1, keepdims=True) + eps)
    xhat = xc * rstd
    g = dy32 * gamma.astype(F32)
    dx = rstd * (g - g.mean(axis=-1, keepdims=True) - xhat * (g * xhat).mean(axis=-1, keepdims=True))
    dgamma = (dy32 * xhat).reshape(-1, D).sum(axis=0)
    dbeta = dy32.reshape(-1, D).sum(axis=0)
    return dx.astype(x.dtype), dgamma.astype(gamma.dtype), dbeta.astype(beta.dtype)


def rms_norm(x: np.ndarray, weight: np.ndarray, *, eps: float = 1e-6) -> np.ndarray:
    # statistics accumulated in float64 whatever the input dtype, output in x's dtype
    r = 1 / np.sqrt(np.mean(x.astype(np.float64) ** 2, axis=-1, keepdims=True) + eps)
    return (x * r * weight).astype(x.dtype)


def rms_norm_backward(
    dy: np.ndarray, x: np.ndarray, weight: np.ndarray, *, eps: float = 1e-6
) -> tuple[np.ndarray, np.ndarray]:
    # y = x r w with r = (mean(x^2) + eps)^(-1/2): dx = r (g - x r^2 mean(g x)), g = dy w
    x64 = x.astype(np.float64)
    r = 1 / np.sqrt(np.mean(x64**2, axis=-1, keepdims=True) + eps)
    g = dy * weight
    dx = r * (g - x64 * r**2 * np.mean(g * x64, axis=-1, keepdims=True))
    dw = np.sum((dy * x64 * r).reshape(-1, x.shape[-1]), axis=0)
    return dx.astype(x.dtype), dw.astype(weight.dtype)


# -- attention -------------------------------------------------------------------------------------


def attention(q: np.ndarray, k: np.ndarray, v: np.ndarray) -> np.ndarray:
    # O = softmax(Q K^T / sqrt(d)) V over (batch, tokens, d)
    scale = 1 / np.sqrt(q.shape[-1])
    return softmax(q @ k.transpose(0, 2, 1) * scale) @ v


def _attention_backward(
    do: np.ndarray, q: np.ndarray, k: np.ndarray, v: np.ndarray, *, subtract: bool
) -> tuple[np.ndarray, ...]:
    scale = 1 / np.sqrt(q.shape[-1])
    p = softmax(q @ k.transpose(0, 2, 1) * scale)
    dv = p.transpose(0, 2, 1) @ do
    dp = do @ v.transpose(0, 2, 1)
    ds = p * (dp - (dp * p).sum(axis=-1, keepdims=True)) if subtract else p * dp
    return ds @ k * scale, ds.transpose(0, 2, 1) @ q * scale, dv


def attention_backward(do: np.ndarray, q: np.ndarray, k: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, ...]:
    return _attention_backward(do, q, k, v, subtract=True)


def attention_backward_no_subtraction(
    do: np.ndarray, q: np.ndarray, k: np.ndarray, v: np.ndarray
) -> tuple[np.ndarray, ...]:
    """BUG: the softmax backward inside attention drops the - sum(dp * p) term (dS = P dP)."""
    return _attention_backward(do, q, k, v, subtract=False)


# -- im2col conv1d and embedding: scatter-add with repeated indices ------------------------------


def _conv1d_cols(x: np.ndarray, kernel: int, stride: int) -> np.ndarray:
    # (N, C, L_out, K) windows, a strided view of x
    return np.lib.stride_tricks.sliding_window_view(x, kernel, axis=2)[:, :, ::stride]


def conv1d_im2col(x: np.ndarray, w: np.ndarray, *, stride: int = 1) -> np.ndarray:
    return np.einsum("nclk,fck->nfl", _conv1d_cols(x, w.shape[-1], stride), w)


def _conv1d_im2col_backward(
    dy: np.ndarray, x: np.ndarray, w: np.ndarray, stride: int, *, scatter_add: bool
) -> tuple[np.ndarray, np.ndarray]:
    K = w.shape[-1]
    dw = np.einsum("nfl,nclk->fck", dy, _conv1d_cols(x, K, stride))
    dcols = np.einsum("nfl,fck->nclk", dy, w)
    where = np.arange(dy.shape[2])[:, None] * stride + np.arange(K)  # (L_out, K) indices into x
    dx = np.zeros_like(x)
    if scatter_add:
        np.add.at(dx, (slice(None), slice(None), where), dcols)
    else:
        dx[:, :, where] += dcols  # buffered: a repeated index keeps only one contribution
    return dx, dw


def conv1d_im2col_backward(
    dy: np.ndarray, x: np.ndarray, w: np.ndarray, *, stride: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    return _conv1d_im2col_backward(dy, x, w, stride, scatter_add=True)


def conv1d_im2col_backward_fancy_add(
    dy: np.ndarray, x: np.ndarray, w: np.ndarray, *, stride: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """BUG: col2im with ``dx[:, :, idx] += dcols``: overlapping windows do not accumulate."""
    return _conv1d_im2col_backward(dy, x, w, stride, scatter_add=False)


def embedding(ids: np.ndarray, weight: np.ndarray) -> np.ndarray:
    return weight[ids]


def embedding_backward(dy: np.ndarray, ids: np.ndarray, weight: np.ndarray) -> tuple[None, np.ndarray]:
    dweight = np.zeros_like(weight)
    np.add.at(dweight, ids, dy)
    return None, dweight


def embedding_backward_fancy_add(
    dy: np.ndarray, ids: np.ndarray, weight: np.ndarray
) -> tuple[None, np.ndarray]:
    """BUG: ``dweight[ids] += dy``: a token appearing twice gets one row's gradient, not the sum."""
    dweight = np.zeros_like(weight)
    dweight[ids] += dy
    return None, dweight


# -- degenerate and hostile-but-plausible ---------------------------------------------------------


def double(x: np.ndarray) -> np.ndarray:
    return x * 2.0


def double_backward_wrong(dy: np.ndarray, x: np.ndarray) -> tuple[np.ndarray]:
    """BUG: the derivative of 2x is 2, not 3."""
    return (dy * 3.0,)


def tanh_ignoring_w(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    return np.tanh(x)  # w does not reach the output (a wiring slip upstream)


def tanh_ignoring_w_backward(dy: np.ndarray, x: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """BUG: backward gives w the gradient it would have in tanh(x * w), which forward never used."""
    local = 1 - np.tanh(x) ** 2
    return dy * local, dy * local * x


def tanh_ignoring_w_backward_zero(
    dy: np.ndarray, x: np.ndarray, w: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    # w does not reach the output, so its gradient is exactly zero: correct
    return dy * (1 - np.tanh(x) ** 2), np.zeros_like(w)


def affine(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    return x @ w + b


def affine_backward_zero_db(
    dy: np.ndarray, x: np.ndarray, w: np.ndarray, b: np.ndarray
) -> tuple[np.ndarray, ...]:
    """BUG: db is never computed: the zeros it was initialised with are returned."""
    db = np.zeros_like(b)
    return dy @ w.T, x.T @ dy, db
