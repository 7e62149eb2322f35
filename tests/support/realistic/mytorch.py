"""CMU 11-785 "mytorch"-style layer classes: ``forward(A)`` stores what backward needs on
``self``, ``backward(dLdZ)`` returns dLdA and sets gradient attributes (``dLdW``/``dLdb``, or
``dW``/``db`` in the other naming family, ``dLdBW``/``dLdBb`` for batch norm).

Conventions the course uses and that a checker must live with (all legitimate):

- weights are created in ``__init__`` (``W`` (out, in), ``b`` (out, 1) for Linear) and so are
  zero gradient buffers; conv layers *accumulate* into them (``self.dLdW += ...``: the training
  loop calls ``zero_grads()``), others ``fill(0)`` a buffer and then rebind it;
- strided layers keep their weights on a member object (``self.conv1d_stride1.W``) and chain
  ``Downsample1d``/``Upsample1d`` objects;
- ``Downsample`` and ``Flatten`` return views of their input (``A[..., ::k]``, ``A.reshape``).

Buggy variants are subclasses overriding ``backward`` (or one helper) with one planted slip,
named in their docstring. Our own code, written in the course's style.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

_erf = np.vectorize(math.erf, otypes=[np.float64])

# -- Linear and activations -----------------------------------------------------------------------


class Linear:
    def __init__(self, in_features: int, out_features: int) -> None:
        self.W = np.zeros((out_features, in_features))
        self.b = np.zeros((out_features, 1))
        self.dLdW = np.zeros_like(self.W)
        self.dLdb = np.zeros_like(self.b)

    def forward(self, A: np.ndarray) -> np.ndarray:
        # Z = A W^T + 1 b^T, with 1 a column of N ones
        self.A = A
        self.N = A.shape[0]
        self.Ones = np.ones((self.N, 1), dtype=A.dtype)
        return A @ self.W.T + self.Ones @ self.b.T

    def backward(self, dLdZ: np.ndarray) -> np.ndarray:
        dLdA = dLdZ @ self.W
        self.dLdW = dLdZ.T @ self.A
        self.dLdb = dLdZ.T @ self.Ones
        return dLdA


class LinearDW:
    """The other naming family: gradients in ``self.dW`` and ``self.db``, b a flat (out,)."""

    def __init__(self, in_features: int, out_features: int) -> None:
        self.W = np.zeros((out_features, in_features))
        self.b = np.zeros(out_features)

    def forward(self, A: np.ndarray) -> np.ndarray:
        self.A = A
        return A @ self.W.T + self.b

    def backward(self, dLdZ: np.ndarray) -> np.ndarray:
        self.dW = dLdZ.T @ self.A
        self.db = np.sum(dLdZ, axis=0)
        return dLdZ @ self.W


class LinearDWTransposed(LinearDW):
    """BUG: dW = A^T dLdZ, the (in, out) transpose of the (out, in) gradient (silent when square)."""

    def backward(self, dLdZ: np.ndarray) -> np.ndarray:
        dLdA = super().backward(dLdZ)
        self.dW = self.A.T @ dLdZ
        return dLdA


class LinearFloat64Ones(Linear):
    """Linear as most students write it: ``np.ones((N, 1))`` is float64, so a float32 A gives a
    float64 Z (and float64 dLdb). Not a bug: every gradient is exact for the function computed."""

    def forward(self, A: np.ndarray) -> np.ndarray:
        self.A = A
        self.N = A.shape[0]
        self.Ones = np.ones((self.N, 1))
        return A @ self.W.T + self.Ones @ self.b.T


class LinearAveragedDW(Linear):
    """BUG: dLdW is divided by the batch size (averaging that belongs in the loss)."""

    def backward(self, dLdZ: np.ndarray) -> np.ndarray:
        dLdA = super().backward(dLdZ)
        self.dLdW = self.dLdW / self.N
        return dLdA


class LinearDbWrongAxis(Linear):
    """BUG: dLdb sums dLdZ over the features (axis 1) instead of the batch (silent when N == out)."""

    def backward(self, dLdZ: np.ndarray) -> np.ndarray:
        dLdA = super().backward(dLdZ)
        self.dLdb = np.sum(dLdZ, axis=1, keepdims=True)
        return dLdA


class LinearNoUpstream(Linear):
    """BUG: the local derivatives dZ/dA, dZ/dW, dZ/db summed as if dLdZ were all ones."""

    def backward(self, dLdZ: np.ndarray) -> np.ndarray:
        ones = np.ones_like(dLdZ)
        self.dLdW = ones.T @ self.A
        self.dLdb = ones.T @ self.Ones
        return ones @ self.W


class LinearForgetsDb(Linear):
    """BUG: backward never updates dLdb, which stays the zeros made in __init__."""

    def backward(self, dLdZ: np.ndarray) -> np.ndarray:
        self.dLdW = dLdZ.T @ self.A
        return dLdZ @ self.W


class Sigmoid:
    def forward(self, Z: np.ndarray) -> np.ndarray:
        self.A = 1 / (1 + np.exp(-Z))
        return self.A

    def backward(self, dLdA: np.ndarray) -> np.ndarray:
        dAdZ = self.A - self.A * self.A
        return dLdA * dAdZ


class Tanh:
    def forward(self, Z: np.ndarray) -> np.ndarray:
        self.A = np.tanh(Z)
        return self.A

    def backward(self, dLdA: np.ndarray) -> np.ndarray:
        return dLdA * (1 - self.A**2)


class TanhTwice(Tanh):
    """BUG: backward applies tanh' to the stored *output* A, as if it were the input Z."""

    def backward(self, dLdA: np.ndarray) -> np.ndarray:
        return dLdA * (1 - np.tanh(self.A) ** 2)


