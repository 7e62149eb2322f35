"""``gk.check``: run a layer's forward and backward, check the contracts, then the gradient.

Stages, each adding findings to one ``CheckResult``:

1. forward on the caller's arrays (twice: repeatability), watching for writes into the inputs,
   outputs aliasing them, and non-finite values;
2. backward with a random grad_output (twice), watching grad_output and the inputs, and checking
   the number, shapes and dtypes of the gradients;
3. the gradient itself against finite differences on float64 copies (``gradient``); a layer
   that computes in float32 is also compared with its own float64 run (``precision``);
4. optionally a torch reference: forward values and torch autograd's VJP.

Whatever the layer raises becomes a finding with its traceback; the harness never crashes.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from .._diagnosis.explain import explain
from .._engine import contracts, precision, ties
from .._engine.directions import signed_magnitudes
from .._engine.elementwise import Setup, elementwise_report
from .._engine.plan import Plan, positive_int
from .._engine.projection import projection_reports
from .._engine.tolerances import objective_noise, step_fraction
from .._ground import timeouts
from .._ground.backends import Backend, dtype_name, eps, is_array, is_floating, to_numpy
from .._ground.invoke import LayerCallError, call, gradients_of, outputs_of
from .._oracles.finite_diff import Objective
from .._result import WARNING, CheckResult, Finding
from ..errors import CheckTimeout
from ..registry import Case

ELEMENTWISE_LIMIT = 512  # auto mode probes every element up to this many in total
ELEMENTWISE_MAX = 50_000  # element-wise beyond this many elements switches to projections
ELEMENTWISE_SECONDS = 120.0  # ... and so does an estimated element-wise cost beyond this
MAX_OUTPUT_BYTES = 4 * 2**30  # a forward returning more than this is refused unread
# Output term scales cost one forward call; they matter where a handful of cancelling outputs
# set the noise, not for a projection over 1e5 elements whose signal sums them all.
TERMS_LIMIT = 100_000
JITTER_NUDGES = 6  # backward calls measuring cancellation (only when a precision check needs it): its
# rounding noise comes near 0 by chance in ~40% of nudges on a handful of values, so take the max


def check(
    forward: Callable[..., Any],
    backward: Callable[..., Any],
    inputs: Sequence[Any] | Any,
    params: Mapping[str, Any] | None = None,
    *,
    wrt: Sequence[int | str] | int | str | None = None,
    backend: str | None = None,
    reference: Callable[..., Any] | None = None,
    seed: int = 0,
    rtol: float | None = None,
    atol: float | None = None,
    mode: str = "auto",
    name: str | None = None,
    allow_aliasing: bool = False,
    timeout: float | None = None,
    max_output_bytes: int = MAX_OUTPUT_BYTES,
) -> CheckResult:
    """Check ``backward`` against ``forward`` at ``inputs``; see the README for the contract.

    ``rtol``/``atol`` are the error allowed in the analytic gradient itself (defaults: from its
    dtype and magnitude); finite-difference error is measured, not assumed. ``timeout`` stops a
    hanging layer (seconds for the whole check); outputs larger than ``max_output_bytes`` are
    refused before anything touches them.
    """
    plan = Plan(forward, backward, inputs, params, wrt, backend, seed, rtol, atol, mode, name)
    limit = timeouts.validate(timeout)
    session = _Session(plan, reference, allow_aliasing, positive_int("max_output_bytes", max_output_bytes))
    with timeouts.deadline(limit):
        session.run()
    return session.result


def check_case(spec: Any, case: Case, **options: Any) -> CheckResult:
    """``check`` a registered layer (``LayerSpec``) on one ``Case``."""
    options.setdefault("reference", spec.reference)
    options.setdefault("wrt", spec.wrt)
    return check(spec.forward, spec.backward, case.inputs, case.params, name=spec.name, **options)


class _Session:
    def __init__(self, plan: Plan, reference: Any, allow_aliasing: bool, max_bytes: int) -> None:
        self.plan, self.reference, self.allow_aliasing = plan, reference, allow_aliasing
        self.max_bytes, self.forward_seconds = max_bytes, 0.0
        self.linear = True  # backward is linear in grad_output (until a check says otherwise)
        self.b: Backend = plan.backend
        self.calls: Counter[str] = Counter()
        self.rng = np.random.default_rng(plan.seed)
        self.result = CheckResult(plan.name, self.b.label(), plan.case, plan.seed)
        self.result.settings = {
            "mode": plan.mode,
            "rtol": plan.rtol,
            "atol": plan.atol,
            "reference": reference is not None,
        }

    def add(self, findings: list[Finding]) -> None:
        self.result.findings.extend(findings)

    def run(self) -> None:
        start = time.perf_counter()
        try:
            self._run_stages()
        except LayerCallError as exc:
            self.add([_exception_finding(exc)])
        except CheckTimeout as exc:
            where = f"{exc} (calls so far: {dict(self.calls)}); the layer hangs or is too slow"
            self.add([Finding("timeout", where)])
        except Exception as exc:  # the harness never crashes, even on its own bug
            self.add([_internal_finding(exc)])
        finally:
            self.result.calls = dict(self.calls)
            self.result.seconds = time.perf_counter() - start

    def _run_stages(self) -> None:
        plan = self.plan
        self.originals = contracts.snapshot(self.b, plan.inputs)
        y = self._forward_stage()
        dy = self._grad_output(y)
        grads, usable = self._backward_stage(dy)
        if usable and self.finite_outputs:  # NaN outputs leave nothing to difference
            self._gradient_stage(y, dy, grads, usable)
        if self.reference is not None:
            from .._oracles.torch_autograd import compare_with_reference

            self.add(compare_with_reference(self, y, dy, grads, usable))
        if not self.result.inputs and not self.result.errors:
            self.add([_nothing_differentiated(plan)])

    # -- stage 1 -----------------------------------------------------------------------------
    def _forward_stage(self) -> tuple[Any, ...]:
        plan = self.plan
        started = time.perf_counter()
        y = outputs_of(call(plan.forward, plan.inputs, plan.params, "forward", self.calls), self.b.name)
        self.forward_seconds = time.perf_counter() - started
        _refuse_huge(y, self.max_bytes, plan.inputs)
        self.outputs = y
        self.labels = ["output"] if len(y) == 1 else [f"output {k}" for k in range(len(y))]
        mutated = contracts.mutations("forward", plan.names, self.originals, plan.inputs)
        self.forward_mutated = bool(mutated)
        self.add(mutated)
        if not self.allow_aliasing:
            self.add(contracts.aliasing(y, plan.inputs, plan.names))
        broken = contracts.nonfinite(y, self.labels, "forward")
        self.add(broken)
        self.finite_outputs = not broken
        again = outputs_of(self._call_forward(self._repeat_inputs(mutated)), self.b.name)
        self.add(
            _structure_changes("forward", y, again) or contracts.repeats(y, again, self.labels, "forward")
        )
        return y

    def _call_forward(self, inputs: Sequence[Any]) -> Any:
        return call(self.plan.forward, inputs, self.plan.params, "forward", self.calls)

    def _fresh_inputs(self) -> list[Any]:
        return contracts.snapshot(self.b, self.originals)

    def _repeat_inputs(self, mutated: list[Finding]) -> Sequence[Any]:
        """The caller's own arrays for a repeated call (a copy in another memory layout may take
        another BLAS path and round differently), fresh copies if the first call wrote into them."""
        return self._fresh_inputs() if mutated else self.plan.inputs

    def _grad_output(self, y: tuple[Any, ...]) -> list[Any | None]:
        dy: list[Any | None] = []
        for out in y:
            if not is_floating(out):
                dy.append(None)
                continue
            values = self.b.from_numpy(signed_magnitudes(self.rng, tuple(out.shape)))
            dy.append(values if dtype_name(out) == "float64" else self.b.astype(values, out.dtype))
        return dy

    # -- stage 2 -----------------------------------------------------------------------------
    def _backward_stage(self, dy: list[Any]) -> tuple[list[Any], list[int]]:
        plan = self.plan
        dy_labels = ["grad_output"] if len(dy) == 1 else [f"grad_output[{k}]" for k in range(len(dy))]
        dy_before = contracts.snapshot(self.b, dy)
        # unless forward wrote into them, the caller's arrays still equal our private copies
        inputs_before = contracts.snapshot(self.b, plan.inputs) if self.forward_mutated else self.originals
        # copied: a layer may hand back buffers that its next call overwrites
        grads = contracts.snapshot(self.b, self._call_backward(dy, plan.inputs))
        dy_mutated = contracts.mutations("backward", dy_labels, dy_before, dy)
        self.add(dy_mutated)
        mutated = contracts.mutations("backward", plan.names, inputs_before, plan.inputs)
        self.add(mutated)
        computes_in = precision.lowest_float(self.outputs)
        found, usable = contracts.gradient_contract(grads, plan.inputs, plan.names, plan.diff, computes_in)
        found, usable = contracts.excuse_coarse(
            found,
            usable,
            grads,
            plan.inputs,
            plan.names,
            lambda i, g: precision.rounds_to(self, self.originals, i, g),
        )
        self.add(found)
        labels = {i: f"d{plan.names[i]}" for i in usable}
        nonfinite = contracts.nonfinite([grads[i] for i in usable], list(labels.values()), "backward")
        self.add(nonfinite)
        broken = {f.input for f in nonfinite}
        usable = [i for i in usable if labels[i] not in broken]  # already failed, not comparable
        self.dy_values = dy_before
        self.add(self._repeat_backward(grads, usable, self._repeat_inputs(mutated)))
        return grads, usable

    def _repeat_backward(self, grads: list[Any], usable: list[int], inputs: Sequence[Any]) -> list[Finding]:
        """Backward again, on -2 grad_output: a backward is linear in grad_output, and scaling by
        a power of two commutes with rounding, so a deterministic one returns exactly -2 times
        the first gradients. One call thus checks repeatability and linearity together (an
        additive term, a grad_output ignored, used nonlinearly); only a mismatch costs two more
        calls, on the same grad_outputs again, to tell nondeterminism from nonlinearity."""
        labels = [f"gradient for {self.plan.names[i]}" for i in usable]
        scale = contracts.exact_scale(self.dy_values)
        scaled = contracts.scaled(self.b, self.dy_values, scale)
        expected = contracts.scaled(self.b, [grads[i] for i in usable], scale)
        second = self._backward_copies(scaled, inputs, usable)
        if not contracts.repeats(expected, second, labels, "backward"):
            return []
        third = self._backward_copies(contracts.scaled(self.b, self.dy_values, scale), inputs, usable)
        changed = contracts.repeats(second, third, labels, "backward")
        if not changed:
            fourth = self._backward_copies(contracts.snapshot(self.b, self.dy_values), inputs, usable)
            changed = contracts.repeats([grads[i] for i in usable], fourth, labels, "backward")
        if changed:
            return changed
        self.linear = False
        return contracts.nonlinear(expected, second, labels, scale)

    def _backward_copies(self, dy: list[Any], inputs: Sequence[Any], usable: list[int]) -> list[Any]:
        grads = self._call_backward(dy, inputs)
        return [self.b.copy(grads[i]) if is_array(grads[i]) else grads[i] for i in usable]

    def _call_backward(self, dy: list[Any], inputs: Sequence[Any]) -> list[Any]:
        plan = self.plan
        grad_output = dy[0] if len(dy) == 1 else tuple(dy)
        raw = call(plan.backward, [grad_output, *inputs], plan.params, "backward", self.calls)
        grads = gradients_of(raw, len(inputs))
        return [contracts.normalize_gradient(self.b, g, x) for g, x in zip(grads, inputs)]

    # -- stage 3 -----------------------------------------------------------------------------
    def _gradient_stage(self, y: tuple[Any, ...], dy: list[Any], grads: list[Any], usable: list[int]) -> None:
        evaluation = precision.evaluation_point(self, y, grads, usable)
        if evaluation is None:
            return
        setup, reports = self._judge(evaluation, usable)
        failing = [r.index for r in reports if not r.passed]
        rounded = precision.rounded_inside(self, evaluation, failing) if failing else {}
        if rounded:  # the layer rounds those inputs to a coarser grid: difference on that grid
            evaluation = precision.regrid(self, evaluation, rounded)
            setup, reports = self._judge(evaluation, usable)
        for report in reports:
            ties.amend(setup, report)
            report.dtype = dtype_name(self.plan.inputs[report.index])
            if not report.passed:
                explain(report, setup, first_input=report.index == usable[0], params=self.plan.params)
        self.result.inputs.extend(reports)
        self.add(evaluation.precision_findings(reports))
        self.result.settings.update(evaluation.settings)

    def _judge(self, evaluation: precision.Evaluation, usable: list[int]) -> tuple[Setup, list[Any]]:
        self.evaluation = evaluation
        evaluation.rounding = lambda: self._linearity_residuals(evaluation, usable)
        evaluation.jitter = lambda: self._jitter(evaluation, usable)
        setup = self._setup(evaluation, usable)
        return setup, self._reports(setup, usable)

    def _setup(self, ev: precision.Evaluation, usable: list[int]) -> Setup:
        setup = self._make_setup(ev, usable, self.dy_values, ev.gradients, None)
        setup.convex = lambda: self._convex_setup(ev, usable, setup.objective.terms)
        return setup

    def _make_setup(
        self,
        ev: precision.Evaluation,
        usable: list[int],
        dy: list[Any],
        gradients: Mapping[int, Any],
        terms: list[Any] | None,
    ) -> Setup:
        """The gradient check's state; ``terms`` (output term scales) are measured when None."""
        b = self.b
        dy64 = [b.as_float64(d) if d is not None else None for d in dy]  # ours: no copy needed
        objective = Objective(
            self.plan.forward,
            self.plan.params,
            ev.base,
            {i: b.as_float64(ev.base[i]) for i in usable},
            ev.grid,
            dy64,
            b,
            self.calls,
        )
        objective.base_outputs = [b.float64(y) if d is not None else None for y, d in zip(ev.outputs, dy64)]
        if terms is None and sum(int(np.prod(tuple(ev.base[i].shape))) for i in usable) <= TERMS_LIMIT:
            objective.measure_terms(np.random.default_rng([self.plan.seed, 3]))
        elif terms is not None:
            objective.terms = terms  # per output: the same whatever grad_output weighs them
        noise_eps = objective_noise(ev.noise_eps)
        spread = objective.base_spread()
        host_values = {i: np.asarray(to_numpy(objective.base64[i]), dtype=np.float64) for i in usable}
        # gradients are copied once: a layer may hand back a buffer its next backward call reuses
        gradients64 = {i: b.float64(gradients[i]) for i in usable}
        return Setup(
            objective,
            noise_eps * spread,
            self.plan.names,
            gradients64,
            {i: np.asarray(to_numpy(gradients64[i]), dtype=np.float64) for i in usable},
            host_values,
            {i: step_fraction(ev.grid[i]) for i in usable},
            {i: ev.analytic_eps[i] for i in usable},
            noise_eps,
            self.plan.rtol,
            self.plan.atol,
            np.random.default_rng([self.plan.seed, 1]),
        )

    def _jitter(self, ev: precision.Evaluation, usable: list[int]) -> dict[int, np.ndarray]:
        """|g - g at inputs and grad_output nudged by ~NUDGE_ULPS float64 ulps|, float64 backward,
        the largest over JITTER_NUDGES nudges.

        Nudging grad_output moves a gradient by ulps of the terms it sums (a bias gradient
        that cancels to ~0); nudging the inputs, by ulps of its coefficients' rounding. Nudges
        have random signs and magnitudes, and several are taken: a layer blind to some nudges
        (batch norm over two values ignores moving both alike) must not look exact, nor one
        whose rounding happened to cancel in one nudged run."""
        if not ev.float64_backward:
            return {}
        rng = np.random.default_rng([self.plan.seed, 4])
        worst: dict[int, np.ndarray] = {}
        for _ in range(JITTER_NUDGES):
            try:
                moved = self._nudged_gradients(ev, usable, rng)
            except LayerCallError:
                return {}
            for i, change in moved.items():
                worst[i] = np.maximum(worst[i], change) if i in worst else change
        return worst

    def _nudged_gradients(
        self, ev: precision.Evaluation, usable: list[int], rng: np.random.Generator
    ) -> dict[int, np.ndarray]:
        b, nudge = self.b, precision.NUDGE_ULPS * eps("float64")

        def nudged(x: Any) -> Any:
            x *= 1 + nudge * b.from_numpy(signed_magnitudes(rng, tuple(x.shape)))  # 0-d stays an array
            return x

        inputs = [nudged(x) if k in usable else x for k, x in enumerate(contracts.snapshot(b, ev.base))]
        dy = [nudged(b.float64(d)) if d is not None else None for d in self.dy_values]
        moved = self._call_backward(dy, inputs)
        return {
            i: np.abs(to_numpy(moved[i]).astype(np.float64) - to_numpy(ev.gradients[i]).astype(np.float64))
            for i in usable
            if moved[i] is not None and tuple(moved[i].shape) == tuple(ev.gradients[i].shape)
        }

    def _backward_as_evaluated(self, ev: precision.Evaluation, dy: list[Any]) -> list[Any]:
        """Backward for another grad_output, called the way ``ev.gradients`` were: on the float64
        base point when they came from the float64 run, else on fresh copies of the inputs."""
        b = self.b
        if ev.float64_backward:
            dy64 = [b.float64(d) if d is not None else None for d in dy]
            return self._call_backward(dy64, contracts.snapshot(b, ev.base))
        return self._call_backward(dy, self._fresh_inputs())

    def _linearity_residuals(self, ev: precision.Evaluation, usable: list[int]) -> dict[int, np.ndarray]:
        """|g(dy) + g(d) - g(dy + d)| of the backward that produced ``ev.gradients``: its rounding,
        measured, when it is linear in grad_output; nothing when it is not (a nonlinear
        backward's residual is its bug, which must not pass for rounding)."""
        if not self.linear:
            return {}
        b, rng = self.b, np.random.default_rng([self.plan.seed, 2])
        # the identity is exact only if dy + d is formed in the dtype the backward runs in
        dy = [b.float64(d) if d is not None and ev.float64_backward else d for d in self.dy_values]
        other = [
            None if d is None else b.astype(b.from_numpy(rng.uniform(-1.5, 1.5, tuple(d.shape))), d.dtype)
            for d in dy
        ]
        try:
            g_other = self._backward_as_evaluated(ev, other)
            both = contracts.snapshot(b, other)
            for d, e in zip(dy, both):
                if e is not None:
                    e += d  # in place: 0-d arrays stay arrays
            g_both = self._backward_as_evaluated(ev, both)
        except LayerCallError:
            return {}
        out = {}
        for i in usable:
            parts = [
                to_numpy(g).astype(np.float64)
                for g in (ev.gradients[i], g_other[i], g_both[i])
                if g is not None
            ]
            if len(parts) == 3 and parts[0].shape == parts[1].shape == parts[2].shape:
                out[i] = np.abs(parts[0] + parts[1] - parts[2])
        return out

    def _convex_setup(
        self, ev: precision.Evaluation, usable: list[int], terms: list[Any] | None
    ) -> Setup | None:
        """The same check with |grad_output| (see ``gradient._convex_retry``)."""
        dy = [self.b.xp.abs(d) if d is not None else None for d in self.dy_values]
        try:
            grads = self._backward_as_evaluated(ev, dy)
        except LayerCallError:
            return None
        _, ok = contracts.gradient_contract(grads, self.plan.inputs, self.plan.names, usable)
        if set(ok) != set(usable):
            return None
        return self._make_setup(ev, usable, dy, {i: grads[i] for i in usable}, terms)

    def _within_budget(self, mode: str, total: int) -> str:
        """Element-wise costs ~4 forward calls per element: refuse it when that is too much."""
        seconds = 4 * total * self.forward_seconds
        if mode != "elementwise" or (total <= ELEMENTWISE_MAX and seconds <= ELEMENTWISE_SECONDS):
            return mode
        self.add(
            [
                Finding(
                    "budget",
                    f"element-wise mode would take ~{4 * total} forward calls (~{seconds:.0f} s) for {total} "
                    f"elements (limits: {ELEMENTWISE_MAX} elements, {ELEMENTWISE_SECONDS:.0f} s); switched "
                    "to projections",
                    severity=WARNING,
                )
            ]
        )
        return "projection"

    def _reports(self, setup: Setup, usable: list[int]) -> list[Any]:
        total = sum(setup.host_values[i].size for i in usable)
        mode = self.plan.mode
        if mode == "auto":
            mode = "elementwise" if total <= ELEMENTWISE_LIMIT else "projection"
        if "mode_used" not in self.result.settings:  # (asked again when the grid changes)
            self.result.settings["mode_used"] = self._within_budget(mode, total)
        mode = self.result.settings["mode_used"]
        if mode == "elementwise":
            return [elementwise_report(setup, i) for i in usable]
        # One random direction misses a bug only if <error, d> falls under the tolerance: with
        # float64 differences that is ~1e-7 of the signal, so one direction suffices; rounding
        # to a float32 grid leaves ~1e-3, and a second direction squares the miss probability.
        exact = all(setup.objective.grid[i] == "float64" for i in usable)
        return projection_reports(setup, usable, 1 if exact else 2)


