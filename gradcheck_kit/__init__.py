"""gradcheck-kit: is your hand-written backward pass right, and if not, where and why?"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from ._version import __version__
from .errors import CheckTimeout, GradcheckError, GradientMismatch, InvalidArgument, RegistrationError
from .registry import Case, LayerSpec, Registry, load_entry_points, register, registry

if TYPE_CHECKING:
    from . import profiles, strategies
    from ._adapters.functions import (
        LayerFunctions,
        from_autograd_function,
        from_cache_style,
        from_layer_object,
    )
    from ._adapters.jax_functions import from_custom_jvp, from_custom_vjp
    from ._checks.stages import check, check_case
    from ._property.cases import layer_cases
    from ._property.result import PropertyResult
    from ._property.run import given_layer, property_check
    from ._result import CheckPart, CheckResult, Finding, InputReport

# The rest loads on first use: the pytest plugin imports this package in every test run of every
# project that installs it, and numpy (~0.1 s), hypothesis (~0.15 s) and torch must not come
# along unless a gradient check is actually wanted. (``registry`` and ``errors`` are light and
# stay eager: ``registry`` is also a submodule's name, which an import would otherwise rebind.)
_LAZY = {
    **dict.fromkeys(
        ("LayerFunctions", "from_autograd_function", "from_cache_style", "from_layer_object"),
        "._adapters.functions",
    ),
    **dict.fromkeys(("from_custom_jvp", "from_custom_vjp"), "._adapters.jax_functions"),
    **dict.fromkeys(("check", "check_case"), "._checks.stages"),
    **dict.fromkeys(("given_layer", "property_check"), "._property.run"),
    "layer_cases": "._property.cases",
    "PropertyResult": "._property.result",
    **dict.fromkeys(("CheckPart", "CheckResult", "Finding", "InputReport"), "._result"),
    "profiles": ".profiles",
    "strategies": ".strategies",
}
_SUBMODULES = ("profiles", "strategies")


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = import_module(_LAZY[name], __name__)
    value = module if name in _SUBMODULES else getattr(module, name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "Case",
    "CheckPart",
    "CheckResult",
    "CheckTimeout",
    "Finding",
    "GradcheckError",
    "GradientMismatch",
    "InputReport",
    "InvalidArgument",
    "LayerFunctions",
    "LayerSpec",
    "PropertyResult",
    "RegistrationError",
    "Registry",
    "__version__",
    "check",
    "check_case",
    "from_autograd_function",
    "from_cache_style",
    "from_custom_jvp",
    "from_custom_vjp",
    "from_layer_object",
    "given_layer",
    "layer_cases",
    "load_entry_points",
    "profiles",
    "property_check",
    "register",
    "registry",
    "strategies",
]
