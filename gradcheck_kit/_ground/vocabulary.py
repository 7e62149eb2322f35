"""One vocabulary: the dtypes, backends, check modes and entry-point group gradcheck-kit names
and accepts, defined once. Standard library only: the pytest plugin reads it in every run."""

from __future__ import annotations

# floating dtypes, least precise first
FLOAT_DTYPES = ("float16", "bfloat16", "float32", "float64")
EPS = {"float16": 2.0**-10, "bfloat16": 2.0**-7, "float32": 2.0**-23, "float64": 2.0**-52}
MANTISSA_BITS = {"float16": 10, "bfloat16": 7, "float32": 23, "float64": 52}
# what NumPy cases can be cast to (NumPy has no bfloat16), and so what the CLI and the plugin
# check layers in
NUMPY_FLOATS = ("float64", "float32", "float16")
# what the CLI and the plugin accept: bfloat16 cases are cast on a backend that has it (torch)
CASE_DTYPES = (*NUMPY_FLOATS, "bfloat16")
DEFAULT_DTYPES = ("float64", "float32")
BFLOAT16_LIBRARIES = ("torch",)

LIBRARIES = ("numpy", "cupy", "torch", "jax")  # array libraries a check runs on
BACKEND_NAMES = ("numpy", "torch", "torch:cuda", "cupy", "jax")  # as named on the command line
# ... with devices (cupy:1, torch:cuda:0, jax:gpu:0); ASCII digits only, whatever the regex flags
BACKEND_PATTERN = (
    r"numpy|torch(:cpu|:cuda(:[0-9]+)?)?|cupy(:[0-9]+)?|jax(:cpu|:(gpu|cuda|rocm|tpu)(:[0-9]+)?)?"
)
GPU_BACKEND_PATTERN = r"cupy(:[0-9]+)?|torch:cuda(:[0-9]+)?|jax:(gpu|cuda|rocm|tpu)(:[0-9]+)?"
BACKENDS_ACCEPTED = "numpy, torch, torch:cpu, torch:cuda[:N], cupy[:N], jax, jax:cpu, jax:gpu[:N]"
DEFAULT_BACKENDS = ("numpy",)

MODES = ("auto", "elementwise", "projection")

DEFAULT_TIMEOUT = 60.0  # seconds per check: the CLI's --timeout, the plugin's --gradcheck-timeout

ENTRY_POINT_GROUP = "gradcheck_kit.layers"  # packages advertise their layers here


def dtype_problem(backend: str, dtype: str) -> str | None:
    """Why layers cannot be checked in ``dtype`` on the backend named ``backend`` (None: they can)."""
    library = backend.partition(":")[0]
    if dtype == "bfloat16" and library not in BFLOAT16_LIBRARIES:
        return f"{library} has no bfloat16; bfloat16 cases are checked on --backend torch"
    return None
