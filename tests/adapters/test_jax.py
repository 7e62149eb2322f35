"""JAX: custom_vjp and custom_jvp rules and plain JAX pairs get the same verdicts as NumPy layers
(float64 runs under jax_enable_x64, restored after; kinks; float32 and bfloat16), planted bugs
fail with a cause, pytrees are flattened and named by their paths, jit works, and the reference
layers run on the jax backend through the property runner and the CLI. Small on purpose: CI
skips these (no JAX there); run them with `tox -e jax`."""

from __future__ import annotations

import numpy as np
import pytest

jax = pytest.importorskip("jax")
jnp = pytest.importorskip("jax.numpy")

import gradcheck_kit as gk  # noqa: E402

RNG = np.random.default_rng(0)


def f64(*shape):
    with jax.enable_x64(True):
        return jnp.asarray(RNG.normal(size=shape))


def f32(*shape):
    return jnp.asarray(RNG.normal(size=shape), dtype=jnp.float32)


# -- rules, correct and with planted bugs ---------------------------------------------------------
def mul_sin(scale=1.0, sign=1.0, drop_term=False, residual=None):
    """y = sin(x) * w with a custom_vjp; the keywords plant bugs in its rules."""

    @jax.custom_vjp
    def f(x, w):
        return jnp.sin(x) * w

    def fwd(x, w):
        saved = jnp.cos(x) if residual is None else residual(x)  # the residual fwd keeps
        return f(x, w), (saved, jnp.sin(x), w)

    def bwd(res, g):
        cos, sin, w = res
        dx = scale * sign * g * cos * w
        dw = g * sin if not drop_term else g * 0.0 * sin
        return dx, dw

    f.defvjp(fwd, bwd)
    return f


@jax.custom_vjp
def relu(x):
    return jnp.maximum(x, 0.0)


relu.defvjp(lambda x: (relu(x), x > 0), lambda mask, g: (g * mask,))


def softplus(scale=1.0, offset=0.0):
    @jax.custom_jvp
    def f(x):
        return jnp.logaddexp(x, 0.0)

    @f.defjvp
    def f_jvp(primals, tangents):
        (x,), (t,) = primals, tangents
        return f(x), scale * jax.nn.sigmoid(x) * t + offset * x * t

    return f


def test_a_correct_custom_vjp_passes_on_the_jax_backend_and_restores_x64():
    before = jax.config.jax_enable_x64
    result = gk.check(*gk.from_custom_vjp(mul_sin()), (f64(3, 4), f64(3, 4)))
    assert result.passed, str(result)
    assert result.backend == "jax" and [r.name for r in result.inputs] == ["x", "w"]
    assert jax.config.jax_enable_x64 == before


def test_relu_at_points_including_zero_passes_with_kinks_where_check_grads_false_alarms():
    x = jnp.array([-1.5, 0.0, 0.7, 0.0, -0.2, 2.0])
    result = gk.check(*gk.from_custom_vjp(relu), (x,))
    assert result.passed, str(result)
    assert result.inputs[0].kinks >= 2


def test_a_float32_custom_vjp_is_judged_through_its_float64_run_and_passes():
    x, w = f32(4, 5), f32(4, 5)
    result = gk.check(*gk.from_custom_vjp(mul_sin()), (x, w))
    assert result.passed, str(result)
    assert result.inputs[0].dtype == "float32"


def test_a_bfloat16_layer_passes_with_bfloat16_inputs():
    x = jnp.linspace(-2.0, 2.0, 9, dtype=jnp.bfloat16)
    result = gk.check(*gk.from_custom_vjp(relu), (x,))
    assert result.passed, str(result)


@pytest.mark.parametrize(
    ("bug", "failing", "pattern"),
    [
        (dict(scale=3.0), "x", "constant_factor"),
        (dict(sign=-1.0), "x", "sign_flipped"),
        (dict(drop_term=True), "w", "gradient_never_written"),
        (dict(residual=jnp.sin), "x", None),  # fwd saves the wrong residual
    ],
)
def test_planted_bugs_in_a_custom_vjp_fail_on_the_right_input_with_a_cause(bug, failing, pattern):
    result = gk.check(*gk.from_custom_vjp(mul_sin(**bug)), (f64(3, 4), f64(3, 4)))
    assert not result.passed
    assert [r.name for r in result.inputs if not r.passed] == [failing]
    assert result.cause and result.cause.startswith(f"{failing}: ")
    if pattern is not None:
        assert pattern in result.patterns, result.cause


def test_a_product_rule_missing_a_term_fails_with_a_cause():
    @jax.custom_vjp
    def f(x):
        return x * jnp.sin(x)

    f.defvjp(lambda x: (f(x), x), lambda x, g: (g * x * jnp.cos(x),))  # forgot + sin(x)
    result = gk.check(*gk.from_custom_vjp(f), (f64(7),))
    assert not result.passed and result.cause.startswith("x: ")


def test_a_correct_custom_jvp_passes_with_its_forward_mode_part():
    result = gk.check(*gk.from_custom_jvp(softplus()), (f64(6),))
    assert result.passed, str(result)
    assert result.checks["forward_mode"].passed


