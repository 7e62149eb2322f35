"""CS231n-style layers: ``forward(x, ..., param_dict) -> (out, cache)`` and
``backward(dout, cache) -> grads``, written the way students write them (explicit loops in the
naive conv/pool, a computational-graph batchnorm, ``(loss, dx)`` losses).

Each ``*_backward`` is correct; the variants with a suffix carry one planted bug each, named in
the first line of their docstring. They are our own code, written in the course's style.
"""

from __future__ import annotations

from typing import Any

import numpy as np

Cache = Any

# -- affine and relu ---------------------------------------------------------------------------


def affine_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, Cache]:
    # x may be (N, d1, ..., dk): each row is flattened to D = d1 * ... * dk
    out = x.reshape(x.shape[0], -1).dot(w) + b
    return out, (x, w, b)


def affine_backward(dout: np.ndarray, cache: Cache) -> tuple[np.ndarray, ...]:
    x, w, _b = cache
    dx = dout.dot(w.T).reshape(x.shape)
    dw = x.reshape(x.shape[0], -1).T.dot(dout)
    db = np.sum(dout, axis=0)
    return dx, dw, db


def affine_backward_no_reshape(dout: np.ndarray, cache: Cache) -> tuple[np.ndarray, ...]:
    """BUG: dx is left (N, D) instead of being reshaped back to x's (N, d1, d2)."""
    x, w, _b = cache
    dx = dout.dot(w.T)
    dw = x.reshape(x.shape[0], -1).T.dot(dout)
    return dx, dw, np.sum(dout, axis=0)


def affine_backward_db_axis1(dout: np.ndarray, cache: Cache) -> tuple[np.ndarray, ...]:
    """BUG: db sums over the features instead of the batch (silent when N == M)."""
    x, w, _b = cache
    dx = dout.dot(w.T).reshape(x.shape)
    dw = x.reshape(x.shape[0], -1).T.dot(dout)
    return dx, dw, np.sum(dout, axis=1)


def relu_forward(x: np.ndarray) -> tuple[np.ndarray, Cache]:
    return np.maximum(0, x), x


def relu_backward(dout: np.ndarray, cache: Cache) -> np.ndarray:
    x = cache
    return dout * (x > 0)


def relu_backward_ge(dout: np.ndarray, cache: Cache) -> np.ndarray:
    # x >= 0 picks the right-hand slope at 0: a valid subgradient, as correct as x > 0
    x = cache
    return dout * (x >= 0)


def relu_backward_where(dout: np.ndarray, cache: Cache) -> np.ndarray:
    x = cache
    dx = np.where(x > 0, dout, 0)
    return dx


def relu_backward_no_dout(dout: np.ndarray, cache: Cache) -> np.ndarray:
    """BUG: returns the local derivative 1[x > 0] and forgets to multiply by dout."""
    x = cache
    return (x > 0).astype(x.dtype)


def relu_backward_inplace(dout: np.ndarray, cache: Cache) -> np.ndarray:
    """BUG: zeroes dout in place (dx is dout itself): the caller's upstream gradient changes."""
    x = cache
    dx = dout
    dx[x <= 0] = 0
    return dx


def affine_relu_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, Cache]:
    a, fc_cache = affine_forward(x, w, b)
    out, relu_cache = relu_forward(a)
    return out, (fc_cache, relu_cache)


def affine_relu_backward(dout: np.ndarray, cache: Cache) -> tuple[np.ndarray, ...]:
    fc_cache, relu_cache = cache
    da = relu_backward(dout, relu_cache)
    return affine_backward(da, fc_cache)


def affine_relu_backward_skips_relu(dout: np.ndarray, cache: Cache) -> tuple[np.ndarray, ...]:
    """BUG: backprops dout straight through the affine layer, skipping the relu's mask."""
    fc_cache, _relu_cache = cache
    return affine_backward(dout, fc_cache)


# -- naive convolution ---------------------------------------------------------------------------


