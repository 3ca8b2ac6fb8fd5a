"""Static counterparts of the labs' panels: a small grid of runs, precomputed when the book is built, as one
plotly figure with a slider and a dropdown, so a reader of the rendered book (no kernel) can move a control
and watch the curves change.

    grid = lab02_grid(encoders, data, labels=[16, 64], lrs=[1e-4, 3e-4, 1e-3], epochs=4)
    lab02_figure(grid)                           # dropdown: labelled examples; slider: learning rate

    grid = lab03c_grid(encoders, train, test, epochs=3, batch_size=16)
    lab03c_figure(grid)                          # dropdown: strategy (or all); bars: test accuracy

    grid = lab04a_grid("rosenbrock", lrs=[1e-3, 3e-3, 1e-2, 3e-2], steps=300)
    lab04a_figure(grid)                          # dropdown: optimizer; slider: learning rate

How two controls act independently in a figure that has no kernel (:func:`explorer`): the slider
only shows and hides traces (one group of traces per slider position), and the dropdown only swaps
the data (x, y and name) of every trace for its option's run. Neither touches what the other sets.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .check import whole_number
from .plots import PALETTE, _smooth, wrap_title

__all__ = ["explorer", "Grid", "lab02_grid", "lab02_figure", "lab03c_grid", "lab03c_figure", "lab04a_grid",
           "lab04a_figure"]

SWAPPED = ("x", "y", "name")       # what the dropdown changes in each trace


def _fmt(v: Any) -> str:
    return f"{v:.0e}".replace("e-0", "e-") if isinstance(v, float) else str(v)


def explorer(traces: Callable[[Any, Any], Sequence[go.Scatter]], *, slider: tuple[str, Sequence],
             dropdown: tuple[str, Sequence] | None = None, fixed: Sequence = (), slider_default: int = 0,
             figure: go.Figure | None = None, rows_cols: Callable[[int], tuple[int, int]] | None = None) -> go.Figure:
    """A figure whose slider picks ``slider``'s value and whose dropdown picks ``dropdown``'s, with no kernel.

    ``traces(option, value)`` returns the traces of one run (the same number, in the same order, for every
    option and value; an option that has no run for a value returns empty traces). ``fixed`` traces (a
    contour, a bar chart) are always shown. ``figure`` (e.g. from ``make_subplots``) and ``rows_cols(k)``
    (the subplot of a run's k-th trace) place the traces in subplots.
    """
    s_name, s_values = slider[0], list(slider[1])
    d_name, d_values = (dropdown[0], list(dropdown[1])) if dropdown is not None else (None, [None])
    if not s_values:
        raise ValueError(f"the slider {s_name!r} needs at least one value")
    if not d_values:
        raise ValueError(f"the dropdown {d_name!r} needs at least one option")
    whole_number("slider_default", slider_default, minimum=0, maximum=len(s_values) - 1)
    runs = {(d, s): list(traces(d, s)) for d in d_values for s in s_values}
    sizes = {len(t) for t in runs.values()}
    if len(sizes) != 1 or 0 in sizes:
        raise ValueError(f"traces(option, value) must return the same number (> 0) of traces for every run; got "
                         f"{sorted(sizes)}")
    per_run = sizes.pop()
    fig = figure if figure is not None else go.Figure()
    for t in fixed:
        fig.add_trace(t)
    first = len(fig.data)
    for i, s in enumerate(s_values):
        for k, t in enumerate(runs[(d_values[0], s)]):
            t = go.Scatter(t) if isinstance(t, dict) else t
            t.visible = i == slider_default
            if rows_cols is not None:
                r, c = rows_cols(k)
                fig.add_trace(t, row=r, col=c)
            else:
                fig.add_trace(t)
    n_fixed, n_runs = first, len(s_values) * per_run
    steps = [dict(method="restyle", label=_fmt(s),
                  args=[{"visible": [True] * n_fixed + [j // per_run == i for j in range(n_runs)]}])
             for i, s in enumerate(s_values)]
    fig.update_layout(sliders=[dict(active=slider_default, steps=steps, currentvalue=dict(prefix=f"{s_name} = "),
                                    pad=dict(t=50), x=0, len=1.0)])
    if dropdown is not None:
        indices = list(range(first, first + n_runs))
        buttons = []
        for d in d_values:
            chosen = [t for s in s_values for t in runs[(d, s)]]
            args = {key: [_plain(getattr(t, key)) for t in chosen] for key in SWAPPED}
            buttons.append(dict(method="restyle", label=f"{d_name}: {d}", args=[args, indices]))
        fig.update_layout(updatemenus=[dict(buttons=buttons, direction="down", x=0, xanchor="left", y=1.18,
                                            yanchor="top", showactive=True)])
    fig.update_layout(margin=dict(t=110))
    return fig


def _plain(v):
    if v is None:
        return []
    if isinstance(v, (tuple, np.ndarray)):
        return list(v)
    return v


@dataclass
class Grid:
    """A precomputed grid of runs: ``runs[(option, value)]`` holds each run's numbers; ``seconds`` it took."""
    kind: str
    slider: tuple[str, list]
    dropdown: tuple[str, list] | None
    runs: dict = field(default_factory=dict)
    seconds: float = 0.0
    note: str = ""
    extra: dict = field(default_factory=dict)

    def __repr__(self) -> str:
        d = f", {self.dropdown[0]} × {len(self.dropdown[1])}" if self.dropdown else ""
        return f"Grid({self.kind}: {self.slider[0]} × {len(self.slider[1])}{d}, {len(self.runs)} runs, {self.seconds:.0f} s)"


def _loss_curve(history, smooth: int = 3) -> tuple[list, list]:
    steps = [row["step"] for row in history.steps]
    return steps, _smooth([row["loss"] for row in history.steps], smooth)


# ----------------------------------------------------------------------------- Lab 2
def lab02_grid(encoders, data, *, labels: Sequence[int], lrs: Sequence[float], epochs: int, batch_size: int = 16,
               seed: int = 0) -> Grid:
    """Both arms of Lab 2 at every (labelled-set size, learning rate): loss curves, validation and test accuracy."""
    from .transfer import ARMS, train_classifier
    if not labels or not lrs:
        raise ValueError("labels and lrs need at least one value each")
    grid, start = Grid("lab02", ("lr", [float(v) for v in lrs]), ("labels", [int(n) for n in labels])), \
        time.perf_counter()
    for n in grid.dropdown[1]:
        for lr in grid.slider[1]:
            grid.runs[(n, lr)] = {}
            for arm in ARMS:
                r = train_classifier(encoders, arm, data, n, lr=lr, epochs=epochs, batch_size=min(batch_size, n),
                                     seed=seed, with_val=True)
                x, y = _loss_curve(r.history)
                grid.runs[(n, lr)][arm] = {"x": x, "y": y, "test": r.test_acc, "train": r.accuracy["train"],
                                           "val": r.accuracy["val"],
                                           "val_x": [e["step"] for e in r.history.epochs if "val_loss" in e],
                                           "val_y": [e["val_loss"] for e in r.history.epochs if "val_loss" in e]}
    grid.seconds = time.perf_counter() - start
    grid.note = f"{epochs} epochs, batch {batch_size}, seed {seed}"
    return grid


def lab02_figure(grid: Grid, title: str = "Lab 2 · scratch vs pretrained, precomputed") -> go.Figure:
    """Training (solid) and validation (dashed) loss of both arms; dropdown: labelled examples; slider: lr."""
    arms = list(next(iter(grid.runs.values())))

    def traces(n, lr):
        out = []
        for i, arm in enumerate(arms):
            r = grid.runs[(n, lr)][arm]
            color = PALETTE[i % len(PALETTE)]
            label = f"{arm} · test {r['test']:.2f} (train {r['train']:.2f})"
            out.append(go.Scatter(x=r["x"], y=r["y"], mode="lines", name=label, line=dict(color=color)))
            out.append(go.Scatter(x=r["val_x"], y=r["val_y"], mode="lines+markers", name=f"{arm} · validation",
                                  line=dict(color=color, dash="dash")))
        return out

    default = len(grid.slider[1]) // 2
    fig = explorer(traces, slider=grid.slider, dropdown=grid.dropdown, slider_default=default)
    fig.update_layout(title=dict(text=f"{title} ({grid.note})", x=0.3), xaxis_title="step",
                      yaxis_title="cross-entropy loss", template="plotly_white", height=480,
                      legend=dict(orientation="h", y=-0.45))
    return wrap_title(fig, TITLE_WIDTH)


# The titles start at x=0.3 (the dropdown sits at the left): lines of 48 characters fit the 70% that is left.
TITLE_WIDTH = 48


# ----------------------------------------------------------------------------- Lab 3c
def lab03c_grid(encoders, train, test, *, strategies: Sequence[str] | None = None, epochs: int, batch_size: int = 16,
                seed: int = 0, lrs: dict | None = None) -> Grid:
    """Every strategy of Lab 3c at its suggested learning rate (``lrs`` overrides): loss curve and test row."""
    from .labs.lab03c import CHOICES, SUGGESTED_LR, StrategyLab
    strategies = list(CHOICES) if strategies is None else list(strategies)
    lab = StrategyLab(encoders, train, test, batch_size=batch_size, seed=seed, plot=None)
    grid, start = Grid("lab03c", ("strategy", strategies), None), time.perf_counter()
    for s in strategies:
        lr = (lrs or {}).get(s, SUGGESTED_LR[s])
        row = lab.run(s, lr=lr, epochs=epochs)
        x, y = _loss_curve(lab.results[-1].history)
        grid.runs[s] = {"x": x, "y": y, "lr": lr, "label": row["strategy"], "test": row["test accuracy"],
                        "trainable": row["trainable params"], "percent": row["trainable %"]}
    grid.seconds = time.perf_counter() - start
    grid.note = f"{epochs} epochs, {len(train)} labels, seed {seed}"
    return grid


def lab03c_figure(grid: Grid, title: str = "Lab 3c · fine-tuning strategies, precomputed") -> go.Figure:
    """Left: training loss (smoothed, log) of the strategy the dropdown picks, or all; right: test accuracy."""
    names = grid.slider[1]
    fig = make_subplots(rows=1, cols=2, column_widths=[0.62, 0.38], horizontal_spacing=0.12,
                        subplot_titles=["training loss (smoothed)", "test accuracy · trainable %"])
    for i, s in enumerate(names):
        r = grid.runs[s]
        fig.add_trace(go.Scatter(x=r["x"], y=r["y"], mode="lines", line=dict(color=PALETTE[i % len(PALETTE)]),
                                 name=f"{r['label']} (lr {r['lr']:.0e}) · test {r['test']:.2f}"), row=1, col=1)
    fig.add_trace(go.Bar(x=[grid.runs[s]["test"] for s in names], y=[grid.runs[s]["label"] for s in names],
                         orientation="h", marker_color=[PALETTE[i % len(PALETTE)] for i in range(len(names))],
                         text=[f"{grid.runs[s]['test']:.2f} · {grid.runs[s]['percent']:.2g}%" for s in names],
                         textposition="auto", showlegend=False, hovertemplate="%{y}: %{x:.3f}<extra></extra>"),
                  row=1, col=2)
    n = len(names)
    buttons = [dict(method="restyle", label="all strategies", args=[{"visible": [True] * (n + 1)}])]
    buttons += [dict(method="restyle", label=grid.runs[s]["label"],
                     args=[{"visible": [j == i for j in range(n)] + [True]}]) for i, s in enumerate(names)]
    fig.update_layout(updatemenus=[dict(buttons=buttons, direction="down", x=0, xanchor="left", y=1.22,
                                        yanchor="top")],
                      title=dict(text=f"{title} ({grid.note})", x=0.3), template="plotly_white", height=500,
                      margin=dict(t=120), legend=dict(orientation="h", y=-0.25))
    wrap_title(fig, TITLE_WIDTH)
    fig.update_yaxes(type="log", title_text="loss (log)", row=1, col=1)
    fig.update_xaxes(title_text="step", row=1, col=1)
    fig.update_xaxes(title_text="test accuracy", range=[0, 1], row=1, col=2)
    fig.update_yaxes(title_text="strategy", row=1, col=2)
    return fig


# ----------------------------------------------------------------------------- Lab 4a
def lab04a_grid(surface: str = "rosenbrock", *, lrs: Sequence[float], steps: int,
                optimizers: Sequence[str] | None = None, momentum: float = 0.9, betas=(0.9, 0.999)) -> Grid:
    """Every optimizer at every learning rate on one surface: the path and f − f* along it."""
    from . import surfaces
    optimizers = list(surfaces.OPTIMIZERS) if optimizers is None else list(optimizers)
    s = surfaces.SURFACES[surface]
    import torch
    best = min(s.f(torch.tensor(m, dtype=torch.float64)).item() for m in s.minima)
    grid, start = Grid("lab04a", ("lr", [float(v) for v in lrs]), ("optimizer", optimizers)), time.perf_counter()
    for opt in optimizers:
        for lr in grid.slider[1]:
            path, f = surfaces.trajectory(surface, opt, lr=lr, steps=steps, momentum=momentum, betas=betas)
            ok = np.all(np.isfinite(path), axis=1)
            gap = np.maximum(np.asarray(f) - best, 1e-12)
            grid.runs[(opt, lr)] = {"path": path[ok].astype(np.float32), "gap": gap.astype(np.float32),
                                    "diverged": len(path) <= steps, "final": float(gap[-1])}
    grid.seconds = time.perf_counter() - start
    grid.note = f"{surface}, {steps} steps, momentum {momentum}, betas {tuple(betas)}"
    grid.extra["surface"] = surface
    return grid


def lab04a_figure(grid: Grid, title: str = "Lab 4a · optimizers, precomputed") -> go.Figure:
    """Left: contours and the path; right: f − f* (log) along it. Dropdown: optimizer; slider: learning rate."""
    from . import surfaces
    surface = grid.extra.get("surface", "rosenbrock")
    contour = surfaces.contour_figure(surface, {})
    fig = make_subplots(rows=1, cols=2, column_widths=[0.55, 0.45], horizontal_spacing=0.1,
                        subplot_titles=["the path on the surface", "f − f* along the path"])
    fixed = list(contour.data)     # the contour lines and the minimum

    def traces(opt, lr):
        r = grid.runs[(opt, lr)]
        state = "diverged" if r["diverged"] else f"f − f* = {r['final']:.2g}"
        return [go.Scatter(x=r["path"][:, 0], y=r["path"][:, 1], mode="lines+markers", marker=dict(size=3),
                           line=dict(color=PALETTE[0]), name=f"{opt} at lr {lr:.0e}: {state}"),
                go.Scatter(x=list(range(len(r["gap"]))), y=r["gap"], mode="lines", line=dict(color=PALETTE[1]),
                           name=f"{opt} · f − f*")]

    for t in fixed:
        fig.add_trace(t, row=1, col=1)
    fig = explorer(traces, slider=grid.slider, dropdown=grid.dropdown, figure=fig,
                   slider_default=len(grid.slider[1]) // 2, rows_cols=lambda k: (1, 1 + k))
    s = surfaces.SURFACES[surface]
    fig.update_xaxes(range=list(s.x_range), title_text="x", row=1, col=1)
    fig.update_yaxes(range=list(s.y_range), title_text="y", row=1, col=1)
    fig.update_yaxes(type="log", exponentformat="power", title_text="f − f* (log)", row=1, col=2)
    fig.update_xaxes(title_text="step", row=1, col=2)
    fig.update_layout(title=dict(text=f"{title} ({grid.note})", x=0.3), template="plotly_white", height=520,
                      legend=dict(orientation="h", y=-0.35))
    return wrap_title(fig, TITLE_WIDTH)