@pytest.mark.parametrize("bug", [dict(scale=0.5), dict(offset=0.3)])
def test_a_wrong_custom_jvp_rule_fails_with_a_cause(bug):
    result = gk.check(*gk.from_custom_jvp(softplus(**bug)), (f64(6),))
    assert not result.passed and result.cause
    assert not result.inputs[0].passed


def test_a_plain_pair_of_jax_functions_works_as_with_numpy():
    def forward(x, w):
        return jnp.tanh(x @ w)

    def backward(dy, x, w):
        dz = dy * (1 - jnp.tanh(x @ w) ** 2)
        return dz @ w.T, x.T @ dz

    x, w = f32(3, 4), f32(4, 2)
    assert gk.check(forward, backward, (x, w)).passed
    wrong = gk.check(forward, lambda dy, x, w: (backward(dy, x, w)[0], 2 * backward(dy, x, w)[1]), (x, w))
    assert [r.name for r in wrong.inputs if not r.passed] == ["w"] and "constant_factor" in wrong.patterns


def test_jitted_functions_are_checked_through_their_rules():
    assert gk.check(*gk.from_custom_vjp(jax.jit(mul_sin())), (f64(2, 3), f64(2, 3))).passed
    wrong = gk.check(*gk.from_custom_vjp(jax.jit(mul_sin(sign=-1.0))), (f64(2, 3), f64(2, 3)))
    assert "sign_flipped" in wrong.patterns


# -- pytrees ---------------------------------------------------------------------------------------
def dense(bug=1.0):
    @jax.custom_vjp
    def f(params, x):
        return jnp.tanh(x @ params["w"] + params["b"][0])

    def fwd(params, x):
        y = f(params, x)
        return y, (params, x, y)

    def bwd(res, g):
        params, x, y = res
        dz = g * (1 - y**2)
        return {"w": bug * x.T @ dz, "b": (dz.sum(0),)}, dz @ params["w"].T

    f.defvjp(fwd, bwd)
    return f


def test_pytree_inputs_are_flattened_and_named_by_their_paths():
    params = {"w": f64(4, 2), "b": (f64(2),)}
    result = gk.check(*gk.from_custom_vjp(dense()), (params, f64(3, 4)))
    assert result.passed, str(result)
    assert [r.name for r in result.inputs] == ["params['b'][0]", "params['w']", "x"]
    wrong = gk.check(*gk.from_custom_vjp(dense(bug=2.0)), (params, f64(3, 4)))
    assert [r.name for r in wrong.inputs if not r.passed] == ["params['w']"]


def test_wrt_takes_an_arguments_name_for_all_its_leaves():
    params = {"w": f64(4, 2), "b": (f64(2),)}
    result = gk.check(*gk.from_custom_vjp(dense()), (params, f64(3, 4)), wrt="params")
    assert [r.name for r in result.inputs] == ["params['b'][0]", "params['w']"]


def test_integer_labels_get_no_gradient_and_are_not_differentiated():
    def loss(logits, labels):
        picked = jnp.take_along_axis(jax.nn.log_softmax(logits), labels[:, None], axis=1)
        return -jnp.mean(picked)

    labels = jnp.array([0, 2, 1])
    result = gk.check(*gk.from_custom_vjp(loss), (f32(3, 4), labels))
    assert result.passed, str(result)
    assert [r.name for r in result.inputs] == ["logits"]


# -- contracts and arguments ----------------------------------------------------------------------
def test_a_forward_returning_a_numpy_array_is_a_structure_finding():
    result = gk.check(lambda x: np.asarray(x), lambda dy, x: (dy,), (f32(3),))
    assert not result.passed and "numpy array" in result.cause


def test_another_backend_named_for_jax_inputs_is_refused():
    with pytest.raises(gk.InvalidArgument, match="backend='numpy' but the inputs are jax arrays"):
        gk.check(*gk.from_custom_vjp(relu), (f32(3),), backend="numpy")


def test_a_torch_reference_backs_a_jax_layer_and_catches_a_wrong_forward():
    torch = pytest.importorskip("torch")
    x, w = f64(3), f64(3)
    good = gk.check(*gk.from_custom_vjp(mul_sin()), (x, w), reference=lambda x, w: torch.sin(x) * w)
    assert good.passed, str(good)
    bad = gk.check(*gk.from_custom_vjp(mul_sin()), (x, w), reference=lambda x, w: torch.cos(x) * w)
    assert bad.finding("reference") is not None


# -- reference layers on the jax backend -----------------------------------------------------------
def test_reference_layers_pass_on_the_jax_backend_through_the_property_runner():
    import reference_layers  # noqa: F401  (registers the layers)

    for name in ("conv1d", "maxpool2d"):  # padding, sliding windows and their adjoint: no writes in place
        result = gk.property_check(name, backend="jax", max_examples=3, dtypes=("float32",))
        assert result.passed, str(result)


