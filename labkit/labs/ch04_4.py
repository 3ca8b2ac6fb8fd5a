"""Chapter 4.4's verdicts and exercises: did gradient descent reach the closed-form fit, is the 2-3-1
network limited by its size, and three questions on backprop and conditioning.

Every expected answer of :func:`exercises` is computed from the chapter's objects; ``tests/test_ch04.py``
checks that each refuses the usual wrong answers.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from ..check import positive
from ..exercises import Exercise

__all__ = ["fit_verdict", "capacity_verdict", "b2_gradient", "slow_direction_steps", "exercises"]


def fit_verdict(name: str, theta, theta_star, rtol: float = 1e-4) -> str:
    """Whether fitted parameters match the closed-form solution within ``rtol`` (relative, per parameter)."""
    theta, theta_star = np.asarray(theta, dtype=float), np.asarray(theta_star, dtype=float)
    off = np.abs(theta - theta_star) / np.abs(theta_star)
    parts = ", ".join(f"θ{i} {t:.4g} against {s:.4g} ({100 * o:.3g}% off)"
                      for i, (t, s, o) in enumerate(zip(theta, theta_star, off)))
    reached = bool(np.all(off <= rtol))
    return (f"{name}: {parts}: " + ("reaches the closed-form solution" if reached else
                                    "has NOT reached the closed-form solution") +
            f" (within {100 * rtol:g}% of every parameter: {'yes' if reached else 'no'}).")


def capacity_verdict(small: str, acc_small: float, big: str, acc_big: float, margin: float = 0.05) -> str:
    """Whether the bigger network, trained the same way, fits the training set clearly better (by ``margin``)."""
    gain = acc_big - acc_small
    if gain >= margin:
        what = f"the {small} network is limited by its size, not by its gradients"
    elif gain <= -margin:
        what = "the bigger network does worse: more units did not help with this training budget"
    else:
        what = f"more units hardly help: size is not what limits the {small} network here"
    return (f"training accuracy: {small} {acc_small:.3f}, {big} {acc_big:.3f} ({100 * gain:+.1f} points, same "
            f"steps and learning rate): {what}.")


# ----------------------------------------------------------------------------- exercises
def b2_gradient(X, Y, W1, b1, W2, b2) -> float:
    """∂L/∂b2 of the 2-3-1 network (ReLU hidden layer, sigmoid output, mean BCE), by autograd."""
    t = [torch.as_tensor(np.asarray(a, dtype=float)) for a in (X, Y, W1, b1, W2, b2)]
    X, Y, W1, b1, W2, b2 = t
    b2 = b2.clone().requires_grad_()
    A2 = torch.sigmoid(torch.relu(X @ W1 + b1) @ W2 + b2)
    torch.nn.functional.binary_cross_entropy(A2, Y).backward()
    return float(b2.grad.sum())


def slow_direction_steps(hessian, lr: float, factor: float = 10.0) -> float:
    """Steps of GD at ``lr`` on a quadratic with this Hessian until the error along the eigen-direction of
    λ_min has shrunk by ``factor`` (each step multiplies it by 1 − lr·λ_min)."""
    positive("lr", lr)
    lam_min = float(np.linalg.eigvalsh(np.asarray(hessian, dtype=float)).min())
    shrink = abs(1 - lr * lam_min)
    if not 0 < shrink < 1:
        raise ValueError(f"lr={lr:g} does not shrink the slow direction (factor {shrink:g} per step)")
    return math.log(factor) / -math.log(shrink)


def exercises(net: dict, hessian_std, hessian_raw, lr_raw: float, factor: float = 10.0) -> dict[str, Exercise]:
    """Three questions on the chapter's objects.

    ``net``: the 2-3-1 network's batch and weights, keys X, Y, W1, b1, W2, b2 (4.4.1); ``hessian_std``: the
    house-price loss's Hessian on standardised areas (4.4.2); ``hessian_raw`` and ``lr_raw``: the Hessian on
    raw areas and the learning rate GD used there (4.4.3).
    """
    h_std = np.asarray(hessian_std, dtype=float)
    return {
        "4.4.1": Exercise(
            "4.4.1", f"For the 2-3-1 network of the backward-pass cells (the batch Xs, Ys of {len(net['X'])} rows "
            "and the weights W1, b1, W2, b2 with W2 of shape 3×1), what is ∇_{b2} L, a single number?",
            expected=lambda: b2_gradient(**net), rel=1e-6,
            hint="start from ∇_{Z2} (with the sigmoid and the mean cross-entropy together it has a simple "
                 "form); b2 is added to every row, so its gradient collects all the rows",
            explain="It equals the article's ∇_{A2} L = −(1/n)Σ(Y − A2): the article's number is right, but "
                    "it is the gradient of b2, not of A2."),
        "4.4.2": Exercise(
            "4.4.2", "GD on the standardised areas: which learning rate reaches the closed-form solution in a single "
            "step, from any start?",
            expected=lambda: float(1 / np.linalg.eigvalsh(h_std).max()), rel=1e-6,
            hint="write what one GD step does to the error θ − θ* on a quadratic, in terms of the Hessian, and "
                 "look at the Hessian the cell printed for the standardised areas",
            explain="With H a multiple of the identity, GD with lr = 1/λ is Newton's method: one step lands on θ*. "
                    "With raw areas no single learning rate can do that."),
        "4.4.3": Exercise(
            "4.4.3", f"GD on the raw areas at the learning rate the cell used (lr = {lr_raw:.3g}): how many steps "
            f"does the error along the slowest eigen-direction need to shrink {factor:g}-fold?",
            expected=lambda: slow_direction_steps(hessian_raw, lr_raw, factor), rel=1e-2,
            hint="which eigenvalue belongs to the slowest direction, and what does one GD step do to the error "
                 "along an eigen-direction? Then count the steps (logarithms help)",
            explain="Compare it with the steps the cell ran: this is why the intercept on raw areas stays far from "
                    "the closed form."),
    }