class ReLU:
    def forward(self, Z: np.ndarray) -> np.ndarray:
        self.A = np.maximum(0, Z)
        return self.A

    def backward(self, dLdA: np.ndarray) -> np.ndarray:
        return np.where(self.A > 0, dLdA, 0)


class ReLUInPlace(ReLU):
    """BUG: zeroes the incoming dLdA in place and returns it: the caller's gradient changes."""

    def backward(self, dLdA: np.ndarray) -> np.ndarray:
        dLdA[self.A <= 0] = 0
        return dLdA


class GELU:
    # A = Z Phi(Z) with the standard normal CDF Phi(Z) = (1 + erf(Z / sqrt 2)) / 2
    def forward(self, Z: np.ndarray) -> np.ndarray:
        self.Z = Z
        self.A = (0.5 * Z * (1 + _erf(Z / np.sqrt(2)))).astype(Z.dtype)
        return self.A

    def backward(self, dLdA: np.ndarray) -> np.ndarray:
        # dA/dZ = Phi(Z) + Z phi(Z), phi the standard normal density
        Z = self.Z
        dAdZ = 0.5 * (1 + _erf(Z / np.sqrt(2))) + Z / np.sqrt(2 * np.pi) * np.exp(-0.5 * Z * Z)
        return (dLdA * dAdZ).astype(Z.dtype)


class SigmoidIgnoresUpstream(Sigmoid):
    """BUG: returns dA/dZ itself; the multiplication by dLdA was forgotten."""

    def backward(self, dLdA: np.ndarray) -> np.ndarray:
        return self.A - self.A * self.A


# -- resampling --------------------------------------------------------------------------------


class Downsample1d:
    def __init__(self, downsampling_factor: int) -> None:
        self.downsampling_factor = downsampling_factor

    def forward(self, A: np.ndarray) -> np.ndarray:
        self.W_in = A.shape[2]
        return A[:, :, :: self.downsampling_factor]  # a view of A: fine, nobody writes into it

    def backward(self, dLdZ: np.ndarray) -> np.ndarray:
        N, C, _ = dLdZ.shape
        dLdA = np.zeros((N, C, self.W_in), dtype=dLdZ.dtype)
        dLdA[:, :, :: self.downsampling_factor] = dLdZ
        return dLdA


