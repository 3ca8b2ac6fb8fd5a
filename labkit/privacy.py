"""Differential privacy for training: DP-SGD from scratch, the accountant from opacus, and what a gradient leaks.

DP-SGD (Abadi et al., "Deep Learning with Differential Privacy", ACM CCS 2016, arXiv:1607.00133) changes
one thing in SGD: no single example may move the model much, and what is left is hidden in noise.

1. **Per-sample gradients** g_i = ∇θ ℓ(x_i, y_i), one per example of the batch
   (:func:`per_sample_gradients`: ``torch.func.vmap`` over ``torch.func.grad`` of the model called with
   ``torch.func.functional_call``, so all B gradients come from one vectorised pass).
2. **Clipping** (:func:`clip_per_sample`): each g_i is scaled to norm at most C, the norm taken over all
   parameters together: ĝ_i = g_i · min(1, C / (‖g_i‖ + 1e-6)) (opacus's formula, the 1e-6 included).
3. **Noise** (:func:`noisy_gradient`): the batch gradient is (Σ ĝ_i + N(0, σ²C² I)) / B, with B the
   *expected* batch size. σ is the noise multiplier.
4. **Sampling**: each step takes every example independently with probability q = B/N (Poisson sampling),
   which is what the privacy accounting assumes (:func:`poisson_batches`).

The privacy loss ε (for a δ, typically below 1/N) of T such steps comes from a **Rényi-DP accountant**
(Mironov 2017, arXiv:1702.07476); :func:`epsilon` asks opacus's ``RDPAccountant``, the field's library,
rather than re-deriving it. Parity: ``tests/test_privacy.py`` checks the per-sample gradients against
opacus's ``GradSampleModule`` (``p.grad_sample``) and the clipped, summed, averaged gradient against
opacus's ``DPOptimizer`` (noise multiplier 0), to 1e-6.

What a gradient leaks (:func:`input_from_gradient`): for a first layer ``Linear`` with a bias and a
batch of one example, ∂ℓ/∂W = δ xᵀ and ∂ℓ/∂b = δ, so any row j with δ_j ≠ 0 gives the input back
exactly, x = (∂ℓ/∂W)_j / (∂ℓ/∂b)_j. Zhu, Liu & Han ("Deep Leakage from Gradients", NeurIPS 2019,
arXiv:1906.08935) recover inputs from the gradients of deeper networks and larger batches by
optimisation; this closed form is the simplest case of the same leak.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad, vmap

from .check import number, positive, probability, whole_number

__all__ = ["per_sample_gradients", "per_sample_norms", "clip_per_sample", "noisy_gradient", "poisson_batches",
           "DPResult", "train_dp_sgd", "epsilon", "opacus_reference", "input_from_gradient",
           "privacy_verdict", "tradeoff_verdict"]


def per_sample_gradients(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                         loss_fn: Callable = F.cross_entropy) -> dict[str, torch.Tensor]:
    """{parameter name: (B, *shape)}: the gradient of each example's own loss, by ``vmap(grad(...))``.

    Only parameters that require a gradient are included; the model is called in its current mode
    (call ``model.eval()`` first if it has dropout or batch norm: a per-sample gradient of a batch-norm
    layer is not defined).
    """
    if len(x) != len(y):
        raise ValueError(f"x and y must hold the same number of examples; got {len(x)} and {len(y)}")
    params = {k: v.detach() for k, v in model.named_parameters() if v.requires_grad}
    buffers = {k: v.detach() for k, v in model.named_buffers()}

    def loss_of_one(p, xi, yi):
        out = functional_call(model, (p, buffers), (xi.unsqueeze(0),))
        return loss_fn(out, yi.unsqueeze(0))

    return vmap(grad(loss_of_one), in_dims=(None, 0, 0))(params, x, y)


def per_sample_norms(grads: dict[str, torch.Tensor]) -> torch.Tensor:
    """(B,) the L2 norm of each example's gradient over all parameters together."""
    return torch.stack([g.reshape(len(g), -1).norm(2, dim=-1) for g in grads.values()], dim=1).norm(2, dim=1)


