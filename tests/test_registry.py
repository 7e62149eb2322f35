"""Registration: validated at once, errors name the layer, iteration is deterministic."""

from __future__ import annotations

import numpy as np
import pytest

import gradcheck_kit as gk
from gradcheck_kit.registry import Registry


def forward(x, w):
    return x * w


def backward(dy, x, w):
    return dy * w, dy * x


def test_register_returns_a_spec_with_input_names_and_the_registering_module():
    reg = Registry()
    spec = gk.register("scale", forward, backward, into=reg)
    assert spec.input_names == ("x", "w") and spec.origin == __name__
    assert reg.get("scale") is spec and list(reg) == [spec] and "scale" in reg


def test_a_class_decorator_registers_its_staticmethods_and_first_docstring_line():
    reg = Registry()

    @gk.register("scaled", cases=[gk.Case((np.ones(2), np.ones(2)))], into=reg)
    class Scaled:
        """Multiply by a learnable scale.

        More words."""

        forward = staticmethod(forward)
        backward = staticmethod(backward)

    spec = reg.get("scaled")
    assert Scaled.__gradcheck__ is spec and spec.description == "Multiply by a learnable scale."
    assert isinstance(spec.cases, tuple) and len(spec.cases) == 1


@pytest.mark.parametrize(
    ("fwd", "bwd", "words"),
    [
        (forward, "not callable", "is not callable"),
        (forward, lambda dy: None, "backward must take grad_output followed by forward's inputs"),
        (forward, lambda dy, a, b, c, d: None, "backward must take grad_output"),
    ],
    ids=["not-callable", "too-few", "too-many"],
)
def test_bad_callables_raise_registration_error_naming_the_layer(fwd, bwd, words):
    with pytest.raises(gk.RegistrationError, match=words) as caught:
        gk.register("broken", fwd, bwd, into=Registry())
    assert caught.value.layer == "broken" and "layer 'broken'" in str(caught.value)


def test_cases_must_be_a_strategy_or_cases():
    with pytest.raises(gk.RegistrationError, match="cases="):
        gk.register("x", forward, backward, cases=[1, 2], into=Registry())


def test_a_second_layer_under_the_same_name_is_refused_unless_replacing():
    reg = Registry()
    gk.register("twice", forward, backward, into=reg)
    gk.register("twice", forward, backward, into=reg)  # the same functions again: a re-import
    with pytest.raises(gk.RegistrationError, match="already registered"):
        gk.register("twice", lambda x, w: x, lambda dy, x, w: (dy, None), into=reg)
    gk.register("twice", lambda x, w: x, lambda dy, x, w: (dy, None), into=reg, replace=True)


def test_an_unknown_name_lists_the_known_ones():
    reg = Registry()
    gk.register("alpha", forward, backward, into=reg)
    with pytest.raises(gk.InvalidArgument, match="'beta' is not registered; known: alpha"):
        reg.get("beta")


def test_from_module_selects_layers_registered_by_a_package_and_its_submodules():
    reg = Registry()
    gk.register("mine", forward, backward, into=reg)
    assert [s.name for s in reg.from_module(__name__.split(".")[0])] == ["mine"]
    assert reg.from_module("elsewhere") == []


def test_case_describe_names_dtypes_once_and_params():
    case = gk.Case((np.zeros((1, 1, 3, 4)), np.zeros((1, 1, 2, 2))), {"stride": 2, "padding": 1})
    assert case.describe(["x", "w"]) == "x float64[1,1,3,4], w [1,1,2,2], stride=2, padding=1"
