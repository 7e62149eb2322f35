"""The jax backend at the ground: names and devices, conversions (DLPack out, owned copies in),
64-bit values under jax_enable_x64 only where a call carries them, bfloat16 on the host."""

from __future__ import annotations

import numpy as np
import pytest

jax = pytest.importorskip("jax")
jnp = pytest.importorskip("jax.numpy")

from gradcheck_kit._ground import jaxarrays  # noqa: E402
from gradcheck_kit._ground.backends import (  # noqa: E402
    backend_for,
    backend_name,
    dtype_name,
    is_array,
    to_numpy,
)
from gradcheck_kit.errors import InvalidArgument  # noqa: E402


def test_jax_arrays_are_arrays_of_the_jax_library():
    x = jnp.ones(3)
    assert is_array(x) and backend_name(x) == "jax" and dtype_name(x) == "float32"


def test_the_jax_backend_makes_float64_arrays_and_leaves_x64_as_it_was():
    before = jax.config.jax_enable_x64
    b = backend_for("jax")
    x = b.from_numpy(np.linspace(0.0, 1.0, 4))
    assert b.label() == "jax" and dtype_name(x) == "float64"
    assert jax.config.jax_enable_x64 == before
    assert backend_for("jax:cpu").label() == "jax:cpu"


def test_a_jax_device_this_machine_lacks_is_refused_naming_it():
    if any(d.platform == "gpu" for d in jax.devices()):
        pytest.skip("this machine has a JAX GPU")
    with pytest.raises(InvalidArgument, match=r"backend='jax:gpu:7' is unavailable here: "):
        backend_for("jax:gpu:7")


def test_arrays_come_to_the_host_without_a_copy_and_go_to_jax_as_their_own_copy():
    x = jnp.arange(4.0)
    host = jaxarrays.to_host(x)
    assert host.ctypes.data == x.unsafe_buffer_pointer() and not host.flags.writeable
    mine = np.arange(4.0, dtype=np.float32)
    y = jaxarrays.from_host(mine)
    mine[0] = 9.0  # the engine goes on writing into its own array
    assert float(y[0]) == 0.0


def test_bfloat16_arrays_come_to_the_host_as_bfloat16_and_to_numpy_as_float32():
    x = jnp.linspace(-1.0, 1.0, 5, dtype=jnp.bfloat16)
    assert dtype_name(jaxarrays.to_host(x)) == "bfloat16"
    assert to_numpy(x).dtype == np.float32


def test_x64_is_set_only_for_64_bit_calls_and_restored():
    before = jax.config.jax_enable_x64
    with jaxarrays.x64(jaxarrays.needs_x64([np.ones(2)])):
        assert jax.config.jax_enable_x64
    with jaxarrays.x64(jaxarrays.needs_x64([np.ones(2, np.float32)])):
        assert jax.config.jax_enable_x64 == before
    assert jax.config.jax_enable_x64 == before