def conv_forward_naive(
    x: np.ndarray, w: np.ndarray, b: np.ndarray, conv_param: dict[str, int]
) -> tuple[np.ndarray, Cache]:
    stride, pad = conv_param["stride"], conv_param["pad"]
    N, F = x.shape[0], w.shape[0]
    H_out = 1 + (x.shape[2] + 2 * pad - w.shape[2]) // stride
    W_out = 1 + (x.shape[3] + 2 * pad - w.shape[3]) // stride
    out = np.zeros((N, F, H_out, W_out), dtype=x.dtype)
    _conv_loops(x, w, b, stride, pad, out)
    return out, (x, w, b, conv_param)


def conv_forward_naive_default_dtype(
    x: np.ndarray, w: np.ndarray, b: np.ndarray, conv_param: dict[str, int]
) -> tuple[np.ndarray, Cache]:
    """The same loops into ``np.zeros(shape)``: a float64 output whatever x is (what most
    students write). Not a bug: each sum is computed in x's dtype and stored exactly."""
    stride, pad = conv_param["stride"], conv_param["pad"]
    H_out = 1 + (x.shape[2] + 2 * pad - w.shape[2]) // stride
    W_out = 1 + (x.shape[3] + 2 * pad - w.shape[3]) // stride
    out = np.zeros((x.shape[0], w.shape[0], H_out, W_out))
    _conv_loops(x, w, b, stride, pad, out)
    return out, (x, w, b, conv_param)


def _conv_loops(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int, pad: int, out: np.ndarray) -> None:
    # out[n, f, i, j] = sum over (c, di, dj) of xpad[n, c, i*s + di, j*s + dj] w[f, c, di, dj] + b[f]
    HH, WW = w.shape[2], w.shape[3]
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)), mode="constant")
    N, F, H_out, W_out = out.shape
    for n in range(N):
        for f in range(F):
            for i in range(H_out):
                for j in range(W_out):
                    window = xp[n, :, i * stride : i * stride + HH, j * stride : j * stride + WW]
                    out[n, f, i, j] = np.sum(window * w[f]) + b[f]


def _conv_backward(
    dout: np.ndarray,
    cache: Cache,
    *,
    dw_reset_per_image: bool = False,
    db_axes: tuple[int, ...] = (0, 2, 3),
    flip_kernel_in_dx: bool = False,
    crop_with_negative_pad: bool = False,
) -> tuple[np.ndarray, ...]:
    """The naive loops; the keywords switch on one student slip each (all off: correct)."""
    x, w, _b, conv_param = cache
    stride, pad = conv_param["stride"], conv_param["pad"]
    N, _C, H, W = x.shape
    F, _, HH, WW = w.shape
    _, _, H_out, W_out = dout.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)), mode="constant")
    dxp = np.zeros_like(xp)
    dw = np.zeros_like(w)
    db = np.sum(dout, axis=db_axes)
    # flipping w here is the slip of someone who remembers "dx is a full convolution with the
    # rotated kernel" but scatters window by window, where the unrotated w is what is due
    w_for_dx = w[:, :, ::-1, ::-1] if flip_kernel_in_dx else w
    for n in range(N):
        if dw_reset_per_image:
            dw = np.zeros_like(w)  # only the last image's contribution survives
        for f in range(F):
            for i in range(H_out):
                for j in range(W_out):
                    hs, ws = i * stride, j * stride
                    dw[f] += xp[n, :, hs : hs + HH, ws : ws + WW] * dout[n, f, i, j]
                    dxp[n, :, hs : hs + HH, ws : ws + WW] += w_for_dx[f] * dout[n, f, i, j]
    if crop_with_negative_pad:
        return dxp[:, :, pad:-pad, pad:-pad], dw, db  # empty when pad == 0
    return dxp[:, :, pad : pad + H, pad : pad + W], dw, db


def conv_backward_naive(dout: np.ndarray, cache: Cache) -> tuple[np.ndarray, ...]:
    return _conv_backward(dout, cache)


