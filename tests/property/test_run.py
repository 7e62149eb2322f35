"""Property testing: planted bugs are found in the ``ci`` profile and shrink to their trigger,
correct layers pass with no false alarm, failures replay (seed, blob, database)."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from hypothesis import settings
from hypothesis import strategies as st

import gradcheck_kit as gk
import reference_layers  # noqa: F401  (registers the reference layers)
from gradcheck_kit import profiles
from gradcheck_kit import strategies as gks
from gradcheck_kit._property.cases import to_backend, with_dtype
from gradcheck_kit._property.result import describe_case
from gradcheck_kit.registry import Registry
from tests.support.planted import TRIGGERS, planted


def _minimal(meta_geometry, **expected):
    return {key: getattr(meta_geometry, key) for key in expected} == expected


SHRUNK = {  # planted layer -> what its minimal geometry must be: the trigger, the rest minimal
    "conv2d_stride": lambda g: (
        sorted(g.stride) == [1, 2]
        and _minimal(g, batch=1, in_channels=1, out_channels=1, kernel_size=(1, 1), padding=(0, 0))
    ),
    "conv2d_padding": lambda g: (
        sorted(g.padding) == [0, 1]
        and _minimal(g, batch=1, in_channels=1, out_channels=1, kernel_size=(1, 1), stride=(1, 1))
    ),
    "conv2d_batch": lambda g: (
        g.batch == 2
        and _minimal(g, in_channels=1, out_channels=1, kernel_size=(1, 1), stride=(1, 1), padding=(0, 0))
    ),
    "maxpool2d_overlap": lambda g: (
        sorted(g.kernel_size) == [1, 2] and _minimal(g, batch=1, channels=1, stride=(1, 1), padding=(0, 0))
    ),
    "avgpool2d_overlap": lambda g: (
        sorted(g.kernel_size) == [1, 2] and _minimal(g, batch=1, channels=1, stride=(1, 1), padding=(0, 0))
    ),
    "avgpool2d_nonsquare": lambda g: (
        sorted(g.kernel_size) == [1, 2] and _minimal(g, batch=1, channels=1, padding=(0, 0))
    ),
}
WORDS = {  # ... and the words that name the trigger in the minimal configuration
    "conv2d_stride": "stride=(",
    "conv2d_padding": "padding=(",
    "conv2d_batch": "x float64[2,1,",
    "maxpool2d_overlap": "kernel_size=(",
    "avgpool2d_overlap": "kernel_size=(",
    "avgpool2d_nonsquare": "kernel_size=(",
}


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("name", sorted(TRIGGERS))
def test_each_planted_bug_is_found_in_the_ci_profile_and_shrinks_to_its_trigger(name, seed):
    result = gk.property_check(planted.get(name), profile="ci", seed=seed, database=False)
    assert not result.passed, f"{name} ({TRIGGERS[name]}) not found in {result.examples} examples"
    geometry = result.case.meta["geometry"]
    assert SHRUNK[name](geometry), geometry
    assert WORDS[name] in result.description and any(r.failing for r in result.check.inputs)


@pytest.mark.parametrize("name", ["conv2d", "maxpool2d", "avgpool2d"])
def test_the_correct_planted_layers_pass_the_ci_profile(name):
    result = gk.property_check(planted.get(name), profile="ci", database=False)
    assert result.passed and result.examples == profiles.PROFILES["ci"], result.message


# Every reference layer passing its profile's examples on NumPy in float64 and float32, with no
# false alarm, is what the suite's own gradcheck items check (pyproject.toml: gradcheck_modules =
# ["reference_layers"]; 50 examples each in the ci profile, 500 in thorough).


def test_the_failure_message_names_the_configuration_the_elements_and_how_to_replay_it():
    result = gk.property_check(planted.get("conv2d_stride"), database=False)
    message = result.message
    assert "minimal configuration: conv2d_stride: x float64[1,1," in message
    assert "stride=(" in message and "padding" not in message.split("\n")[1]  # defaults omitted
    assert "failing input x float64[1,1," in message and "analytic" in message and "numeric" in message
    assert f"@reproduce_failure('{result.reproduce.split(chr(39))[1]}', b'{result.blob}')" in message
    assert f"blob={result.blob!r}" in message and "default_rng(" in message
    assert str(result) == message


def test_raise_for_failure_raises_gradient_mismatch_carrying_the_result():
    result = gk.property_check(planted.get("conv2d_batch"), database=False)
    with pytest.raises(gk.GradientMismatch, match="minimal configuration") as info:
        result.raise_for_failure()
    assert info.value.result is result
    assert gk.property_check(planted.get("conv2d"), max_examples=5, database=False).raise_for_failure()


def test_to_dict_is_json_with_the_case_the_check_and_the_replay():
    data = json.loads(json.dumps(gk.property_check(planted.get("conv2d_padding"), database=False).to_dict()))
    assert data["passed"] is False and data["case"].startswith("conv2d_padding: ")
    assert data["check"]["passed"] is False and data["replay"]["blob"] and data["drawn"]["seed"] >= 0


def test_the_same_seed_gives_the_same_run():
    runs = [gk.property_check(planted.get("avgpool2d_overlap"), seed=3, database=False) for _ in range(2)]
    assert runs[0].examples == runs[1].examples and runs[0].blob == runs[1].blob
    assert runs[0].description == runs[1].description


def test_the_blob_replays_exactly_the_minimal_case_in_one_example():
    first = gk.property_check(planted.get("maxpool2d_overlap"), database=False)
    again = gk.property_check(planted.get("maxpool2d_overlap"), database=False, blob=first.blob)
    assert again.examples == 1 and again.description == first.description


def test_a_failure_saved_in_the_database_is_replayed_first_next_time(tmp_path):
    first = gk.property_check(planted.get("conv2d_stride"), database=tmp_path / "db")
    again = gk.property_check(planted.get("conv2d_stride"), database=tmp_path / "db", max_examples=1)
    assert first.database == str(tmp_path / "db") and not again.passed and again.examples <= 3
    assert again.description == first.description


def test_a_layer_is_given_as_a_spec_a_registered_name_or_a_decorated_class():
    reg = Registry()

    @gk.register("double", cases=[gk.Case((np.ones((2, 3)),))], into=reg)
    class Double:
        forward = staticmethod(lambda x: 2 * x)
        backward = staticmethod(lambda dy, x: 2 * dy)

    assert gk.property_check(Double, max_examples=3, database=False).passed
    assert gk.property_check(reg.get("double"), max_examples=3, database=False).passed
    assert gk.property_check("relu", max_examples=3, database=False).passed


@pytest.mark.parametrize(
    ("call", "words"),
    [
        (lambda: gk.property_check(42), "layer=42 must be a gk.LayerSpec"),
        (lambda: gk.property_check("no_such_layer"), "'no_such_layer' is not registered"),
        (lambda: gk.property_check("relu", max_examples=0), "max_examples=0 must be a positive int"),
        (lambda: gk.property_check("relu", seed=-1), "seed=-1 must be a non-negative int"),
        (lambda: gk.property_check("relu", profile="fast"), "profile='fast' is unknown"),
        (lambda: gk.property_check("relu", backend="mlx"), "backend='mlx' is unknown"),
        (lambda: gk.property_check("relu", backend="cupy"), "backend='cupy' is unavailable here"),
        (lambda: gk.given_layer("relu", max_examples=-2), "max_examples=-2 must be a positive int"),
        (lambda: gk.property_check("relu", dtypes=("int8",)), "dtypes=('int8',) must be a sequence of"),
        (lambda: gk.property_check("relu", dtypes="float32"), "dtypes='float32' must be a sequence of"),
        (lambda: gk.property_check(gk.LayerSpec("bare", abs, abs)), "has no cases"),
    ],
)
def test_unusable_arguments_raise_invalid_argument_naming_the_value(call, words):
    with pytest.raises(gk.InvalidArgument, match=re.escape(words)):
        call()


def test_torch_cuda_without_a_gpu_raises_invalid_argument_saying_so():
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(gk.InvalidArgument, match="needs a CUDA device"):
        gk.property_check("relu", backend="torch:cuda")


def test_cases_move_to_torch_and_a_torch_layer_passes_there():
    torch = pytest.importorskip("torch")
    reg = Registry()
    cases = gks.cases(
        lambda rng, shape: gk.Case((gks.values(rng, shape),)), shape=gks.array_shapes(max_dims=2)
    )
    gk.register("torch_tanh", torch.tanh, lambda dy, x: dy * (1 - torch.tanh(x) ** 2), cases=cases, into=reg)
    result = gk.property_check(reg.get("torch_tanh"), backend="torch", max_examples=10, database=False)
    assert result.passed, result.message
    moved = to_backend(gk.Case((np.ones(2), 3)), "torch")
    assert (
        isinstance(moved.inputs[0], torch.Tensor)
        and moved.inputs[1] == 3
        and moved.meta["backend"] == "torch"
    )


def test_with_dtype_casts_floating_inputs_and_keeps_the_drawn_layout():
    x = gks.with_layout(np.ones((3, 4)), "F")
    cast = with_dtype(gk.Case((x, np.arange(3)), meta={"layout": "F"}), "float32")
    assert cast.inputs[0].dtype == np.float32 and cast.inputs[0].flags.f_contiguous
    assert cast.inputs[1].dtype == np.arange(3).dtype and cast.meta["dtype"] == "float32"


def test_describe_case_writes_equal_tuples_once_and_omits_forward_defaults():
    spec = gk.registry.get("conv2d")
    x, w, b = np.zeros((1, 1, 3, 4)), np.zeros((1, 1, 2, 2)), np.zeros(1)
    params = {"stride": (2, 2), "padding": (1, 0), "dilation": (1, 1), "groups": 1}
    words = describe_case(spec, gk.Case((x, w, b), params))
    assert words == "conv2d: x float64[1,1,3,4], w [1,1,2,2], b [1], stride=2, padding=(1, 0)"


def test_given_layer_hands_the_test_drawn_cases_and_composes_with_settings():
    drawn = []

    @gk.given_layer(planted.get("conv2d"), dtypes=("float32",), max_examples=7)
    def check_one(case):
        drawn.append(case)
        assert gk.check_case(planted.get("conv2d"), case, mode="projection").passed

    check_one()
    assert len(drawn) >= 7 and all(c.inputs[0].dtype == np.float32 for c in drawn)


def test_a_failing_given_layer_test_shrinks_and_prints_the_blob():
    ci_without_database = settings(profiles.get_profile("ci"), database=None)

    @gk.given_layer(planted.get("conv2d_batch"), settings_=ci_without_database)
    def check_batch(case):
        gk.check_case(planted.get("conv2d_batch"), case, mode="projection").raise_for_failure()

    with pytest.raises(gk.GradientMismatch) as info:
        check_batch()
    notes = "\n".join(getattr(info.value, "__notes__", []))
    assert "@reproduce_failure(" in notes
    assert "x float64[2,1,1,1]" in str(info.value)


def test_profiles_differ_in_examples_only_and_keep_failures_in_the_configured_database(monkeypatch, tmp_path):
    examples = [profiles.get_profile(name).max_examples for name in ("dev", "ci", "thorough")]
    assert examples == sorted(examples) and len(set(examples)) == 3
    assert all(profiles.get_profile(name).deadline is None for name in profiles.PROFILES)
    monkeypatch.setenv(profiles.DATABASE_ENV, str(tmp_path / "here"))
    assert profiles.database_path() == tmp_path / "here"
    monkeypatch.setenv(profiles.DATABASE_ENV, "none")
    assert profiles.database() is None and profiles.database_path(tmp_path) == tmp_path
    with pytest.raises(gk.InvalidArgument, match="accepted: dev, ci, thorough"):
        profiles.profile_name("nightly")


def test_the_test_suite_runs_under_the_profile_named_by_the_environment():
    expected = profiles.PROFILES[profiles.profile_name()]
    assert settings.default.max_examples == expected and settings.default.deadline is None


def test_a_fixed_sequence_of_cases_is_sampled():
    reg = Registry()
    cases = [gk.Case((np.full((2,), v),)) for v in (0.5, 1.5)]
    spec = gk.register("square", lambda x: x * x, lambda dy, x: 2 * x * dy, cases=cases, into=reg)
    assert gk.property_check(spec, max_examples=5, database=False).passed
    assert isinstance(gk.layer_cases(spec), st.SearchStrategy)


REPLAYED_MODULE = """
import numpy as np
import gradcheck_kit as gk

