"""``gk.check``: run a layer's forward and backward, check the contracts, then the gradient.

Stages, each adding findings to one ``CheckResult``:

1. forward on the caller's arrays (twice: repeatability), watching for writes into the inputs,
   outputs aliasing them, and non-finite values;
2. backward with a random grad_output, watching grad_output and the inputs, and checking the
   number, shapes and dtypes of the gradients; then again at -2 grad_output (repeatability and
   linearity in grad_output in one call);
3. the gradient itself against finite differences on float64 copies (``gradient_stage``); a
   layer that computes in float32 is also compared with its own float64 run;
4. optionally a torch reference: forward values and torch autograd's VJP.

Whatever the layer raises becomes a finding with its traceback; the harness never crashes.
"""

from __future__ import annotations

import importlib.util
import math
import sys
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from .._engine import contracts
from .._engine.calls import LayerCalls, Observed
from .._engine.evaluation import Evaluation
from .._engine.grids import lowest_float, rounds_to
from .._engine.plan import Plan, make_plan, positive_int
from .._engine.reference import compare_with_reference
from .._ground import timeouts
from .._ground.backends import dtype_name, is_array, is_complex, is_floating
from .._ground.draws import signed_magnitudes
from .._ground.invoke import LayerCallError
from .._result import WARNING, CheckResult, Finding
from ..errors import CheckTimeout
from ..registry import Case, LayerSpec
from . import parts, second_order
from .context import Context
from .gradient_stage import judge_gradients, low_precision_findings

MAX_OUTPUT_BYTES = 4 * 2**30  # a forward returning more than this is refused unread


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
    order: int | None = None,
    jvp: Callable[..., Any] | None = None,
    double_backward: Callable[..., Any] | None = None,
) -> CheckResult:
    """Check ``backward`` against ``forward`` at ``inputs``: the contracts, then the gradient.

    Parameters
    ----------
    forward : callable
        ``forward(*inputs, **params)`` returning an array or a tuple of arrays.
    backward : callable
        ``backward(grad_output, *inputs, **params)`` returning one gradient per input (None for
        an input that is not differentiated); with several outputs ``grad_output`` is a tuple.
    inputs : array or sequence of arrays
        NumPy arrays, CuPy arrays, torch tensors or JAX arrays (one library per call), any
        memory layout; JAX inputs may be pytrees (each leaf an input named by its path).
        Integer inputs (labels) are passed through and never differentiated.
    params : mapping, optional
        Static keyword arguments (stride, padding, ...) given to both callables.
    wrt : int, str or sequence of them, optional
        The inputs to differentiate, by index or name (default: every floating input).
    backend : {"numpy", "cupy", "torch", "jax"}, optional
        The library the inputs must belong to (default: whichever they do).
    reference : callable, optional
        A torch function of the same math with forward's signature: forward's values are
        compared with it and backward with torch autograd's VJP (a second, FD-free oracle).
    seed : int, default 0
        Seeds grad_output and every random direction: the same seed, the same check.
    rtol, atol : float, optional
        The error allowed in the analytic gradient itself (default: from its dtype and
        magnitude); finite-difference error is measured, never assumed.
    mode : {"auto", "elementwise", "projection"}, default "auto"
        Probe every element, or one balanced random direction (a failure is then localized);
        "auto" checks by projections first and probes element-wise only the inputs a projection
        fails, up to 512 elements in all (their full error map).
    name : str, optional
        The layer's name in reports (default: forward's qualified name).
    allow_aliasing : bool, default False
        Silences the warning for outputs that are views of inputs.
    timeout : float, optional
        Seconds for the whole check; a layer still running then gets a ``timeout`` finding.
    max_output_bytes : int, default 4 GiB
        Outputs larger than this are refused before anything reads them.
    order : {1, 2}, optional
        2 also checks the second order (``result.checks["second_order"]``: backward's own
        VJP against finite differences of backward), 1 does not; None (default) checks it
        where the layer has a differentiable backward (a torch.autograd.Function's, unless
        ``@once_differentiable``) or a ``double_backward``.
    jvp : callable, optional
        Forward mode, ``jvp(tangents, *inputs, **params)`` returning the output tangents J·v
        (one tangent per input, None for those not moved): checked along random tangents
        against finite differences and against backward (``result.checks["forward_mode"]``).
        A torch.autograd.Function's own ``jvp`` is used without it.
    double_backward : callable, optional
        ``double_backward(grad_grads, grad_output, *inputs, **params)`` returning
        ``(d_inputs, d_grad_outputs)``: the VJP of backward as a function of (inputs,
        grad_output) for ``grad_grads`` (one per input, None for those not differentiated).

    Returns
    -------
    CheckResult
        ``passed``, per-input reports (``inputs``), named findings (``findings``), the cause of
        a failure; ``print(result)`` for the report, ``result.raise_for_failure()`` to assert.

    Raises
    ------
    InvalidArgument
        For arguments gradcheck-kit cannot work with (never for what the layer does: that is a
        finding).

    Examples
    --------
    >>> import numpy as np, gradcheck_kit as gk
    >>> x = np.linspace(-1.0, 1.0, 6)
    >>> gk.check(np.tanh, lambda dy, x: (dy * (1 - np.tanh(x) ** 2),), (x,)).passed
    True
    """

    def planned(complex_outputs: bool = False) -> Plan:
        return make_plan(
            forward=forward,
            backward=backward,
            inputs=inputs,
            params=params,
            wrt=wrt,
            backend=backend,
            seed=seed,
            rtol=rtol,
            atol=atol,
            mode=mode,
            name=name,
            jvp=jvp,
            double_backward=double_backward,
            order=order,
            complex_outputs=complex_outputs,
        )

    limit = timeouts.validate(timeout)
    max_bytes = positive_int("max_output_bytes", max_output_bytes)
    session = _Session(planned(), reference, allow_aliasing, max_bytes)
    try:
        with timeouts.deadline(limit):
            session.run()
            if session.complex_outputs:  # real inputs, complex outputs (an FFT): check the real view
                again = planned(complex_outputs=True)
                session = _Session(again, reference, allow_aliasing, session.max_bytes)
                session.run()
    except CheckTimeout as exc:  # a limit so short that it expired outside the stages' own guard
        session.timed_out(exc)
    return session.result