class Downsample1dPacked(Downsample1d):
    """BUG: backward packs dLdZ into the first W_out positions instead of every k-th one."""

    def backward(self, dLdZ: np.ndarray) -> np.ndarray:
        N, C, W_out = dLdZ.shape
        dLdA = np.zeros((N, C, self.W_in), dtype=dLdZ.dtype)
        dLdA[:, :, :W_out] = dLdZ
        return dLdA


class Upsample1d:
    def __init__(self, upsampling_factor: int) -> None:
        self.upsampling_factor = upsampling_factor

    def forward(self, A: np.ndarray) -> np.ndarray:
        # k - 1 zeros between neighbours: W_out = k (W_in - 1) + 1
        k = self.upsampling_factor
        N, C, W_in = A.shape
        Z = np.zeros((N, C, k * (W_in - 1) + 1), dtype=A.dtype)
        Z[:, :, ::k] = A
        return Z

    def backward(self, dLdZ: np.ndarray) -> np.ndarray:
        return dLdZ[:, :, :: self.upsampling_factor]


class Upsample1dSummed(Upsample1d):
    """BUG: backward sums each block of k outputs (as for a nearest-neighbour upsample) instead
    of selecting the k-th ones, which are the only outputs A reaches."""

    def backward(self, dLdZ: np.ndarray) -> np.ndarray:
        starts = np.arange(0, dLdZ.shape[2], self.upsampling_factor)
        return np.add.reduceat(dLdZ, starts, axis=2)


class Downsample2d:
    def __init__(self, downsampling_factor: int) -> None:
        self.downsampling_factor = downsampling_factor

    def forward(self, A: np.ndarray) -> np.ndarray:
        self.A_shape = A.shape
        k = self.downsampling_factor
        return A[:, :, ::k, ::k]

    def backward(self, dLdZ: np.ndarray) -> np.ndarray:
        k = self.downsampling_factor
        dLdA = np.zeros(self.A_shape, dtype=dLdZ.dtype)
        dLdA[:, :, ::k, ::k] = dLdZ
        return dLdA


class Upsample2d:
    def __init__(self, upsampling_factor: int) -> None:
        self.upsampling_factor = upsampling_factor

    def forward(self, A: np.ndarray) -> np.ndarray:
        k = self.upsampling_factor
        N, C, H, W = A.shape
        Z = np.zeros((N, C, k * (H - 1) + 1, k * (W - 1) + 1), dtype=A.dtype)
        Z[:, :, ::k, ::k] = A
        return Z

    def backward(self, dLdZ: np.ndarray) -> np.ndarray:
        k = self.upsampling_factor
        return dLdZ[:, :, ::k, ::k]


class Flatten:
    def forward(self, A: np.ndarray) -> np.ndarray:
        self.A_shape = A.shape
        return A.reshape(A.shape[0], -1)  # a view of A

    def backward(self, dLdZ: np.ndarray) -> np.ndarray:
        return dLdZ.reshape(self.A_shape)


# -- convolutions --------------------------------------------------------------------------------


