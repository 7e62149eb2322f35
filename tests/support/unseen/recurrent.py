"""Recurrent layers: a vanilla RNN step and three steps of backpropagation through time (CS231n
cache style), an LSTM step with two outputs (next_h, next_c), and a "mytorch" GRU cell object with
twelve weights and two inputs."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .specimen import Array, Specimen, cache, inputs, layer, normal, sigmoid

Cache = Any

# -- one vanilla RNN step: h' = tanh(x Wx + h Wh + b) --------------------------------------------------


def rnn_step_forward(x: Array, prev_h: Array, Wx: Array, Wh: Array, b: Array) -> tuple[Array, Cache]:
    next_h = np.tanh(x @ Wx + prev_h @ Wh + b)
    return next_h, (x, prev_h, Wx, Wh, next_h)


def rnn_step_backward(dnext_h: Array, cache: Cache) -> tuple[Array, ...]:
    x, prev_h, Wx, Wh, next_h = cache
    dz = dnext_h * (1 - next_h**2)
    return dz @ Wx.T, dz @ Wh.T, x.T @ dz, prev_h.T @ dz, dz.sum(0)


def rnn_step_backward_no_tanh_derivative(dnext_h: Array, cache: Cache) -> tuple[Array, ...]:
    """BUG: dz = dnext_h, the tanh's 1 - h'^2 forgotten."""
    x, prev_h, Wx, Wh, _ = cache
    dz = dnext_h
    return dz @ Wx.T, dz @ Wh.T, x.T @ dz, prev_h.T @ dz, dz.sum(0)


def rnn_step_backward_dwh_from_next_h(dnext_h: Array, cache: Cache) -> tuple[Array, ...]:
    """BUG: dWh = next_h^T dz, the step's output where its input prev_h belongs."""
    x, _, Wx, Wh, next_h = cache
    dz = dnext_h * (1 - next_h**2)
    return dz @ Wx.T, dz @ Wh.T, x.T @ dz, next_h.T @ dz, dz.sum(0)


def rnn_step_reference(x: Any, h: Any, Wx: Any, Wh: Any, b: Any) -> torch.Tensor:
    return torch.tanh(x @ Wx + h @ Wh + b)


# -- an RNN over a sequence (backpropagation through time) ---------------------------------------------


def rnn_forward(x: Array, h0: Array, Wx: Array, Wh: Array, b: Array) -> tuple[Array, Cache]:
    n, t = x.shape[:2]
    h = np.zeros((n, t, h0.shape[1]), dtype=x.dtype)
    prev, caches = h0, []
    for s in range(t):
        prev, c = rnn_step_forward(x[:, s], prev, Wx, Wh, b)
        h[:, s] = prev
        caches.append(c)
    return h, caches


def _rnn_back(dh: Array, caches: Cache, *, carry: bool = True, overwrite: bool = False) -> tuple[Array, ...]:
    n, t, H = dh.shape
    x0, _, Wx, Wh, _ = caches[0]
    dx = np.zeros((n, t, x0.shape[1]), dtype=dh.dtype)
    dWx, dWh, db = np.zeros_like(Wx), np.zeros_like(Wh), np.zeros(H, dtype=dh.dtype)
    dprev = np.zeros((n, H), dtype=dh.dtype)
    for s in reversed(range(t)):
        # each step's upstream gradient: its own dh plus what flows back from the next step
        g = dh[:, s] + (dprev if carry else 0)
        dx[:, s], dprev, dwx, dwh, dbb = rnn_step_backward(g, caches[s])
        if overwrite:
            dWx, dWh, db = dwx, dwh, dbb
        else:
            dWx += dwx
            dWh += dwh
            db += dbb
    return dx, dprev, dWx, dWh, db


def rnn_backward(dh: Array, caches: Cache) -> tuple[Array, ...]:
    return _rnn_back(dh, caches)


def rnn_backward_no_carry(dh: Array, caches: Cache) -> tuple[Array, ...]:
    """BUG: the gradient from later steps is not carried into earlier ones."""
    return _rnn_back(dh, caches, carry=False)


def rnn_backward_weights_overwritten(dh: Array, caches: Cache) -> tuple[Array, ...]:
    """BUG: dWx, dWh and db assigned per step, not summed: the first step's survive."""
    return _rnn_back(dh, caches, overwrite=True)