def test_a_planted_bug_in_an_array_api_layer_fails_on_the_jax_backend():
    from array_api_compat import array_namespace
    from hypothesis import strategies as st

    def forward(x):
        xp = array_namespace(x)
        return xp.tanh(x)

    def backward(dy, x):
        xp = array_namespace(dy, x)
        return (dy * (1 - xp.tanh(x) ** 2) * 0.5,)

    cases = st.integers(1, 4).map(lambda n: gk.Case((np.linspace(-1.0, 1.0, n),)))
    spec = gk.register("halved_tanh", forward=forward, backward=backward, cases=cases, into=gk.Registry())
    result = gk.property_check(spec, backend="jax", max_examples=5)
    assert not result.passed and "constant factor" in (result.cause or "")


def test_the_cli_checks_reference_layers_with_backend_jax(capsys):
    from gradcheck_kit.cli import main

    args = ["check", "reference_layers:relu", "--backend", "jax", "--dtype", "float32", "--max-examples", "3"]
    code = main([*args, "--database", "none", "--no-isolation"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert any(line.split()[:3] == ["relu", "jax", "float32"] for line in out.splitlines())


def test_complex_rules_in_jaxs_convention_pass_and_a_conj_bug_is_named():
    with jax.enable_x64(True):
        z = jnp.asarray(RNG.normal(size=4) + 1j * RNG.normal(size=4))
        w = jnp.asarray(RNG.normal(size=4) + 1j * RNG.normal(size=4))

    @jax.custom_vjp
    def mul(z, w):
        return z * w

    mul.defvjp(lambda z, w: (z * w, (z, w)), lambda r, g: (g * r[1], g * r[0]))  # JAX's: no conj
    assert gk.check(*gk.from_custom_vjp(mul), (z, w)).passed

    @jax.custom_vjp
    def mul_conj(z, w):
        return z * w

    mul_conj.defvjp(lambda z, w: (z * w, (z, w)), lambda r, g: (g * jnp.conj(r[1]), g * r[0]))
    wrong = gk.check(*gk.from_custom_vjp(mul_conj), (z, w))
    assert [r.name for r in wrong.inputs if not r.passed] == ["z"] and "conj_missing" in wrong.patterns


def test_order_2_checks_the_second_order_through_the_rules_and_finds_a_stopped_residual():
    x = jnp.linspace(-1.0, 1.0, 5)
    assert "second_order" not in gk.check(*gk.from_custom_vjp(relu), (x,)).checks  # only when asked
    good = gk.check(*gk.from_custom_vjp(mul_sin()), (x, x + 2.0), order=2)
    assert good.passed and good.checks["second_order"].passed, str(good)

    @jax.custom_vjp
    def sin(x):
        return jnp.sin(x)

    sin.defvjp(lambda x: (sin(x), jax.lax.stop_gradient(jnp.cos(x))), lambda cos, g: (g * cos,))
    wrong = gk.check(*gk.from_custom_vjp(sin), (x,), order=2)
    assert wrong.inputs[0].passed and not wrong.checks["second_order"].passed
    assert "stop_gradient" in wrong.cause


def test_outputs_may_be_pytrees_and_grad_output_comes_back_in_their_structure():
    x = jnp.linspace(-1.0, 1.0, 5)

    def forward(x):
        return {"sin": jnp.sin(x), "pair": (x**2,)}

    def backward(dy, x):
        return (dy["sin"] * jnp.cos(x) + dy["pair"][0] * 2 * x,)

    assert gk.check(forward, backward, (x,)).passed
    assert gk.check(*gk.from_custom_vjp(lambda x: (jnp.sin(x),)), (x,)).passed  # a 1-tuple
    wrong = gk.check(forward, lambda dy, x: (dy["sin"] * jnp.cos(x) + dy["pair"][0] * x,), (x,))
    assert not wrong.passed and wrong.cause.startswith("x: ")


JAX_LAYERS = """
import jax, jax.numpy as jnp, numpy as np
import gradcheck_kit as gk


@jax.custom_vjp
def x_sin(x):
    return jnp.sin(x) * x


def x_sin_fwd(x):
    return x_sin(x), x


def x_sin_bwd(x, g):
    return (g * (jnp.cos(x) * x + jnp.sin(x)),)


x_sin.defvjp(x_sin_fwd, x_sin_bwd)
gk.register("jax_x_sin", *gk.from_custom_vjp(x_sin), cases=[gk.Case((np.linspace(-1.0, 1.0, 8),))])
"""


def test_a_custom_vjp_layer_runs_on_jax_without_backend_and_is_skipped_on_numpy(tmp_path, capsys):
    from gradcheck_kit.cli import main

    path = tmp_path / "jax_layers.py"
    path.write_text(JAX_LAYERS)
    args = [
        "check",
        str(path),
        "--dtype",
        "float64",
        "--max-examples",
        "2",
        "--database",
        "none",
        "--no-isolation",
    ]
    assert main(args) == 0
    assert any(
        line.split()[:4] == ["jax_x_sin", "jax", "float64", "all"]
        for line in capsys.readouterr().out.splitlines()
    )

    assert main([*args, "--backend", "numpy"]) == 0
    out = capsys.readouterr().out
    assert "SKIPPED" in out and "runs on jax (a jax.custom_vjp), not on backend 'numpy'" in out
