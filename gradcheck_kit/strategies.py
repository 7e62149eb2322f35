"""Hypothesis strategies for layer configurations.

Hypothesis draws only small integers and a seed; array values come from
``numpy.random.default_rng(seed)`` (fast, bounded, no subnormals). Geometries are built valid
by construction (output size >= 1), never filtered, and every integer shrinks towards its
minimum: a failing conv shrinks towards batch 1, one channel, stride 1, no padding, so the
parameters left non-minimal are the ones that trigger the bug.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument as HypothesisInvalidArgument

from ._ground.vocabulary import DEFAULT_DTYPES, FLOAT_DTYPES
from .registry import Case

LAYOUTS = ("C", "F", "transposed", "step-sliced", "negative-stride", "offset")


def _check_range(label: str, low: int, high: int) -> None:
    if low > high:
        raise HypothesisInvalidArgument(f"min_{label}={low} must not exceed max_{label}={high}")
    if low < 0:
        raise HypothesisInvalidArgument(f"min_{label}={low} must be >= 0")


def dtypes(*, floating: Sequence[str] = DEFAULT_DTYPES) -> st.SearchStrategy[str]:
    """Floating dtype names; shrinks towards the first (float64).

    Parameters
    ----------
    floating : sequence of str, default ("float64", "float32")
        The names to draw from: ``float16``, ``bfloat16``, ``float32``, ``float64``.

    Returns
    -------
    hypothesis.strategies.SearchStrategy of str

    Raises
    ------
    hypothesis.errors.InvalidArgument
        When ``floating`` is empty or names another dtype.

    Examples
    --------
    >>> from hypothesis import find, settings
    >>> from gradcheck_kit import strategies
    >>> names = strategies.dtypes(floating=("float32", "float16"))
    >>> find(names, lambda d: True, settings=settings(database=None))
    'float32'
    """
    bad = [d for d in floating if d not in FLOAT_DTYPES]
    if not floating or bad:
        raise HypothesisInvalidArgument(f"floating={floating!r}: use {'/'.join(FLOAT_DTYPES)}")
    return st.sampled_from(tuple(floating))


def array_shapes(
    *, min_dims: int = 1, max_dims: int = 4, min_side: int = 1, max_side: int = 6
) -> st.SearchStrategy[tuple[int, ...]]:
    """Shapes with independently drawn sides (non-square is the norm).

    They shrink towards ``min_dims`` sides of ``min_side``.

    Parameters
    ----------
    min_dims, max_dims : int, default 1 and 4
        Bounds on the number of dimensions.
    min_side, max_side : int, default 1 and 6
        Bounds on each side.

    Returns
    -------
    hypothesis.strategies.SearchStrategy of tuple of int

    Raises
    ------
    hypothesis.errors.InvalidArgument
        When a minimum exceeds its maximum or is negative (both values named).

    Examples
    --------
    >>> from hypothesis import find, settings
    >>> from gradcheck_kit import strategies
    >>> shapes = strategies.array_shapes(min_dims=2, min_side=3)
    >>> find(shapes, lambda shape: True, settings=settings(database=None))
    (3, 3)
    """
    _check_range("dims", min_dims, max_dims)
    _check_range("side", min_side, max_side)
    return st.lists(st.integers(min_side, max_side), min_size=min_dims, max_size=max_dims).map(tuple)


def memory_layouts(*, layouts: Sequence[str] = LAYOUTS) -> st.SearchStrategy[str]:
    """Names of memory layouts for ``with_layout``; shrinks towards the first (C order).

    Parameters
    ----------
    layouts : sequence of str, default all of ``LAYOUTS``
        ``C``, ``F``, ``transposed``, ``step-sliced``, ``negative-stride``, ``offset``.

    Returns
    -------
    hypothesis.strategies.SearchStrategy of str

    Raises
    ------
    hypothesis.errors.InvalidArgument
        When ``layouts`` is empty or names an unknown layout.

    Examples
    --------
    >>> from hypothesis import find, settings
    >>> from gradcheck_kit import strategies
    >>> find(strategies.memory_layouts(), lambda layout: True, settings=settings(database=None))
    'C'
    """
    unknown = [x for x in layouts if x not in LAYOUTS]
    if not layouts or unknown:
        raise HypothesisInvalidArgument(f"layouts={layouts!r}; accepted: {LAYOUTS}")
    return st.sampled_from(tuple(layouts))


def with_layout(a: np.ndarray, layout: str) -> np.ndarray:
    """A view with ``a``'s values and the named memory layout (strides, offset, order).

    Parameters
    ----------
    a : numpy.ndarray
        The values.
    layout : str
        One of ``LAYOUTS``: ``C``, ``F``, ``transposed`` (C-contiguous transpose, transposed
        back), ``step-sliced`` (every other element of a wider buffer), ``negative-stride``
        (the last axis reversed twice) or ``offset`` (one element into a buffer).

    Returns
    -------
    numpy.ndarray
        Equal to ``a``, in that layout.

    Raises
    ------
    ValueError
        For an unknown layout.

    Examples
    --------
    >>> import numpy as np
    >>> from gradcheck_kit import strategies
    >>> a = strategies.with_layout(np.arange(6.0).reshape(2, 3), "step-sliced")
    >>> a.tolist(), a.strides
    ([[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]], (48, 16))
    """
    a = np.ascontiguousarray(a)
    if layout == "C" or a.ndim == 0:
        return a
    if layout == "F":
        return np.asfortranarray(a)
    if layout == "transposed":
        return np.ascontiguousarray(a.T).T
    if layout == "step-sliced":
        wide = np.zeros((*a.shape[:-1], 2 * a.shape[-1]), dtype=a.dtype)
        wide[..., ::2] = a
        return wide[..., ::2]
    if layout == "negative-stride":
        return np.ascontiguousarray(a[..., ::-1])[..., ::-1]
    if layout == "offset":
        buffer = np.zeros(a.size + 1, dtype=a.dtype)
        buffer[1:] = a.reshape(-1)
        return buffer[1:].reshape(a.shape)
    raise ValueError(f"layout={layout!r} is unknown; accepted: {LAYOUTS}")


def values(
    rng: np.random.Generator, shape: Sequence[int], dtype: str = "float64", *, scale: float = 1.0
) -> np.ndarray:
    """Bounded values with no tiny magnitudes: random sign times uniform [0.1, 1] * scale.

    Parameters
    ----------
    rng : numpy.random.Generator
        The source of randomness (``gk.strategies.cases`` hands builders one).
    shape : sequence of int
        The array's shape.
    dtype : str, default "float64"
        The array's dtype.
    scale : float, default 1.0
        The largest magnitude.

    Returns
    -------
    numpy.ndarray

    Examples
    --------
    >>> import numpy as np
    >>> from gradcheck_kit import strategies
    >>> x = strategies.values(np.random.default_rng(0), (2, 3), "float32", scale=2.0)
    >>> x.dtype, bool(((0.2 <= abs(x)) & (abs(x) <= 2.0)).all())
    (dtype('float32'), True)
    """
    signs = rng.choice([-1.0, 1.0], size=tuple(shape))
    return (signs * rng.uniform(0.1, 1.0, size=tuple(shape)) * scale).astype(dtype)


@dataclass(frozen=True)
class ConvGeometry:
    """A valid convolution: every spatial axis has its own size, kernel, stride, padding.

    Attributes
    ----------
    batch, in_channels, out_channels, groups : int
        The batch size, the channels and the groups (which divide both channel counts).
    input_size, kernel_size, stride, padding, dilation : tuple of int
        One value per spatial axis.
    square : bool, default False
        Kernel size, stride, padding and dilation are the same on every axis, and ``params()``
        gives them as ints (for layers that take ``stride=2``, not ``stride=(2, 2)``).

    Raises
    ------
    ValueError
        When ``square`` is true and the axes' windows differ.

    Examples
    --------
    >>> from gradcheck_kit.strategies import ConvGeometry
    >>> g = ConvGeometry(2, 4, 6, 2, input_size=(5, 7), kernel_size=(3, 3), stride=(2, 1),
    ...                  padding=(1, 0), dilation=(1, 2))
    >>> g.input_shape, g.weight_shape, g.output_shape
    ((2, 4, 5, 7), (6, 2, 3, 3), (2, 6, 3, 3))
    """

    batch: int
    in_channels: int
    out_channels: int
    groups: int
    input_size: tuple[int, ...]
    kernel_size: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    dilation: tuple[int, ...]
    square: bool = False

    def __post_init__(self) -> None:
        _check_square(self.square, self.kernel_size, self.stride, self.padding, self.dilation)

    @property
    def output_size(self) -> tuple[int, ...]:
        """The output's spatial size: ``(n + 2 p - d (k - 1) - 1) // s + 1`` per axis.

        Returns
        -------
        tuple of int
        """
        return tuple(
            (n + 2 * p - d * (k - 1) - 1) // s + 1
            for n, k, s, p, d in zip(
                self.input_size, self.kernel_size, self.stride, self.padding, self.dilation
            )
        )

    @property
    def input_shape(self) -> tuple[int, ...]:
        """The input's shape: ``(batch, in_channels, *input_size)``.

        Returns
        -------
        tuple of int
        """
        return (self.batch, self.in_channels, *self.input_size)

    @property
    def weight_shape(self) -> tuple[int, ...]:
        """The weight's shape: ``(out_channels, in_channels // groups, *kernel_size)``.

        Returns
        -------
        tuple of int
        """
        return (self.out_channels, self.in_channels // self.groups, *self.kernel_size)

    @property
    def output_shape(self) -> tuple[int, ...]:
        """The output's shape: ``(batch, out_channels, *output_size)``.

        Returns
        -------
        tuple of int
        """
        return (self.batch, self.out_channels, *self.output_size)

    def params(self) -> dict[str, Any]:
        """The keyword params of a convolution layer: stride, padding, dilation, groups.

        Returns
        -------
        dict
            Tuples of one value per axis; ints where the geometry is ``square``.
        """
        window = {"stride": self.stride, "padding": self.padding, "dilation": self.dilation}
        return {**_scalars(window, self.square), "groups": self.groups}


def _check_square(square: bool, *windows: tuple[int, ...]) -> None:
    if square and any(len(set(values)) > 1 for values in windows):
        raise ValueError(f"square=True but the axes differ: {windows}")


def _scalars(window: dict[str, tuple[int, ...]], square: bool) -> dict[str, Any]:
    """A square geometry's window as ints (the value every axis shares)."""
    return {key: value[0] for key, value in window.items()} if square else dict(window)