def rnn_reference(x: Any, h0: Any, Wx: Any, Wh: Any, b: Any) -> torch.Tensor:
    hs, h = [], h0
    for s in range(x.shape[1]):
        h = torch.tanh(x[:, s] @ Wx + h @ Wh + b)
        hs.append(h)
    return torch.stack(hs, 1)


# -- one LSTM step, gates (i, f, o, g) side by side in a ------------------------------------------------


def lstm_step_forward(
    x: Array, prev_h: Array, prev_c: Array, Wx: Array, Wh: Array, b: Array
) -> tuple[tuple[Array, Array], Cache]:
    H = prev_h.shape[1]
    a = x @ Wx + prev_h @ Wh + b
    i, f, o, g = (
        sigmoid(a[:, :H]),
        sigmoid(a[:, H : 2 * H]),
        sigmoid(a[:, 2 * H : 3 * H]),
        np.tanh(a[:, 3 * H :]),
    )
    next_c = f * prev_c + i * g
    tc = np.tanh(next_c)
    next_h = o * tc
    return (next_h, next_c), (x, prev_h, prev_c, Wx, Wh, i, f, o, g, tc)


def _lstm_back(
    dout: tuple[Array, Array], cache: Cache, *, forget_f: bool = False, no_tanh_d: bool = False
) -> tuple[Array, ...]:
    dnh, dnc = dout
    x, ph, pc, Wx, Wh, i, f, o, g, tc = cache
    dc = dnc + dnh * o * (1 if no_tanh_d else (1 - tc**2))
    do = dnh * tc
    di, df, dg = dc * g, dc * pc, dc * i
    dpc = dc if forget_f else dc * f
    da = np.concatenate([di * i * (1 - i), df * f * (1 - f), do * o * (1 - o), dg * (1 - g**2)], 1)
    return da @ Wx.T, da @ Wh.T, dpc, x.T @ da, ph.T @ da, da.sum(0)


def lstm_step_backward(dout: tuple[Array, Array], cache: Cache) -> tuple[Array, ...]:
    return _lstm_back(dout, cache)


def lstm_step_backward_dc_skips_forget_gate(dout: tuple[Array, Array], cache: Cache) -> tuple[Array, ...]:
    """BUG: dprev_c = dc, the forget gate's factor f dropped."""
    return _lstm_back(dout, cache, forget_f=True)


def lstm_step_backward_no_tanh_derivative(dout: tuple[Array, Array], cache: Cache) -> tuple[Array, ...]:
    """BUG: dc takes dnext_h o without tanh's 1 - tanh(c)^2."""
    return _lstm_back(dout, cache, no_tanh_d=True)


def lstm_reference(x: Any, ph: Any, pc: Any, Wx: Any, Wh: Any, b: Any) -> tuple[torch.Tensor, torch.Tensor]:
    H = ph.shape[1]
    a = x @ Wx + ph @ Wh + b
    i, f, o = torch.sigmoid(a[:, :H]), torch.sigmoid(a[:, H : 2 * H]), torch.sigmoid(a[:, 2 * H : 3 * H])
    g = torch.tanh(a[:, 3 * H :])
    nc = f * pc + i * g
    return o * torch.tanh(nc), nc


# -- a mytorch GRU cell --------------------------------------------------------------------------------

GRU_WEIGHTS = ["Wrx", "Wzx", "Wnx", "Wrh", "Wzh", "Wnh", "brx", "bzx", "bnx", "brh", "bzh", "bnh"]