def check_case(spec: LayerSpec, case: Case, **options: Any) -> CheckResult:
    """``check`` a registered layer on one of its cases.

    Parameters
    ----------
    spec : LayerSpec
        A registered layer (``gk.registry.get(name)``); its ``reference`` and ``wrt`` are used
        unless ``options`` say otherwise. Its torch reference is optional: where torch is not
        installed the check runs without it and says so in a warning finding (``reference
        skipped: torch is not installed``); a ``reference`` in ``options`` is used as given.
    case : Case
        The inputs and params to check it at.
    **options
        Any keyword argument of ``check``.

    Returns
    -------
    CheckResult

    Examples
    --------
    >>> import numpy as np, gradcheck_kit as gk
    >>> spec = gk.register("tanh_doc", forward=np.tanh, backward=lambda dy, x: (dy * (1 - np.tanh(x) ** 2),),
    ...                    into=gk.Registry())
    >>> gk.check_case(spec, gk.Case((np.linspace(-1.0, 1.0, 5),))).passed
    True
    """
    skipped = "reference" not in options and spec.reference is not None and not _torch_installed()
    options.setdefault("reference", None if skipped else spec.reference)
    options.setdefault("wrt", spec.wrt)
    result = check(spec.forward, spec.backward, case.inputs, case.params, name=spec.name, **options)
    if skipped:
        result.findings.append(Finding("reference", REFERENCE_SKIPPED, severity=WARNING))
    return result


REFERENCE_SKIPPED = "reference skipped: torch is not installed"


def _torch_installed() -> bool:
    """Whether ``import torch`` would find torch (without importing it: that takes seconds)."""
    return sys.modules.get("torch") is not None or importlib.util.find_spec("torch") is not None


