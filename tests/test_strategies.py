"""Strategies: geometries valid by construction (torch agrees, where torch is installed), bounds
respected, square windows as ints, shrinking to the trigger, interesting configurations early,
layouts real, replay from the seed."""

from __future__ import annotations

import re
import statistics
from typing import Any

import numpy as np
import pytest
from hypothesis import find, given, seed, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument as HypothesisInvalidArgument

import gradcheck_kit as gk
from gradcheck_kit import profiles
from gradcheck_kit import strategies as gks


def _functional() -> Any:
    """``torch.nn.functional``, or the test skips naming torch (the suite runs without it)."""
    return pytest.importorskip("torch.nn.functional", reason="torch is not installed")


@settings(max_examples=150, database=None)
@given(st.data(), st.booleans())
def test_conv_geometries_are_accepted_by_torch_with_the_output_size_they_promise(data, square):
    F = _functional()
    ndim = data.draw(st.integers(1, 3), label="ndim")
    g = data.draw(gks.conv_geometries(ndim, max_side=6, square=square), label="geometry")
    conv = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[ndim]
    y = conv(F.torch.zeros(g.input_shape), F.torch.zeros(g.weight_shape), **g.params())
    assert tuple(y.shape) == g.output_shape and min(g.output_size) >= 1


@settings(max_examples=100, database=None)
@given(
    gks.conv_geometries(
        2,
        min_batch=2,
        max_batch=4,
        max_in_channels=5,
        max_out_channels=4,
        max_groups=3,
        min_side=3,
        max_side=5,
        max_kernel=4,
        max_padding=1,
    )
)
def test_conv_geometries_stay_within_every_bound(g):
    assert 2 <= g.batch <= 4 and g.in_channels <= 5 and g.out_channels <= 4 and g.groups <= 3
    assert g.in_channels % g.groups == 0 and g.out_channels % g.groups == 0
    assert all(3 <= n <= 5 for n in g.input_size) and max(g.kernel_size) <= 4 and max(g.padding) <= 1


