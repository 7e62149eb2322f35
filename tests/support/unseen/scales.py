"""Mixed scales and integer-valued inputs: RMSNorm with rows at 1e-6 and 1e4 side by side, L2
normalization of rows at 1e-6, softmax at temperature 1e4 over logits ~1e4, a Poisson NLL over
rates from 1e-6 to 1e4, and a student's im2col convolution (stride 2, pad 1) over images of
integers 0..255 beside weights ~0.01."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .specimen import FLOAT64, Array, Specimen, cache, inputs, integers, normal, plain

# -- RMSNorm, rows of very different scales ------------------------------------------------------------


def rms_norm(x: Array, g: Array, eps: float = 1e-10) -> Array:
    return x / np.sqrt((x * x).mean(1, keepdims=True) + eps) * g


def rms_norm_backward(dy: Array, x: Array, g: Array, eps: float = 1e-10) -> tuple[Array, Array]:
    r = np.sqrt((x * x).mean(1, keepdims=True) + eps)
    dx = g * dy / r - x * (g * dy * x).sum(1, keepdims=True) / (x.shape[1] * r**3)
    return dx, (dy * x / r).sum(0)


def rms_norm_backward_constant_rms(dy: Array, x: Array, g: Array, eps: float = 1e-10) -> tuple[Array, Array]:
    """BUG: the rms treated as a constant, its derivative through x lost."""
    r = np.sqrt((x * x).mean(1, keepdims=True) + eps)
    return g * dy / r, (dy * x / r).sum(0)


def mixed_rows(rng: np.random.Generator, dtype: Any) -> tuple[Array, Array]:
    x = rng.normal(size=(4, 16))
    x[0] *= 1e-6
    x[1] *= 1e4
    return x.astype(dtype), rng.normal(size=16).astype(dtype)


def rms_norm_reference(x: torch.Tensor, g: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    return x / ((x * x).mean(1, keepdim=True) + eps).sqrt() * g


# -- L2 normalization of rows at 1e-6 ------------------------------------------------------------------


def l2_normalize(x: Array) -> Array:
    return x / np.sqrt((x * x).sum(1, keepdims=True))


def l2_normalize_backward(dy: Array, x: Array) -> Array:
    n = np.sqrt((x * x).sum(1, keepdims=True))
    y = x / n
    return (dy - y * (y * dy).sum(1, keepdims=True)) / n


def l2_normalize_backward_no_projection(dy: Array, x: Array) -> Array:
    """BUG: dy / |x|, as if the norm were a constant."""
    return dy / np.sqrt((x * x).sum(1, keepdims=True))


# -- softmax at temperature 1e4 ------------------------------------------------------------------------


def softmax(x: Array) -> Array:
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def tempered_softmax(x: Array, temperature: float) -> Array:
    return softmax(x / temperature)


def tempered_softmax_backward(dy: Array, x: Array, temperature: float) -> Array:
    y = softmax(x / temperature)
    return y * (dy - (dy * y).sum(1, keepdims=True)) / temperature


def tempered_softmax_backward_no_temperature(dy: Array, x: Array, temperature: float) -> Array:
    """BUG: the chain rule's 1 / temperature is lost (off by 1e4)."""
    y = softmax(x / temperature)
    return y * (dy - (dy * y).sum(1, keepdims=True))


# -- Poisson NLL over rates 1e-6 .. 1e4 ----------------------------------------------------------------


def poisson_nll(rate: Array, counts: Array) -> Array:
    return np.asarray((rate - counts * np.log(rate)).mean())


def poisson_nll_backward(dy: Array, rate: Array, counts: Array) -> tuple[Array, None]:
    return (1 - counts / rate) * (dy / rate.size), None


def poisson_nll_backward_no_mean(dy: Array, rate: Array, counts: Array) -> tuple[Array, None]:
    """BUG: the mean's 1 / n is lost."""
    return (1 - counts / rate) * dy, None


def rates_and_counts(rng: np.random.Generator, dtype: Any) -> tuple[Array, Array]:
    return (10.0 ** rng.uniform(-6, 4, size=(4, 5))).astype(dtype), rng.integers(0, 4, size=(4, 5))


# -- im2col convolution, stride 2, pad 1, over integer images ------------------------------------------