class GRUCell:
    """r, z = sigmoid(...), n = tanh(Wnx x + bnx + r (Wnh h + bnh)), h' = (1 - z) n + z h."""

    def __init__(self, rng: np.random.Generator, dtype: Any = np.float64, d: int = 4, h: int = 5) -> None:
        shapes = {"x": (h, d), "h": (h, h)}
        for name in GRU_WEIGHTS:  # W?x (h, d), W?h (h, h), biases (h,)
            shape = shapes[name[2]] if name[0] == "W" else (h,)
            setattr(self, name, (0.5 * rng.normal(size=shape)).astype(dtype))
            setattr(self, "d" + name, np.zeros(shape, dtype))

    def forward(self, x: Array, h_prev_t: Array) -> Array:
        self.x, self.hidden = x, h_prev_t
        self.r = sigmoid(x @ self.Wrx.T + self.brx + h_prev_t @ self.Wrh.T + self.brh)
        self.z = sigmoid(x @ self.Wzx.T + self.bzx + h_prev_t @ self.Wzh.T + self.bzh)
        self.hn = h_prev_t @ self.Wnh.T + self.bnh
        self.n = np.tanh(x @ self.Wnx.T + self.bnx + self.r * self.hn)
        return (1 - self.z) * self.n + self.z * h_prev_t

    def _grads(self, delta: Array) -> tuple[Array, ...]:
        x, h = self.x, self.hidden
        dn = delta * (1 - self.z)
        dz = delta * (h - self.n)
        dan = dn * (1 - self.n**2)
        dr = dan * self.hn
        dar = dr * self.r * (1 - self.r)
        daz = dz * self.z * (1 - self.z)
        dhn = dan * self.r
        return x, h, dan, dar, daz, dhn

    def backward(self, delta: Array) -> tuple[Array, Array]:
        x, h, dan, dar, daz, dhn = self._grads(delta)
        self.dWnx += dan.T @ x
        self.dbnx += dan.sum(0)
        self.dWrx += dar.T @ x
        self.dbrx += dar.sum(0)
        self.dWzx += daz.T @ x
        self.dbzx += daz.sum(0)
        self.dWnh += dhn.T @ h
        self.dbnh += dhn.sum(0)
        self.dWrh += dar.T @ h
        self.dbrh += dar.sum(0)
        self.dWzh += daz.T @ h
        self.dbzh += daz.sum(0)
        dx = dan @ self.Wnx + dar @ self.Wrx + daz @ self.Wzx
        dh = delta * self.z + dhn @ self.Wnh + dar @ self.Wrh + daz @ self.Wzh
        return dx, dh


class GRUCellWithoutDirectPath(GRUCell):
    """BUG: dh forgets the direct z * h_prev term."""

    def backward(self, delta: Array) -> tuple[Array, Array]:
        dx, dh = GRUCell.backward(self, delta)
        return dx, dh - delta * self.z


class GRUCellDWnhWithoutResetGate(GRUCell):
    """BUG: dWnh misses the reset gate's factor r."""

    def backward(self, delta: Array) -> tuple[Array, Array]:
        _, h, dan, _, _, dhn = self._grads(delta)
        out = GRUCell.backward(self, delta)
        self.dWnh -= dhn.T @ h
        self.dWnh += dan.T @ h
        return out


def gru_reference(x: Any, h: Any, *w: Any) -> torch.Tensor:
    Wrx, Wzx, Wnx, Wrh, Wzh, Wnh, brx, bzx, bnx, brh, bzh, bnh = w
    r = torch.sigmoid(x @ Wrx.T + brx + h @ Wrh.T + brh)
    z = torch.sigmoid(x @ Wzx.T + bzx + h @ Wzh.T + bzh)
    n = torch.tanh(x @ Wnx.T + bnx + r * (h @ Wnh.T + bnh))
    return (1 - z) * n + z * h


# -- the catalogue -------------------------------------------------------------------------------------


def specimens() -> list[Specimen]:
    step_in = inputs(normal(3, 4), normal(3, 5), normal(4, 5, scale=0.5), normal(5, 5, scale=0.5), normal(5))
    steps = (rnn_step_backward, rnn_step_backward_no_tanh_derivative, rnn_step_backward_dwh_from_next_h)
    found = [cache("rnn_step", rnn_step_forward, b, step_in, rnn_step_reference) for b in steps]
    sequence_in = inputs(
        normal(2, 3, 4), normal(2, 5), normal(4, 5, scale=0.5), normal(5, 5, scale=0.5), normal(5)
    )
    sequences = (rnn_backward, rnn_backward_no_carry, rnn_backward_weights_overwritten)
    found += [cache("rnn_bptt3", rnn_forward, b, sequence_in, rnn_reference) for b in sequences]
    lstm_in = inputs(
        normal(3, 4),
        normal(3, 3),
        normal(3, 3),
        normal(4, 12, scale=0.5),
        normal(3, 12, scale=0.5),
        normal(12),
    )
    lstms = (
        lstm_step_backward,
        lstm_step_backward_dc_skips_forget_gate,
        lstm_step_backward_no_tanh_derivative,
    )
    found += [cache("lstm_step", lstm_step_forward, b, lstm_in, lstm_reference) for b in lstms]
    gru_in = inputs(normal(3, 4), normal(3, 5))
    weights = [(w, "d" + w) for w in GRU_WEIGHTS]
    found += [
        layer("gru_cell", cls, gru_in, gru_reference, weights)
        for cls in (GRUCell, GRUCellWithoutDirectPath, GRUCellDWnhWithoutResetGate)
    ]
    return found