X = np.linspace(-1.0, 1.0, 12).reshape(3, 4)
gk.register("replayed_tanh", np.tanh, lambda dy, x: (dy * np.tanh(x),), cases=[gk.Case((X,))])
"""


def test_the_replay_line_names_the_module_that_registered_the_layer_and_runs_in_a_fresh_interpreter(
    tmp_path, monkeypatch
):
    import subprocess
    import sys

    (tmp_path / "replayed_layers.py").write_text(REPLAYED_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    import replayed_layers  # noqa: F401

    try:
        result = gk.property_check("replayed_tanh", max_examples=3, database=False)
        assert result.replay.startswith("gk.property_check('replayed_layers:replayed_tanh', backend='numpy'")
        assert f"    {result.replay}" in result.message
        script = f"import gradcheck_kit as gk\nr = {result.replay}\nprint(r.passed, r.examples)"
        done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        assert done.stdout.split() == ["False", "1"]
    finally:
        gk.registry.remove("replayed_tanh")
        sys.modules.pop("replayed_layers", None)


def test_a_module_or_file_target_is_imported_before_its_layer_is_looked_up(tmp_path):
    import sys

    path = tmp_path / "file_layers.py"
    path.write_text(REPLAYED_MODULE.replace("replayed_tanh", "file_tanh"))
    try:
        result = gk.property_check(f"{path}:file_tanh", max_examples=3, database=False)
        assert not result.passed and result.layer == "file_tanh"
    finally:
        gk.registry.remove("file_tanh")
        sys.modules.pop("file_layers", None)
    with pytest.raises(gk.InvalidArgument, match=r"layer='no_such_module:x': importing 'no_such_module'"):
        gk.property_check("no_such_module:x")
    with pytest.raises(
        gk.InvalidArgument,
        match=r"layer=3 must be a gk.LayerSpec, a registered layer.s name, .package.module:name.",
    ):
        gk.property_check(3)


def test_a_layer_registered_in_a_private_registry_replays_by_spec_name():
    spec = planted.get("conv2d_stride")
    result = gk.property_check(spec, max_examples=20, database=False)
    assert result.replay.startswith("gk.property_check('conv2d_stride', ")
