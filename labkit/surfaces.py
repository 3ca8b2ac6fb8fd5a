"""Two-dimensional test surfaces and optimizer trajectories on them (chapter 4.2, lab 4a).

    path, losses = trajectory("rosenbrock", "adam", lr=0.05, steps=300)
    contour_figure("rosenbrock", {"adam": path})

Each surface is a function of a tensor ``p = (x, y)``; the optimizers are the
from-scratch ones in :mod:`labkit.optim`, so a trajectory is exactly what
``torch.optim`` would do from the same start.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import plotly.graph_objects as go
import torch

from . import optim
from .check import one_of, positive, whole_number
from .plots import PALETTE, wrap_title

__all__ = ["Surface", "SURFACES", "OPTIMIZERS", "make_optimizer", "trajectory", "hessian",
           "contour_figure", "loss_figure"]


@dataclass
class Surface:
    name: str
    f: Callable[[torch.Tensor], torch.Tensor]
    start: tuple[float, float]
    x_range: tuple[float, float]
    y_range: tuple[float, float]
    minima: tuple[tuple[float, float], ...]
    log_contours: bool = False
    formula: str = ""


SURFACES = {
    "quadratic": Surface("quadratic", lambda p: 0.5 * (p[0] ** 2 + 25 * p[1] ** 2), (-2.0, 1.0),
                         (-2.5, 2.5), (-1.5, 1.5), ((0.0, 0.0),),
                         formula="f(x, y) = (x² + 25 y²) / 2  (Hessian eigenvalues 1 and 25)"),
    "rosenbrock": Surface("rosenbrock", lambda p: (1 - p[0]) ** 2 + 100 * (p[1] - p[0] ** 2) ** 2, (-1.5, 2.0),
                          (-2.0, 2.0), (-1.0, 3.0), ((1.0, 1.0),), log_contours=True,
                          formula="f(x, y) = (1 − x)² + 100 (y − x²)²  (minimum at (1, 1))"),
    "saddle": Surface("saddle", lambda p: 0.5 * p[0] ** 2 - 0.5 * p[1] ** 2 + 0.25 * p[1] ** 4, (1.5, 1e-3),
                      (-2.0, 2.0), (-1.8, 1.8), ((0.0, 1.0), (0.0, -1.0)),
                      formula="f(x, y) = x²/2 − y²/2 + y⁴/4  (saddle at (0, 0), minima at (0, ±1))"),
}

OPTIMIZERS = ("gd", "momentum", "nesterov", "adam", "adamw")


def _surface(surface: str | Surface) -> Surface:
    if isinstance(surface, Surface):
        return surface
    return SURFACES[one_of("surface", surface, SURFACES)]


def make_optimizer(name: str, params, lr: float, momentum: float = 0.9, betas=(0.9, 0.999),
                   weight_decay: float = 0.0) -> torch.optim.Optimizer:
    """One of :data:`OPTIMIZERS`, built from :mod:`labkit.optim`."""
    if name == "gd":
        return optim.SGD(params, lr=lr, weight_decay=weight_decay)
    if name == "momentum":
        return optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    if name == "nesterov":
        return optim.SGD(params, lr=lr, momentum=momentum, nesterov=True, weight_decay=weight_decay)
    if name == "adam":
        return optim.Adam(params, lr=lr, betas=betas, weight_decay=weight_decay)
    if name == "adamw":
        return optim.AdamW(params, lr=lr, betas=betas, weight_decay=weight_decay)
    raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}; got {name!r}")


def trajectory(surface: str | Surface, optimizer: str = "gd", *, lr: float, steps: int, momentum: float = 0.9,
               betas=(0.9, 0.999), weight_decay: float = 0.0, start=None, blowup: float = 1e6) -> tuple[np.ndarray, np.ndarray]:
    """Points visited (steps+1, 2) and f at each. Stops early once |p| or f exceeds ``blowup`` (divergence)."""
    s = _surface(surface)
    whole_number("steps", steps)
    positive("lr", lr)   # a bool is refused too: True is not a learning rate
    p = torch.tensor(start if start is not None else s.start, dtype=torch.float64, requires_grad=True)
    opt = make_optimizer(optimizer, [p], lr=lr, momentum=momentum, betas=betas, weight_decay=weight_decay)
    path, losses = [p.detach().clone().numpy()], []
    for _ in range(steps):
        opt.zero_grad()
        loss = s.f(p)
        losses.append(loss.item())
        if not np.isfinite(losses[-1]) or abs(losses[-1]) > blowup:
            break
        loss.backward()
        opt.step()
        path.append(p.detach().clone().numpy())
        if not torch.isfinite(p).all() or p.abs().max() > blowup:
            break
    else:
        losses.append(s.f(p).item())
    return np.array(path), np.array(losses[:len(path)])


def hessian(surface: str | Surface, point) -> np.ndarray:
    """The 2x2 Hessian of the surface at ``point`` (autograd)."""
    s = _surface(surface)
    return torch.autograd.functional.hessian(s.f, torch.tensor(point, dtype=torch.float64)).numpy()


def _inside(path: np.ndarray, s: Surface) -> np.ndarray:
    """For each point of ``path``, whether it lies in the surface's frame (its x and y ranges)."""
    (x0, x1), (y0, y1) = s.x_range, s.y_range
    return (path[:, 0] >= x0) & (path[:, 0] <= x1) & (path[:, 1] >= y0) & (path[:, 1] <= y1)


