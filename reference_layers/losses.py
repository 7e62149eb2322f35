"""Softmax cross-entropy with integer labels, mean over the batch.

    L = (1/N) sum_i -log p[i, y_i],   p[i] = softmax(f[i])
    dL/df[i, k] = (p[i, k] - [k == y_i]) / N      (the seed's p_k - 1 and -p_k, batch-averaged)

Logits are shifted by their row maximum before exp, so logits of ±1e4 neither overflow nor
lose the gradient; the loss and p_y - 1 are computed without cancellation, so a confident right
answer (p_y ~ 1) keeps its small loss and gradient to relative precision.
"""

from __future__ import annotations

from typing import Any

from gradcheck_kit import register

from . import cases
from ._xp import Array, namespace, require_shape


def _check(xp: Any, logits: Array, labels: Array) -> None:
    if logits.ndim != 2 or labels.ndim != 1 or labels.shape[0] != logits.shape[0]:
        raise ValueError(
            f"logits have shape {tuple(logits.shape)} and labels {tuple(labels.shape)}; "
            "expected (N, C) and (N,)"
        )
    if not xp.isdtype(labels.dtype, "integral"):
        raise ValueError(f"labels have dtype {labels.dtype}; expected integer class indices")
    if bool(xp.any((labels < 0) | (labels >= logits.shape[1]))):
        raise ValueError(f"labels must lie in [0, {logits.shape[1]}) for {logits.shape[1]} classes")


class _Terms:
    """Per sample, with z = f - max(f) <= 0 (exp cannot overflow, even for logits of ±1e4):
    z_y at the label, others = sum_{k != y} e^{z_k}, and S = sum_k e^{z_k} = e^{z_y} + others."""

    def __init__(self, xp: Any, logits: Array, labels: Array) -> None:
        classes = xp.arange(logits.shape[1], dtype=labels.dtype)
        self.is_label = xp.reshape(labels, (-1, 1)) == classes  # (N, C) one-hot mask
        z = logits - xp.max(logits, axis=-1, keepdims=True)
        self.e = xp.exp(z)
        zero = xp.zeros_like(z)
        self.z_y = xp.sum(xp.where(self.is_label, z, zero), axis=-1)
        self.others = xp.sum(xp.where(self.is_label, zero, self.e), axis=-1)
        self.xp = xp

    def losses(self) -> Array:
        # -log p_y = log S - z_y = -z_y + log1p(expm1(z_y) + others): exact to relative
        # precision when p_y ~ 1 (a confident right answer), where log(S) would cancel
        xp = self.xp
        return -self.z_y + xp.log1p(xp.expm1(self.z_y) + self.others)

    def gradients(self) -> Array:
        # dL_i/df_k = p_k - [k == y]: p_k = e^{z_k} / S off the label and, at the label,
        # p_y - 1 = -others / S (no 1 - p cancellation)
        xp = self.xp
        total = xp.expm1(self.z_y) + self.others + 1  # S >= 1: the max term contributes e^0
        at_label = xp.reshape(-self.others / total, (-1, 1))
        return xp.where(self.is_label, at_label, self.e / xp.reshape(total, (-1, 1)))


def softmax_cross_entropy(logits: Array, labels: Array) -> Array:
    """Mean over the batch of -log softmax(logits)[label]; a 0-d array."""
    xp = namespace(logits, labels)
    _check(xp, logits, labels)
    # in the logits' dtype: NumPy 1.x promotes a float32 scalar divided by an int to float64
    return xp.asarray(xp.sum(_Terms(xp, logits, labels).losses()) / logits.shape[0], dtype=logits.dtype)


def softmax_cross_entropy_backward(dy: Array, logits: Array, labels: Array) -> tuple[Array, None]:
    """(dlogits, None): labels are not differentiated."""
    xp = namespace(dy, logits, labels)
    _check(xp, logits, labels)
    require_shape("dy", dy, ())
    return dy * _Terms(xp, logits, labels).gradients() / logits.shape[0], None


def torch_softmax_cross_entropy(logits: Any, labels: Any) -> Any:
    import torch.nn.functional as F

    return F.cross_entropy(logits, labels.long())


register(
    "softmax_cross_entropy",
    softmax_cross_entropy,
    softmax_cross_entropy_backward,
    cases=cases.classifications(),
    reference=torch_softmax_cross_entropy,
    description="The softmax cross-entropy of logits against integer labels, averaged over the batch.",
)