class Conv1d_stride1:
    """Z[n, o, t] = sum_{c, i} A[n, c, t + i] W[o, c, i] + b[o]. Gradients accumulate into the
    buffers made in __init__, as the course's ``zero_grads()`` workflow expects."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int) -> None:
        self.W = np.zeros((out_channels, in_channels, kernel_size))
        self.b = np.zeros(out_channels)
        self.dLdW = np.zeros(self.W.shape)
        self.dLdb = np.zeros(self.b.shape)

    def forward(self, A: np.ndarray) -> np.ndarray:
        self.A = A
        K = self.W.shape[2]
        W_out = A.shape[2] - K + 1
        Z = np.zeros((A.shape[0], self.W.shape[0], W_out), dtype=A.dtype)
        for t in range(W_out):
            Z[:, :, t] = np.tensordot(A[:, :, t : t + K], self.W, axes=([1, 2], [1, 2]))
        return Z + self.b[None, :, None]

    def backward(self, dLdZ: np.ndarray) -> np.ndarray:
        K = self.W.shape[2]
        for i in range(K):  # dLdW[o, c, i] = sum_{n, t} dLdZ[n, o, t] A[n, c, t + i]
            self.dLdW[:, :, i] += np.tensordot(
                dLdZ, self.A[:, :, i : i + dLdZ.shape[2]], axes=([0, 2], [0, 2])
            )
        self.dLdb += np.sum(dLdZ, axis=(0, 2))
        return self._dLdA(dLdZ)

    def _dLdA(self, dLdZ: np.ndarray) -> np.ndarray:
        # a full convolution: dLdZ padded by K - 1 on both sides, correlated with W flipped
        K = self.W.shape[2]
        padded = np.pad(dLdZ, ((0, 0), (0, 0), (K - 1, K - 1)))
        flipped = self.W[:, :, ::-1]
        W_in = self.A.shape[2]
        dLdA = np.zeros(self.A.shape, dtype=dLdZ.dtype)
        for t in range(W_in):
            dLdA[:, :, t] = np.tensordot(padded[:, :, t : t + K], flipped, axes=([1, 2], [0, 2]))
        return dLdA


class Conv1dStride1NotFlipped(Conv1d_stride1):
    """BUG: dLdA correlates the padded dLdZ with W itself, not with W flipped."""

    def _dLdA(self, dLdZ: np.ndarray) -> np.ndarray:
        K = self.W.shape[2]
        padded = np.pad(dLdZ, ((0, 0), (0, 0), (K - 1, K - 1)))
        dLdA = np.zeros(self.A.shape, dtype=dLdZ.dtype)
        for t in range(self.A.shape[2]):
            dLdA[:, :, t] = np.tensordot(padded[:, :, t : t + K], self.W, axes=([1, 2], [0, 2]))
        return dLdA


class Conv1dStride1DbWrongAxis(Conv1d_stride1):
    """BUG: dLdb sums dLdZ over (1, 2), per sample, instead of (0, 2) (silent when N == out)."""

    def backward(self, dLdZ: np.ndarray) -> np.ndarray:
        dLdA = super().backward(dLdZ)
        self.dLdb = np.sum(dLdZ, axis=(1, 2))
        return dLdA


class Conv2d_stride1:
    """Z[n, o, y, x] = sum_{c, i, j} A[n, c, y + i, x + j] W[o, c, i, j] + b[o]. Gradients go
    into buffers that are zeroed with ``fill(0)`` and then rebound to a new sum."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int) -> None:
        self.W = np.zeros((out_channels, in_channels, kernel_size, kernel_size))
        self.b = np.zeros(out_channels)
        self.dLdW = np.zeros(self.W.shape)
        self.dLdb = np.zeros(self.b.shape)

    def forward(self, A: np.ndarray) -> np.ndarray:
        self.A = A
        K = self.W.shape[2]
        H_out, W_out = A.shape[2] - K + 1, A.shape[3] - K + 1
        Z = np.zeros((A.shape[0], self.W.shape[0], H_out, W_out), dtype=A.dtype)
        for i in range(K):
            for j in range(K):
                Z += np.einsum("nchw,oc->nohw", A[:, :, i : i + H_out, j : j + W_out], self.W[:, :, i, j])
        return Z + self.b[None, :, None, None]

    def backward(self, dLdZ: np.ndarray) -> np.ndarray:
        K = self.W.shape[2]
        H_out, W_out = dLdZ.shape[2:]
        self.dLdW.fill(0)
        self.dLdb.fill(0)
        for i in range(K):
            for j in range(K):
                tap = np.einsum("nohw,nchw->oc", dLdZ, self.A[:, :, i : i + H_out, j : j + W_out])
                self.dLdW[:, :, i, j] += tap
        self.dLdb = self.dLdb + np.sum(dLdZ, axis=(0, 2, 3))
        return self._dLdA(dLdZ, self.W[:, :, ::-1, ::-1])

    def _dLdA(self, dLdZ: np.ndarray, kernel: np.ndarray) -> np.ndarray:
        # dLdA = dLdZ padded by K - 1, correlated with the kernel (W rotated by 180 degrees)
        K = kernel.shape[2]
        padded = np.pad(dLdZ, ((0, 0), (0, 0), (K - 1, K - 1), (K - 1, K - 1)))
        H_in, W_in = self.A.shape[2:]
        dLdA = np.zeros(self.A.shape, dtype=dLdZ.dtype)
        for i in range(K):
            for j in range(K):
                window = padded[:, :, i : i + H_in, j : j + W_in]
                dLdA += np.einsum("nohw,oc->nchw", window, kernel[:, :, i, j])
        return dLdA


