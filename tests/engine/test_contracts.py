"""Contract findings: each misbehaviour is its own named finding, and a correct layer has none."""

from __future__ import annotations

import numpy as np
import pytest

import gradcheck_kit as gk
from tests.support.zoo import by_name

X = (np.linspace(-1.0, 1.0, 6).reshape(2, 3),)


def tanh_backward(dy, x):
    return (dy * (1 - np.tanh(x) ** 2),)


def kinds(result):
    return {f.kind for f in result.errors}


def test_a_correct_layer_has_no_findings():
    result = gk.check(np.tanh, tanh_backward, X)
    assert result.passed and result.findings == []


def test_forward_raising_is_a_failed_result_with_the_traceback():
    def forward(x):
        raise ValueError("shapes do not line up")

    result = gk.check(forward, tanh_backward, X)
    assert not result.passed and kinds(result) == {"exception"}
    finding = result.finding("exception")
    assert "ValueError: shapes do not line up" in finding.message
    assert "raise ValueError" in finding.traceback


def test_backward_raising_is_a_failed_result_after_the_forward_contracts():
    def backward(dy, x):
        return (dy @ np.ones((4, 4)),)

    result = gk.check(np.tanh, backward, X)
    assert kinds(result) == {"exception"} and "backward raised ValueError" in result.cause


@pytest.mark.parametrize(
    ("returned", "kind", "words"),
    [
        (None, "structure", "returned None"),
        ([np.zeros((2, 3))], "structure", None),
        ((np.zeros((2, 3)), np.zeros(1)), "structure", "2 gradient(s) for 1 input"),
        ((np.zeros((3, 2)),), "shape", "has shape (3, 2)"),
        ((np.zeros((2, 3), dtype=np.int64),), "dtype", "has dtype int64"),
        ((np.zeros((2, 3), dtype=np.float16),), "dtype", "less precise"),
        (("gradient",), "type", "is str"),
    ],
    ids=["none", "list", "too-many", "shape", "int-dtype", "float16", "string"],
)
def test_malformed_gradients_are_named_findings(returned, kind, words):
    result = gk.check(np.tanh, lambda dy, x: returned, X)
    if kind == "structure" and words is None:  # a list is accepted for backward
        assert kind not in kinds(result)
        return
    assert kind in kinds(result), str(result)
    assert words in result.cause


def test_a_gradient_upcast_to_float64_is_a_warning_not_a_failure():
    x32 = (X[0].astype(np.float32),)
    result = gk.check(np.tanh, lambda dy, x: (tanh_backward(dy, x)[0].astype(np.float64),), x32)
    assert result.passed
    assert [f.kind for f in result.warnings] == ["dtype"]


@pytest.mark.parametrize(
    ("forward", "words"),
    [
        (lambda x: None, "returned None"),
        (lambda x: [np.tanh(x)], "returned a list"),
        (lambda x: "tanh", "returned str"),
        (lambda x: (), "empty tuple"),
    ],
    ids=["none", "list", "string", "empty"],
)
def test_malformed_forward_outputs_fail_with_a_one_line_cause(forward, words):
    result = gk.check(forward, tanh_backward, X)
    assert kinds(result) == {"structure"} and words in result.cause


def test_nonfinite_outputs_from_finite_inputs_are_located():
    def forward(x):
        return np.log(x + 0.5)

    result = gk.check(forward, lambda dy, x: (dy / (x + 0.5),), X)
    finding = result.finding("nonfinite")
    assert finding is not None and finding.where == (0, 0)
    assert "NaN" in finding.message and "forward" in finding.message


def test_nonfinite_gradients_are_located():
    def backward(dy, x):
        dx = tanh_backward(dy, x)[0]
        dx[1, 2] = np.inf
        return (dx,)

    finding = gk.check(np.tanh, backward, X).finding("nonfinite")
    assert finding.where == (1, 2) and "Inf" in finding.message


def test_writing_into_grad_output_is_caught():
    s = by_name("relu-mutates-dy")
    result = gk.check(s.forward, s.backward, s.inputs())
    finding = result.finding("mutation")
    assert finding.input == "grad_output" and "backward wrote into grad_output" in finding.message


def test_writing_into_an_input_in_forward_or_backward_is_caught():
    def forward(x):
        x += 0  # no change: not a mutation
        out = np.tanh(x)
        x[0, 0] = 5.0
        return out

    def backward(dy, x):
        x *= 1.0
        return tanh_backward(dy, x)

    finding = gk.check(forward, backward, tuple(a.copy() for a in X)).finding("mutation")
    assert finding.message.startswith("forward wrote into x") and finding.where == (0, 0)


def test_an_output_that_is_a_view_of_an_input_passes_with_a_warning_saying_why():
    def forward(x):
        return x[:, ::2]  # a down-sampling layer returning a view: idiomatic and correct

    def backward(dy, x):
        dx = np.zeros_like(x)
        dx[:, ::2] = dy
        return (dx,)

    result = gk.check(forward, backward, X)
    assert result.passed, str(result)
    warning = result.finding("aliasing")
    assert warning is not None and not warning.is_error
    assert "in-place update" in warning.message and "allow_aliasing=True" in warning.message
    assert gk.check(forward, backward, X, allow_aliasing=True).finding("aliasing") is None


