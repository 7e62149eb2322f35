"""gradcheck-kit: is your hand-written backward pass right, and if not, where and why?"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from ._version import __version__
from .adapters import LayerFunctions, from_autograd_function, from_cache_style, from_layer_object
from .checks import check, check_case
from .errors import (
    CheckTimeout,
    GradcheckError,
    GradientMismatch,
    InvalidArgument,
    RegistrationError,
)
from .registry import Case, LayerSpec, Registry, load_entry_points, register, registry
from .result import CheckResult, Finding, InputReport

if TYPE_CHECKING:
    from . import profiles, strategies
    from .property import PropertyResult, given_layer, layer_cases, property_check

# property testing imports hypothesis (~0.15 s): loaded on first use, not with the package
_LAZY = {
    "PropertyResult": ".property",
    "given_layer": ".property",
    "layer_cases": ".property",
    "property_check": ".property",
    "profiles": ".profiles",
    "strategies": ".strategies",
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = import_module(_LAZY[name], __name__)
    return module if module.__name__.endswith("." + name) else getattr(module, name)

__all__ = [
    "Case",
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
