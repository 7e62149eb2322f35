"""Diagnosis: where the gradient is wrong and the likely bug, named only when the evidence fits.

For each failing input we have, over the probed elements, the analytic map A, the numeric map N
and the failing mask. Patterns are tried from the most specific fit to the vaguest localization:

- map fits: A = c N (a constant factor, e.g. 1/N or k^2; c = -1 is a sign flip); A = T(N) for a
  reflection of the spatial axes (dW flipped) or a transposition of equal axes; N = f A with f an
  activation's derivative or grad_output itself (a missing chain-rule factor);
- finite-difference hypotheses (``variants``): kernel not rotated, sum over batch or filters
  missing, dY not dilated by the stride;
- structure: failures only where an element feeds several outputs (overwrite instead of
  accumulate), only in a band at the borders (a padding crop);
- localization: everywhere, or only some batch items, channels, filters, border band or stride
  grid.

Each named pattern carries its measured fit. Contract findings (mutation of grad_output,
nondeterminism) name their own cause.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from .._engine.setup import Setup
from .._ground.backends import to_numpy
from .._ground.geometry import largest, shifted, shifts, spatial_axes
from .._result import InputReport
from . import conjugate, signatures, variants
from .evidence import FIT, Evidence, Pattern, border_width, padded, pct, relative_residual


def diagnose(report: InputReport, setup: Setup | None, *, first_input: bool) -> list[Pattern]:
    """Named patterns that fit this failing input, best first (possibly none)."""
    evidence = Evidence.of(report)
    found: list[Pattern] = _ties(report) or _shared_kinks(report)
    if not found and setup is not None:
        found = conjugate.conj_missing(setup, report.index)
    if found:
        return found
    if evidence is not None and evidence.numeric.size:
        found += signatures.zero_maps(evidence) or _factor(evidence)
        if not found:
            found += _chain_factor(evidence, setup, report.index)
        if not found and setup is not None:
            found += signatures.normalized_axis(evidence, setup.host_values[report.index], first_input)
    if not found:
        found += _transforms(evidence, setup, report, first_input)
    if not found and setup is not None:
        found += _hypotheses(setup, report.index)
    if not found and evidence is not None:
        found += _structure(evidence, padded(setup.objective.params if setup is not None else {}))
    return found


def _ties(report: InputReport) -> list[Pattern]:
    """Every element passed alone, but groups of tied elements fail together (``ties``): their
    gradients summed are too large (each tied maximum got the full gradient) or too small."""
    groups = report.evidence.get("ties") or []
    if not groups or not report.evidence.get("ties_alone"):
        return []
    ratios = [g["analytic"] / g["numeric"] for g in groups if g["numeric"]]
    count = sum(g["elements"] for g in groups)
    if ratios and all(r > 1 + 10 * FIT for r in ratios):
        return [
            Pattern(
                "tie_gradient_duplicated",
                f"tied elements each got the full gradient: along the {count} tied elements together "
                f"the analytic slope is {_ratio_words(ratios)} the true one (a mask like window == "
                "window.max() picks every tied maximum); give it to one of them or split it",
                1.0,
                {"ratios": ratios},
            )
        ]
    if ratios and all(0 <= r < 1 - 10 * FIT for r in ratios):
        return [
            Pattern(
                "tie_gradient_dropped",
                f"tied elements got too little gradient: along the {count} tied elements together the "
                f"analytic slope is {_ratio_words(ratios)} the true one; one of them (or each, split) "
                "must receive it",
                1.0,
                {"ratios": ratios},
            )
        ]
    return []


def _shared_kinks(report: InputReport) -> list[Pattern]:
    """Every element passed alone on its kink, but the kinks shifted together (where the layer
    is smooth) disagree with the slope (``shared_kinks``): the per-element conventions at the
    kinks are not one subgradient."""
    shared = report.evidence.get("shared_kinks")
    if not shared:
        return []
    return [
        Pattern(
            "kinks_inconsistent",
            f"the gradients at kinks disagree with each other: each of the {shared['elements']} "
            f"elements on a kink (of {shared['inputs']}) passes alone, but shifted together, where the "
            f"layer is smooth, their gradients sum to {shared['analytic']:.6g} against the true slope "
            f"{shared['numeric']:.6g}; use one convention for every term at the kink (where(d >= 0, 1, -1) "
            "for one input and -sign(d) for the other, or >= in one mask and > in its partner, do not "
            "add up)",
            1.0,
            dict(shared),
        )
    ]


def _ratio_words(ratios: list[float]) -> str:
    low, high = min(ratios), max(ratios)
    return f"{low:.3g}×" if high - low <= FIT * high else f"{low:.3g}× to {high:.3g}×"


def _factor(ev: Evidence) -> list[Pattern]:
    """A = c N everywhere probed."""
    n, a = ev.numeric, ev.analytic
    denominator = float(n @ n)
    if denominator == 0:
        return []
    c = float(a @ n) / denominator
    residual = relative_residual(a, c * n)
    if residual > ev.fit or abs(c - 1) <= 10 * residual or c == 0:  # c tells from 1 by its own fit
        return []
    if _distinct(n) < 3 and not _simple(c):
        return []  # two numbers fit some ratio or other: only a simple one says something
    if abs(c + 1) < 10 * ev.fit:
        return [
            Pattern("sign_flipped", f"sign flipped: analytic = -numeric (fit {pct(residual)})", 1 - residual)
        ]
    ratio = _fraction(c, max(ev.fit, 10 * residual) if ev.fit > FIT else max(10 * residual, 1e-9))
    digits = _digits(c)
    words = digits + (f" ≈ {ratio}" if ratio and ratio not in ("1", digits) else "")
    return [
        Pattern(
            "constant_factor",
            f"gradient off by a constant factor: analytic = {words} × numeric (fit {pct(residual)})",
            1 - residual,
            {"factor": c, "fraction": ratio},
        )
    ]


def _distinct(values: np.ndarray) -> int:
    """How many different nonzero magnitudes (to 1e-6) ``values`` holds."""
    magnitudes = np.abs(values[values != 0])
    if not magnitudes.size:
        return 0
    return int(np.unique(np.round(np.log(magnitudes) / 1e-6)).size)


def _digits(c: float) -> str:
    """``c`` to 6 significant digits, or as many more as tell it from 1 (1.000003, not 1)."""
    for digits in range(6, 17):
        words = f"{c:.{digits}g}"
        if float(words) != 1.0:
            return words
    return repr(c)


def _fraction(c: float, fit: float = FIT) -> str | None:
    """``1/8``, ``9``, ``-1/2``: a simple fraction within ``fit`` of ``c``, if there is one. ``fit``
    is what the factor's own fit allows (sqrt(7/8) measured to 1e-10 is not 29/31, 7e-5 off).
    A looser fit (a low-precision gradient) admits only small denominators: within 0.5% some
    fraction with a denominator under 256 is always near."""
    guess = Fraction(c).limit_denominator(256 if fit <= FIT else 16)
    if guess.numerator == 0 or abs(float(guess) - c) > fit * abs(c) or abs(guess.numerator) > 4096:
        return None
    return str(guess)


def _simple(c: float) -> bool:
    guess = Fraction(c).limit_denominator(16)
    return abs(guess.numerator) <= 16 and abs(float(guess) - c) <= 1e-6 * abs(c)


def _transforms(
    ev: Evidence | None, setup: Setup | None, report: InputReport, first_input: bool
) -> list[Pattern]:
    """A = T(N) for T a reflection of the spatial axes, a swap of two equal axes or a small
    shift of the spatial axes: judged on the maps when every element was probed, else by a
    projection check of T^-1(A) (``variants.transformed``)."""
    A = report.analytic_map if report.analytic_map is not None else None
    if A is None:
        return []
    tolerance = ev.fit if ev is not None else FIT
    candidates = [
        c for c in _candidates(A, first_input, setup) if _moved(A, c[2], c[3], tolerance) >= MOVED_MIN
    ]
    for name, message, inverse, valid in candidates:
        fit = _transform_fit(ev, setup, report.index, inverse, valid)
        if fit is None:
            continue
        if any(
            other != name and _coincide(inverse, alt, valid, tolerance) for other, _, alt, _ in candidates
        ):
            return []  # another transform predicts the same gradient here: this case cannot tell
        return [Pattern(name, f"{message} (fit {pct(fit)})", 1 - fit)]
    return []


MOVED_MIN = 4  # a transform fitted on fewer moved elements fits small cases by coincidence


def _moved(A: np.ndarray, inverse: np.ndarray, valid: np.ndarray | None, fit: float) -> int:
    """How many elements the transform changes (where it is defined)."""
    keep = np.ones(A.shape, dtype=bool) if valid is None else valid
    scale = float(np.max(np.abs(A))) if A.size else 0.0
    return int(np.count_nonzero((np.abs(inverse - A) > fit * scale) & keep))


def _coincide(a: np.ndarray, b: np.ndarray, valid: np.ndarray | None, fit: float) -> bool:
    keep = np.ones(a.shape, dtype=bool) if valid is None else valid
    return relative_residual(a[keep], b[keep]) <= 2 * fit


def _candidates(
    A: np.ndarray, first_input: bool, setup: Setup | None
) -> list[tuple[str, str, np.ndarray, np.ndarray | None]]:
    """(name, message, T^-1(A), valid elements) for each transform worth trying."""
    out: list[tuple[str, str, np.ndarray, np.ndarray | None]] = []
    axes = spatial_axes(A.ndim) if A.ndim >= 2 else ()
    if axes and any(A.shape[k] > 1 for k in axes):
        if first_input:
            out.append(
                ("reflected", "gradient reflected along the spatial axes", np.flip(A, axis=axes), None)
            )
        else:
            out.append(
                (
                    "dw_flipped",
                    "dW flipped: the kernel gradient is rotated 180° "
                    "(the 180°-rotated analytic gradient matches)",
                    np.flip(A, axis=axes),
                    None,
                )
            )
    for p in range(A.ndim):
        for q in range(p + 1, A.ndim):
            if A.shape[p] == A.shape[q] > 1:
                out.append(
                    (
                        "transposed_axes",
                        f"transposed axes: analytic = numeric with axes {p} and {q} swapped",
                        np.swapaxes(A, p, q),
                        None,
                    )
                )
    if first_input and A.ndim >= 3 and setup is not None:
        reach = largest(setup.objective.params, "padding", "pad") or 1
        for shift in shifts(len(axes), reach)[1:]:
            moved, valid = shifted(A, axes, tuple(-s for s in shift))
            out.append(
                (
                    "padding_crop",
                    f"gradient shifted by {list(shift)}: the padding was cropped at the wrong offset",
                    moved,
                    valid,
                )
            )
    return out


def _transform_fit(
    ev: Evidence | None, setup: Setup | None, i: int, inverse: np.ndarray, valid: np.ndarray | None
) -> float | None:
    """The residual of T^-1(A) against the truth when below the evidence's fit, else None."""
    if ev is not None and ev.complete:
        _, N = ev.maps()
        keep = np.ones(N.shape, dtype=bool) if valid is None else valid
        residual = relative_residual(inverse[keep], N[keep])
        return residual if residual <= ev.fit else None
    if setup is None:
        return None
    verdict = variants.transformed(setup, i, inverse, valid)
    return verdict.relative_error if verdict.holds else None


