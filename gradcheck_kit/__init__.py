"""gradcheck-kit: is your hand-written backward pass right, and if not, where and why?"""

from __future__ import annotations

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
    "RegistrationError",
    "Registry",
    "__version__",
    "check",
    "check_case",
    "from_autograd_function",
    "from_cache_style",
    "from_layer_object",
    "load_entry_points",
    "register",
    "registry",
]
