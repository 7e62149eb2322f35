"""A torch.autograd.Function with a hand-written backward, checked with gk.from_autograd_function.

Run it: python check_function.py   (needs torch)
"""

import torch

import gradcheck_kit as gk


class LinearFunction(torch.autograd.Function):
    """y = x @ weight.T + bias, as in PyTorch's "Extending torch.autograd" tutorial."""

    @staticmethod
    def forward(ctx, x, weight, bias):
        ctx.save_for_backward(x, weight)
        return x @ weight.T + bias

    @staticmethod
    def backward(ctx, grad_output):
        x, weight = ctx.saved_tensors
        return grad_output @ weight, grad_output.T @ x, grad_output.sum(0)


class ScaledSoftplus(torch.autograd.Function):
    """y = softplus(beta * x) / beta; beta is a static parameter (a Python float)."""

    @staticmethod
    def forward(ctx, x, beta):
        ctx.save_for_backward(x)
        ctx.beta = beta
        return torch.nn.functional.softplus(beta * x) / beta

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        # the planted bug: the chain rule's beta is applied, forward's 1 / beta forgotten
        return grad_output * ctx.beta * torch.sigmoid(ctx.beta * x), None


def main():
    torch.manual_seed(0)
    x, weight, bias = (torch.randn(*shape, dtype=torch.float64) for shape in [(4, 3), (2, 3), (2,)])

    # reference=: forward values are compared with torch's own, backward with autograd's VJP too
    linear = gk.check(
        *gk.from_autograd_function(LinearFunction), (x, weight, bias), reference=torch.nn.functional.linear
    )
    print(linear)
    print()

    # params go to forward's parameters of the same name (beta), wherever they stand
    softplus = gk.check(
        *gk.from_autograd_function(ScaledSoftplus), (torch.randn(5, dtype=torch.float64),), {"beta": 3.0}
    )
    print(softplus)
    print("patterns:", softplus.patterns)
    return 0 if linear.passed and not softplus.passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