class Conv2dStride1NotFlipped(Conv2d_stride1):
    """BUG: dLdA uses W unrotated (what the forward correlation used)."""

    def backward(self, dLdZ: np.ndarray) -> np.ndarray:
        super().backward(dLdZ)
        return self._dLdA(dLdZ, self.W)


class Conv2dStride1FirstSample(Conv2d_stride1):
    """BUG: dLdW is computed from sample 0 alone (the sum over the batch is missing)."""

    def backward(self, dLdZ: np.ndarray) -> np.ndarray:
        dLdA = super().backward(dLdZ)
        K = self.W.shape[2]
        H_out, W_out = dLdZ.shape[2:]
        for i in range(K):
            for j in range(K):
                window = self.A[0, :, i : i + H_out, j : j + W_out]
                self.dLdW[:, :, i, j] = np.einsum("ohw,chw->oc", dLdZ[0], window)
        return dLdA


class Conv1d:
    """Strided conv1d as stride 1 then downsampling; the weights live on
    ``self.conv1d_stride1`` (W, b, dLdW, dLdb)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int) -> None:
        self.stride = stride
        self.conv1d_stride1 = Conv1d_stride1(in_channels, out_channels, kernel_size)
        self.downsample1d = Downsample1d(stride)

    def forward(self, A: np.ndarray) -> np.ndarray:
        return self.downsample1d.forward(self.conv1d_stride1.forward(A))

    def backward(self, dLdZ: np.ndarray) -> np.ndarray:
        return self.conv1d_stride1.backward(self.downsample1d.backward(dLdZ))


class Conv1dPackedDownsample(Conv1d):
    """BUG: the member downsampler places dLdZ contiguously instead of on the stride grid."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride)
        self.downsample1d = Downsample1dPacked(stride)


class Conv2d:
    """Strided, padded conv2d: pad, stride-1 conv on ``self.conv2d_stride1``, downsample."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int, padding: int = 0):
        self.stride, self.pad = stride, padding
        self.conv2d_stride1 = Conv2d_stride1(in_channels, out_channels, kernel_size)
        self.downsample2d = Downsample2d(stride)

    def forward(self, A: np.ndarray) -> np.ndarray:
        p = self.pad
        A_padded = np.pad(A, ((0, 0), (0, 0), (p, p), (p, p)))
        return self.downsample2d.forward(self.conv2d_stride1.forward(A_padded))

    def backward(self, dLdZ: np.ndarray) -> np.ndarray:
        dLdA_padded = self.conv2d_stride1.backward(self.downsample2d.backward(dLdZ))
        p = self.pad
        H, W = dLdA_padded.shape[2] - 2 * p, dLdA_padded.shape[3] - 2 * p
        return dLdA_padded[:, :, p : p + H, p : p + W]


class ConvTranspose1d:
    """Upsample, then a stride-1 conv on ``self.conv1d_stride1``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, upsampling_factor: int):
        self.upsample1d = Upsample1d(upsampling_factor)
        self.conv1d_stride1 = Conv1d_stride1(in_channels, out_channels, kernel_size)

    def forward(self, A: np.ndarray) -> np.ndarray:
        return self.conv1d_stride1.forward(self.upsample1d.forward(A))

    def backward(self, dLdZ: np.ndarray) -> np.ndarray:
        return self.upsample1d.backward(self.conv1d_stride1.backward(dLdZ))


