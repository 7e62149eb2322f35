"""gk.check's verdicts: every correct layer passes, every planted bug is caught, in float64,
float32, float32 computed inside, and float32-only layers; element-wise and projection modes."""

from __future__ import annotations

import json

import numpy as np
import pytest

import gradcheck_kit as gk
from tests.support.zoo import by_name, specimens

CORRECT = [s for s in specimens() if not s.buggy]
BUGGY = [s for s in specimens() if s.buggy]


def cast_to_float32(fn):
    """The layer casts its floating inputs to float32 inside (a float32-only kernel)."""

    def wrapped(*args, **kwargs):
        args = [
            a.astype(np.float32) if isinstance(a, np.ndarray) and a.dtype.kind == "f" else a for a in args
        ]
        return fn(*args, **kwargs)

    return wrapped


def reject_float64(fn):
    def wrapped(*args, **kwargs):
        for a in args:
            if isinstance(a, np.ndarray) and a.dtype == np.float64:
                raise TypeError("this kernel takes float32 only")
        return fn(*args, **kwargs)

    return wrapped


@pytest.mark.parametrize("mode", ["elementwise", "projection"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("specimen", CORRECT, ids=lambda s: s.name)
def test_every_correct_layer_passes(specimen, dtype, mode):
    result = gk.check(specimen.forward, specimen.backward, specimen.inputs(dtype), specimen.params, mode=mode)
    assert result.passed, str(result)


@pytest.mark.parametrize("mode", ["elementwise", "projection"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("specimen", BUGGY, ids=lambda s: s.name)
def test_every_planted_bug_is_caught(specimen, dtype, mode):
    result = gk.check(specimen.forward, specimen.backward, specimen.inputs(dtype), specimen.params, mode=mode)
    assert not result.passed, str(result)


@pytest.mark.parametrize("wrap", [cast_to_float32, reject_float64], ids=["casts-inside", "float32-only"])
@pytest.mark.parametrize(
    "specimen", [s for s in specimens() if s.name != "relu-mutates-dy"], ids=lambda s: s.name
)
def test_layers_that_compute_in_float32_get_right_verdicts(specimen, wrap):
    inputs = specimen.inputs("float32", seed=1)
    result = gk.check(wrap(specimen.forward), wrap(specimen.backward), inputs, specimen.params)
    assert result.passed is not specimen.buggy, str(result)


def test_a_layer_that_rejects_float64_is_differenced_in_its_own_dtype_and_says_so():
    s = by_name("conv2d")
    result = gk.check(reject_float64(s.forward), reject_float64(s.backward), s.inputs("float32"), s.params)
    assert result.passed
    assert "float64_rejected" in result.settings
    assert set(result.settings["grid"].values()) == {"float32"}


def test_a_layer_casting_to_float32_inside_is_perturbed_on_the_float32_grid():
    s = by_name("gaussian")
    result = gk.check(cast_to_float32(s.forward), cast_to_float32(s.backward), s.inputs("float64"), s.params)
    assert result.passed, str(result)
    assert result.settings["computes_in"] == "float32"


@pytest.mark.parametrize("seed", range(5))
def test_relu_written_with_x_ge_0_passes_at_exact_zeros_and_counts_the_kinks(seed):
    s = by_name("relu-ge-at-zeros")
    result = gk.check(s.forward, s.backward, s.inputs("float64", seed), seed=seed)
    assert result.passed, str(result)
    assert result.kinks == int(np.sum(s.inputs("float64", seed)[0] == 0))


def test_a_failure_names_the_input_the_element_and_numeric_versus_analytic():
    s = by_name("conv2d-db-scale")
    result = gk.check(s.forward, s.backward, s.inputs(), s.params)
    report = result.input("b")
    assert not report.passed and result.input("x").passed and result.input("w").passed
    assert report.worst_index is not None and len(report.worst_index) == 1
    assert report.analytic == pytest.approx(report.numeric / 2, rel=1e-6)
    text = str(result)
    assert "FAILED" in text and "b float64[4]" in text and "analytic" in text and "numeric" in text


def test_to_dict_is_plain_json_and_raise_for_failure_carries_the_report():
    s = by_name("softmax-ce-sign")
    result = gk.check(s.forward, s.backward, s.inputs(), s.params)
    data = json.loads(json.dumps(result.to_dict()))
    assert data["passed"] is False and data["layer"] == "softmax_ce"
    assert data["inputs"][0]["name"] == "logits"
    with pytest.raises(gk.GradientMismatch) as caught:
        result.raise_for_failure()
    assert isinstance(caught.value, AssertionError)
    assert str(caught.value) == str(result) and caught.value.result is result


def test_a_passing_result_is_truthy_and_raise_for_failure_returns_it():
    s = by_name("batchnorm")
    result = gk.check(s.forward, s.backward, s.inputs(), s.params)
    assert result and result.raise_for_failure() is result


def test_integer_labels_are_passed_through_and_never_differentiated():
    s = by_name("softmax-ce")
    logits, labels = s.inputs()
    result = gk.check(s.forward, s.backward, (logits, labels))
    assert result.passed and [r.name for r in result.inputs] == ["logits"]


def test_zero_d_inputs_and_a_zero_d_output_work_with_python_float_gradients():
    def forward(x, scale):
        return np.sum(x * scale)

    def backward(dy, x, scale):
        return dy * scale * np.ones_like(x), float(np.sum(dy * x))

    result = gk.check(forward, backward, (np.arange(3.0) + 1, np.asarray(0.5)))
    assert result.passed, str(result)
    assert result.input("scale").shape == ()


def test_several_outputs_receive_a_tuple_grad_output():
    seen = {}

    def forward(x):
        return np.sin(x), x**2

    def backward(grad_output, x):
        seen["type"] = type(grad_output)
        d_sin, d_square = grad_output
        return (d_sin * np.cos(x) + d_square * 2 * x,)

    result = gk.check(forward, backward, (np.linspace(-1, 1, 5),))
    assert result.passed and seen["type"] is tuple


def test_wrt_restricts_which_inputs_are_differentiated():
    s = by_name("conv2d-db-scale")
    result = gk.check(s.forward, s.backward, s.inputs(), s.params, wrt=("x", "w"))
    assert result.passed and [r.name for r in result.inputs] == ["x", "w"]


@pytest.mark.parametrize("layout", ["F", "transposed", "step-sliced", "negative-stride", "offset"])
def test_inputs_in_any_memory_layout_are_checked(layout):
    from gradcheck_kit.strategies import with_layout

    s = by_name("conv2d")
    inputs = tuple(with_layout(a, layout) for a in s.inputs())
    assert gk.check(s.forward, s.backward, inputs, s.params).passed
    bad = by_name("conv2d-no-rotation")
    assert not gk.check(bad.forward, bad.backward, inputs, bad.params).passed


def test_zero_stride_broadcast_inputs_are_checked():
    x = np.broadcast_to(np.linspace(-1, 1, 4), (3, 4))
    result = gk.check(np.tanh, lambda dy, x: (dy * (1 - np.tanh(x) ** 2),), (x,))
    assert result.passed, str(result)


def test_the_same_seed_gives_the_same_numbers_and_verdicts():
    s = by_name("gaussian-dsigma-typo")
    first = gk.check(s.forward, s.backward, s.inputs(), s.params, seed=7).to_dict()
    second = gk.check(s.forward, s.backward, s.inputs(), s.params, seed=7).to_dict()
    first.pop("seconds"), second.pop("seconds")
    assert first == second


def test_a_large_problem_uses_projections_and_still_localizes_a_bug():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((300, 400))

    def forward(x):
        return np.tanh(x)

    def backward(dy, x):
        dx = dy * (1 - np.tanh(x) ** 2)
        dx[150:, 200:] *= 1.01  # one quadrant 1% off
        return (dx,)

    result = gk.check(forward, backward, (x,))
    report = result.input("x")
    assert report.mode == "projection" and not report.passed
    assert report.worst_index[0] >= 150 and report.worst_index[1] >= 200, report
    assert result.calls["forward"] < 2000


def test_projection_mode_on_a_correct_large_layer_costs_a_handful_of_calls():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((400, 300))
    result = gk.check(np.tanh, lambda dy, x: (dy * (1 - np.tanh(x) ** 2),), (x,))
    assert result.passed and result.input("x").mode == "projection"
    assert result.calls == {"forward": 5, "backward": 2}  # 2 for contracts, 3 for the projection


def test_ties_in_a_large_input_are_found_and_judged_one_by_one():
    s = by_name("maxpool-ties")
    rng = np.random.default_rng(3)
    integer_valued = rng.integers(-3, 4, size=(4, 4, 20, 20)).astype(np.float64)
    assert gk.check(s.forward, s.backward, (integer_valued,), s.params).passed
    rare_ties = rng.standard_normal((4, 4, 20, 20))
    rare_ties[0, 0, 0, 1] = rare_ties[0, 0, 0, 0] = 9.0  # one tie, a window's maximum
    result = gk.check(s.forward, s.backward, (rare_ties,), s.params)
    assert result.passed and result.input("x").mode == "projection", str(result)


EXTREME = [
    (
        "gaussian_filter1d",
        lambda r: (r.standard_normal((2, 16)), np.asarray(0.0), np.asarray(0.05)),
        {"taps": 9},
    ),
    (
        "gaussian_filter1d_unscaled",
        lambda r: (r.standard_normal((2, 16)), np.asarray(-1.7), np.asarray(0.2)),
        {"taps": 9},
    ),
    ("sigmoid", lambda r: (r.standard_normal((3, 5)) * 40,), {}),
    ("softmax_cross_entropy", lambda r: (r.standard_normal((4, 6)) * 1e4, r.integers(0, 6, 4)), {}),
    (
        "layer_norm",
        lambda r: (r.standard_normal((3, 4)) * 1e3, r.standard_normal(4), r.standard_normal(4)),
        {},
    ),
    (
        "maxpool2d",
        lambda r: (r.integers(-2, 3, (2, 3, 6, 6)).astype(float),),
        {"kernel_size": 3, "stride": 1},
    ),
]


@pytest.mark.parametrize(
    "wrap", [lambda f: f, cast_to_float32, reject_float64], ids=["plain", "casts", "only32"]
)
@pytest.mark.parametrize(
    ("name", "make", "params"), EXTREME, ids=[e[0] + str(k) for k, e in enumerate(EXTREME)]
)
def test_correct_reference_layers_pass_in_extreme_regimes_in_float32(name, make, params, wrap):
    import reference_layers  # noqa: F401 - registers the layers

    spec = gk.registry.get(name)
    inputs = tuple(a.astype(np.float32) if a.dtype.kind == "f" else a for a in make(np.random.default_rng(0)))
    result = gk.check(wrap(spec.forward), wrap(spec.backward), inputs, params)
    assert result.passed, str(result)


def _rounds_to_float32_returns_float64(fn):
    """A kernel casting to float32 first and handing back float64 (NumPy 1.x's promotion makes
    such layers out of float32-casting code: a float32 scalar divided by a Python int)."""

    def wrapped(*args, **kwargs):
        args = [
            a.astype(np.float32) if isinstance(a, np.ndarray) and a.dtype.kind == "f" else a for a in args
        ]
        out = fn(*args, **kwargs)

        def up(o):
            return o.astype(np.float64) if isinstance(o, (np.ndarray, np.generic)) else o

        return tuple(up(o) for o in out) if isinstance(out, tuple) else up(out)

    return wrapped


@pytest.mark.parametrize("mode", ["elementwise", "projection"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", ["softmax-ce", "gaussian", "batchnorm", "linear"])
def test_a_layer_rounding_to_float32_inside_but_returning_float64_is_checked_on_float32(name, dtype, mode):
    s = by_name(name)
    forward = _rounds_to_float32_returns_float64(s.forward)
    backward = _rounds_to_float32_returns_float64(s.backward)
    result = gk.check(forward, backward, s.inputs(dtype), s.params, mode=mode)
    assert result.passed, str(result)
    assert set(result.settings["rounded_inside"].values()) == {"float32"}


def test_a_bug_in_a_layer_rounding_to_float32_inside_is_still_caught():
    s = by_name("softmax-ce-missing-mean")
    forward = _rounds_to_float32_returns_float64(s.forward)
    backward = _rounds_to_float32_returns_float64(s.backward)
    result = gk.check(forward, backward, s.inputs("float32"), s.params)
    assert not result.passed and result.patterns == ["constant_factor"], str(result)


def test_an_input_the_forward_ignores_is_not_taken_for_a_rounded_one():
    def forward(x, w):
        return np.tanh(x) + 0.0 * w.sum()

    def backward(dy, x, w):
        return dy * (1 - np.tanh(x) ** 2), np.full_like(w, 1e-3)

    rng = np.random.default_rng(0)
    result = gk.check(forward, backward, (rng.standard_normal(4), rng.standard_normal(3)))
    assert not result.passed and "rounded_inside" not in result.settings
