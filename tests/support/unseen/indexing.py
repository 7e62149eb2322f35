"""Gathers, scatters and fixed masks: bilinear sampling at integer coordinates (floor's
right-hand slope, a duplicated sample point), nearest upsampling, average pooling with padding
counted both ways (also on a 2x3x40x40 input whose bug sits on the border only), max-unpooling,
an embedding with repeated indices, a dropout whose mask is seeded, and broadcast biases and
scales whose keepdims are easy to get wrong."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .specimen import FLOAT64, Array, Specimen, cache, inputs, normal, plain

# -- bilinear sampling ---------------------------------------------------------------------------------


def _corners(img: Array, coords: Array) -> tuple[Array, ...]:
    x0, y0 = np.floor(coords[:, 0]).astype(int), np.floor(coords[:, 1]).astype(int)
    return x0, y0, coords[:, 0] - x0, coords[:, 1] - y0


def bilinear_sample(img: Array, coords: Array) -> Array:
    x0, y0, wx, wy = _corners(img, coords)
    top = img[y0, x0] * (1 - wx) + img[y0, x0 + 1] * wx
    return top * (1 - wy) + (img[y0 + 1, x0] * (1 - wx) + img[y0 + 1, x0 + 1] * wx) * wy


def _bilinear_backward(dy: Array, img: Array, coords: Array, bug: str | None = None) -> tuple[Array, Array]:
    x0, y0, wx, wy = _corners(img, coords)
    i00, i01, i10, i11 = img[y0, x0], img[y0, x0 + 1], img[y0 + 1, x0], img[y0 + 1, x0 + 1]
    dimg = np.zeros_like(img)
    for yy, xx, w in (
        (y0, x0, (1 - wx) * (1 - wy)),
        (y0, x0 + 1, wx * (1 - wy)),
        (y0 + 1, x0, (1 - wx) * wy),
        (y0 + 1, x0 + 1, wx * wy),
    ):
        if bug == "buffered":  # the planted bug: a repeated (yy, xx) keeps one contribution
            dimg[yy, xx] += dy * w
        else:
            np.add.at(dimg, (yy, xx), dy * w)
    dcx, dcy = (1 - wy) * (i01 - i00) + wy * (i11 - i10), (1 - wx) * (i10 - i00) + wx * (i11 - i01)
    if bug == "swap":
        dcx, dcy = dcy, dcx
    return dimg, np.stack([dcx * dy, dcy * dy], 1)


def bilinear_backward(dy: Array, img: Array, coords: Array) -> tuple[Array, Array]:
    return _bilinear_backward(dy, img, coords)


def bilinear_backward_coordinates_swapped(dy: Array, img: Array, coords: Array) -> tuple[Array, Array]:
    """BUG: the x and y coordinates' gradients swapped."""
    return _bilinear_backward(dy, img, coords, "swap")


def bilinear_backward_buffered_scatter(dy: Array, img: Array, coords: Array) -> tuple[Array, Array]:
    """BUG: fancy-index += into the image's gradient, which drops a duplicated sample's share."""
    return _bilinear_backward(dy, img, coords, "buffered")


def image_and_points(rng: np.random.Generator, dtype: Any) -> tuple[Array, Array]:
    img = rng.normal(size=(6, 7))
    coords = np.stack([rng.uniform(1, 4.9, 10), rng.uniform(1, 3.9, 10)], 1)
    coords[:4] = np.round(coords[:4])  # integer coordinates: floor's kinks
    coords[8] = coords[9]  # a duplicated sample point
    return img.astype(dtype), coords.astype(dtype)