# -- pooling -------------------------------------------------------------------------------------


class MaxPool2d_stride1:
    def __init__(self, kernel: int) -> None:
        self.kernel = kernel

    def forward(self, A: np.ndarray) -> np.ndarray:
        self.A_shape = A.shape
        N, C, H, W = A.shape
        k = self.kernel
        H_out, W_out = H - k + 1, W - k + 1
        Z = np.zeros((N, C, H_out, W_out), dtype=A.dtype)
        self.argmax = np.zeros((N, C, H_out, W_out, 2), dtype=int)
        for y in range(H_out):
            for x in range(W_out):
                window = A[:, :, y : y + k, x : x + k].reshape(N, C, -1)
                flat = np.argmax(window, axis=2)  # the first maximum takes the gradient
                Z[:, :, y, x] = np.take_along_axis(window, flat[..., None], axis=2)[..., 0]
                self.argmax[:, :, y, x, 0] = y + flat // k
                self.argmax[:, :, y, x, 1] = x + flat % k
        return Z

    def backward(self, dLdZ: np.ndarray) -> np.ndarray:
        dLdA = np.zeros(self.A_shape, dtype=dLdZ.dtype)
        N, C, H_out, W_out = dLdZ.shape
        for n in range(N):
            for c in range(C):
                for y in range(H_out):
                    for x in range(W_out):
                        i, j = self.argmax[n, c, y, x]
                        dLdA[n, c, i, j] += dLdZ[n, c, y, x]
        return dLdA


class MeanPool2d_stride1:
    def __init__(self, kernel: int) -> None:
        self.kernel = kernel

    def forward(self, A: np.ndarray) -> np.ndarray:
        self.A_shape = A.shape
        k = self.kernel
        H_out, W_out = A.shape[2] - k + 1, A.shape[3] - k + 1
        Z = np.zeros((*A.shape[:2], H_out, W_out), dtype=A.dtype)
        for y in range(H_out):
            for x in range(W_out):
                Z[:, :, y, x] = A[:, :, y : y + k, x : x + k].mean(axis=(2, 3))
        return Z

    def backward(self, dLdZ: np.ndarray) -> np.ndarray:
        k = self.kernel
        dLdA = np.zeros(self.A_shape, dtype=dLdZ.dtype)
        for y in range(dLdZ.shape[2]):
            for x in range(dLdZ.shape[3]):
                dLdA[:, :, y : y + k, x : x + k] += dLdZ[:, :, y : y + 1, x : x + 1] / (k * k)
        return dLdA


class MeanPool2dStride1Unscaled(MeanPool2d_stride1):
    """BUG: backward spreads dLdZ over the window without dividing by k * k."""

    def backward(self, dLdZ: np.ndarray) -> np.ndarray:
        k = self.kernel
        dLdA = np.zeros(self.A_shape, dtype=dLdZ.dtype)
        for y in range(dLdZ.shape[2]):
            for x in range(dLdZ.shape[3]):
                dLdA[:, :, y : y + k, x : x + k] += dLdZ[:, :, y : y + 1, x : x + 1]
        return dLdA


class MaxPool2d:
    def __init__(self, kernel: int, stride: int) -> None:
        self.maxpool2d_stride1 = MaxPool2d_stride1(kernel)
        self.downsample2d = Downsample2d(stride)

    def forward(self, A: np.ndarray) -> np.ndarray:
        return self.downsample2d.forward(self.maxpool2d_stride1.forward(A))

    def backward(self, dLdZ: np.ndarray) -> np.ndarray:
        return self.maxpool2d_stride1.backward(self.downsample2d.backward(dLdZ))