@dataclass(frozen=True)
class _Limits:
    min_side: int
    max_side: int
    max_kernel: int
    max_stride: int
    max_padding: int
    max_dilation: int = 1
    pooling: bool = False  # padding <= kernel // 2


def _window(draw: Any, limits: _Limits) -> tuple[int, int, int, int]:
    """(kernel, dilation, stride, padding) of one axis; the dilated kernel fits in max_side."""
    kernel = draw(st.integers(1, min(limits.max_kernel, limits.max_side)))
    most_dilation = min(limits.max_dilation, (limits.max_side - 1) // (kernel - 1)) if kernel > 1 else 1
    dilation = draw(st.integers(1, most_dilation))
    stride = draw(st.integers(1, limits.max_stride))
    most_padding = min(limits.max_padding, kernel // 2) if limits.pooling else limits.max_padding
    padding = draw(st.integers(0, most_padding))
    return kernel, dilation, stride, padding


def _axes(draw: Any, ndim: int, limits: _Limits, square: bool) -> list[tuple[int, int, int, int, int]]:
    """(size, kernel, dilation, stride, padding) per axis with output size >= 1 and size in
    [min_side, max_side]. Every window first, then per axis the number of outputs and a slack
    below one stride: the size follows from them and the padding (clipped to the side bounds),
    so shrinking the padding keeps the outputs (a stride bug stays a stride bug) and hypothesis
    does not copy one axis into the next (non-square is the norm). A square geometry draws one
    window for every axis; the sizes stay per axis."""
    windows = [_window(draw, limits)] * ndim if square else [_window(draw, limits) for _ in range(ndim)]
    return [(_size(draw, limits, *w), *w) for w in windows]


def _size(draw: Any, limits: _Limits, kernel: int, dilation: int, stride: int, padding: int) -> int:
    span = dilation * (kernel - 1) + 1
    most = (limits.max_side + 2 * padding - span) // stride + 1  # size <= max_side (no slack)
    fewest = -(-(limits.min_side + 2 * padding - span + 1) // stride)  # size >= min_side (most slack)
    outputs = draw(st.integers(max(1, min(fewest, most)), most))
    slack = draw(st.integers(0, stride - 1))
    size = (outputs - 1) * stride + span + slack - 2 * padding
    return min(max(size, limits.min_side), limits.max_side)


def _check_at_least(low: int, **bounds: int) -> None:
    for label, value in bounds.items():
        if value < low:
            raise HypothesisInvalidArgument(f"{label}={value} must be >= {low}")


def _check_bool(**flags: Any) -> None:
    for label, value in flags.items():
        if not isinstance(value, bool):
            raise HypothesisInvalidArgument(f"{label}={value!r} must be True or False")


def conv_geometries(
    ndim: int = 2,
    *,
    min_batch: int = 1,
    max_batch: int = 3,
    max_in_channels: int = 3,
    max_out_channels: int = 3,
    max_groups: int = 2,
    min_side: int = 1,
    max_side: int = 8,
    max_kernel: int = 3,
    max_stride: int = 3,
    max_padding: int = 2,
    max_dilation: int = 2,
    square: bool = False,
) -> st.SearchStrategy[ConvGeometry]:
    """Valid ``ndim``-d convolutions, built valid (output size >= 1) rather than filtered.

    They shrink towards batch 1, 1 channel, kernel 1, stride 1, padding 0, dilation 1, groups 1
    and sides of ``min_side`` (the smallest the kernel fits in). Every axis has its own size,
    kernel, stride and padding (non-square is the norm); sides stay in [min_side, max_side],
    channels within their maxima (groups divide both).

    Parameters
    ----------
    ndim : {1, 2, 3}, default 2
        The number of spatial axes.
    min_batch, max_batch : int, default 1 and 3
        Bounds on the batch size.
    max_in_channels, max_out_channels : int, default 3
        Bounds on the channels.
    max_groups : int, default 2
        Bound on the groups.
    min_side, max_side : int, default 1 and 8
        Bounds on each spatial side of the input.
    max_kernel, max_stride, max_dilation : int, default 3, 3 and 2
        Bounds on each axis' kernel, stride and dilation (the dilated kernel fits in max_side).
    max_padding : int, default 2
        Bound on each axis' padding.
    square : bool, default False
        One kernel size, stride, padding and dilation for every axis, which ``params()`` gives
        as ints: for layers that take scalars (``stride=2``). Input sides are still drawn per
        axis.

    Returns
    -------
    hypothesis.strategies.SearchStrategy of ConvGeometry

    Raises
    ------
    hypothesis.errors.InvalidArgument
        For an ``ndim`` other than 1, 2 or 3, a minimum above its maximum, a maximum below 1
        (``max_padding`` below 0), a ``square`` that is not a bool, each naming the values.

    Examples
    --------
    >>> from hypothesis import find, settings
    >>> from gradcheck_kit import strategies
    >>> geometries = strategies.conv_geometries(ndim=1, min_side=4)
    >>> g = find(geometries, lambda g: True, settings=settings(database=None))
    >>> g.input_shape, g.weight_shape, g.params()
    ((1, 1, 4), (1, 1, 1), {'stride': (1,), 'padding': (0,), 'dilation': (1,), 'groups': 1})
    >>> square = strategies.conv_geometries(ndim=2, square=True)
    >>> g = find(square, lambda g: g.stride[0] == 2, settings=settings(database=None))
    >>> g.stride, g.params()
    ((2, 2), {'stride': 2, 'padding': 0, 'dilation': 1, 'groups': 1})
    """
    if ndim not in (1, 2, 3):
        raise HypothesisInvalidArgument(f"ndim={ndim} must be 1, 2 or 3")
    _check_range("batch", min_batch, max_batch)
    _check_range("side", min_side, max_side)
    _check_at_least(
        1,
        max_in_channels=max_in_channels,
        max_out_channels=max_out_channels,
        max_groups=max_groups,
        max_side=max_side,
        max_kernel=max_kernel,
        max_stride=max_stride,
        max_dilation=max_dilation,
    )
    _check_at_least(0, max_padding=max_padding)
    _check_bool(square=square)
    limits = _Limits(max(min_side, 1), max_side, max_kernel, max_stride, max_padding, max_dilation)
    groups_limit = min(max_groups, max_in_channels, max_out_channels)

    @st.composite
    def build(draw: Any) -> ConvGeometry:
        batch = draw(st.integers(min_batch, max_batch))
        groups = draw(st.integers(1, groups_limit))
        cin = draw(st.integers(1, max_in_channels // groups))
        cout = draw(st.integers(1, max_out_channels // groups))
        size, kernel, dilation, stride, padding = zip(*_axes(draw, ndim, limits, square))
        channels = (cin * groups, cout * groups)
        return ConvGeometry(batch, *channels, groups, size, kernel, stride, padding, dilation, square)

    return build()


@dataclass(frozen=True)
class PoolGeometry:
    """A valid pooling window configuration (torch's rule: padding <= kernel // 2).

    Attributes
    ----------
    batch, channels : int
        The batch size and the channels.
    input_size, kernel_size, stride, padding : tuple of int
        One value per spatial axis.
    square : bool, default False
        Kernel size, stride and padding are the same on every axis, and ``params()`` gives them
        as ints (for layers that take ``kernel_size=2``).

    Raises
    ------
    ValueError
        When ``square`` is true and the axes' windows differ.

    Examples
    --------
    >>> from gradcheck_kit.strategies import PoolGeometry
    >>> g = PoolGeometry(1, 3, input_size=(6, 5), kernel_size=(2, 2), stride=(2, 1), padding=(0, 1))
    >>> g.input_shape, g.output_size, g.overlapping
    ((1, 3, 6, 5), (3, 6), True)
    """

    batch: int
    channels: int
    input_size: tuple[int, ...]
    kernel_size: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    square: bool = False

    def __post_init__(self) -> None:
        _check_square(self.square, self.kernel_size, self.stride, self.padding)

    @property
    def output_size(self) -> tuple[int, ...]:
        """The output's spatial size: ``(n + 2 p - k) // s + 1`` per axis.

        Returns
        -------
        tuple of int
        """
        return tuple(
            (n + 2 * p - k) // s + 1
            for n, k, s, p in zip(self.input_size, self.kernel_size, self.stride, self.padding)
        )

    @property
    def input_shape(self) -> tuple[int, ...]:
        """The input's shape: ``(batch, channels, *input_size)``.

        Returns
        -------
        tuple of int
        """
        return (self.batch, self.channels, *self.input_size)

    @property
    def overlapping(self) -> bool:
        """Whether windows overlap along some axis (stride < kernel).

        Returns
        -------
        bool
        """
        return any(s < k for s, k in zip(self.stride, self.kernel_size))

    def params(self) -> dict[str, Any]:
        """The keyword params of a pooling layer: kernel_size, stride, padding.

        Returns
        -------
        dict
            Tuples of one value per axis; ints where the geometry is ``square``.
        """
        window = {"kernel_size": self.kernel_size, "stride": self.stride, "padding": self.padding}
        return _scalars(window, self.square)


def pool_geometries(
    ndim: int = 2,
    *,
    min_batch: int = 1,
    max_batch: int = 3,
    max_channels: int = 3,
    min_side: int = 1,
    max_side: int = 8,
    max_kernel: int = 3,
    max_stride: int = 3,
    max_padding: int = 1,
    square: bool = False,
) -> st.SearchStrategy[PoolGeometry]:
    """Valid pooling geometries (overlapping windows when stride < kernel).

    They shrink towards batch 1, 1 channel, kernel 1, stride 1, padding 0 and sides of
    ``min_side`` (the smallest the padded window fits in). Padding stays <= kernel // 2
    (torch's rule: every window holds at least one input element); sides stay in
    [min_side, max_side].

    Parameters
    ----------
    ndim : {1, 2, 3}, default 2
        The number of spatial axes.
    min_batch, max_batch : int, default 1 and 3
        Bounds on the batch size.
    max_channels : int, default 3
        Bound on the channels.
    min_side, max_side : int, default 1 and 8
        Bounds on each spatial side of the input.
    max_kernel, max_stride : int, default 3
        Bounds on each axis' window and stride.
    max_padding : int, default 1
        Bound on each axis' padding.
    square : bool, default False
        One kernel size, stride and padding for every axis, which ``params()`` gives as ints:
        for layers that take scalars (``kernel_size=2, stride=2``). Input sides are still
        drawn per axis.

    Returns
    -------
    hypothesis.strategies.SearchStrategy of PoolGeometry

    Raises
    ------
    hypothesis.errors.InvalidArgument
        For an ``ndim`` other than 1, 2 or 3, a minimum above its maximum, a maximum below 1
        (``max_padding`` below 0), a ``square`` that is not a bool, each naming the values.

    Examples
    --------
    >>> from hypothesis import find, settings
    >>> from gradcheck_kit import strategies
    >>> geometries = strategies.pool_geometries(ndim=1, min_side=3)
    >>> g = find(geometries, lambda g: True, settings=settings(database=None))
    >>> g.input_shape, g.params()
    ((1, 1, 3), {'kernel_size': (1,), 'stride': (1,), 'padding': (0,)})
    >>> square = strategies.pool_geometries(ndim=2, square=True)
    >>> find(square, lambda g: g.kernel_size[0] == 2, settings=settings(database=None)).params()
    {'kernel_size': 2, 'stride': 1, 'padding': 0}
    """
    if ndim not in (1, 2, 3):
        raise HypothesisInvalidArgument(f"ndim={ndim} must be 1, 2 or 3")
    _check_range("batch", min_batch, max_batch)
    _check_range("side", min_side, max_side)
    _check_at_least(
        1, max_channels=max_channels, max_side=max_side, max_kernel=max_kernel, max_stride=max_stride
    )
    _check_at_least(0, max_padding=max_padding)
    _check_bool(square=square)
    limits = _Limits(max(min_side, 1), max_side, max_kernel, max_stride, max_padding, pooling=True)

    @st.composite
    def build(draw: Any) -> PoolGeometry:
        batch = draw(st.integers(min_batch, max_batch))
        channels = draw(st.integers(1, max_channels))
        size, kernel, _, stride, padding = zip(*_axes(draw, ndim, limits, square))
        return PoolGeometry(batch, channels, size, kernel, stride, padding, square)

    return build()


def cases(build: Callable[..., Case], /, **strategies: st.SearchStrategy[Any]) -> st.SearchStrategy[Case]:
    """Cases of a layer: draw each keyword from its strategy plus a seed, then ``build`` a Case.

    ``build(numpy.random.default_rng(seed), **drawn)`` makes the case; the drawn keywords and
    the seed are kept in ``Case.meta`` so a failure can be replayed.

    Parameters
    ----------
    build : callable
        ``build(rng, **drawn)`` returning a ``gk.Case``.
    **strategies : hypothesis.strategies.SearchStrategy
        One strategy per keyword of ``build``.

    Returns
    -------
    hypothesis.strategies.SearchStrategy of Case

    Raises
    ------
    TypeError
        While drawing, when ``build`` returns something other than a ``gk.Case``.

    Examples
    --------
    >>> import gradcheck_kit as gk
    >>> from hypothesis import find, settings
    >>> from gradcheck_kit import strategies
    >>> def build(rng, shape):
    ...     return gk.Case((strategies.values(rng, shape),))
    >>> drawn = strategies.cases(build, shape=strategies.array_shapes())
    >>> case = find(drawn, lambda c: True, settings=settings(database=None))
    >>> case.inputs[0].shape, sorted(case.meta)
    ((1,), ['seed', 'shape'])
    """

    @st.composite
    def draw_case(draw: Any) -> Case:
        drawn = {key: draw(strategy) for key, strategy in strategies.items()}
        seed = draw(st.integers(0, 2**32 - 1))
        case = build(np.random.default_rng(seed), **drawn)
        if not isinstance(case, Case):
            name = getattr(build, "__name__", build)
            raise TypeError(f"{name} returned {type(case).__name__}, not gk.Case")
        return Case(case.inputs, case.params, meta={**case.meta, **drawn, "seed": seed})

    return draw_case()