def conv_backward_naive_dw_last_image(dout: np.ndarray, cache: Cache) -> tuple[np.ndarray, ...]:
    """BUG: dw is re-zeroed inside the batch loop, so only the last image contributes."""
    return _conv_backward(dout, cache, dw_reset_per_image=True)


def conv_backward_naive_db_wrong_axis(dout: np.ndarray, cache: Cache) -> tuple[np.ndarray, ...]:
    """BUG: db sums over (1, 2, 3) (per image) instead of (0, 2, 3) (silent when N == F)."""
    return _conv_backward(dout, cache, db_axes=(1, 2, 3))


def conv_backward_naive_flipped_dx(dout: np.ndarray, cache: Cache) -> tuple[np.ndarray, ...]:
    """BUG: dx scatters the kernel rotated by 180 degrees (true convolution vs correlation)."""
    return _conv_backward(dout, cache, flip_kernel_in_dx=True)


def conv_backward_naive_negative_crop(dout: np.ndarray, cache: Cache) -> tuple[np.ndarray, ...]:
    """BUG: dx = dxp[:, :, pad:-pad, pad:-pad], which is empty when pad == 0."""
    return _conv_backward(dout, cache, crop_with_negative_pad=True)


# -- naive max pooling ---------------------------------------------------------------------------


def max_pool_forward_naive(x: np.ndarray, pool_param: dict[str, int]) -> tuple[np.ndarray, Cache]:
    ph, pw, stride = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    N, C, H, W = x.shape
    H_out, W_out = 1 + (H - ph) // stride, 1 + (W - pw) // stride
    out = np.zeros((N, C, H_out, W_out), dtype=x.dtype)
    for i in range(H_out):
        for j in range(W_out):
            window = x[:, :, i * stride : i * stride + ph, j * stride : j * stride + pw]
            out[:, :, i, j] = np.max(window, axis=(2, 3))
    return out, (x, pool_param)


def _pool_windows(cache: Cache, dout: np.ndarray) -> Any:
    """Yields (n, c, i, j, hs, ws, window) for every output element, window a view of x."""
    x, pool_param = cache
    ph, pw, stride = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    N, C, H_out, W_out = dout.shape
    for n in range(N):
        for c in range(C):
            for i in range(H_out):
                for j in range(W_out):
                    hs, ws = i * stride, j * stride
                    yield n, c, i, j, hs, ws, x[n, c, hs : hs + ph, ws : ws + pw]


def max_pool_backward_mask(dout: np.ndarray, cache: Cache) -> np.ndarray:
    """The mask idiom: every element equal to the window's max receives the full dout. Exact
    without ties; with ties (BUG there) a tied window passes on k times its gradient."""
    x, pool_param = cache
    dx = np.zeros_like(x)
    ph, pw = pool_param["pool_height"], pool_param["pool_width"]
    for n, c, i, j, hs, ws, window in _pool_windows(cache, dout):
        mask = window == window.max()
        dx[n, c, hs : hs + ph, ws : ws + pw] += mask * dout[n, c, i, j]
    return dx


def max_pool_backward_argmax(dout: np.ndarray, cache: Cache) -> np.ndarray:
    # the first maximum (np.argmax's choice) takes the whole gradient: a valid subgradient
    x, _ = cache
    dx = np.zeros_like(x)
    for n, c, i, j, hs, ws, window in _pool_windows(cache, dout):
        a, b = np.unravel_index(np.argmax(window), window.shape)
        dx[n, c, hs + a, ws + b] += dout[n, c, i, j]
    return dx


def max_pool_backward_split(dout: np.ndarray, cache: Cache) -> np.ndarray:
    # ties share the gradient equally: a convex combination of the one-sided slopes, also valid
    x, pool_param = cache
    dx = np.zeros_like(x)
    ph, pw = pool_param["pool_height"], pool_param["pool_width"]
    for n, c, i, j, hs, ws, window in _pool_windows(cache, dout):
        mask = window == window.max()
        dx[n, c, hs : hs + ph, ws : ws + pw] += mask * dout[n, c, i, j] / mask.sum()
    return dx


