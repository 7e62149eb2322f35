"""The torch reference: forward values and autograd's VJP as a second, FD-free opinion."""

from __future__ import annotations

import pytest

import gradcheck_kit as gk
from tests.support.zoo import by_name

torch = pytest.importorskip("torch")


def softmax_ce_reference(logits, labels):
    return torch.nn.functional.cross_entropy(logits, labels)


def test_a_correct_layer_agrees_with_its_torch_reference():
    s = by_name("softmax-ce")
    result = gk.check(s.forward, s.backward, s.inputs(), reference=softmax_ce_reference)
    assert result.passed and result.findings == [], str(result)


def test_a_float32_layer_is_compared_through_its_float64_run():
    s = by_name("softmax-ce")
    result = gk.check(s.forward, s.backward, s.inputs("float32"), reference=softmax_ce_reference)
    assert result.passed, str(result)


def test_a_wrong_gradient_disagrees_with_autograd_as_a_reference_finding():
    s = by_name("softmax-ce-missing-mean")
    result = gk.check(s.forward, s.backward, s.inputs(), reference=softmax_ce_reference)
    finding = result.finding("reference")
    assert finding is not None and finding.input == "logits" and "torch reference" in finding.message


def test_a_wrong_forward_disagrees_with_the_reference():
    s = by_name("softmax-ce")
    result = gk.check(
        lambda x, y: s.forward(x, y) * 2,
        lambda dy, x, y: s.backward(2 * dy, x, y),
        s.inputs(),
        reference=softmax_ce_reference,
    )
    assert "forward output 0" in result.finding("reference").message


def test_a_reference_that_raises_is_a_finding_not_a_crash():
    s = by_name("softmax-ce")

    def broken(logits, labels):
        raise RuntimeError("no such op")

    result = gk.check(s.forward, s.backward, s.inputs(), reference=broken)
    assert "RuntimeError: no such op" in result.finding("reference").message


def test_conv2d_matches_torch_conv2d_with_stride_and_padding():
    s = by_name("conv2d")

    def reference(x, w, b, *, stride, padding):
        return torch.nn.functional.conv2d(x, w, b, stride=stride, padding=padding)

    assert gk.check(s.forward, s.backward, s.inputs(), s.params, reference=reference).passed
    bad = by_name("conv2d-dw-flipped")
    assert not gk.check(
        bad.forward, bad.backward, bad.inputs(), bad.params, reference=reference, mode="projection"
    ).passed


@pytest.mark.parametrize("bug", ["offset", "ignores grad_output"])
def test_a_backward_not_linear_in_grad_output_cannot_pay_for_itself_against_the_reference(bug):
    s = by_name("softmax-ce")

    def backward(dy, logits, labels):
        dx, none = s.backward(dy if bug == "offset" else 1.0, logits, labels)
        return (dx + 1e-3 if bug == "offset" else dx), none

    result = gk.check(s.forward, backward, s.inputs(), reference=softmax_ce_reference)
    assert result.finding("linearity") is not None, str(result)
    assert result.finding("reference") is not None  # its residual is not taken for rounding


def test_a_passing_report_says_a_forward_bug_needs_a_reference_unless_one_was_given():
    s = by_name("softmax-ce")
    assert "invisible without a reference" in str(gk.check(s.forward, s.backward, s.inputs()))
    referenced = gk.check(s.forward, s.backward, s.inputs(), reference=softmax_ce_reference)
    assert "invisible without a reference" not in str(referenced)