def _refuse_huge(outputs: tuple[Any, ...], limit: int, inputs: Sequence[Any]) -> None:
    size = sum(int(np.prod(tuple(y.shape))) * y.dtype.itemsize for y in outputs)
    if size > limit:
        given = sum(int(np.prod(tuple(x.shape))) * x.dtype.itemsize for x in inputs if is_array(x))
        raise LayerCallError(
            "forward",
            f"returned {size / 2**30:.3g} GiB of outputs for {given} bytes of inputs "
            f"(max_output_bytes={limit}); refusing to read them",
        )


def _nothing_differentiated(plan: Plan) -> Finding:
    """A check that compared no gradient proves nothing: it must not read as a pass."""
    if plan.diff:
        why = "no gradient could be compared with finite differences"
    elif any(is_floating(x) for x in plan.inputs):
        why = "wrt selects no input"
    else:
        kinds = ", ".join(f"{n} {dtype_name(x)}" for n, x in zip(plan.names, plan.inputs) if is_array(x))
        why = f"no input is floating ({kinds}: integer inputs are taken as labels; pass float arrays)"
    return Finding("nothing_differentiated", f"nothing was differentiated, so backward went unchecked: {why}")


def _internal_finding(exc: Exception) -> Finding:
    import traceback

    return Finding(
        "internal",
        f"gradcheck-kit failed on this layer: {type(exc).__name__}: {exc}; please report it",
        traceback="".join(traceback.format_exception(exc)),
    )


def _structure_changes(stage: str, first: tuple[Any, ...], second: tuple[Any, ...]) -> list[Finding]:
    shapes = [tuple(a.shape) for a in first], [tuple(a.shape) for a in second]
    if shapes[0] == shapes[1] and [dtype_name(a) for a in first] == [dtype_name(a) for a in second]:
        return []
    return [
        Finding(
            "determinism",
            f"{stage} returned outputs of shapes {shapes[0]} then {shapes[1]} on identical inputs",
        )
    ]


def _exception_finding(exc: LayerCallError) -> Finding:
    kind = "exception" if exc.exception is not None else "structure"
    return Finding(kind, f"{exc.stage} {exc.message}", traceback=exc.traceback, details={"stage": exc.stage})


__all__ = ["check", "check_case", "eps"]
