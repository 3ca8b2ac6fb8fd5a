"""Optimizers from scratch, for chapter 4: SGD (momentum, Nesterov), Adam and AdamW.

Each is a ``torch.optim.Optimizer`` with the same arguments as its ``torch.optim``
namesake, and the tests check that they take the same steps (float64, 100 steps).
Parameters whose ``.grad`` is None are skipped, as in PyTorch.

The update rules, for a gradient g_t at step t (weight decay left out here):

    SGD + momentum (PyTorch form)  b_t = mu b_{t-1} + (1 - dampening) g_t   (b_1 = g_1)
                                   theta -= lr * b_t    (Nesterov: theta -= lr * (g_t + mu b_t))
    Adam                           m_t = beta1 m_{t-1} + (1 - beta1) g_t
                                   v_t = beta2 v_{t-1} + (1 - beta2) g_t^2
                                   m_hat = m_t / (1 - beta1^t),  v_hat = v_t / (1 - beta2^t)
                                   theta -= lr * m_hat / (sqrt(v_hat) + eps)
    AdamW                          theta -= lr * wd * theta first (decoupled), then Adam

For teaching, :func:`heavy_ball_step` is the textbook (Polyak) momentum form and
:func:`adam_step_no_bias_correction` is the source article's Adam, which skips the bias
correction and so takes a first step (1-beta1)/sqrt(1-beta2) ~ 3.16x too large.
"""
from __future__ import annotations

import torch

from .check import number, probability

__all__ = ["SGD", "Adam", "AdamW", "heavy_ball_step", "adam_step", "adam_step_no_bias_correction"]


def _non_negative(**values) -> None:
    for name, v in values.items():
        number(name, v, minimum=0)


def _check_betas(betas) -> None:
    try:
        b1, b2 = betas
    except (TypeError, ValueError):
        raise ValueError(f"betas must be a pair (beta1, beta2); got {betas!r}") from None
    probability("betas: beta1", b1, open_high=True)  # beta = 1 would never forget the first gradient
    probability("betas: beta2", b2, open_high=True)


class SGD(torch.optim.Optimizer):
    """Stochastic gradient descent with optional momentum, dampening, Nesterov and L2 weight decay."""

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False):
        _non_negative(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError(f"nesterov=True needs momentum > 0 and dampening = 0; "
                             f"got momentum={momentum!r}, dampening={dampening!r}")
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                        nesterov=nesterov)
        super().__init__(params, defaults)

    @torch.no_grad()  # an update is not part of any graph: autograd must not record it
    def step(self, closure=None):
        loss = None
        if closure is not None:  # (optional) re-evaluate the loss, as some optimizers such as LBFGS need
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:  # each group may carry its own lr (e.g. discriminative rates)
            lr, mu, damp = group["lr"], group["momentum"], group["dampening"]
            wd, nesterov = group["weight_decay"], group["nesterov"]
            for p in group["params"]:
                if p.grad is None:  # frozen, or not used in this loss: leave it (and its state) alone
                    continue
                g = p.grad                              # same shape as p
                if wd != 0:
                    g = g + wd * p                      # L2 penalty: gradient of (wd/2)|theta|^2
                if mu != 0:
                    state = self.state[p]               # per-parameter memory that survives between steps
                    buf = state.get("momentum_buffer")
                    if buf is None:
                        buf = g.clone()                 # the first step uses g itself, undamped
                    else:
                        buf.mul_(mu).add_(g, alpha=1 - damp)  # in place: no new tensor per step
                    state["momentum_buffer"] = buf
                    g = g + mu * buf if nesterov else buf  # Nesterov: look ahead along the velocity
                p.add_(g, alpha=-lr)                    # theta -= lr * g, in place (p is a leaf: no_grad)
        return loss


class Adam(torch.optim.Optimizer):
    """Adam (Kingma & Ba 2015) with bias correction; ``weight_decay`` is an L2 term added to the gradient."""

    decoupled = False

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0):
        _non_negative(lr=lr, eps=eps, weight_decay=weight_decay)
        _check_betas(betas)
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, (beta1, beta2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:  # frozen or unused: no step, and no state is created for it
                    continue
                g = p.grad
                state = self.state[p]  # created lazily: a parameter that never gets a gradient costs nothing
                if not state:
                    state["step"] = 0                           # t counts per parameter (one that thaws late
                    state["exp_avg"] = torch.zeros_like(p)      #   starts its own bias correction at t = 1)
                    state["exp_avg_sq"] = torch.zeros_like(p)   # m, v: same shape as p, 2 extra copies of it
                state["step"] += 1
                t, m, v = state["step"], state["exp_avg"], state["exp_avg_sq"]
                if wd != 0:
                    if self.decoupled:
                        p.mul_(1 - lr * wd)                     # AdamW: shrink theta itself, outside m and v
                    else:
                        g = g + wd * p                          # Adam: L2 term inside the moments
                m.lerp_(g, 1 - beta1)                           # m = beta1 m + (1 - beta1) g
                v.mul_(beta2).addcmul_(g, g, value=1 - beta2)   # v = beta2 v + (1 - beta2) g^2
                # Bias correction: m and v start at 0, so early on they underestimate E[g] and E[g^2];
                # dividing by (1 - beta^t) undoes that (it tends to 1 as t grows).
                step_size = lr / (1 - beta1 ** t)               # lr * m_hat / m
                sqrt_v_hat = v.sqrt() / (1 - beta2 ** t) ** 0.5
                # theta -= step_size * m / (sqrt(v_hat) + eps): eps is added after the square root and the
                # bias correction, as torch.optim.Adam does, so the steps match it exactly
                p.addcdiv_(m, sqrt_v_hat.add_(eps), value=-step_size)
        return loss


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter, arXiv:1711.05101): theta -= lr*wd*theta."""

    decoupled = True

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)


# ----------------------------------------------------------------------------- for teaching
def heavy_ball_step(theta, velocity, grad, lr: float, momentum: float):
    """Polyak's form: v_t = mu v_{t-1} - lr g_t; theta_t = theta_{t-1} + v_t. Returns (theta, v)."""
    velocity = momentum * velocity - lr * grad
    return theta + velocity, velocity


def adam_step(theta, m, v, grad, t: int, lr: float = 1e-3, beta1: float = 0.9, beta2: float = 0.999,
              eps: float = 1e-8):
    """One Adam step with bias correction (t counts from 1). Returns (theta, m, v)."""
    m = beta1 * m + (1 - beta1) * grad
    v = beta2 * v + (1 - beta2) * grad ** 2
    m_hat, v_hat = m / (1 - beta1 ** t), v / (1 - beta2 ** t)
    return theta - lr * m_hat / (v_hat ** 0.5 + eps), m, v


def adam_step_no_bias_correction(theta, m, v, grad, lr: float = 1e-3, beta1: float = 0.9,
                                 beta2: float = 0.999, eps: float = 1e-8):
    """The article's Adam (§3.6.2): theta -= lr * m_t / (sqrt(v_t) + eps), no bias correction.

    Starting from m = v = 0, the first step is lr * (1-beta1)/sqrt(1-beta2) * sign(g), about 3.16 lr
    with the default betas, instead of lr.
    """
    m = beta1 * m + (1 - beta1) * grad
    v = beta2 * v + (1 - beta2) * grad ** 2
    return theta - lr * m / (v ** 0.5 + eps), m, v