def bilinear_reference(img: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
    # floor, as the layer: its right-hand slope at integer coordinates is a one-sided derivative
    x0, y0 = coords[:, 0].detach().floor().long(), coords[:, 1].detach().floor().long()
    wx, wy = coords[:, 0] - x0, coords[:, 1] - y0
    top = img[y0, x0] * (1 - wx) + img[y0, x0 + 1] * wx
    return top * (1 - wy) + (img[y0 + 1, x0] * (1 - wx) + img[y0 + 1, x0 + 1] * wx) * wy


# -- nearest upsampling x2 -----------------------------------------------------------------------------


def upsample(x: Array) -> Array:
    return x.repeat(2, axis=2).repeat(2, axis=3)


def upsample_backward(dy: Array, x: Array) -> Array:
    n, c, h, w = x.shape
    return dy.reshape(n, c, h, 2, w, 2).sum((3, 5))


def upsample_backward_subsampled(dy: Array, x: Array) -> Array:
    """BUG: one of each 2x2 block's gradients taken instead of their sum."""
    return dy[:, :, ::2, ::2].copy()


# -- average pooling 3x3, stride 2, pad 1 --------------------------------------------------------------


def avgpool_forward(x: Array, pool_param: dict[str, Any]) -> tuple[Array, tuple[Any, ...]]:
    k, s, pad = pool_param["k"], pool_param["s"], pool_param["pad"]
    padded = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    real = np.pad(np.ones(x.shape[2:]), pad)  # 1 where a window sees the input, 0 on padding
    ho, wo = (x.shape[2] + 2 * pad - k) // s + 1, (x.shape[3] + 2 * pad - k) // s + 1
    out, count = np.zeros((*x.shape[:2], ho, wo), dtype=x.dtype), np.zeros((ho, wo))
    for i in range(ho):
        for j in range(wo):
            count[i, j] = (
                k * k if pool_param["include_pad"] else real[i * s : i * s + k, j * s : j * s + k].sum()
            )
            out[:, :, i, j] = padded[:, :, i * s : i * s + k, j * s : j * s + k].sum((2, 3)) / count[i, j]
    return out, (x, pool_param, count)


def _avgpool_backward(dout: Array, cache: tuple[Any, ...], full_count: bool) -> Array:
    x, pp, count = cache
    k, s, pad = pp["k"], pp["s"], pp["pad"]
    dpadded = np.zeros((*x.shape[:2], x.shape[2] + 2 * pad, x.shape[3] + 2 * pad), dtype=x.dtype)
    for i in range(dout.shape[2]):
        for j in range(dout.shape[3]):
            c = k * k if full_count else count[i, j]
            dpadded[:, :, i * s : i * s + k, j * s : j * s + k] += (dout[:, :, i, j] / c)[:, :, None, None]
    return dpadded[:, :, pad : pad + x.shape[2], pad : pad + x.shape[3]]


def avgpool_backward(dout: Array, cache: tuple[Any, ...]) -> Array:
    return _avgpool_backward(dout, cache, full_count=False)


def avgpool_backward_divides_by_k2(dout: Array, cache: tuple[Any, ...]) -> Array:
    """BUG: divides by k^2 where the forward counted only the real pixels (wrong on the border)."""
    return _avgpool_backward(dout, cache, full_count=True)


def avgpool_reference(x: torch.Tensor, pool_param: dict[str, Any]) -> torch.Tensor:
    p = pool_param
    return torch.nn.functional.avg_pool2d(x, p["k"], p["s"], p["pad"], count_include_pad=p["include_pad"])


# -- max-unpooling -------------------------------------------------------------------------------------


def unpool(x: Array, idx: Array) -> Array:
    n, c = x.shape[:2]
    out = np.zeros((n, c, 16), dtype=x.dtype)
    np.put_along_axis(out, idx.reshape(n, c, -1), x.reshape(n, c, -1), 2)
    return out.reshape(n, c, 4, 4)


def unpool_backward(dy: Array, x: Array, idx: Array) -> tuple[Array, None]:
    n, c = x.shape[:2]
    return np.take_along_axis(dy.reshape(n, c, -1), idx.reshape(n, c, -1), 2).reshape(x.shape), None


def unpool_backward_hw_transposed(dy: Array, x: Array, idx: Array) -> tuple[Array, None]:
    """BUG: dy flattened column-major, the indices read it transposed."""
    n, c = x.shape[:2]
    flat = dy.transpose(0, 1, 3, 2).reshape(n, c, -1)
    return np.take_along_axis(flat, idx.reshape(n, c, -1), 2).reshape(x.shape), None


def pooled_with_indices(rng: np.random.Generator, dtype: Any) -> tuple[Array, Array]:
    t = torch.tensor(rng.normal(size=(2, 3, 4, 4)))
    values, idx = torch.nn.functional.max_pool2d(t, 2, 2, return_indices=True)
    return values.numpy().astype(dtype), idx.numpy()


def unpool_reference(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.max_unpool2d(x, idx, 2, 2, output_size=(4, 4))


# -- embedding with repeated indices, seeded dropout, broadcasts ---------------------------------------

INDICES = np.array([1, 3, 1, 0, 5, 3, 1, 2])


def embed(w: Array, idx: Array) -> Array:
    return w[idx]


def embed_backward(dy: Array, w: Array, idx: Array) -> tuple[Array, None]:
    dw = np.zeros_like(w)
    np.add.at(dw, idx, dy)
    return dw, None


def embed_backward_buffered(dy: Array, w: Array, idx: Array) -> tuple[Array, None]:
    """BUG: dw[idx] += dy keeps one row's gradient of each repeated index."""
    dw = np.zeros_like(w)
    dw[idx] += dy
    return dw, None


def _dropout_mask(shape: tuple[int, ...], p: float) -> Array:
    return np.random.default_rng(123).random(shape) < p  # the same mask on every call


def dropout_forward(x: Array, p: float = 0.6) -> tuple[Array, tuple[Array, float]]:
    mask = _dropout_mask(x.shape, p)
    return x * mask / p, (mask, p)


def dropout_backward(dout: Array, cache: tuple[Array, float]) -> Array:
    mask, p = cache
    return dout * mask / p


def dropout_backward_unscaled(dout: Array, cache: tuple[Array, float]) -> Array:
    """BUG: the mask without the forward's 1 / p."""
    return dout * cache[0]


def add_bias(x: Array, b: Array) -> Array:
    return x + b


def add_bias_backward(dy: Array, x: Array, b: Array) -> tuple[Array, Array]:
    return dy, dy.sum(axis=(0, 2))[:, None]


def add_bias_backward_wrong_axes(dy: Array, x: Array, b: Array) -> tuple[Array, Array]:
    """BUG: b (3, 1) broadcasts over axes 0 and 2; summing over 0 and 1 fits its shape by chance."""
    return dy, dy.sum(axis=(0, 1))[:, None]


def scale(x: Array, s: Array) -> Array:
    return x * s


def scale_backward(dy: Array, x: Array, s: Array) -> tuple[Array, Array]:
    return dy * s, (dy * x).sum(0, keepdims=True)


def scale_backward_rows_transposed(dy: Array, x: Array, s: Array) -> tuple[Array, Array]:
    """BUG: summed over rows and transposed to s's (1, 4) shape: square x hides it."""
    return dy * s, (dy * x).sum(1, keepdims=True).T


# -- the catalogue -------------------------------------------------------------------------------------


def specimens() -> list[Specimen]:
    bilinear = (bilinear_backward, bilinear_backward_coordinates_swapped, bilinear_backward_buffered_scatter)
    found = [
        plain("bilinear_sample_intcoords", bilinear_sample, b, image_and_points, bilinear_reference)
        for b in bilinear
    ]
    found += [
        plain(
            "nearest_upsample",
            upsample,
            b,
            inputs(normal(2, 2, 3, 4)),
            lambda x: torch.nn.functional.interpolate(x, scale_factor=2, mode="nearest"),
        )
        for b in (upsample_backward, upsample_backward_subsampled)
    ]
    pool = {"k": 3, "s": 2, "pad": 1, "include_pad": True}
    found.append(
        cache(
            "avgpool_pad_inc1",
            avgpool_forward,
            avgpool_backward,
            inputs(normal(2, 2, 7, 6)),
            avgpool_reference,
            params={"pool_param": pool},
        )
    )
    for b in (avgpool_backward, avgpool_backward_divides_by_k2):
        without_pad = {"pool_param": {**pool, "include_pad": False}}
        found.append(
            cache(
                "avgpool_pad_inc0",
                avgpool_forward,
                b,
                inputs(normal(2, 2, 7, 6)),
                avgpool_reference,
                params=without_pad,
            )
        )
        # 9600 elements: beyond element-wise differencing; one seed, the loops are slow
        found.append(
            cache(
                "avgpool_pad_inc0_large",
                avgpool_forward,
                b,
                inputs(normal(2, 3, 40, 40)),
                avgpool_reference,
                params=without_pad,
                dtypes=FLOAT64,
                seeds=(0,),
            )
        )
    found += [
        plain("max_unpool", unpool, b, pooled_with_indices, unpool_reference)
        for b in (unpool_backward, unpool_backward_hw_transposed)
    ]
    rows = lambda rng, dtype: (normal(6, 4)(rng, dtype), INDICES)  # noqa: E731
    found += [
        plain("embedding_repeats", embed, b, rows, lambda w, idx: w[idx])
        for b in (embed_backward, embed_backward_buffered)
    ]
    found += [
        cache(
            "dropout_seeded",
            dropout_forward,
            b,
            inputs(normal(8, 10)),
            lambda x, p=0.6: x * torch.tensor(_dropout_mask(tuple(x.shape), p)) / p,
        )
        for b in (dropout_backward, dropout_backward_unscaled)
    ]
    found += [
        plain("bias_broadcast_c1", add_bias, b, inputs(normal(2, 3, 3), normal(3, 1)), lambda x, b: x + b)
        for b in (add_bias_backward, add_bias_backward_wrong_axes)
    ]
    found += [
        plain("scale_keepdims", scale, b, inputs(normal(4, 4), normal(1, 4)), lambda x, s: x * s)
        for b in (scale_backward, scale_backward_rows_transposed)
    ]
    return found
