"""Invalid parameters and shapes: one table, each message naming the value and the rule."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import reference_layers as rl

X4 = np.ones((2, 3, 5, 5))
W4 = np.ones((2, 3, 3, 3))
B = np.ones(2)
SIGNAL, MU, SIGMA = np.ones(6), np.asarray(0.5), np.asarray(1.0)
LOGITS = np.ones((2, 3))


def call(fn: Callable[..., Any], *args: Any, **params: Any) -> Callable[[], Any]:
    return lambda: fn(*args, **params)


TABLE = [
    ("stride-zero", call(rl.conv2d, X4, W4, B, stride=0), "stride=0 must be a positive int"),
    ("stride-bool", call(rl.conv2d, X4, W4, B, stride=True), "stride=True must be a positive int"),
    (
        "stride-float",
        call(rl.conv1d, np.ones((1, 1, 4)), np.ones((1, 1, 2)), None, stride=1.5),
        "stride=1.5 must be a positive int",
    ),
    ("padding-negative", call(rl.conv2d, X4, W4, B, padding=-1), "padding=-1 must be an int >= 0"),
    (
        "dilation-length",
        call(rl.conv2d, X4, W4, B, dilation=(1,)),
        "dilation=(1,) must be a positive int (or a tuple of 2 of them)",
    ),
    ("groups-zero", call(rl.conv2d, X4, W4, B, groups=0), "groups=0 must be a positive int"),
    (
        "groups-channels",
        call(rl.conv2d, X4, np.ones((2, 1, 3, 3)), B, groups=2),
        "groups=2 does not fit x with 3 channels",
    ),
    (
        "bias-mode",
        call(rl.conv2d, X4, W4, B, bias="shared"),
        "bias='shared' is not accepted; accepted: 'tied', 'untied'",
    ),
    (
        "bias-untied-shape",
        call(rl.conv2d, X4, W4, B, bias="untied"),
        "b has shape (2,); bias='untied' expects (2, 3, 3)",
    ),
    (
        "bias-tied-shape",
        call(rl.conv2d, X4, W4, np.ones((2, 3, 3))),
        "b has shape (2, 3, 3); bias='tied' expects (2,)",
    ),
    (
        "kernel-too-big",
        call(rl.conv2d, X4, np.ones((2, 3, 6, 6)), B),
        "kernel (6, 6) with dilation=(1, 1) does not fit",
    ),
    ("conv1d-rank", call(rl.conv1d, X4, W4, B), "conv1d expects x (N, C, L) and w (F, C/groups, K)"),
    (
        "conv-dy-shape",
        call(rl.conv2d_backward, np.ones((2, 2, 2, 2)), X4, W4, B),
        "dy has shape (2, 2, 2, 2); expected (2, 2, 3, 3), the forward output's",
    ),
    ("taps-even", call(rl.gaussian_filter1d, SIGNAL, MU, SIGMA, taps=4), "taps=4 must be odd"),
    ("taps-zero", call(rl.gaussian_filter1d, SIGNAL, MU, SIGMA, taps=0), "taps=0 must be a positive int"),
    (
        "gauss-padding",
        call(rl.gaussian_filter1d, SIGNAL, MU, SIGMA, padding="reflect"),
        "padding='reflect' is not accepted; accepted: 'same', 'valid', 'full'",
    ),
    (
        "gauss-scaled",
        call(rl.gaussian_filter1d, SIGNAL, MU, SIGMA, scaled="yes"),
        "scaled='yes' is not accepted",
    ),
    (
        "gauss-kernels",
        call(rl.gaussian_filter1d, SIGNAL, np.ones(2), np.ones(3)),
        "mu (2,) and sigma (3,); expected x (..., L) and mu, sigma both 0-d",
    ),
    (
        "gauss-valid-short",
        call(rl.gaussian_filter1d, SIGNAL, MU, SIGMA, taps=7, padding="valid"),
        "padding='valid' needs at least taps=7 samples; x has 6",
    ),
    (
        "gauss-dy-shape",
        call(rl.gaussian_filter1d_backward, np.ones(5), SIGNAL, MU, SIGMA),
        "dy has shape (5,); expected (6,)",
    ),
    (
        "pool-padding",
        call(rl.maxpool2d, X4, kernel_size=3, padding=2),
        "padding=2 must be at most half of kernel_size=3",
    ),
    ("pool-kernel", call(rl.avgpool2d, X4, kernel_size=0), "kernel_size=0 must be a positive int"),
    (
        "pool-stride",
        call(rl.maxpool2d, X4, kernel_size=2, stride=(1, 0)),
        "stride=(1, 0) must be a positive int",
    ),
    (
        "pool-rank",
        call(rl.maxpool2d, np.ones((5, 5)), kernel_size=2),
        "x has shape (5, 5); expected (N, C, H, W)",
    ),
    (
        "pool-count",
        call(rl.avgpool2d, X4, kernel_size=2, count_include_pad=1),
        "count_include_pad=1 is not accepted; accepted: True, False",
    ),
    (
        "labels-float",
        call(rl.softmax_cross_entropy, LOGITS, np.zeros(2)),
        "labels have dtype float64; expected integer class indices",
    ),
    (
        "labels-range",
        call(rl.softmax_cross_entropy, LOGITS, np.array([0, 3])),
        "labels must lie in [0, 3) for 3 classes",
    ),
    (
        "labels-shape",
        call(rl.softmax_cross_entropy, LOGITS, np.array([0])),
        "logits have shape (2, 3) and labels (1,); expected (N, C) and (N,)",
    ),
    ("eps-zero", call(rl.layer_norm, X4, np.ones(5), np.ones(5), eps=0), "eps=0 must be a positive number"),
    (
        "layer-norm-shape",
        call(rl.layer_norm, X4, np.ones(4), np.ones(4)),
        "weight and bias must both have the shape of x's last axes",
    ),
    (
        "batch-norm-shape",
        call(rl.batch_norm, X4, np.ones(2), np.ones(2)),
        "expected x (N, C, ...) and weight, bias (C,)",
    ),
    (
        "linear-shape",
        call(rl.linear, np.ones((2, 3)), np.ones((4, 2)), None),
        "x has shape (2, 3) and w (4, 2); expected x (..., in) and w (out, in)",
    ),
    (
        "linear-bias",
        call(rl.linear, np.ones((2, 3)), np.ones((4, 3)), np.ones(3)),
        "b has shape (3,); expected (4,)",
    ),
    ("activation-dy", call(rl.relu_backward, np.ones(3), np.ones(4)), "dy has shape (3,); expected (4,)"),
]


@pytest.mark.parametrize(("call_", "message"), [row[1:] for row in TABLE], ids=[row[0] for row in TABLE])
def test_invalid_parameters_raise_value_errors_naming_the_value_and_the_rule(call_, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        call_()