def _chain_factor(ev: Evidence, setup: Setup | None, i: int) -> list[Pattern]:
    """N = f A with f a derivative the backward forgot to multiply by."""
    if setup is None or not ev.complete:
        return []
    candidates = _chain_candidates(setup, i)
    A, N = ev.maps()
    for label, factor in candidates.items():
        if factor.shape != A.shape:
            continue
        residual = relative_residual(N, factor * A)
        if residual <= ev.fit and relative_residual(N, A) > 10 * ev.fit:
            return [
                Pattern(
                    "missing_chain_factor",
                    f"missing chain-rule factor: numeric / analytic = {label} (fit {pct(residual)})",
                    1 - residual,
                    {"factor": label},
                )
            ]
    return []


def _chain_candidates(setup: Setup, i: int) -> dict[str, np.ndarray]:
    # (a backward that never multiplied grad_output in ignores it: the linearity contract of
    # ``checks`` names that exactly, as ``grad_output_ignored``)
    x = setup.host_values[i]
    out: dict[str, np.ndarray] = {}
    outputs = [to_numpy(y) for y in setup.objective.base_outputs if y is not None]
    with np.errstate(over="ignore", invalid="ignore"):
        s = 1 / (1 + np.exp(-x))
        out["sigmoid'(x) = s(1 - s)"] = s * (1 - s)
        out["1 - s(x) (half of sigmoid's derivative)"] = 1 - s
        out["tanh'(x) = 1 - tanh(x)^2"] = 1 - np.tanh(x) ** 2
        out["relu'(x) = (x > 0)"] = (x > 0).astype(float)
        if len(outputs) == 1:
            y = outputs[0]
            out["y (1 - y): sigmoid's derivative from its output"] = y * (1 - y)
            out["1 - y^2: tanh's derivative from its output"] = 1 - y**2
    return out


