"""Reference layers: NumPy/CuPy forward/backward pairs with hand-written gradients.

Importing the package registers every layer in ``gradcheck_kit.registry`` (with a torch
reference and a hypothesis strategy of valid inputs). Each function finds the array namespace
of its inputs, so the same code runs on NumPy and CuPy arrays.
"""

from __future__ import annotations

from .activations import (
    leaky_relu,
    leaky_relu_backward,
    relu,
    relu_backward,
    sigmoid,
    sigmoid_backward,
    tanh,
    tanh_backward,
)
from .conv import conv1d, conv1d_backward, conv2d, conv2d_backward
from .gaussian_filter import gaussian_filter1d, gaussian_filter1d_backward
from .linear import linear, linear_backward, linear_sigmoid, linear_sigmoid_backward
from .losses import softmax_cross_entropy, softmax_cross_entropy_backward
from .norm import batch_norm, batch_norm_backward, layer_norm, layer_norm_backward
from .pooling import avgpool2d, avgpool2d_backward, maxpool2d, maxpool2d_backward

__all__ = [
    "avgpool2d",
    "avgpool2d_backward",
    "batch_norm",
    "batch_norm_backward",
    "conv1d",
    "conv1d_backward",
    "conv2d",
    "conv2d_backward",
    "gaussian_filter1d",
    "gaussian_filter1d_backward",
    "layer_norm",
    "layer_norm_backward",
    "leaky_relu",
    "leaky_relu_backward",
    "linear",
    "linear_backward",
    "linear_sigmoid",
    "linear_sigmoid_backward",
    "maxpool2d",
    "maxpool2d_backward",
    "relu",
    "relu_backward",
    "sigmoid",
    "sigmoid_backward",
    "softmax_cross_entropy",
    "softmax_cross_entropy_backward",
    "tanh",
    "tanh_backward",
]
