"""Live loss curves and the figures the chapters share (plotly).

:class:`LiveLossPlot` is a training callback. Where a live front end is present
(JupyterLab) it updates a plotly ``FigureWidget`` in place; everywhere else
(papermill, the book build, Colab) it redraws a plain ``go.Figure`` every
``every`` steps into one display slot (``display(..., display_id=True)`` then
``handle.update``), so the notebook keeps the final frame, the rendered book
shows it, and other output of the cell is left alone.

One plot can follow several runs: ``plot.track("scratch")`` and
``plot.track("pretrained")`` return callbacks that draw into the same figure.
"""
from __future__ import annotations

import os
import sys

import numpy as np
import plotly.graph_objects as go

from .check import one_of, whole_number
from .runtime import headless
from .train import Callback, TrainState

__all__ = ["LiveLossPlot", "line_plot", "live_frontend"]

PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2"]


def _ipython():
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    return get_ipython()


def live_frontend() -> bool:
    """True in an interactive Jupyter kernel with a widget front end (JupyterLab, Notebook 7).

    False under papermill / the book build / the tests (``LABKIT_HEADLESS=1``), in
    Colab (its widget support for plotly is unreliable), and outside a kernel. Set
    ``LABKIT_LIVE=widget`` or ``LABKIT_LIVE=redraw`` to force either mode.
    """
    forced = os.environ.get("LABKIT_LIVE", "").strip().lower()
    if forced in ("widget", "redraw"):
        return forced == "widget"
    if headless() or "google.colab" in sys.modules:
        return False
    try:
        import anywidget  # noqa: F401  (plotly >= 6 needs it for FigureWidget)
    except ImportError:
        return False
    return True


def _smooth(values: list[float], window: int) -> list[float]:
    if window <= 1 or len(values) < 2:
        return list(values)
    v = np.asarray(values, dtype=float)
    c = np.cumsum(np.insert(v, 0, 0.0))
    out = [(c[i + 1] - c[max(0, i + 1 - window)]) / (i + 1 - max(0, i + 1 - window)) for i in range(len(v))]
    return out


class _Tracker(Callback):
    def __init__(self, plot: "LiveLossPlot", run: str):
        self.plot, self.run = plot, run

    def on_fit_start(self, state: TrainState) -> None:
        self.plot._start(self.run)

    def on_step_end(self, state: TrainState) -> None:
        s = self.plot.series[self.run]
        s["step"].append(state.step)
        s["loss"].append(state.loss)
        if state.step % self.plot.every == 0:
            self.plot.draw()

    def on_epoch_end(self, state: TrainState) -> None:
        row = state.history.epochs[-1]
        if "val_loss" in row:
            s = self.plot.series[self.run]
            s["val_step"].append(row["step"])
            s["val_loss"].append(row["val_loss"])
        self.plot.draw()

    def on_fit_end(self, state: TrainState) -> None:
        self.plot.draw(final=True)


class LiveLossPlot(Callback):
    """Training (smoothed) and validation loss against step, for one or more runs."""

    def __init__(self, title: str = "Loss", every: int = 10, smooth: int = 5, log_y: bool = False,
                 height: int = 360, mode: str = "auto"):
        whole_number("every", every)
        one_of("mode", mode, ("auto", "widget", "redraw"))
        self.title, self.every, self.smooth, self.log_y, self.height = title, every, smooth, log_y, height
        self.mode = ("widget" if live_frontend() else "redraw") if mode == "auto" else mode
        self.series: dict[str, dict[str, list]] = {}
        self._widget = None
        self._handle = None
        self._default = _Tracker(self, "train")
        self.draws = 0

    # A LiveLossPlot is itself a callback for a single run called "train".
    def on_fit_start(self, state):
        self._default.on_fit_start(state)

    def on_step_end(self, state):
        self._default.on_step_end(state)

    def on_epoch_end(self, state):
        self._default.on_epoch_end(state)

    def on_fit_end(self, state):
        self._default.on_fit_end(state)

    def track(self, run: str) -> Callback:
        """A callback that draws run ``run`` into this plot."""
        return _Tracker(self, run)

    def _start(self, run: str) -> None:
        self.series[run] = {"step": [], "loss": [], "val_step": [], "val_loss": []}

    def figure(self) -> go.Figure:
        """The current state as a plain ``go.Figure``."""
        fig = go.Figure()
        for i, (run, s) in enumerate(self.series.items()):
            color = PALETTE[i % len(PALETTE)]
            fig.add_trace(go.Scatter(x=s["step"], y=_smooth(s["loss"], self.smooth), mode="lines",
                                     name=f"{run} · train", line=dict(color=color)))
            if s["val_loss"]:
                fig.add_trace(go.Scatter(x=s["val_step"], y=s["val_loss"], mode="lines+markers",
                                         name=f"{run} · val", line=dict(color=color, dash="dash")))
        fig.update_layout(title=self.title, xaxis_title="step", yaxis_title="loss", height=self.height,
                          margin=dict(l=50, r=20, t=50, b=40), template="plotly_white")
        if self.log_y:
            fig.update_yaxes(type="log")
        return fig

    def draw(self, final: bool = False) -> None:
        ip = _ipython()
        if ip is None:  # a plain script: nothing to draw into
            return
        from IPython.display import display
        self.draws += 1
        if self.mode == "widget":
            fig = self.figure()
            if self._widget is None:
                self._widget = go.FigureWidget(fig)
                display(self._widget)
            else:
                with self._widget.batch_update():
                    self._widget.data = []
                    for trace in fig.data:
                        self._widget.add_trace(trace)
            return
        # A figure's own display hook would ignore display_id, so hand IPython the mime bundle
        # (built for the active plotly renderers) and update that one slot in place.
        bundle = self.figure()._repr_mimebundle_()
        if self._handle is None:
            self._handle = display(bundle, raw=True, display_id=True)
        else:
            self._handle.update(bundle, raw=True)


def line_plot(x, ys: dict[str, list], *, title: str, x_title: str, y_title: str, log_x: bool = False,
              height: int = 380, y_range=None) -> go.Figure:
    """A small multi-line figure with markers, one line per entry of ``ys``."""
    fig = go.Figure()
    for i, (name, y) in enumerate(ys.items()):
        fig.add_trace(go.Scatter(x=list(x), y=list(y), mode="lines+markers", name=name,
                                 line=dict(color=PALETTE[i % len(PALETTE)])))
    fig.update_layout(title=title, xaxis_title=x_title, yaxis_title=y_title, height=height,
                      template="plotly_white", margin=dict(l=50, r=20, t=50, b=40),
                      legend=dict(orientation="h", yanchor="top", y=-0.2, xanchor="left", x=0))
    if log_x:
        fig.update_xaxes(type="log")
    if y_range is not None:
        fig.update_yaxes(range=list(y_range))
    return fig
