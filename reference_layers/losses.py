"""Softmax cross-entropy with integer labels, mean over the batch.

    L = (1/N) sum_i -log p[i, y_i],   p[i] = softmax(f[i])
    dL/df[i, k] = (p[i, k] - [k == y_i]) / N      (the seed's p_k - 1 and -p_k, batch-averaged)

Logits are shifted by their row maximum before exp, so logits of ±1e4 neither overflow nor
lose the gradient.
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


def _log_softmax(xp: Any, logits: Array) -> Array:
    z = logits - xp.max(logits, axis=-1, keepdims=True)  # <= 0: exp cannot overflow
    return z - xp.log(xp.sum(xp.exp(z), axis=-1, keepdims=True))


def _one_hot(xp: Any, labels: Array, logits: Array) -> Array:
    classes = xp.arange(logits.shape[1], dtype=labels.dtype)
    return xp.astype(xp.reshape(labels, (-1, 1)) == classes, logits.dtype)


def softmax_cross_entropy(logits: Array, labels: Array) -> Array:
    """Mean over the batch of -log softmax(logits)[label]; a 0-d array."""
    xp = namespace(logits, labels)
    _check(xp, logits, labels)
    picked = xp.sum(_one_hot(xp, labels, logits) * _log_softmax(xp, logits))
    return xp.asarray(-picked / logits.shape[0])


def softmax_cross_entropy_backward(dy: Array, logits: Array, labels: Array) -> tuple[Array, None]:
    """(dlogits, None): labels are not differentiated."""
    xp = namespace(dy, logits, labels)
    _check(xp, logits, labels)
    require_shape("dy", dy, ())
    p = xp.exp(_log_softmax(xp, logits))
    return dy * (p - _one_hot(xp, labels, logits)) / logits.shape[0], None


def torch_softmax_cross_entropy(logits: Any, labels: Any) -> Any:
    import torch.nn.functional as F

    return F.cross_entropy(logits, labels.long())


register(
    "softmax_cross_entropy",
    softmax_cross_entropy,
    softmax_cross_entropy_backward,
    cases=cases.classifications(),
    reference=torch_softmax_cross_entropy,
    description="mean softmax cross-entropy over the batch, integer labels",
)