def contour_figure(surface: str | Surface, paths: dict[str, np.ndarray], *, title: str | None = None,
                   height: int = 460) -> go.Figure:
    """Contours of the surface with one line per trajectory (start: circle, end: x).

    The frame is the surface's own x and y ranges, where the converging paths are. A path that ends outside
    it (a diverging one) is drawn up to the edge where it first leaves, and its legend entry says so: the
    zigzags of a diverging path beyond the frame would otherwise cross the whole figure and hide the others.
    """
    s = _surface(surface)
    xs, ys = np.linspace(*s.x_range, 120), np.linspace(*s.y_range, 90)
    X, Y = np.meshgrid(xs, ys)
    Z = s.f(torch.tensor(np.stack([X, Y]))).numpy()
    if s.log_contours:
        Z = np.log10(Z - Z.min() + 1e-3)
    Z = Z.astype(np.float32)  # a smaller page: contours do not need float64
    fig = go.Figure(go.Contour(x=xs, y=ys, z=Z, ncontours=30, colorscale="Greys", showscale=False,
                               contours=dict(coloring="lines"), hoverinfo="skip"))
    for i, (name, path) in enumerate(paths.items()):
        color = PALETTE[i % len(PALETTE)]
        clipped = path[np.all(np.isfinite(path), axis=1)]
        inside = _inside(clipped, s)
        if len(clipped) and not inside[-1]:       # ends outside the frame: up to the first step out
            leaves = int(np.argmin(inside))
            clipped, name = clipped[:leaves + 1], f"{name} · leaves the frame at step {leaves}, ends outside"
        fig.add_trace(go.Scatter(x=clipped[:, 0], y=clipped[:, 1], mode="lines+markers", name=name,
                                 line=dict(color=color, width=2), marker=dict(size=3)))
        if len(clipped) and _inside(clipped[-1:], s)[0]:
            fig.add_trace(go.Scatter(x=clipped[-1:, 0], y=clipped[-1:, 1], mode="markers", showlegend=False,
                                     marker=dict(symbol="x", size=10, color=color)))
    fig.add_trace(go.Scatter(x=[m[0] for m in s.minima], y=[m[1] for m in s.minima], mode="markers",
                             name="minimum", marker=dict(symbol="star", size=14, color="gold",
                                                         line=dict(color="black", width=1))))
    fig.update_layout(title=title or s.formula, height=height, template="plotly_white",
                      xaxis=dict(range=list(s.x_range), title="x"), yaxis=dict(range=list(s.y_range), title="y"),
                      margin=dict(l=50, r=20, t=50, b=40),
                      legend=dict(orientation="h", yanchor="top", y=-0.14, xanchor="left", x=0))
    return wrap_title(fig)


def loss_figure(losses: dict[str, np.ndarray], *, title: str = "f along each path", log_y: bool = True,
                offset: float = 0.0, height: int = 340) -> go.Figure:
    """f(p_t) against t for each trajectory; ``offset`` is subtracted (e.g. the minimum value) before a log axis."""
    fig = go.Figure()
    for i, (name, ls) in enumerate(losses.items()):
        y = np.asarray(ls) - offset
        fig.add_trace(go.Scatter(x=np.arange(len(y)), y=y, mode="lines", name=name,
                                 line=dict(color=PALETTE[i % len(PALETTE)])))
    fig.update_layout(title=title, xaxis_title="step", yaxis_title="f − f*" if offset else "f", height=height,
                      template="plotly_white", margin=dict(l=50, r=20, t=50, b=40))
    if log_y:
        fig.update_yaxes(type="log", exponentformat="power")
    return wrap_title(fig)
