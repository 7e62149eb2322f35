"""The parts of a check beyond the first-order gradient, each a named ``CheckPart`` of the
result with its own verdict and cost: ``second_order`` (a layer of its own, which the stages
check with ``gk.check`` itself), ``forward_mode``, ``batched`` and ``undefined_grad``.

They run where the layer offers what they check (``Extras``: a torch.autograd.Function's
``jvp``, vmap rule, differentiable backward, several outputs; ``gk.check(..., jvp=...)``) and
only after the first-order gradient passed: each leans on the checked backward, and a wrong
first-order gradient is the finding that matters.
"""

from __future__ import annotations

from functools import partial

from .._result import CheckPart
from . import batched, forward_mode, undefined
from .context import FIRST_ORDER_FAILED, Context, measured, skipped


def others(context: Context) -> dict[str, CheckPart]:
    """forward_mode, batched and undefined_grad, where the layer offers them (each module's
    ``applies``), measured one by one."""
    found: dict[str, CheckPart] = {}
    for module in (forward_mode, batched, undefined):
        name = module.NAME
        if not module.applies(context):
            continue
        if not context.first_order_passed:
            found[name] = skipped(name, FIRST_ORDER_FAILED)
            continue
        found[name] = measured(context.calls, partial(module.part, context))
    return found