class _Session:
    """One check: the stages in order, adding findings to ``result``."""

    def __init__(
        self, plan: Plan, reference: Callable[..., Any] | None, allow_aliasing: bool, max_bytes: int
    ):
        self.plan = plan
        self.calls = LayerCalls(plan, plan.backend)
        self.reference = reference
        self.allow_aliasing = allow_aliasing
        self.max_bytes = max_bytes
        self.rng = np.random.default_rng(plan.seed)
        self.originals: list[Any] = []  # private copies of the caller's inputs
        self.forward_seconds = 0.0
        self.outputs_bytes = 0
        self.complex_outputs = False  # real inputs gave complex outputs: check() starts again
        self.result = CheckResult(plan.name, plan.backend.label(), plan.case, plan.seed)
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
        except _ComplexOutputs:
            self.complex_outputs = True
        except CheckTimeout as exc:
            self.timed_out(exc)
        except MemoryError:  # (one inside the layer is the layer's: a LayerCallError above)
            self.add([_memory_finding(self.outputs_bytes)])
        except Exception as exc:  # the harness never crashes, even on its own bug
            self.add([_internal_finding(exc)])
        finally:
            self.result.calls = dict(self.calls.counter)
            self.result.seconds = time.perf_counter() - start

    def timed_out(self, exc: CheckTimeout) -> None:
        if self.result.finding("timeout") is None:
            where = f"{exc} (calls so far: {dict(self.calls.counter)}); the layer hangs or is too slow"
            self.add([Finding("timeout", where)])
        self.result.calls = dict(self.calls.counter)

    def _run_stages(self) -> None:
        self.originals = self.calls.copies(self.plan.inputs)
        outputs, forward_mutated, finite = self._forward_stage()
        dy = self._grad_output(outputs)
        if all(d is None for d in dy):  # nothing to give backward: say so, do not call it
            self.add([_no_real_output(outputs)])
            return
        observed = self._backward_stage(outputs, dy, forward_mutated)
        del dy  # backward's own copy is in ``observed``; this one can be as large as the outputs
        evaluation: Evaluation | None = None
        if observed.usable and finite:  # NaN outputs leave nothing to difference
            verdict = judge_gradients(
                self.calls, observed, self.forward_seconds, referenced=self.reference is not None
            )
            evaluation = verdict.evaluation
            _complex_labels(self.plan, verdict.reports)
            self.result.inputs.extend(verdict.reports)
            self.add(verdict.findings)
            self.result.settings.update(verdict.settings)
        if self.reference is not None:
            found, low = compare_with_reference(self.reference, self.calls, observed, evaluation)
            self.add(found + low_precision_findings(low, self.calls, observed))
        if not self.result.inputs and not self.result.errors:
            self.add([_nothing_differentiated(self.plan)])
        if self.plan.extras is not None:
            self._parts(observed, evaluation)

    def _parts(self, observed: Observed, evaluation: Evaluation | None) -> None:
        """The parts beyond the first-order gradient (``parts``); the second order is a layer of
        its own, checked by ``check`` itself."""
        context = Context(self.plan, self.calls, observed, evaluation, self.result.passed)
        second = second_order.layer(context)
        if isinstance(second, second_order.SecondOrder):
            nested = check(second.forward, second.backward, second.inputs, self.plan.params, **second.options)
            second = second_order.part(second, nested, context)
        if second is not None:
            self.result.checks[second_order.NAME] = second
        self.result.checks.update(parts.others(context))

    # -- stage 1 -----------------------------------------------------------------------------
    def _forward_stage(self) -> tuple[tuple[Any, ...], bool, bool]:
        """forward twice; (outputs, whether it wrote into its inputs, whether all are finite)."""
        plan = self.plan
        started = time.perf_counter()
        y = self.calls.forward(plan.inputs)
        self.forward_seconds = time.perf_counter() - started
        self.outputs_bytes = _bytes(y)
        if plan.view is None and any(is_complex(out) for out in y):
            raise _ComplexOutputs
        _refuse_huge(y, self.max_bytes, plan.inputs)
        labels = ["output"] if len(y) == 1 else [f"output {k}" for k in range(len(y))]
        mutated = contracts.mutations("forward", plan.names, self.originals, plan.inputs)
        self.add(mutated)
        if not self.allow_aliasing:
            self.add(contracts.aliasing(y, plan.inputs, plan.names))
        broken = contracts.nonfinite(y, labels, "forward")
        self.add(broken)
        # ours from here on: the finite differences start from these outputs, and a layer may
        # hand back a buffer that its next call overwrites (one copy, the layer's is let go)
        y = tuple(self.calls.copies(y))
        again = self.calls.forward(self._repeat_inputs(bool(mutated)))
        if not mutated:  # a write on the second call only is the second call's
            mutated = _on_second_call(contracts.mutations("forward", plan.names, self.originals, plan.inputs))
            self.add(mutated)
        self.add(_structure_changes("forward", y, again) or contracts.repeats(y, again, labels, "forward"))
        return y, bool(mutated), not broken

    def _repeat_inputs(self, mutated: bool) -> Sequence[Any]:
        """The caller's own arrays for a repeated call (a copy in another memory layout may take
        another BLAS path and round differently), fresh copies if the first call wrote into them."""
        return self.calls.copies(self.originals) if mutated else self.plan.inputs

    def _grad_output(self, y: tuple[Any, ...]) -> list[Any | None]:
        b = self.calls.backend
        dy: list[Any | None] = []
        for out in y:
            if not is_floating(out):
                dy.append(None)
                continue
            values = b.from_numpy(signed_magnitudes(self.rng, tuple(out.shape)))
            dy.append(values if dtype_name(out) == "float64" else b.astype(values, out.dtype))
        return dy

    # -- stage 2 -----------------------------------------------------------------------------
    def _backward_stage(
        self, outputs: tuple[Any, ...], dy: list[Any | None], forward_mutated: bool
    ) -> Observed:
        plan, calls = self.plan, self.calls
        dy_labels = ["grad_output"] if len(dy) == 1 else [f"grad_output[{k}]" for k in range(len(dy))]
        dy_before = calls.copies(dy)
        # unless forward wrote into them, the caller's arrays still equal our private copies
        inputs_before = calls.copies(plan.inputs) if forward_mutated else self.originals
        # copied: a layer may hand back buffers that its next call overwrites
        try:
            grads = calls.copies(calls.backward(dy, plan.inputs))
        except LayerCallError as exc:
            if any(d is None for d in dy):  # it could not take the None we gave it
                raise _unfed(outputs, exc) from exc
            raise
        self.add(contracts.mutations("backward", dy_labels, dy_before, dy))
        mutated = contracts.mutations("backward", plan.names, inputs_before, plan.inputs)
        self.add(mutated)
        usable = self._gradient_contracts(grads, lowest_float(outputs))
        observed = Observed(
            originals=self.originals,
            outputs=outputs,
            dy=dy_before,
            gradients=grads,
            usable=usable,
            linear=True,
        )
        found, observed.linear = self._repeat_backward(observed, self._repeat_inputs(bool(mutated)))
        self.add(found)
        return observed

    def _gradient_contracts(self, grads: list[Any], computes_in: str) -> list[int]:
        """The inputs whose gradients are usable: count, type, shape, dtype, finite values."""
        plan = self.plan
        found, usable = contracts.gradient_contract(grads, plan.inputs, plan.names, plan.diff, computes_in)
        found, usable = contracts.excuse_coarse(
            found,
            usable,
            grads,
            plan.inputs,
            plan.names,
            lambda i, g: rounds_to(self.calls, self.originals, i, g),
        )
        self.add(found)
        labels = {i: f"d{plan.names[i]}" for i in usable}
        nonfinite = contracts.nonfinite([grads[i] for i in usable], list(labels.values()), "backward")
        self.add(nonfinite)
        broken = {f.input for f in nonfinite}
        return [i for i in usable if labels[i] not in broken]  # already failed, not comparable

    def _repeat_backward(self, observed: Observed, inputs: Sequence[Any]) -> tuple[list[Finding], bool]:
        """Backward again, on -2 grad_output: a backward is linear in grad_output, and scaling by
        a power of two commutes with rounding, so a deterministic one returns exactly -2 times
        the first gradients. One call thus checks repeatability and linearity together (an
        additive term, a grad_output ignored, used nonlinearly); only a mismatch costs two more
        calls, on the same grad_outputs again, to tell nondeterminism from nonlinearity.
        (findings, whether backward is linear)"""
        b, usable = self.calls.backend, observed.usable
        labels = [f"gradient for {self.plan.names[i]}" for i in usable]
        scale = contracts.exact_scale(observed.dy)
        expected = contracts.scaled(b, [observed.gradients[i] for i in usable], scale)
        second = self._backward_copies(contracts.scaled(b, observed.dy, scale), inputs, usable)
        if not contracts.repeats(expected, second, labels, "backward"):
            return [], True
        third = self._backward_copies(contracts.scaled(b, observed.dy, scale), inputs, usable)
        changed = contracts.repeats(second, third, labels, "backward")
        if not changed:
            fourth = self._backward_copies(self.calls.copies(observed.dy), inputs, usable)
            changed = contracts.repeats([observed.gradients[i] for i in usable], fourth, labels, "backward")
        if changed:
            return changed, True
        return contracts.nonlinear(expected, second, labels, scale), False

    def _backward_copies(self, dy: list[Any], inputs: Sequence[Any], usable: list[int]) -> list[Any]:
        grads = self.calls.backward(dy, inputs)
        return [self.calls.backend.copy(grads[i]) if is_array(grads[i]) else grads[i] for i in usable]


