"""Lab 4a: optimizers on two-dimensional surfaces, from a panel, and exercises on step sizes.

:func:`explore` runs one optimizer (and plain GD beside it) on a surface of
:mod:`labkit.surfaces` and draws both paths and their losses; :func:`panel` puts
its settings on controls. :func:`exercises` asks when gradient descent diverges,
which optimizer gets further, and how much larger the article's Adam (no bias
correction) makes its first step; every expected value is computed.
"""
from __future__ import annotations

import numbers

import numpy as np
import torch

from .. import optim, surfaces
from ..exercises import Exercise
from ..widgets import Choice, Float, Int, LogFloat, Panel, Toggle

__all__ = ["explore", "panel", "largest_eigenvalue", "diverges", "lower_final", "first_step_ratio", "exercises"]


def _minimum_value(surface: str) -> float:
    s = surfaces.SURFACES[surface]
    return min(s.f(torch.tensor(m, dtype=torch.float64)).item() for m in s.minima)


def explore(surface: str, optimizer: str, lr: float, momentum: float, beta1: float, beta2: float, steps: int,
            compare_with_gd: bool) -> dict:
    """Run ``optimizer`` (and GD at the same lr) on ``surface``; draw the paths and f − f*; return the end points."""
    paths, curves = {}, {}
    label = f"{optimizer} (lr={lr:.2g})"
    paths[label], curves[label] = surfaces.trajectory(surface, optimizer, lr=lr, steps=steps, momentum=momentum,
                                                      betas=(beta1, beta2))
    if compare_with_gd and optimizer != "gd":
        gd = f"gd (lr={lr:.2g})"
        paths[gd], curves[gd] = surfaces.trajectory(surface, "gd", lr=lr, steps=steps)
    surfaces.contour_figure(surface, paths).show()
    surfaces.loss_figure(curves, offset=_minimum_value(surface), title="f − f* along each path").show()
    for name, path in paths.items():
        status = "diverged" if len(path) <= steps else f"ended at ({path[-1][0]:.3f}, {path[-1][1]:.3f})"
        print(f"{name}: {status} after {len(path) - 1} steps, f = {curves[name][-1]:.4g}")
    return {name: path[-1] for name, path in paths.items()}


def panel(steps: int) -> Panel:
    """Surface, optimizer, learning rate, momentum, betas, steps and a GD comparison over :func:`explore`."""
    return Panel(explore, title="Optimizer playground",
                 surface=Choice(list(surfaces.SURFACES), "rosenbrock"),
                 optimizer=Choice(list(surfaces.OPTIMIZERS), "momentum"),
                 lr=LogFloat(1e-4, 1.0, 1e-3),
                 momentum=Float(0.0, 0.99, 0.9),
                 beta1=Float(0.0, 0.99, 0.9),
                 beta2=Float(0.5, 0.9999, 0.999, step=0.0001),  # the readout shows 4 decimals: 0.9990 vs 0.9000
                 steps=Int(10, 3000, steps),
                 compare_with_gd=Toggle(True))


# ----------------------------------------------------------------------------- exercises
def largest_eigenvalue(surface: str = "quadratic", point=(0.0, 0.0)) -> float:
    """λ_max of the surface's Hessian at ``point``."""
    return float(np.linalg.eigvalsh(surfaces.hessian(surface, point)).max())


def diverges(lr: float, steps: int = 500) -> bool:
    """Whether GD at ``lr`` on the quadratic blows up, or ends with a higher f than it started with."""
    _, f = surfaces.trajectory("quadratic", "gd", lr=float(lr), steps=steps)
    return len(f) < steps + 1 or f[-1] > f[0]


def lower_final(lr: float = 0.01, steps: int = 300) -> str:
    """'gd' or 'momentum' (0.9): which ends lower on the quadratic."""
    final = {o: surfaces.trajectory("quadratic", o, lr=lr, steps=steps)[1][-1] for o in ("gd", "momentum")}
    return min(final, key=final.get)


def first_step_ratio(beta1: float = 0.9, beta2: float = 0.999, grad: float = 0.7) -> float:
    """First step of Adam without bias correction ÷ first step of Adam with it, both from m = v = 0."""
    g, zero = np.array([grad]), np.zeros(1)
    bad = optim.adam_step_no_bias_correction(zero, zero, zero, g, beta1=beta1, beta2=beta2)[0]
    good = optim.adam_step(zero, zero, zero, g, t=1, beta1=beta1, beta2=beta2)[0]
    return float(bad[0] / good[0])


def _diverging_lr(lr) -> bool:
    if not isinstance(lr, numbers.Real) or isinstance(lr, bool) or not np.isfinite(lr) or lr <= 0:
        return False
    return lr > 2 / largest_eigenvalue() and diverges(lr)


def exercises(lr: float = 0.01, steps: int = 300) -> dict[str, Exercise]:
    """The lab's four questions; 4a.3 compares GD and momentum at ``lr`` for ``steps`` steps."""
    return {
        "4a.1": Exercise("4a.1", "a learning rate at which GD diverges on the quadratic", check_fn=_diverging_lr,
                         hint="each eigen-direction is multiplied by (1 − lr·λ) per step; it grows when |1 − lr·λ| > 1",
                         explain=f"λ_max = {largest_eigenvalue():g}, and GD diverges exactly when "
                                 f"lr > 2/λ_max = {2 / largest_eigenvalue():g}."),
        "4a.2": Exercise("4a.2", "the stability limit of GD on the quadratic",
                         expected=lambda: 2 / largest_eigenvalue(), rel=1e-3,
                         hint="find the Hessian's eigenvalues (surfaces.hessian('quadratic', (0, 0))); which one "
                              "limits the step, and at what lr does its factor (1 − lr·λ) reach −1?"),
        "4a.3": Exercise("4a.3", f"gd or momentum: lower f after {steps} steps at lr {lr:g}",
                         expected=lambda: lower_final(lr, steps),
                         hint="run both with surfaces.trajectory and compare the last loss; think of the slow "
                              "direction (λ = 1)"),
        "4a.4": Exercise("4a.4", "first-step ratio, Adam without vs with bias correction", expected=first_step_ratio,
                         rel=1e-3, hint="at t = 1, m = (1−β1)g and v = (1−β2)g²; compare m/√v with m̂/√v̂"),
    }