def max_pool_backward_assign(dout: np.ndarray, cache: Cache) -> np.ndarray:
    """BUG: dx[...] = instead of +=: with overlapping windows (stride < pool) a later window
    overwrites what an earlier one gave the same element."""
    x, _ = cache
    dx = np.zeros_like(x)
    for n, c, i, j, hs, ws, window in _pool_windows(cache, dout):
        a, b = np.unravel_index(np.argmax(window), window.shape)
        dx[n, c, hs + a, ws + b] = dout[n, c, i, j]
    return dx


# -- batch norm, layer norm, spatial batch norm --------------------------------------------------


def batchnorm_forward(
    x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, bn_param: dict[str, Any]
) -> tuple[np.ndarray, Cache]:
    """Train mode normalizes with the batch statistics and updates the running averages in
    ``bn_param`` (the caller's dict: legitimate, they are not inputs); test mode uses them."""
    mode = bn_param["mode"]
    eps = bn_param.get("eps", 1e-5)
    momentum = bn_param.get("momentum", 0.9)
    _N, D = x.shape
    running_mean = bn_param.get("running_mean", np.zeros(D, dtype=x.dtype))
    running_var = bn_param.get("running_var", np.zeros(D, dtype=x.dtype))
    if mode == "train":
        sample_mean = x.mean(axis=0)
        sample_var = x.var(axis=0)
        x_hat = (x - sample_mean) / np.sqrt(sample_var + eps)
        out = gamma * x_hat + beta
        cache = (x, x_hat, sample_mean, sample_var, gamma, eps)
        running_mean = momentum * running_mean + (1 - momentum) * sample_mean
        running_var = momentum * running_var + (1 - momentum) * sample_var
    else:
        x_hat = (x - running_mean) / np.sqrt(running_var + eps)
        out = gamma * x_hat + beta
        cache = None
    bn_param["running_mean"] = running_mean
    bn_param["running_var"] = running_var
    return out, cache


def batchnorm_backward(dout: np.ndarray, cache: Cache) -> tuple[np.ndarray, ...]:
    # the computational graph, node by node: x -> mu -> xmu -> var -> std -> ivar -> xhat
    x, x_hat, mu, var, gamma, eps = cache
    N = x.shape[0]
    xmu = x - mu
    std = np.sqrt(var + eps)
    ivar = 1.0 / std
    dbeta = np.sum(dout, axis=0)
    dgamma = np.sum(dout * x_hat, axis=0)
    dxhat = dout * gamma
    divar = np.sum(dxhat * xmu, axis=0)
    dxmu1 = dxhat * ivar
    dstd = -1.0 / (std**2) * divar
    dvar = 0.5 * 1.0 / np.sqrt(var + eps) * dstd
    dsq = 1.0 / N * np.ones_like(x) * dvar
    dxmu2 = 2 * xmu * dsq
    dx1 = dxmu1 + dxmu2
    dmu = -1 * np.sum(dx1, axis=0)
    dx2 = 1.0 / N * np.ones_like(x) * dmu
    return dx1 + dx2, dgamma, dbeta


def batchnorm_backward_alt(dout: np.ndarray, cache: Cache) -> tuple[np.ndarray, ...]:
    # simplified on paper: dx = (1/N) ivar (N dxhat - sum(dxhat) - xhat sum(dxhat xhat))
    x, x_hat, _mu, var, gamma, eps = cache
    N = x.shape[0]
    dxhat = dout * gamma
    dx = (
        (1.0 / N) / np.sqrt(var + eps) * (N * dxhat - dxhat.sum(axis=0) - x_hat * (dxhat * x_hat).sum(axis=0))
    )
    return dx, np.sum(dout * x_hat, axis=0), np.sum(dout, axis=0)