def test_a_write_through_an_output_view_is_a_mutation_failure():
    def forward(x):
        y = x[:, ::2]
        y *= 2.0  # writes into the caller's x through the view
        return y

    def backward(dy, x):
        dx = np.zeros_like(x)
        dx[:, ::2] = 2.0 * dy
        return (dx,)

    result = gk.check(forward, backward, tuple(a.copy() for a in X))
    assert not result.passed
    assert result.finding("mutation").message.startswith("forward wrote into x")


def test_a_race_in_backward_is_nondeterminism_but_reordering_noise_is_not():
    calls = {"n": 0}

    def racy(dy, x):
        calls["n"] += 1
        dx = tanh_backward(dy, x)[0]
        if calls["n"] % 2 == 0:
            dx[0, 1] = 0.0  # a lost update
        return (dx,)

    assert "determinism" in kinds(gk.check(np.tanh, racy, X))

    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 32)).astype(np.float32)
    w = rng.standard_normal((32, 16)).astype(np.float32)

    def reordered(dy, x, w):
        order = rng.permutation(x.shape[0])  # a different summation order on every call
        return dy @ w.T, np.einsum("ni,nj->ij", x[order], dy[order])

    result = gk.check(lambda x, w: x @ w, reordered, (x, w))
    assert result.passed, str(result)


def test_a_forward_that_changes_on_every_call_is_nondeterminism():
    calls = {"n": 0}

    def forward(x):
        calls["n"] += 1
        return np.tanh(x) * (1 + 1e-3 * calls["n"])

    result = gk.check(forward, tanh_backward, X)
    assert "determinism" in kinds(result)


def test_a_float32_only_branch_accumulating_in_float16_is_a_precision_finding():
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal((64, 48)).astype(np.float32), rng.standard_normal((48, 8)).astype(np.float32)

    def backward(dy, x, w):
        accumulate = np.float16 if x.dtype == np.float32 else x.dtype  # a "fast path" for float32
        dw = (x.T.astype(accumulate) @ dy.astype(accumulate)).astype(x.dtype)
        return dy @ w.T, dw

    result = gk.check(lambda x, w: x @ w, backward, (x, w))
    assert {f.kind for f in result.errors} == {"precision"}
    assert result.finding("precision").input == "w"


def test_a_float32_input_whose_float64_gradient_rounds_like_float32_passes_but_a_float16_one_fails():
    # NumPy 2 keeps np.tanh of a float32 array in float32 and upcasts it times the float64 dy:
    # the float64 gradient of a float32 input carries float32 rounding, which is no bug
    x = np.random.default_rng(0).standard_normal((4, 6)).astype(np.float32)

    def forward(x):
        return np.tanh(x.astype(np.float64))

    def backward(dy, x):
        return (dy * (1 - np.tanh(x) ** 2),)

    result = gk.check(forward, backward, (x,))
    assert result.passed, str(result)
    assert result.finding("dtype") is not None  # the upcast gradient is still a warning

    def float16_backward(dy, x):  # a float16 path taken for float32 inputs only
        t = np.tanh(x.astype(np.float16) if x.dtype == np.float32 else x)
        return (dy * (1 - t.astype(np.float64) ** 2),)

    failed = gk.check(forward, float16_backward, (x,))
    assert {f.kind for f in failed.errors} == {"precision"}
    assert "float64 (from float32 inputs) gradient for x" in failed.finding("precision").message


def test_a_float32_batch_norm_over_two_values_is_not_blamed_for_its_cancellation():
    # two values per channel with var >> eps: dx cancels to ~1e-2 of its terms, and the float32
    # algorithm's rounding is that much larger than its float64 twin's; nudges moving both
    # values alike leave the float64 gradient still, so the cancellation must be measured with
    # nudges of random magnitudes (seen in the thorough profile)
    import reference_layers  # noqa: F401 - registers batch_norm

    x = np.array([[0.16282968, 0.77892464, -0.39437428], [0.48331016, 0.6939199, 0.84814197]], np.float32)
    w = np.array([-0.88275087, -0.7574054, 0.7655874], np.float32)
    b = np.array([0.6841013, -0.5707991, 0.23243012], np.float32)
    spec = gk.registry.get("batch_norm")
    result = gk.check(spec.forward, spec.backward, (x, w, b), {"eps": 1e-5}, seed=4301)
    assert result.passed, str(result)


def test_a_float32_gradient_for_a_float64_input_is_only_a_warning_where_the_layer_rounds_to_float32():
    # NumPy 1.x turns `np.float32 / int` into float64: such a float32 kernel's loss comes back in
    # float64 while its gradient stays float32. It computes in float32: that is not a bug.
    def loss(x):
        return np.float64((np.tanh(x.astype(np.float32)) ** 2).sum())

    def backward(dy, x):
        t = np.tanh(x.astype(np.float32))
        return (np.float32(dy) * 2 * t * (1 - t**2),)

    x = np.random.default_rng(0).standard_normal((3, 4))
    result = gk.check(loss, backward, (x,))
    assert result.passed, str(result)
    assert "rounds x to it inside" in result.finding("dtype").message

    def float64_loss(x):  # computes in float64: a float32 gradient loses precision for nothing
        return (np.tanh(x) ** 2).sum()

    assert "less precise" in gk.check(float64_loss, backward, (x,)).finding("dtype").message
