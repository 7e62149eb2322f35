"""maxpool2d / avgpool2d: torch at 1e-10, gk.check, the seed's examples, ties and overlaps."""

from __future__ import annotations

import numpy as np
import pytest

import gradcheck_kit as gk
from reference_layers import avgpool2d, avgpool2d_backward, maxpool2d, maxpool2d_backward

from .support import check_passes, gk_check_property, requires_torch, torch_property


@requires_torch
def test_maxpool2d_backward_matches_torch_for_every_kernel_stride_and_padding():
    torch_property("maxpool2d")()


@requires_torch
def test_avgpool2d_backward_matches_torch_with_and_without_counting_the_padding():
    torch_property("avgpool2d")()


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", ["maxpool2d", "avgpool2d"])
def test_poolings_pass_gk_check_on_numpy(name, dtype):
    gk_check_property(name, dtype)


def test_maxpool2d_sends_the_gradient_to_the_maximum_as_in_the_seed():
    c = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])
    assert maxpool2d(c, kernel_size=2).ravel().tolist() == [4.0]
    (dc,) = maxpool2d_backward(np.full((1, 1, 1, 1), 2.0), c, kernel_size=2)
    assert dc[0, 0].tolist() == [[0.0, 0.0], [0.0, 2.0]]


def test_avgpool2d_spreads_the_gradient_evenly_as_in_the_seed():
    c = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])
    assert avgpool2d(c, kernel_size=2).ravel().tolist() == [2.5]
    (dc,) = avgpool2d_backward(np.full((1, 1, 1, 1), 2.0), c, kernel_size=2)
    assert dc[0, 0].tolist() == [[0.5, 0.5], [0.5, 0.5]]


def test_overlapping_max_windows_add_their_gradients_on_a_shared_maximum():
    x = np.zeros((1, 1, 5, 5)) - np.arange(25.0).reshape(1, 1, 5, 5) / 100
    x[0, 0, 2, 2] = 1.0  # the maximum of all nine 3x3 windows (stride 1)
    (dx,) = maxpool2d_backward(np.ones((1, 1, 3, 3)), x, kernel_size=3, stride=1)
    assert dx[0, 0, 2, 2] == 9.0 and dx.sum() == 9.0


@requires_torch
def test_maxpool2d_routes_a_tied_window_to_its_first_maximum_like_torch():
    import torch

    x = np.ones((1, 2, 4, 4))
    (dx,) = maxpool2d_backward(np.ones((1, 2, 2, 2)), x, kernel_size=2)
    t = torch.tensor(x, requires_grad=True)
    torch.nn.functional.max_pool2d(t, 2).sum().backward()
    np.testing.assert_array_equal(dx, t.grad.numpy())


def test_maxpool2d_on_tied_windows_passes_gk_check_since_any_subgradient_is_accepted():
    check_passes("maxpool2d", gk.Case((np.ones((2, 1, 4, 4)),), {"kernel_size": 2, "stride": 2}))


def test_the_padding_never_wins_a_max_window_even_when_every_input_is_negative():
    x = -np.ones((1, 1, 3, 3)) - np.arange(9.0).reshape(1, 1, 3, 3)
    y = maxpool2d(x, kernel_size=3, stride=1, padding=1)
    assert (y < 0).all()
    (dx,) = maxpool2d_backward(np.ones_like(y), x, kernel_size=3, stride=1, padding=1)
    assert dx.sum() == y.size


def test_avgpool2d_divides_by_the_real_inputs_only_without_count_include_pad():
    x = np.ones((1, 1, 2, 2))
    assert avgpool2d(x, kernel_size=2, stride=1, padding=1, count_include_pad=False).tolist() == [
        [[[1.0] * 3] * 3]
    ]
    assert avgpool2d(x, kernel_size=2, stride=1, padding=1)[0, 0, 0, 0] == 0.25