@settings(max_examples=150, database=None)
@given(st.data(), st.booleans())
def test_pool_geometries_are_accepted_by_torch_with_the_output_size_they_promise(data, square):
    F = _functional()
    ndim = data.draw(st.integers(1, 3), label="ndim")
    g = data.draw(gks.pool_geometries(ndim, min_side=2, max_side=6, square=square), label="geometry")
    pool = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}[ndim]
    y = pool(F.torch.zeros(g.input_shape), **g.params())
    assert tuple(y.shape) == (g.batch, g.channels, *g.output_size)
    assert all(2 <= n <= 6 for n in g.input_size)
    assert all(p <= k // 2 for p, k in zip(g.padding, g.kernel_size))


@settings(max_examples=80, database=None)
@given(gks.conv_geometries(3, square=True), gks.pool_geometries(3, square=True))
def test_square_geometries_share_one_window_on_every_axis_and_give_it_as_ints(conv, pool):
    windows = ("kernel_size", "stride", "padding", "dilation"), ("kernel_size", "stride", "padding")
    for g, window in zip((conv, pool), windows):
        assert g.square and all(len(set(getattr(g, name))) == 1 for name in window)
        assert all(isinstance(value, int) for value in g.params().values())
        assert g.output_size == type(g)(**{**vars(g), "square": False}).output_size


def test_a_square_geometry_whose_axes_differ_is_refused():
    with pytest.raises(ValueError, match="square=True but the axes differ"):
        gks.PoolGeometry(1, 1, (4, 4), (2, 3), (1, 1), (0, 0), square=True)


@pytest.mark.parametrize(
    ("strategy", "condition", "expected"),
    [
        (
            gks.conv_geometries(2),
            lambda g: max(g.stride) > 1,
            dict(batch=1, in_channels=1, out_channels=1, kernel_size=(1, 1), padding=(0, 0)),
        ),
        (
            gks.conv_geometries(2),
            lambda g: max(g.padding) > 0,
            dict(batch=1, in_channels=1, kernel_size=(1, 1), stride=(1, 1), input_size=(1, 1)),
        ),
        (
            gks.conv_geometries(2),
            lambda g: g.batch > 1,
            dict(batch=2, in_channels=1, kernel_size=(1, 1), stride=(1, 1), padding=(0, 0)),
        ),
        (
            gks.pool_geometries(2),
            lambda g: g.overlapping,
            dict(batch=1, channels=1, stride=(1, 1), padding=(0, 0), input_size=(1, 2)),
        ),
        (
            gks.conv_geometries(2, square=True),
            lambda g: g.params()["stride"] > 1,
            dict(batch=1, in_channels=1, kernel_size=(1, 1), stride=(2, 2), padding=(0, 0)),
        ),
    ],
)
def test_geometries_shrink_to_the_trigger_with_everything_else_minimal(strategy, condition, expected):
    minimal = find(strategy, condition, settings=settings(database=None))
    assert {key: getattr(minimal, key) for key in expected} == expected


def _first_examples(strategy: Any, run_seed: int, count: int = 100) -> list[Any]:
    seen: list[Any] = []

    @seed(run_seed)
    @settings(profiles.get_profile("ci"), max_examples=count, database=None)
    @given(strategy)
    def collect(value: Any) -> None:
        seen.append(value)

    collect()
    return seen


CONV_TRAITS = {
    "batch >= 2": lambda g: g.batch >= 2,
    "distinct sides >= 2": lambda g: len(set(g.input_size)) > 1 and min(g.input_size) >= 2,
    "stride > 1": lambda g: max(g.stride) > 1,
    "padding > 0": lambda g: max(g.padding) > 0,
    "non-square kernel": lambda g: len(set(g.kernel_size)) > 1,
}
POOL_TRAITS = {**CONV_TRAITS, "overlapping windows": lambda g: g.overlapping}


@pytest.mark.parametrize(
    ("strategy", "traits"),
    [(gks.conv_geometries(2), CONV_TRAITS), (gks.pool_geometries(2), POOL_TRAITS)],
    ids=["conv", "pool"],
)
def test_interesting_geometries_appear_within_the_first_examples_and_are_not_rare(strategy, traits):
    """Over 8 seeds of the ci profile: each trait shows up by the 5th example in the median run,
    by the 15th in every run, and in at least a fifth of 100 examples."""
    runs = [_first_examples(strategy, run_seed) for run_seed in range(8)]
    for trait, holds in traits.items():
        firsts = [next((i for i, g in enumerate(run) if holds(g)), len(run)) for run in runs]
        rates = [sum(map(holds, run)) / len(run) for run in runs]
        assert statistics.median(firsts) <= 4 and max(firsts) < 15, (trait, firsts)
        assert min(rates) >= 0.2, (trait, rates)


@settings(max_examples=60, database=None)
@given(gks.array_shapes(min_dims=2, max_dims=3, min_side=2, max_side=4), gks.memory_layouts())
def test_every_memory_layout_keeps_the_values_and_has_its_strides(shape, layout):
    a = np.arange(np.prod(shape), dtype=np.float64).reshape(shape) + 1
    view = gks.with_layout(a, layout)
    np.testing.assert_array_equal(view, a)
    expected = {
        "C": view.flags.c_contiguous,
        "F": view.flags.f_contiguous and not view.flags.c_contiguous,
        "transposed": view.flags.f_contiguous and not view.flags.c_contiguous,
        "step-sliced": view.strides[-1] == 2 * a.itemsize,
        "negative-stride": view.strides[-1] < 0,
        "offset": view.base is not None and view.ctypes.data != np.asarray(view.base).ctypes.data,
    }
    assert expected[layout]


def test_values_are_bounded_away_from_zero_and_subnormals_and_have_the_dtype():
    rng = np.random.default_rng(0)
    for dtype in ("float64", "float32", "float16"):
        v = gks.values(rng, (50, 40), dtype, scale=3.0)
        assert v.dtype == dtype and np.all(np.abs(v) >= np.float32(0.3) * 0.999) and np.all(np.abs(v) <= 3.0)
        assert np.any(v < 0) and np.any(v > 0)


def test_dtypes_shrink_towards_the_first_and_array_shapes_towards_min_dims_of_min_side():
    assert find(gks.dtypes(), lambda d: True, settings=settings(database=None)) == "float64"
    shape = find(gks.array_shapes(min_dims=2, min_side=2), lambda s: True, settings=settings(database=None))
    assert shape == (2, 2)


def _case(rng: np.random.Generator, *, shape: tuple[int, ...], dtype: str) -> gk.Case:
    return gk.Case((gks.values(rng, shape, dtype),), {"axis": 0})


@settings(max_examples=20, database=None)
@given(gks.cases(_case, shape=gks.array_shapes(max_dims=2), dtype=gks.dtypes()))
def test_cases_keep_the_drawn_keywords_and_seed_so_values_replay(case):
    assert set(case.meta) == {"shape", "dtype", "seed"} and case.params == {"axis": 0}
    again = _case(
        np.random.default_rng(case.meta["seed"]), shape=case.meta["shape"], dtype=case.meta["dtype"]
    )
    np.testing.assert_array_equal(again.inputs[0], case.inputs[0])


def test_a_cases_builder_that_returns_something_else_is_a_type_error():
    strategy = gks.cases(lambda rng, n: np.zeros(n), n=st.just(2))
    with pytest.raises(TypeError, match=re.escape("not gk.Case")):
        find(strategy, lambda c: True, settings=settings(database=None))


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda: gks.conv_geometries(4), "ndim=4"),
        (lambda: gks.pool_geometries(0), "ndim=0"),
        (lambda: gks.conv_geometries(min_batch=3, max_batch=2), "min_batch=3 must not exceed max_batch=2"),
        (lambda: gks.conv_geometries(min_side=5, max_side=4), "min_side=5 must not exceed max_side=4"),
        (lambda: gks.conv_geometries(max_stride=0), "max_stride=0 must be >= 1"),
        (lambda: gks.conv_geometries(max_groups=0), "max_groups=0 must be >= 1"),
        (lambda: gks.conv_geometries(max_padding=-1), "max_padding=-1 must be >= 0"),
        (lambda: gks.pool_geometries(max_kernel=0), "max_kernel=0 must be >= 1"),
        (lambda: gks.conv_geometries(square="yes"), "square='yes' must be True or False"),
        (lambda: gks.array_shapes(min_dims=3, max_dims=2), "min_dims=3 must not exceed max_dims=2"),
        (lambda: gks.array_shapes(min_side=-1), "min_side=-1 must be >= 0"),
        (lambda: gks.memory_layouts(layouts=("diagonal",)), "layouts=('diagonal',)"),
        (lambda: gks.dtypes(floating=("int8",)), "floating=('int8',)"),
    ],
)
def test_impossible_arguments_raise_hypothesis_invalid_argument_naming_the_values(make, words):
    with pytest.raises(HypothesisInvalidArgument, match=re.escape(words)):
        make()
