"""Linear algebra: log|det| of a batch of matrices, the inverse (well and badly conditioned), a
batched matmul whose weight is shared across the batch, and an einsum bilinear form. Square
operands let a transposed gradient keep its shape, so only the values tell."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .specimen import FLOAT64, Array, Maker, Specimen, inputs, normal, plain

# -- log|det| and the inverse --------------------------------------------------------------------------


def log_abs_det(A: Array) -> Array:
    return np.linalg.slogdet(A)[1]


def log_abs_det_backward(dy: Array, A: Array) -> tuple[Array]:
    # d log|det A| / dA = A^{-T}
    return (dy[:, None, None] * np.linalg.inv(A).transpose(0, 2, 1),)


def log_abs_det_backward_untransposed(dy: Array, A: Array) -> tuple[Array]:
    """BUG: A^{-1} instead of A^{-T}."""
    return (dy[:, None, None] * np.linalg.inv(A),)


def matrix_inverse(A: Array) -> Array:
    return np.linalg.inv(A)


def inverse_backward(dy: Array, A: Array) -> tuple[Array]:
    # Y = A^{-1}: dA = -Y^T dY Y^T
    Y = np.linalg.inv(A)
    return (-Y.T @ dy @ Y.T,)


def inverse_backward_untransposed(dy: Array, A: Array) -> tuple[Array]:
    """BUG: -Y dY Y, the transposes dropped."""
    Y = np.linalg.inv(A)
    return (-Y @ dy @ Y,)


def near_identity(*shape: int, shift: float) -> Maker:
    """Normal entries plus ``shift`` on the diagonal: comfortably invertible."""
    n = shape[-1]
    return lambda rng, dtype: normal(*shape)(rng, dtype) + shift * np.eye(n, dtype=dtype)


def condition_1e5(rng: np.random.Generator, dtype: Any) -> tuple[Array]:
    """A 4x4 matrix with singular values 1, 1e-2, 1e-4, 1e-5 between random rotations."""
    U, _ = np.linalg.qr(rng.normal(size=(4, 4)))
    V, _ = np.linalg.qr(rng.normal(size=(4, 4)))
    return (((U * np.array([1, 1e-2, 1e-4, 1e-5])) @ V.T).astype(dtype),)


# -- batched matmul with a shared weight ---------------------------------------------------------------


def batched_matmul(A: Array, W: Array) -> Array:
    return A @ W  # (B, M, K) @ (K, N): W broadcast over the batch


def batched_matmul_backward(dy: Array, A: Array, W: Array) -> tuple[Array, Array]:
    # the shared W collects every batch item's A^T dY
    return dy @ W.T, np.einsum("bmk,bmn->kn", A, dy)


def batched_matmul_backward_dw_averaged(dy: Array, A: Array, W: Array) -> tuple[Array, Array]:
    """BUG: dW is the batch's mean of A^T dY, not its sum."""
    return dy @ W.T, (A.transpose(0, 2, 1) @ dy).mean(0)


def batched_matmul_backward_dw_last_item(dy: Array, A: Array, W: Array) -> tuple[Array, Array]:
    """BUG: dW from the last batch item only (a loop that overwrote)."""
    return dy @ W.T, A[-1].T @ dy[-1]


# -- bilinear: y_no = sum_ij x1_ni W_oij x2_nj + b_o ---------------------------------------------------


def bilinear(x1: Array, x2: Array, W: Array, b: Array) -> Array:
    return np.einsum("ni,oij,nj->no", x1, W, x2) + b


def bilinear_backward(dy: Array, x1: Array, x2: Array, W: Array, b: Array) -> tuple[Array, ...]:
    return (
        np.einsum("no,oij,nj->ni", dy, W, x2),
        np.einsum("no,oij,ni->nj", dy, W, x1),
        np.einsum("no,ni,nj->oij", dy, x1, x2),
        dy.sum(0),
    )


def bilinear_backward_dw_transposed(dy: Array, x1: Array, x2: Array, W: Array, b: Array) -> tuple[Array, ...]:
    """BUG: dW's i and j swapped (W's last two axes are square)."""
    return (
        np.einsum("no,oij,nj->ni", dy, W, x2),
        np.einsum("no,oij,ni->nj", dy, W, x1),
        np.einsum("no,nj,ni->oij", dy, x1, x2),
        dy.sum(0),
    )


def bilinear_backward_dx2_w_transposed(
    dy: Array, x1: Array, x2: Array, W: Array, b: Array
) -> tuple[Array, ...]:
    """BUG: dx2 contracts x1 with W's transposed matrices."""
    return (
        np.einsum("no,oij,nj->ni", dy, W, x2),
        np.einsum("no,oji,ni->nj", dy, W, x1),
        np.einsum("no,ni,nj->oij", dy, x1, x2),
        dy.sum(0),
    )


def bilinear_reference(x1: torch.Tensor, x2: torch.Tensor, W: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.einsum("ni,oij,nj->no", x1, W, x2) + b


# -- the catalogue -------------------------------------------------------------------------------------


def specimens() -> list[Specimen]:
    found = [
        plain(
            "log_abs_det",
            log_abs_det,
            b,
            inputs(near_identity(2, 4, 4, shift=3)),
            lambda A: torch.linalg.slogdet(A)[1],
        )
        for b in (log_abs_det_backward, log_abs_det_backward_untransposed)
    ]
    found += [
        plain("inverse", matrix_inverse, b, inputs(near_identity(4, 4, shift=2.5)), torch.linalg.inv)
        for b in (inverse_backward, inverse_backward_untransposed)
    ]
    found += [
        plain(
            "batched_matmul_shared_weight",
            batched_matmul,
            b,
            inputs(normal(3, 4, 5), normal(5, 2)),
            lambda A, W: A @ W,
        )
        for b in (
            batched_matmul_backward,
            batched_matmul_backward_dw_averaged,
            batched_matmul_backward_dw_last_item,
        )
    ]
    bilinear_in = inputs(normal(4, 3), normal(4, 3), normal(2, 3, 3), normal(2))
    found += [
        plain("bilinear", bilinear, b, bilinear_in, bilinear_reference)
        for b in (bilinear_backward, bilinear_backward_dw_transposed, bilinear_backward_dx2_w_transposed)
    ]
    found += [
        plain("inverse_cond1e5", matrix_inverse, b, condition_1e5, torch.linalg.inv, dtypes=FLOAT64)
        for b in (inverse_backward, inverse_backward_untransposed)
    ]
    return found
