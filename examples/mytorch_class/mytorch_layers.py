"""mytorch-style stateful layers: forward(A) keeps what backward needs on self, backward(dLdZ)
returns dLdA and leaves the weight gradients in dLdW and dLdb."""

import numpy as np


class Linear:
    def __init__(self, in_features, out_features, rng):
        self.W = rng.normal(size=(out_features, in_features))
        self.b = rng.normal(size=(out_features, 1))
        self.dLdW = np.zeros_like(self.W)
        self.dLdb = np.zeros_like(self.b)

    def forward(self, A):
        self.A = A
        self.ones = np.ones((A.shape[0], 1))
        return A @ self.W.T + self.ones @ self.b.T

    def backward(self, dLdZ):
        self.dLdW += dLdZ.T @ self.A  # accumulates: the framework zeroes it between steps
        self.dLdb += dLdZ.T @ self.ones
        return dLdZ @ self.W


class LinearMeanBug(Linear):
    """The planted bug: dLdb averages over the batch instead of summing."""

    def backward(self, dLdZ):
        self.dLdW += dLdZ.T @ self.A
        self.dLdb += dLdZ.mean(axis=0).reshape(-1, 1)
        return dLdZ @ self.W


class Conv1d_stride1:
    def __init__(self, in_channels, out_channels, kernel_size, rng):
        self.W = rng.normal(size=(out_channels, in_channels, kernel_size))
        self.b = rng.normal(size=out_channels)
        self.dLdW = np.zeros_like(self.W)
        self.dLdb = np.zeros_like(self.b)

    def forward(self, A):
        """A (N, C_in, W_in) -> Z (N, C_out, W_in - K + 1)."""
        self.A = A
        K = self.W.shape[2]
        windows = np.stack([A[:, :, k : A.shape[2] - K + 1 + k] for k in range(K)], axis=-1)
        return np.einsum("ncwk,ock->now", windows, self.W) + self.b[None, :, None]

    def backward(self, dLdZ):
        K = self.W.shape[2]
        W_out = dLdZ.shape[2]
        for k in range(K):
            self.dLdW[:, :, k] += np.einsum("now,ncw->oc", dLdZ, self.A[:, :, k : k + W_out])
        self.dLdb += dLdZ.sum(axis=(0, 2))
        dLdA = np.zeros_like(self.A)
        for k in range(K):
            dLdA[:, :, k : k + W_out] += np.einsum("now,oc->ncw", dLdZ, self.W[:, :, k])
        return dLdA


class Conv1d:
    """A strided convolution: a stride-1 convolution (a member object), then downsampling."""

    def __init__(self, in_channels, out_channels, kernel_size, stride, rng):
        self.stride = stride
        self.conv1d_stride1 = Conv1d_stride1(in_channels, out_channels, kernel_size, rng)

    def forward(self, A):
        Z = self.conv1d_stride1.forward(A)
        self.width = Z.shape[2]
        return Z[:, :, :: self.stride]

    def backward(self, dLdZ):
        upsampled = np.zeros((*dLdZ.shape[:2], self.width))
        upsampled[:, :, :: self.stride] = dLdZ
        return self.conv1d_stride1.backward(upsampled)