def clip_per_sample(grads: dict[str, torch.Tensor], max_norm: float) -> dict[str, torch.Tensor]:
    """Each example's gradient scaled to norm at most ``max_norm``: g_i · min(1, C / (‖g_i‖ + 1e-6))."""
    positive("max_norm (the clipping norm C)", max_norm)
    factor = (max_norm / (per_sample_norms(grads) + 1e-6)).clamp(max=1.0)
    return {k: torch.einsum("i,i...->i...", factor, g) for k, g in grads.items()}


def noisy_gradient(clipped: dict[str, torch.Tensor], max_norm: float, noise_multiplier: float,
                   expected_batch_size: int, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """(Σ_i ĝ_i + N(0, σ² C² I)) / B for every parameter: the gradient DP-SGD steps with."""
    number("noise_multiplier", noise_multiplier, minimum=0)
    whole_number("expected_batch_size", expected_batch_size)
    out = {}
    for k, g in clipped.items():
        total = g.sum(0)
        if noise_multiplier > 0:
            total = total + noise_multiplier * max_norm * torch.randn(total.shape, generator=generator,
                                                                      dtype=total.dtype)
        out[k] = total / expected_batch_size
    return out


def poisson_batches(n: int, sample_rate: float, steps: int, generator: torch.Generator) -> list[torch.Tensor]:
    """``steps`` batches of indices into range(n), each index in each batch with probability ``sample_rate``."""
    whole_number("n", n)
    probability("sample_rate", sample_rate)
    return [torch.nonzero(torch.rand(n, generator=generator) < sample_rate).flatten() for _ in range(steps)]


@dataclass
class DPResult:
    """One DP-SGD run: the trained model, its settings, test accuracy per epoch and the ε it spent."""
    model: nn.Module = field(repr=False)
    noise_multiplier: float
    max_norm: float
    sample_rate: float
    steps: int
    epsilon: float
    delta: float
    accuracy: list[float]
    clipped_share: float        # fraction of per-sample gradients that the clipping shrank


def epsilon(noise_multiplier: float, sample_rate: float, steps: int, delta: float) -> float:
    """ε after ``steps`` DP-SGD steps at noise multiplier σ and sampling rate q, for ``delta``: opacus's RDP
    accountant. σ = 0 is no privacy at all: ε = inf."""
    from opacus.accountants import RDPAccountant
    number("noise_multiplier", noise_multiplier, minimum=0)
    probability("sample_rate", sample_rate)
    whole_number("steps", steps)
    number("delta", delta, minimum=0, maximum=1, open_low=True, open_high=True)
    if noise_multiplier == 0:
        return math.inf
    accountant = RDPAccountant()
    accountant.history = [(noise_multiplier, sample_rate, steps)]
    return float(accountant.get_epsilon(delta=delta))


def _accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return float((model(x).argmax(-1) == y).float().mean())


def train_dp_sgd(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, x_test: torch.Tensor, y_test: torch.Tensor,
                 epochs: int, batch_size: int, lr: float, max_norm: float, noise_multiplier: float,
                 delta: float | None = None, seed: int = 0, loss_fn: Callable = F.cross_entropy) -> DPResult:
    """DP-SGD on (x, y) with Poisson sampling at q = batch_size / N, plain SGD steps (no momentum), the model
    trained in place. ``noise_multiplier=0`` keeps the clipping and drops the noise (no privacy, ε = inf)."""
    whole_number("epochs", epochs)
    whole_number("batch_size", batch_size, maximum=len(x))
    positive("lr", lr)
    n = len(x)
    delta = 1 / (10 * n) if delta is None else delta      # δ well below 1/N
    q = batch_size / n
    steps_per_epoch = round(1 / q)
    g = torch.Generator().manual_seed(seed)
    params = {k: p for k, p in model.named_parameters() if p.requires_grad}
    acc, clipped, seen = [], 0, 0
    model.eval()                                   # no dropout: per-sample gradients of the model as it is
    for _ in range(epochs):
        for idx in poisson_batches(n, q, steps_per_epoch, g):
            if len(idx) == 0:                      # an empty Poisson batch still gets its noise
                grads = {k: torch.zeros((0, *p.shape)) for k, p in params.items()}
            else:
                grads = per_sample_gradients(model, x[idx], y[idx], loss_fn)
                norms = per_sample_norms(grads)
                clipped += int((norms > max_norm).sum())
                seen += len(idx)
            step = noisy_gradient(clip_per_sample(grads, max_norm), max_norm, noise_multiplier, batch_size, g)
            with torch.no_grad():
                for k, p in params.items():
                    p -= lr * step[k]
        acc.append(_accuracy(model, x_test, y_test))
    steps = epochs * steps_per_epoch
    return DPResult(model, noise_multiplier, max_norm, q, steps, epsilon(noise_multiplier, q, steps, delta), delta,
                    acc, clipped / max(seen, 1))


def opacus_reference(model: nn.Module, x: torch.Tensor, y: torch.Tensor, max_norm: float,
                     loss_fn: Callable = F.cross_entropy) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """opacus on a copy of ``model`` and one batch: (per-sample gradients ``p.grad_sample``, the averaged
    clipped gradient ``p.grad`` of its ``DPOptimizer`` with noise multiplier 0 and expected batch size B)."""
    import warnings

    from opacus import GradSampleModule
    from opacus.optimizers import DPOptimizer
    ref = copy.deepcopy(model).train()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gsm = GradSampleModule(ref, loss_reduction="mean")
        opt = DPOptimizer(torch.optim.SGD(gsm.parameters(), lr=0.0), noise_multiplier=0.0, max_grad_norm=max_norm,
                          expected_batch_size=len(x), loss_reduction="mean")
        opt.zero_grad()
        loss_fn(gsm(x), y).backward()
        per_sample = {k: p.grad_sample.detach().clone() for k, p in ref.named_parameters() if p.requires_grad}
        opt.pre_step()                 # clip, sum, add (zero) noise, divide by the expected batch size
        averaged = {k: p.grad.detach().clone() for k, p in ref.named_parameters() if p.requires_grad}
    return per_sample, averaged


def input_from_gradient(weight_grad: torch.Tensor, bias_grad: torch.Tensor) -> torch.Tensor:
    """The input of a ``Linear`` layer, read back from its gradient for a batch of one: row j of ∂ℓ/∂W divided
    by ∂ℓ/∂b_j, averaged over the rows whose ∂ℓ/∂b_j is not tiny (weighted by it, for a stable answer)."""
    if weight_grad.ndim != 2 or bias_grad.shape != weight_grad.shape[:1]:
        raise ValueError(f"weight_grad must be (out, in) and bias_grad (out,); got {tuple(weight_grad.shape)} and "
                         f"{tuple(bias_grad.shape)}")
    w = bias_grad.abs()
    if float(w.max()) == 0:
        raise ValueError("bias_grad is all zero: this example moved nothing, so its gradient holds no input")
    keep = w > 1e-3 * w.max()
    return (weight_grad[keep] * bias_grad[keep, None]).sum(0) / (bias_grad[keep] ** 2).sum()


def privacy_verdict(max_diff_grads: float, max_diff_step: float, tol: float = 1e-6) -> str:
    """Does the from-scratch DP-SGD agree with opacus (per-sample gradients and the clipped averaged step)?"""
    ok = max_diff_grads <= tol and max_diff_step <= tol
    return (f"per-sample gradients: max |difference| from opacus {max_diff_grads:.1e}; clipped averaged gradient: "
            f"{max_diff_step:.1e}: " + (f"both within {tol:g}, the from-scratch DP-SGD computes what opacus computes."
                                        if ok else f"NOT within {tol:g}: the two implementations differ."))


def tradeoff_verdict(results: list[DPResult], non_private: float) -> str:
    """How test accuracy falls as ε shrinks (more noise), against the same model trained without DP."""
    rows = sorted((r for r in results if r.noise_multiplier > 0), key=lambda r: r.epsilon)
    if not rows:
        raise ValueError("results holds no private run (noise_multiplier > 0)")
    parts = [f"ε = {r.epsilon:.2g}: {r.accuracy[-1]:.3f}" for r in rows]
    strongest, weakest = rows[0], rows[-1]
    cost = 100 * (non_private - strongest.accuracy[-1])
    monotone = all(a.accuracy[-1] <= b.accuracy[-1] + 0.01 for a, b in zip(rows, rows[1:]))
    return (f"test accuracy without DP {non_private:.3f}; with DP-SGD " + ", ".join(parts) + ". "
            f"The strongest privacy here (ε = {strongest.epsilon:.2g}) costs {cost:.1f} points; "
            + ("accuracy rises as ε grows (less noise), as the trade-off predicts."
               if monotone else "accuracy does not rise steadily with ε in these runs (one seed each: noise)."))
