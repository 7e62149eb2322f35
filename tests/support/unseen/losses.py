"""Losses and row normalizations: mean squared error, binary cross-entropy with logits, L2
normalization (at ordinary and extreme scales), logsumexp (also over inputs in the thousands)
and cosine similarity. Each correct backward comes first, then its buggy variants."""

from __future__ import annotations

import numpy as np
import torch

from .specimen import FLOAT64, Array, Maker, Specimen, inputs, normal, plain, sigmoid

Grads = tuple[Array, Array]

# -- mean squared error ------------------------------------------------------------------------------


def mean_squared_error(p: Array, t: Array) -> Array:
    return np.mean((p - t) ** 2)


def mse_backward(dy: Array, p: Array, t: Array) -> Grads:
    g = dy * 2 * (p - t) / p.size
    return g, -g


def mse_backward_of_sum(dy: Array, p: Array, t: Array) -> Grads:
    """BUG: the forward is a mean, the backward is the sum's (no 1 / size)."""
    g = dy * 2 * (p - t)
    return g, -g


def mse_backward_target_sign(dy: Array, p: Array, t: Array) -> Grads:
    """BUG: the target's gradient keeps the prediction's sign."""
    g = dy * 2 * (p - t) / p.size
    return g, g


# -- binary cross-entropy with logits ------------------------------------------------------------------


def bce_with_logits(z: Array, y: Array) -> Array:
    # the stable form: max(z, 0) - z y + log(1 + exp(-|z|))
    return np.mean(np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z))))


def bce_backward(dy: Array, z: Array, y: Array) -> Grads:
    n = z.size
    return dy * (sigmoid(z) - y) / n, dy * (-z) / n


def bce_backward_not_averaged(dy: Array, z: Array, y: Array) -> Grads:
    """BUG: the logits' gradient misses the mean's 1 / n."""
    n = z.size
    return dy * (sigmoid(z) - y), dy * (-z) / n


def bce_backward_flipped_sign(dy: Array, z: Array, y: Array) -> Grads:
    """BUG: y - sigmoid(z) for the logits, the gradient of the negated loss."""
    n = z.size
    return dy * (y - sigmoid(z)) / n, dy * (-z) / n


def binary_labels(*shape: int) -> Maker:
    return lambda rng, dtype: rng.integers(0, 2, size=shape).astype(dtype)


# -- L2 normalization of rows --------------------------------------------------------------------------


def l2_normalize_rows(x: Array) -> Array:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def l2_normalize_backward(dy: Array, x: Array) -> tuple[Array]:
    # y = x / |x|: dx = (dy - y <y, dy>) / |x|, the projection off y
    n = np.linalg.norm(x, axis=1, keepdims=True)
    y = x / n
    return ((dy - y * np.sum(y * dy, axis=1, keepdims=True)) / n,)


def l2_normalize_backward_no_projection(dy: Array, x: Array) -> tuple[Array]:
    """BUG: dy / |x|, as if the norm were a constant."""
    return (dy / np.linalg.norm(x, axis=1, keepdims=True),)


def l2_normalize_backward_dot_over_batch(dy: Array, x: Array) -> tuple[Array]:
    """BUG: <y, dy> summed over the batch axis instead of each row."""
    n = np.linalg.norm(x, axis=1, keepdims=True)
    y = x / n
    return ((dy - y * np.sum(y * dy, axis=0, keepdims=True)) / n,)


def l2_normalize_backward_float16_dot(dy: Array, x: Array) -> tuple[Array]:
    """BUG on float32 only: that path sums <y, dy> in a float16 accumulator (float64 is right)."""
    n = np.linalg.norm(x, axis=1, keepdims=True)
    y = x / n
    if x.dtype == np.float32:
        dot = np.sum((y * dy).astype(np.float16), axis=1, keepdims=True).astype(np.float32)
    else:
        dot = np.sum(y * dy, axis=1, keepdims=True)
    return ((dy - y * dot) / n,)


def l2_normalize_reference(x: torch.Tensor) -> torch.Tensor:
    return x / x.norm(dim=1, keepdim=True)


# -- logsumexp over rows -------------------------------------------------------------------------------


def logsumexp_rows(x: Array) -> Array:
    m = x.max(axis=1, keepdims=True)
    return (m + np.log(np.exp(x - m).sum(axis=1, keepdims=True)))[:, 0]