def _bytes(arrays: Sequence[Any]) -> int:
    return sum(math.prod(a.shape) * a.dtype.itemsize for a in arrays if is_array(a))


def _complex_labels(plan: Plan, reports: list[Any]) -> None:
    """A complex input's report carries its own dtype; its maps are its (real, imaginary) pairs."""
    if plan.view is None:
        return
    for report in reports:
        if report.index in plan.view.inputs:
            report.dtype = plan.view.dtypes.get(report.index, report.dtype)
            pairs = "checked as (real, imaginary) pairs on a last axis of 2"
            report.note = pairs if report.note is None else f"{report.note}; {pairs}"


class _ComplexOutputs(Exception):
    """Forward returned complex outputs for real inputs: the check runs on the real view."""


def _refuse_huge(outputs: tuple[Any, ...], limit: int, inputs: Sequence[Any]) -> None:
    size = _bytes(outputs)
    if size > limit:
        given = _bytes(inputs)
        raise LayerCallError(
            "forward",
            f"returned {size / 2**30:.3g} GiB of outputs for {given} bytes of inputs "
            f"(max_output_bytes={limit}); refusing to read them",
        )


def _on_second_call(found: list[Finding]) -> list[Finding]:
    for finding in found:
        finding.message = finding.message.replace("forward wrote", "forward wrote, on its second call,", 1)
        finding.details["call"] = 2
    return found