class MeanPool2d:
    def __init__(self, kernel: int, stride: int) -> None:
        self.meanpool2d_stride1 = MeanPool2d_stride1(kernel)
        self.downsample2d = Downsample2d(stride)

    def forward(self, A: np.ndarray) -> np.ndarray:
        return self.downsample2d.forward(self.meanpool2d_stride1.forward(A))

    def backward(self, dLdZ: np.ndarray) -> np.ndarray:
        return self.meanpool2d_stride1.backward(self.downsample2d.backward(dLdZ))


# -- batch norm ----------------------------------------------------------------------------------


class BatchNorm1d:
    """Train mode normalizes with the batch's mean M and variance V and updates running_M and
    running_V; ``eval=True`` uses the running statistics instead."""

    def __init__(self, num_features: int, alpha: float = 0.9) -> None:
        self.alpha = alpha
        self.eps = 1e-8
        self.BW = np.ones((1, num_features))
        self.Bb = np.zeros((1, num_features))
        self.dLdBW = np.zeros((1, num_features))
        self.dLdBb = np.zeros((1, num_features))
        self.running_M = np.zeros((1, num_features))
        self.running_V = np.ones((1, num_features))

    def forward(self, Z: np.ndarray, eval: bool = False) -> np.ndarray:
        if eval:
            NZ = (Z - self.running_M) / np.sqrt(self.running_V + self.eps)
            return (self.BW * NZ + self.Bb).astype(Z.dtype)
        self.Z = Z
        self.N = Z.shape[0]
        self.M = np.mean(Z, axis=0, keepdims=True)
        self.V = np.var(Z, axis=0, keepdims=True)
        self.NZ = (Z - self.M) / np.sqrt(self.V + self.eps)
        self.BZ = self.BW * self.NZ + self.Bb
        self.running_M = self.alpha * self.running_M + (1 - self.alpha) * self.M
        self.running_V = self.alpha * self.running_V + (1 - self.alpha) * self.V
        return self.BZ

    def backward(self, dLdBZ: np.ndarray) -> np.ndarray:
        self.dLdBW = np.sum(dLdBZ * self.NZ, axis=0, keepdims=True)
        self.dLdBb = np.sum(dLdBZ, axis=0, keepdims=True)
        dLdNZ = dLdBZ * self.BW
        inv = (self.V + self.eps) ** -0.5
        dLdV = -0.5 * np.sum(dLdNZ * (self.Z - self.M) * inv**3, axis=0, keepdims=True)
        dNZdM = -inv - 0.5 * (self.Z - self.M) * inv**3 * (-2 / self.N * np.sum(self.Z - self.M, axis=0))
        dLdM = np.sum(dLdNZ * dNZdM, axis=0, keepdims=True)
        return self._dLdZ(dLdNZ, inv, dLdV, dLdM)

    def _dLdZ(self, dLdNZ: np.ndarray, inv: np.ndarray, dLdV: np.ndarray, dLdM: np.ndarray) -> np.ndarray:
        return dLdNZ * inv + dLdV * (2 / self.N * (self.Z - self.M)) + dLdM / self.N


class BatchNorm1dNoMeanPath(BatchNorm1d):
    """BUG: dLdZ drops the dLdM / N term (the gradient through the batch mean)."""

    def _dLdZ(self, dLdNZ: np.ndarray, inv: np.ndarray, dLdV: np.ndarray, dLdM: np.ndarray) -> np.ndarray:
        return dLdNZ * inv + dLdV * (2 / self.N * (self.Z - self.M))


def weight_arrays(layer: Any, paths: list[str]) -> list[np.ndarray]:
    """The arrays at dotted attribute paths (``"conv1d_stride1.W"``)."""
    return [resolve(layer, path) for path in paths]


def resolve(obj: Any, path: str) -> Any:
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj


def assign(obj: Any, path: str, value: Any) -> None:
    """Set the attribute at a dotted path."""
    *owners, attr = path.split(".")
    setattr(resolve(obj, ".".join(owners)) if owners else obj, attr, value)


def has(obj: Any, path: str) -> bool:
    try:
        resolve(obj, path)
    except AttributeError:
        return False
    return True