def batchnorm_backward_no_mean_term(dout: np.ndarray, cache: Cache) -> tuple[np.ndarray, ...]:
    """BUG: the mean-of-dxhat term (gradient through mu) is missing from dx."""
    x, x_hat, _mu, var, gamma, eps = cache
    N = x.shape[0]
    dxhat = dout * gamma
    dx = (1.0 / N) / np.sqrt(var + eps) * (N * dxhat - x_hat * (dxhat * x_hat).sum(axis=0))
    return dx, np.sum(dout * x_hat, axis=0), np.sum(dout, axis=0)


def batchnorm_backward_no_var_term(dout: np.ndarray, cache: Cache) -> tuple[np.ndarray, ...]:
    """BUG: the xhat * mean(dxhat * xhat) term (gradient through var) is missing from dx."""
    x, x_hat, _mu, var, gamma, eps = cache
    N = x.shape[0]
    dxhat = dout * gamma
    dx = (1.0 / N) / np.sqrt(var + eps) * (N * dxhat - dxhat.sum(axis=0))
    return dx, np.sum(dout * x_hat, axis=0), np.sum(dout, axis=0)


def layernorm_forward(
    x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, ln_param: dict[str, Any]
) -> tuple[np.ndarray, Cache]:
    # per-sample statistics over the D features (axis 1); gamma, beta are per feature
    eps = ln_param.get("eps", 1e-5)
    mu = x.mean(axis=1, keepdims=True)
    var = x.var(axis=1, keepdims=True)
    x_hat = (x - mu) / np.sqrt(var + eps)
    return gamma * x_hat + beta, (x_hat, var, gamma, eps)


def layernorm_backward(dout: np.ndarray, cache: Cache) -> tuple[np.ndarray, ...]:
    x_hat, var, gamma, eps = cache
    D = x_hat.shape[1]
    dxhat = dout * gamma
    dx = (
        (1.0 / D)
        / np.sqrt(var + eps)
        * (D * dxhat - dxhat.sum(axis=1, keepdims=True) - x_hat * (dxhat * x_hat).sum(axis=1, keepdims=True))
    )
    return dx, np.sum(dout * x_hat, axis=0), np.sum(dout, axis=0)


def layernorm_backward_batch_axis(dout: np.ndarray, cache: Cache) -> tuple[np.ndarray, ...]:
    """BUG: dx copied from batchnorm: reduces over axis 0 (and divides by N) instead of axis 1."""
    x_hat, var, gamma, eps = cache
    N = x_hat.shape[0]
    dxhat = dout * gamma
    dx = (
        (1.0 / N) / np.sqrt(var + eps) * (N * dxhat - dxhat.sum(axis=0) - x_hat * (dxhat * x_hat).sum(axis=0))
    )
    return dx, np.sum(dout * x_hat, axis=0), np.sum(dout, axis=0)


def spatial_batchnorm_forward(
    x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, bn_param: dict[str, Any]
) -> tuple[np.ndarray, Cache]:
    # statistics per channel over (N, H, W): move C last, flatten to (N*H*W, C)
    N, C, H, W = x.shape
    x_flat = x.transpose(0, 2, 3, 1).reshape(-1, C)
    out_flat, cache = batchnorm_forward(x_flat, gamma, beta, bn_param)
    out = out_flat.reshape(N, H, W, C).transpose(0, 3, 1, 2)
    return out, cache


def spatial_batchnorm_backward(dout: np.ndarray, cache: Cache) -> tuple[np.ndarray, ...]:
    N, C, H, W = dout.shape
    dout_flat = dout.transpose(0, 2, 3, 1).reshape(-1, C)
    dx_flat, dgamma, dbeta = batchnorm_backward_alt(dout_flat, cache)
    return dx_flat.reshape(N, H, W, C).transpose(0, 3, 1, 2), dgamma, dbeta


def spatial_batchnorm_backward_no_transpose(dout: np.ndarray, cache: Cache) -> tuple[np.ndarray, ...]:
    """BUG: reshapes dout to (-1, C) without moving C last first (rows mix channels)."""
    N, C, H, W = dout.shape
    dx_flat, dgamma, dbeta = batchnorm_backward_alt(dout.reshape(-1, C), cache)
    return dx_flat.reshape(N, H, W, C).transpose(0, 3, 1, 2), dgamma, dbeta


