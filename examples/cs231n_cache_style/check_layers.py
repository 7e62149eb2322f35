"""Check the cache-style layers of layers.py with gk.from_cache_style.

Run it: python check_layers.py
"""

import numpy as np
from layers import (
    affine_backward,
    affine_forward,
    conv_backward_naive,
    conv_backward_naive_buggy,
    conv_forward_naive,
    relu_backward,
    relu_forward,
)

import gradcheck_kit as gk


def main():
    rng = np.random.default_rng(0)
    results = []

    x, w, b = rng.normal(size=(3, 2, 2)), rng.normal(size=(4, 5)), rng.normal(size=5)
    results.append(gk.check(*gk.from_cache_style(affine_forward, affine_backward), (x, w, b)))

    results.append(gk.check(*gk.from_cache_style(relu_forward, relu_backward), (rng.normal(size=(4, 5)),)))

    # conv_param is not an array input but a static parameter: pass it in params
    x, w, b = rng.normal(size=(2, 2, 5, 5)), rng.normal(size=(3, 2, 3, 3)), rng.normal(size=3)
    params = {"conv_param": {"stride": 2, "pad": 1}}
    conv = gk.from_cache_style(conv_forward_naive, conv_backward_naive)
    results.append(gk.check(*conv, (x, w, b), params))

    for result in results:
        print(result)
        print()
    ok = all(r.passed for r in results)

    buggy = gk.check(*gk.from_cache_style(conv_forward_naive, conv_backward_naive_buggy), (x, w, b), params)
    print(buggy)
    print("patterns:", buggy.patterns)
    return 0 if ok and not buggy.passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