def _windows(h: int, w: int, k: int, s: int, p: int) -> list[tuple[int, int]]:
    return [(i * s, j * s) for i in range((h + 2 * p - k) // s + 1) for j in range((w + 2 * p - k) // s + 1)]


def im2col(x: Array, k: int, s: int, p: int) -> Array:
    padded = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    corners = _windows(x.shape[2], x.shape[3], k, s, p)
    return np.stack(
        [padded[n, :, i : i + k, j : j + k].ravel() for n in range(len(x)) for i, j in corners], 1
    )


def col2im(cols: Array, shape: tuple[int, ...], k: int, s: int, p: int, overwrite: bool = False) -> Array:
    n_, c, h, w = shape
    padded = np.zeros((n_, c, h + 2 * p, w + 2 * p), dtype=cols.dtype)
    corners = _windows(h, w, k, s, p)
    for col, (n, (i, j)) in enumerate((n, ij) for n in range(n_) for ij in corners):
        patch = cols[:, col].reshape(c, k, k)
        if overwrite:  # the planted bug: overlapping windows overwrite, not add
            padded[n, :, i : i + k, j : j + k] = patch
        else:
            padded[n, :, i : i + k, j : j + k] += patch
    return padded[:, :, p : p + h, p : p + w]


def conv_forward(x: Array, w: Array, b: Array, conv_param: dict[str, int]) -> tuple[Array, tuple[Any, ...]]:
    s, p = conv_param["stride"], conv_param["pad"]
    f, k = w.shape[0], w.shape[2]
    cols = im2col(x, k, s, p)
    ho, wo = (x.shape[2] + 2 * p - k) // s + 1, (x.shape[3] + 2 * p - k) // s + 1
    out = (w.reshape(f, -1) @ cols + b[:, None]).reshape(f, x.shape[0], ho, wo).transpose(1, 0, 2, 3)
    return out, (x, w, cols, conv_param)


def _conv_backward(dout: Array, cache: tuple[Any, ...], bug: str | None = None) -> tuple[Array, Array, Array]:
    x, w, cols, cp = cache
    f, k = w.shape[0], w.shape[2]
    d = dout.transpose(1, 0, 2, 3).reshape(f, -1)
    dw = (cols @ d.T if bug == "dw" else d @ cols.T).reshape(w.shape)
    dx = col2im(w.reshape(f, -1).T @ d, x.shape, k, cp["stride"], cp["pad"], overwrite=bug == "overwrite")
    return dx, dw, d.sum(1)


def conv_backward(dout: Array, cache: tuple[Any, ...]) -> tuple[Array, Array, Array]:
    return _conv_backward(dout, cache)


def conv_backward_col2im_overwrites(dout: Array, cache: tuple[Any, ...]) -> tuple[Array, Array, Array]:
    """BUG: col2im assigns each window instead of adding (overlaps keep only the last)."""
    return _conv_backward(dout, cache, "overwrite")


def conv_backward_dw_transposed(dout: Array, cache: tuple[Any, ...]) -> tuple[Array, Array, Array]:
    """BUG: cols @ d.T reshaped to w's shape: square sizes (27 x 3 vs 3 x 27) hide it."""
    return _conv_backward(dout, cache, "dw")


def conv_reference(
    x: torch.Tensor, w: torch.Tensor, b: torch.Tensor, conv_param: dict[str, int]
) -> torch.Tensor:
    return torch.nn.functional.conv2d(x, w, b, conv_param["stride"], conv_param["pad"])


# -- the catalogue -------------------------------------------------------------------------------------


def specimens() -> list[Specimen]:
    found = [
        plain("rmsnorm_mixed_scale", rms_norm, b, mixed_rows, rms_norm_reference)
        for b in (rms_norm_backward, rms_norm_backward_constant_rms)
    ]
    found += [
        plain(
            "l2_normalize_1e-6",
            l2_normalize,
            b,
            inputs(normal(3, 8, scale=1e-6)),
            lambda x: x / x.norm(dim=1, keepdim=True),
        )
        for b in (l2_normalize_backward, l2_normalize_backward_no_projection)
    ]
    found += [
        plain(
            "softmax_temp_1e4",
            tempered_softmax,
            b,
            inputs(normal(4, 6, scale=1e4)),
            lambda x, temperature: torch.softmax(x / temperature, 1),
            params={"temperature": 1e4},
        )
        for b in (tempered_softmax_backward, tempered_softmax_backward_no_temperature)
    ]
    # float64 only, as probe3 ran it: its false alarm over these ten decades of rates was float64
    found += [
        plain(
            "poisson_nll_mixed_scale",
            poisson_nll,
            b,
            rates_and_counts,
            lambda r, t: (r - t * torch.log(r)).mean(),
            dtypes=FLOAT64,
        )
        for b in (poisson_nll_backward, poisson_nll_backward_no_mean)
    ]
    images = inputs(integers(2, 3, 7, 7, low=0, high=256), normal(3, 3, 3, 3, scale=0.01), normal(3))
    found += [
        cache(
            "im2col_conv_s2p1_uint8img",
            conv_forward,
            b,
            images,
            conv_reference,
            params={"conv_param": {"stride": 2, "pad": 1}},
        )
        for b in (conv_backward, conv_backward_col2im_overwrites, conv_backward_dw_transposed)
    ]
    return found