def _not_real(outputs: Sequence[Any]) -> list[str]:
    """``output 1 as bool`` for each output that is not real floating (None grad_output)."""
    named = ["the output"] if len(outputs) == 1 else [f"output {k}" for k in range(len(outputs))]
    return [f"{n} as {dtype_name(y)}" for n, y in zip(named, outputs) if not is_floating(y)]


def _no_real_output(outputs: Sequence[Any]) -> Finding:
    what = ", ".join(_not_real(outputs))
    return Finding(
        "structure",
        f"forward returned no real floating output ({what}): gradcheck-kit differentiates real floating "
        "outputs only, so there is no grad_output to give backward and nothing was checked; return the "
        "real and imaginary parts (or a float version) as floating outputs",
        details={"stage": "forward"},
    )


def _unfed(outputs: Sequence[Any], exc: LayerCallError) -> LayerCallError:
    """Backward failed on the grad_output=None that a non-floating output gets: the output's
    type is the problem, not backward."""
    what = ", ".join(_not_real(outputs))
    unfed = LayerCallError(
        "forward",
        f"returned {what}, which gets no grad_output (gradcheck-kit differentiates real floating outputs "
        f"only): backward was given None for it and {exc.message}; return real floating outputs, or "
        "let backward accept None for this one",
        exc.exception,
    )
    return unfed


def _memory_finding(outputs_bytes: int) -> Finding:
    return Finding(
        "memory",
        f"the check ran out of memory (MemoryError) with {outputs_bytes / 2**30:.3g} GiB of outputs: it "
        "holds a few times the layer's own arrays (grad_output, the outputs at the base point and their "
        "rounding scales, those of two probes); check a smaller case or allow more memory",
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