# -- dropout -------------------------------------------------------------------------------------


def dropout_forward(x: np.ndarray, dropout_param: dict[str, Any]) -> tuple[np.ndarray, Cache]:
    # inverted dropout: keep with probability p and scale by 1/p, so test mode is the identity
    p, mode = dropout_param["p"], dropout_param["mode"]
    if "seed" in dropout_param:
        np.random.seed(dropout_param["seed"])
    mask = None
    if mode == "train":
        mask = (np.random.rand(*x.shape) < p) / p
        out = x * mask
    else:
        out = x
    return out.astype(x.dtype, copy=False), (dropout_param, mask)


def dropout_backward(dout: np.ndarray, cache: Cache) -> np.ndarray:
    dropout_param, mask = cache
    if dropout_param["mode"] == "train":
        return (dout * mask).astype(dout.dtype, copy=False)
    return dout


def dropout_backward_unscaled(dout: np.ndarray, cache: Cache) -> np.ndarray:
    """BUG: backward applies the keep mask but forgets the 1/p scaling (a factor p)."""
    dropout_param, mask = cache
    if dropout_param["mode"] == "train":
        return (dout * (mask > 0)).astype(dout.dtype, copy=False)
    return dout


# -- losses: they return (loss, dx) -------------------------------------------------------------


def softmax_loss(x: np.ndarray, y: np.ndarray) -> tuple[Any, np.ndarray]:
    shifted = x - np.max(x, axis=1, keepdims=True)
    log_probs = shifted - np.log(np.sum(np.exp(shifted), axis=1, keepdims=True))
    probs = np.exp(log_probs)
    N = x.shape[0]
    loss = -np.sum(log_probs[np.arange(N), y]) / N
    dx = probs.copy()
    dx[np.arange(N), y] -= 1
    dx /= N
    return loss, dx


def softmax_loss_not_averaged(x: np.ndarray, y: np.ndarray) -> tuple[Any, np.ndarray]:
    """BUG: the loss is averaged over N but dx is not divided by N."""
    loss, dx = softmax_loss(x, y)
    return loss, dx * x.shape[0]


def svm_loss(x: np.ndarray, y: np.ndarray) -> tuple[Any, np.ndarray]:
    N = x.shape[0]
    correct = x[np.arange(N), y]
    margins = np.maximum(0, x - correct[:, None] + 1.0)
    margins[np.arange(N), y] = 0
    loss = np.sum(margins) / N
    num_pos = np.sum(margins > 0, axis=1)
    dx = np.zeros_like(x)
    dx[margins > 0] = 1
    dx[np.arange(N), y] -= num_pos
    dx /= N
    return loss, dx


def svm_loss_counts_correct_class(x: np.ndarray, y: np.ndarray) -> tuple[Any, np.ndarray]:
    """BUG: dx recomputes the margins without zeroing the correct class, whose margin is always
    1 > 0, so each row's count (and dx at the correct class) is off by one."""
    N = x.shape[0]
    correct = x[np.arange(N), y]
    margins = np.maximum(0, x - correct[:, None] + 1.0)
    loss = (np.sum(margins) - N) / N  # the loss itself subtracts the N correct-class margins
    positive = margins > 0
    dx = positive.astype(x.dtype)
    dx[np.arange(N), y] = -np.sum(positive, axis=1)
    dx /= N
    return loss, dx


def loss_pair(loss_fn: Any) -> tuple[Any, Any]:
    """A ``(loss, dx)`` function as gk.check's pair: forward is the loss, backward dx * dout
    (dout is the scalar upstream gradient; labels y are not differentiated)."""

    def forward(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return np.asarray(loss_fn(x, y)[0], dtype=x.dtype)

    def backward(dout: Any, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, None]:
        dx = loss_fn(x, y)[1]
        return (dx * dout).astype(x.dtype, copy=False), None

    forward.__name__ = loss_fn.__name__
    backward.__name__ = f"{loss_fn.__name__}_backward"
    return forward, backward
