"""Lab 4a: optimizers on two-dimensional surfaces, from a panel, and exercises on step sizes.

:func:`explore` runs one optimizer (and plain GD beside it) on a surface of
:mod:`labkit.surfaces` and draws both paths and their losses; :func:`panel` puts
its settings on controls. :func:`exercises` asks when gradient descent diverges,
where its stability limit is, how many steps its flat direction needs to shrink,
and how much larger the article's Adam (no bias correction) makes its first step;
every expected value is computed, and a bool is never taken for a number.
"""
from __future__ import annotations

import functools
import numbers

import numpy as np
import torch

from .. import optim, surfaces
from ..check import number, positive
from ..exercises import Exercise, numbers_close
from ..widgets import Choice, Float, Int, LogFloat, Panel, Toggle

__all__ = ["explore", "panel", "largest_eigenvalue", "diverges", "steps_to_shrink", "first_step_ratio", "exercises"]


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


HEAVY_BALL = ("momentum", "nesterov")    # the optimizers of surfaces.OPTIMIZERS that read `momentum`
ADAPTIVE = ("adam", "adamw")             # ... and those that read beta1 and beta2


def panel(steps: int) -> Panel:
    """Surface, optimizer, learning rate, momentum, betas, steps and a GD comparison over :func:`explore`.

    ``momentum`` applies only to the heavy-ball optimizers and ``beta1``/``beta2`` only to Adam and AdamW: the
    panel greys out the others and leaves them out of its message."""
    return Panel(explore, title="Optimizer playground",
                 surface=Choice(list(surfaces.SURFACES), "rosenbrock"),
                 optimizer=Choice(list(surfaces.OPTIMIZERS), "momentum"),
                 lr=LogFloat(1e-4, 1.0, 1e-3),
                 momentum=Float(0.0, 0.99, 0.9, applies=lambda v: v["optimizer"] in HEAVY_BALL),
                 beta1=Float(0.0, 0.99, 0.9, applies=lambda v: v["optimizer"] in ADAPTIVE),
                 # the readout shows 4 decimals: 0.9990 vs 0.9000
                 beta2=Float(0.5, 0.9999, 0.999, step=0.0001, applies=lambda v: v["optimizer"] in ADAPTIVE),
                 steps=Int(10, 3000, steps),
                 compare_with_gd=Toggle(True))


# ----------------------------------------------------------------------------- exercises
def largest_eigenvalue(surface: str = "quadratic", point=(0.0, 0.0)) -> float:
    """λ_max of the surface's Hessian at ``point``."""
    return float(np.linalg.eigvalsh(surfaces.hessian(surface, point)).max())


def diverges(lr: float, steps: int = 500) -> bool:
    """Whether GD at ``lr`` on the quadratic blows up, or ends with a higher f than it started with."""
    positive("lr", lr)
    _, f = surfaces.trajectory("quadratic", "gd", lr=lr, steps=steps)
    return len(f) < steps + 1 or f[-1] > f[0]


@functools.lru_cache(maxsize=32, typed=True)   # a trajectory of a few thousand steps: each setting is run once
def steps_to_shrink(lr: float, shrink: float = 100.0, optimizer: str = "gd", max_steps: int = 2000) -> int | None:
    """The first step after which |x| on the quadratic stays at or below |x_0| / ``shrink`` (x: the flat
    direction, λ = 1); None if that does not happen within ``max_steps`` steps."""
    positive("lr", lr)
    number("shrink", shrink, minimum=1, open_low=True)
    path, _ = surfaces.trajectory("quadratic", optimizer, lr=lr, steps=max_steps)
    above = np.nonzero(np.abs(path[:, 0]) > abs(path[0, 0]) / shrink)[0]
    last = int(above[-1]) + 1 if len(above) else 0
    return last if last < len(path) and len(path) == max_steps + 1 else None


def first_step_ratio(beta1: float = 0.9, beta2: float = 0.999, grad: float = 0.7) -> float:
    """First step of Adam without bias correction ÷ first step of Adam with it, both from m = v = 0."""
    g, zero = np.array([grad]), np.zeros(1)
    bad = optim.adam_step_no_bias_correction(zero, zero, zero, g, beta1=beta1, beta2=beta2)[0]
    good = optim.adam_step(zero, zero, zero, g, t=1, beta1=beta1, beta2=beta2)[0]
    return float(bad[0] / good[0])


def _is_number(answer) -> bool:
    """A real number that is not a bool (``True`` is an int in Python) and is finite."""
    return isinstance(answer, numbers.Real) and not isinstance(answer, bool) and bool(np.isfinite(answer))


def _diverging_lr(lr) -> bool:
    if not _is_number(lr) or lr <= 0:
        return False
    return lr > 2 / largest_eigenvalue() and diverges(lr)


def _close(expected, rel: float = 0.0, abs_tol: float = 0.0):
    """A check that refuses bools and non-numbers, then compares with ``expected()``."""
    return lambda answer: _is_number(answer) and numbers_close(answer, expected(), rel, abs_tol)


def exercises(lr: float = 0.01, shrink: float = 100.0, momentum: float = 0.9) -> dict[str, Exercise]:
    """The lab's four questions; 4a.3 counts GD's steps at ``lr`` until the flat direction shrinks ``shrink``-fold."""
    def explain_4a3() -> str:
        heavy = steps_to_shrink(lr, shrink, "momentum")
        return (f"The flat direction (λ = 1) is multiplied by (1 − lr) per step; the steep one has long gone by "
                f"then. Momentum {momentum:g} at the same lr needs "
                f"{'more than 2000' if heavy is None else heavy} steps for the same shrinkage.")

    return {
        "4a.1": Exercise("4a.1", "a learning rate at which GD diverges on the quadratic", check_fn=_diverging_lr,
                         hint="try larger learning rates in the panel (surface 'quadratic', optimizer 'gd') until f "
                              "grows instead of falling; the steep direction y is the first to blow up",
                         explain="Each step multiplies the y-direction by a factor that depends on lr and on the "
                                 "Hessian's eigenvalue along y; once that factor is larger than 1 in size, y grows "
                                 "every step. Exercise 4a.2 asks exactly where that starts."),
        "4a.2": Exercise("4a.2", "the stability limit of GD on the quadratic", check_fn=_close(
                             lambda: 2 / largest_eigenvalue(), rel=1e-3),
                         hint="the limit is set by one of the Hessian's eigenvalues (surfaces.hessian('quadratic', "
                              "(0, 0))): which one, and what does one GD step do along its direction? Check your "
                              "value by running GD just below and just above it",
                         explain="Below it every eigen-direction shrinks; above it the steepest one grows."),
        "4a.3": Exercise("4a.3", f"GD at lr {lr:g} on the quadratic: after how many steps is |x| (the flat "
                         f"direction) {shrink:g} times smaller than at the start?",
                         check_fn=_close(lambda: steps_to_shrink(lr, shrink), abs_tol=2),
                         hint="x and y do not mix on this surface: what does one GD step do to x alone? Then count "
                              "the steps with logarithms, or measure them with surfaces.trajectory",
                         explain=explain_4a3()),
        "4a.4": Exercise("4a.4", "first-step ratio, Adam without vs with bias correction",
                         check_fn=_close(first_step_ratio, rel=1e-3),
                         hint="write m and v after one step from zero, with and without the bias correction, and "
                              "compare the two updates; the size of the gradient drops out"),
    }