def logsumexp_backward(dy: Array, x: Array) -> tuple[Array]:
    # the gradient is softmax(x) per row, scaled by that row's dy
    p = np.exp(x - x.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    return (p * dy[:, None],)


def logsumexp_backward_dy_on_columns(dy: Array, x: Array) -> tuple[Array]:
    """BUG: dy broadcast along the wrong axis (the square input hides it from the shapes)."""
    p = np.exp(x - x.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    return (p * dy[None, :],)


def logsumexp_reference(x: torch.Tensor) -> torch.Tensor:
    return torch.logsumexp(x, 1)


# -- cosine similarity of rows -------------------------------------------------------------------------


def cosine_similarity_rows(a: Array, b: Array) -> Array:
    return np.sum(a * b, 1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def _norms(a: Array, b: Array) -> Grads:
    return np.linalg.norm(a, axis=1, keepdims=True), np.linalg.norm(b, axis=1, keepdims=True)


def cosine_backward(dy: Array, a: Array, b: Array) -> Grads:
    # c = <a, b> / (|a| |b|): dc/da = b / (|a| |b|) - c a / |a|^2, and symmetrically for b
    na, nb = _norms(a, b)
    c = np.sum(a * b, 1, keepdims=True) / (na * nb)
    d = dy[:, None]
    return d * (b / (na * nb) - c * a / na**2), d * (a / (na * nb) - c * b / nb**2)


def cosine_backward_no_cosine_term(dy: Array, a: Array, b: Array) -> Grads:
    """BUG: only the numerator's part; the norms' - c a / |a|^2 terms are lost."""
    na, nb = _norms(a, b)
    d = dy[:, None]
    return d * b / (na * nb), d * a / (na * nb)


def cosine_backward_wrong_norm(dy: Array, a: Array, b: Array) -> Grads:
    """BUG: b's gradient divides its cosine term by |a|^2 instead of |b|^2."""
    na, nb = _norms(a, b)
    c = np.sum(a * b, 1, keepdims=True) / (na * nb)
    d = dy[:, None]
    return d * (b / (na * nb) - c * a / na**2), d * (a / (na * nb) - c * b / na**2)


def cosine_reference(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.cosine_similarity(a, b, 1, eps=0)


# -- the catalogue -------------------------------------------------------------------------------------


def specimens() -> list[Specimen]:
    mse_in, bce_in = inputs(normal(4, 5), normal(4, 5)), inputs(normal(6, 3, scale=2), binary_labels(6, 3))
    found = [
        plain("mse", mean_squared_error, b, mse_in, lambda p, t: ((p - t) ** 2).mean())
        for b in (mse_backward, mse_backward_of_sum, mse_backward_target_sign)
    ]
    found += [
        plain(
            "bce_with_logits",
            bce_with_logits,
            b,
            bce_in,
            torch.nn.functional.binary_cross_entropy_with_logits,
        )
        for b in (bce_backward, bce_backward_not_averaged, bce_backward_flipped_sign)
    ]
    l2_backwards = (
        l2_normalize_backward,
        l2_normalize_backward_no_projection,
        l2_normalize_backward_dot_over_batch,
        l2_normalize_backward_float16_dot,
    )
    found += [
        plain("l2_normalize", l2_normalize_rows, b, inputs(normal(5, 8)), l2_normalize_reference)
        for b in l2_backwards
    ]
    for scale in (1e-8, 1e6):  # the same rows at tiny and huge norms
        found += [
            plain(
                f"l2_normalize_scale{scale:g}",
                l2_normalize_rows,
                b,
                inputs(normal(5, 8, scale=scale)),
                l2_normalize_reference,
                dtypes=FLOAT64,
            )
            for b in (l2_normalize_backward, l2_normalize_backward_no_projection)
        ]
    found += [
        plain("logsumexp", logsumexp_rows, b, inputs(normal(5, 5, scale=2)), logsumexp_reference)
        for b in (logsumexp_backward, logsumexp_backward_dy_on_columns)
    ]
    # inputs in the thousands: only the max-shifted form stays finite
    found.append(
        plain(
            "logsumexp_large_inputs",
            logsumexp_rows,
            logsumexp_backward,
            inputs(normal(5, 5, scale=1e3)),
            logsumexp_reference,
        )
    )
    found += [
        plain(
            "cosine_similarity",
            cosine_similarity_rows,
            b,
            inputs(normal(4, 6), normal(4, 6)),
            cosine_reference,
        )
        for b in (cosine_backward, cosine_backward_no_cosine_term, cosine_backward_wrong_norm)
    ]
    return found