def _hypotheses(setup: Setup, i: int) -> list[Pattern]:
    held = [(name, v) for name, h in variants.HYPOTHESES.items() if (v := h.test(setup, i)).holds]
    if len(held) != 1:
        return []  # none, or several explanations fitting this case equally: it cannot tell them apart
    name, verdict = held[0]
    message = variants.HYPOTHESES[name].message.format(which=verdict.which)
    return [
        Pattern(
            name,
            f"{message} (relative error {verdict.relative_error:.1e})",
            max(0.0, 1 - verdict.relative_error),
        )
    ]


def _structure(ev: Evidence, padded: bool) -> list[Pattern]:
    return _overwrite(ev) or _border(ev, padded)


def _overwrite(ev: Evidence) -> list[Pattern]:
    """Failures exactly where an element feeds several windows: the second write won. An
    element in one window moves that window's outputs in every channel, so the fewest outputs
    any element moves is one window's worth; elements moving more sit in several."""
    moved = ev.report.moved_map
    if moved is None:
        return []
    moved = moved[ev.probed]
    if np.isnan(moved).any() or not ev.failing.any() or not (moved > 0).any():
        return []
    one_window = float(moved[moved > 0].min())
    shared, single = moved > one_window, moved == one_window
    if ev.failing[~shared].any() or not (single & ~ev.failing).any():
        return []
    share = float(ev.failing[shared].mean())
    if share < 0.5:
        return []
    return [
        Pattern(
            "overwrite_not_accumulate",
            "overwrite instead of accumulate: only elements feeding several outputs (overlapping "
            "windows, a value used at several steps) are wrong "
            f"({int(ev.failing.sum())} of {int(shared.sum())} such elements)",
            share,
        )
    ]


def _border(ev: Evidence, padded: bool) -> list[Pattern]:
    band = border_width(ev.report, padded=padded)
    if band is None:
        return []
    return [
        Pattern(
            "border_only",
            f"errors only on the borders (width {band}): a padding crop or missing edge contributions",
            1.0,
            {"width": band},
        )
    ]
