"""The ``gradcheck`` fixture: gradient checks in hand-written tests, with the run's seed, profile,
max examples, backends, dtypes, time limit per check and example database; a failure raises
``gk.GradientMismatch`` (an AssertionError) carrying the minimal failing case, an unavailable
backend skips the test, and every result joins the terminal summary and the reports. (The
checks run in the test's own process, as the test does.)

    def test_my_conv_on_large_images(gradcheck):
        gradcheck("my_conv2d", max_examples=200)          # property_check, raises on failure

    def test_my_conv_on_one_input(gradcheck):
        gradcheck.check(conv_forward, conv_backward, (x, w), {"stride": 2})   # one gk.check
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from . import state


class Gradcheck:
    """What the ``gradcheck`` fixture returns. ``seed`` is this test's seed (the run's
    ``--gradcheck-seed`` + crc32(node id)); ``backends``, ``dtypes``, ``profile`` and
    ``max_examples`` are the run's; ``results`` what this test checked so far."""

    def __init__(self, item: pytest.Item) -> None:
        settings = state.settings(item.config)
        self._item = item
        self.seed: int = settings.item_seed(item.nodeid)
        self.backends: tuple[str, ...] = settings.backends
        self.dtypes: tuple[str, ...] = settings.dtypes
        self.profile: str = settings.resolved_profile()
        self.max_examples: int | None = settings.max_examples
        self.timeout: float | None = settings.timeout  # --gradcheck-timeout (None: no limit)
        self.database: str = state.database(item.config)
        self.results: list[Any] = []

    def __call__(
        self,
        layer: Any,
        *,
        backend: str | None = None,
        dtypes: Sequence[str] | None = None,
        max_examples: int | None = None,
        **options: Any,
    ) -> Any:
        """``gk.property_check`` of ``layer`` (a registered name, a ``LayerSpec`` or a class
        decorated with ``gk.register``) on ``backend`` (default: the first of
        ``--gradcheck-backends``, else the layer's own: torch for a ``torch.autograd.Function``;
        a torch layer asked to run on NumPy or CuPy skips the test, saying why), drawing the
        dtype from ``dtypes`` (default: ``--gradcheck-dtypes``); ``options`` go to
        ``property_check`` (``mode``, ``rtol``, ``reference=True``, ``blob``, …).
        Returns the ``PropertyResult``."""
        from gradcheck_kit._property.run import property_check

        __tracebackhide__ = True
        backend = backend or self._default_backend(layer)
        self.require(backend)
        self._require_native(layer, backend)
        chosen = tuple(dtypes) if dtypes is not None else self.dtypes
        result = property_check(
            layer,
            backend=backend,
            dtypes=chosen,
            seed=self.seed,
            profile=options.pop("profile", self.profile),
            max_examples=max_examples if max_examples is not None else self.max_examples,
            database=options.pop("database", self.database),
            timeout=options.pop("timeout", self.timeout),
            **options,
        )
        return self._keep(result, chosen[0] if len(chosen) == 1 else None)

    def check(self, forward: Any, backward: Any, inputs: Any, params: Any = None, **options: Any) -> Any:
        """One ``gk.check(forward, backward, inputs, params, seed=self.seed, **options)``.
        Returns the ``CheckResult``."""
        from gradcheck_kit._checks.stages import check

        __tracebackhide__ = True
        if options.get("backend") is not None:
            self.require(options["backend"])
        options.setdefault("seed", self.seed % 2**32)
        options.setdefault("timeout", self.timeout)
        return self._keep(check(forward, backward, inputs, params, **options), None)

    def _default_backend(self, layer: Any) -> str:
        """The first of ``--gradcheck-backends`` when given, else the layer's own."""
        from gradcheck_kit._property.cases import native_backend, resolve_layer

        given = state.settings(self._item.config).backends_given
        return self.backends[0] if given else native_backend(resolve_layer(layer)) or self.backends[0]

    def _require_native(self, layer: Any, backend: str) -> None:
        """Skip the test, with the reason, when a torch layer is asked to run on NumPy or CuPy."""
        from gradcheck_kit._property.cases import backend_mismatch, resolve_layer

        reason = backend_mismatch(resolve_layer(layer), backend)
        if reason is not None:
            pytest.skip(reason)

    def require(self, backend: str) -> None:
        """Skip the test, with the reason, when ``backend`` cannot run here."""
        __tracebackhide__ = True
        reason = state.backend_problem(self._item.config, backend)
        if reason is not None:
            pytest.skip(reason)

    def _keep(self, result: Any, dtype: str | None) -> Any:
        from gradcheck_kit.errors import GradientMismatch

        __tracebackhide__ = True
        self.results.append(result)
        self._item.stash.setdefault(state.FIXTURE_RESULTS, []).append((result, dtype))
        if not result.passed:
            raise GradientMismatch(result.message, result)
        return result

    def __repr__(self) -> str:
        return (
            f"<gradcheck seed={self.seed} backends={','.join(self.backends)} "
            f"dtypes={','.join(self.dtypes)} profile={self.profile}>"
        )
