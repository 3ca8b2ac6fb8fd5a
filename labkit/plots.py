"""Live loss curves and the figures the chapters share (plotly).

:class:`LiveLossPlot` is a training callback. Where a live front end is present
(JupyterLab) it updates a plotly ``FigureWidget`` in place; everywhere else
(papermill, the book build, Colab) it redraws a plain ``go.Figure`` every
``every`` steps into one display slot (``display(..., display_id=True)`` then
``handle.update``), so the notebook keeps the final frame, the rendered book
shows it, and other output of the cell is left alone.

One plot can follow several runs: ``plot.track("scratch")`` and
``plot.track("pretrained")`` return callbacks that draw into the same figure.

Inside a run started by a panel's Run button (:mod:`labkit.widgets`), the plot
also reports every step to the panel's message line ("Running… (step k of n)")
and, once Stop is pressed, ends the training loop after the current step (it sets
``state.stop``, the way early stopping ends a run); a further run that would start
after Stop is not started (:class:`labkit.widgets.StopRun`).

Importing this module adds the ``labkit`` plotly template to the default one (and its margins to
``plotly_white``): axis titles and long tick labels get the margin they need instead of being cut.
Plotly never wraps a title, so :func:`wrap_title` breaks a long one into lines that fit the page (and
makes room for them at the top); :func:`sparse_labels` keeps the words beside points from overlapping; and
:func:`token_table` shows per-token rows (tokens side by side) in blocks that fit the page instead of
one table wider than it.
"""
from __future__ import annotations

import os
import re
import sys
import time

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio

from .check import one_of, whole_number
from .runtime import headless
from .train import Callback, TrainState
from .widgets import StopRun, current_run

__all__ = ["LiveLossPlot", "line_plot", "live_frontend", "fit_title", "wrap_title", "sparse_labels", "TokenTable", "token_table"]

# Margins that grow to fit axis titles, tick labels and the title (plotly cuts them otherwise).
# With title.automargin, plotly pins the title to the figure's top edge (y=1, yanchor="top"): its first line's
# tops then stood 3 px above the figure, cut; TITLE_PAD_PX keeps it inside.
TITLE_PAD_PX = 10
pio.templates["labkit"] = go.layout.Template(layout=dict(
    xaxis=dict(automargin=True), yaxis=dict(automargin=True), title=dict(automargin=True, pad=dict(t=TITLE_PAD_PX))))
if "labkit" not in str(pio.templates.default).split("+"):
    pio.templates.default = f"{pio.templates.default}+labkit" if pio.templates.default else "labkit"
# Figures that name template="plotly_white" replace the default template: give that one the same margins.
pio.templates["plotly_white"].layout.update(xaxis_automargin=True, yaxis_automargin=True, title_automargin=True,
                                           title_pad_t=TITLE_PAD_PX)

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
        control = current_run()
        if control is not None and control.stop_requested:  # Stop was pressed: do not start another run
            raise StopRun(f"stopped before {self.run!r} started")
        self.plot._start(self.run)

    def on_step_end(self, state: TrainState) -> None:
        s = self.plot.series[self.run]
        s["step"].append(state.step)
        s["loss"].append(state.loss)
        if state.step % self.plot.every == 0:
            self.plot.draw()
        control = current_run()
        if control is not None:  # a panel's Run button started this: say where we are, and obey Stop
            control.progress(state.step, state.total_steps, self.run if self.run != "train" else None)
            if control.stop_requested:
                state.stop = True

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
        self.min_interval = 1.0     # seconds between two redraws of a live widget (the last one is always drawn)
        self.settle = 3.0           # seconds a new live widget is left alone (its view is still being drawn)
        self._last_draw = -float("inf")

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
        wrap_title(fig)
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
            # Updates that reach a live figure before its view is drawn, or many times a second, fail in the front
            # end ("Error setting state: gd.data must be an array"): a new widget is left alone for `settle`
            # seconds, then redrawn at most once per `min_interval`; the final frame is always drawn.
            now = time.monotonic()
            if not final and self._widget is not None and now - self._last_draw < self.min_interval:
                return
            if final and self._widget is not None and now < self._last_draw:  # a short run: let the view settle
                time.sleep(min(self.settle, self._last_draw - now))
                now = time.monotonic()
            self._last_draw = now + (self.settle if self._widget is None else 0.0)
            fig = self.figure()
            if self._widget is None:
                if not fig.data:
                    # Nothing to draw yet. A FigureWidget displayed empty and then given its traces stayed empty
                    # in JupyterLab (seen in the browser tests): the live figure appears with its first points.
                    return
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
        bundle = _mime_bundle(self.figure())
        if self._handle is None:
            self._handle = display(bundle, raw=True, display_id=True)
        else:
            self._handle.update(bundle, raw=True)


def _mime_bundle(fig: go.Figure) -> dict:
    """``fig``'s mime bundle for the default renderers, with their one-time set-up done once.

    ``Figure._repr_mimebundle_`` passes the default renderer's name on, and plotly (7.1) then activates the
    renderers on every call: with ``notebook_connected`` each redraw displayed the plotly.js loader again.
    """
    try:
        from plotly.io._utils import validate_coerce_fig_to_dict
        return pio.renderers._build_mime_bundle(validate_coerce_fig_to_dict(fig, True))
    except (ImportError, AttributeError, TypeError):  # a plotly without these internals
        return fig._repr_mimebundle_()


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
    wrap_title(fig)
    if log_x:  # mark the values themselves on a log axis (16, 32, 64, ... not only 10 and 100)
        ticks = sorted({float(v) for v in x})
        fig.update_xaxes(type="log", tickvals=ticks if len(ticks) <= 12 else None,
                         ticktext=[f"{v:g}" for v in ticks] if len(ticks) <= 12 else None)
    if y_range is not None:
        fig.update_yaxes(range=list(y_range))
    return fig


def _pieces(word: str, width: int) -> list[str]:
    """A word longer than ``width`` cut after its dots, slashes, underscores or hyphens (else every ``width``)."""
    pieces, rest = [], word
    while len(rest) > width:
        cut = max(rest.rfind(c, 0, width) for c in "./_-") + 1
        cut = cut if cut > 0 else width
        pieces.append(rest[:cut])
        rest = rest[cut:]
    return pieces + [rest]


def fit_title(title: str, width: int = 72) -> str:
    """``title`` broken into lines of at most ``width`` characters (at spaces) with ``<br>``.

    Plotly draws a title on one line and cuts it at the figure's edge; 72 characters of the default title font
    fit a figure as wide as the book's page. Existing ``<br>`` breaks are kept; markup such as ``<sup>`` is not
    counted; a single word longer than a line (a tensor's name) is cut after a dot, slash or underscore.
    """
    whole_number("width", width, minimum=10)
    lines = []
    for part in title.split("<br>"):
        line, shown = "", 0
        for word in part.split(" "):
            for k, piece in enumerate(_pieces(word, width) if "<" not in word else [word]):
                glue = " " if k == 0 else ""          # the pieces of one long word join without a space
                size = len(re.sub(r"<[^>]+>", "", piece))
                if line and shown + len(glue) + size > width:
                    lines.append(line)
                    line, shown = piece, size
                else:
                    line, shown = (f"{line}{glue}{piece}", shown + len(glue) + size) if line else (piece, size)
        lines.append(line)
    return "<br>".join(lines)


TITLE_LINE_PX = 22   # one line of a plotly title: 1.3 x its 17 px font


def wrap_title(fig: go.Figure, width: int = 72) -> go.Figure:
    """Break ``fig``'s title into lines of at most ``width`` characters (:func:`fit_title`) and make room for them.

    Plotly anchors a title by its first line and lets the other lines run over the plot or off the top of the
    figure; a title of several lines is therefore pinned to the top of the figure and the top margin grows to
    hold every line. Returns ``fig`` (changed in place), so ``display(wrap_title(some_figure(...)))`` works.
    """
    text = fig.layout.title.text
    if not text:
        return fig
    text = fit_title(text, width)
    lines = text.count("<br>") + 1
    if lines == 1:
        fig.update_layout(title_text=text)
        return fig
    pad = TITLE_LINE_PX + 2
    fig.update_layout(title=dict(text=text, yref="container", y=1, yanchor="top", pad=dict(t=pad)))
    need = pad + TITLE_LINE_PX * (lines - 1) + 30
    if fig.layout.margin.t is None and need <= 100:     # plotly's default top margin is 100 px
        return fig
    if fig.layout.margin.t is None or fig.layout.margin.t < need:
        fig.update_layout(margin_t=need)
    return fig


def sparse_labels(x, y, labels, *, width: int = 480, height: int = 380, font_px: float = 9.0) -> list[str]:
    """The labels to draw beside points so that no two overlap; ``""`` for the others.

    A label sits centred above its point (plotly's ``textposition="top center"``) on a plot area of
    ``width`` x ``height`` pixels whose middle 90% spans the data's range. Labels are taken greedily, those that collide
    with the fewest others first; a label that would overlap one already taken, or reach past the plot's
    side, is left out (its point keeps its marker and its hover text). A static page then shows readable
    words instead of a heap of overlapping ones.
    """
    x, y, labels = np.asarray(x, dtype=float), np.asarray(y, dtype=float), [str(t) for t in labels]
    if not (len(x) == len(y) == len(labels)):
        raise ValueError(f"x, y and labels must have one entry per point; got {len(x)}, {len(y)} and {len(labels)}")
    whole_number("width", width, minimum=50)
    whole_number("height", height, minimum=50)
    if not len(x):
        return []
    span = lambda v: (v.max() - v.min()) or 1.0  # noqa: E731
    pad_x, pad_y = 0.05 * width, 0.05 * height         # plotly's autorange leaves about 5% around the points
    px = pad_x + (x - x.min()) / span(x) * (width - 2 * pad_x)
    py = pad_y + (y.max() - y) / span(y) * (height - 2 * pad_y)   # screen coordinates: y grows downwards
    w = np.array([0.62 * font_px * len(t) + 4 for t in labels])
    h = 1.3 * font_px
    boxes = np.stack([px - w / 2, py - 6 - h, px + w / 2, py - 6], axis=1)   # above the marker (radius ~6 px)

    def hit(a, b):
        return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]

    clashes = [sum(hit(boxes[i], boxes[j]) for j in range(len(boxes)) if j != i) for i in range(len(boxes))]
    taken: list[int] = []
    for i in sorted(range(len(boxes)), key=lambda i: clashes[i]):
        if boxes[i][0] < 0 or boxes[i][2] > width or not labels[i]:
            continue
        if not any(hit(boxes[i], boxes[j]) for j in taken):
            taken.append(i)
    chosen = set(taken)
    return [t if i in chosen else "" for i, t in enumerate(labels)]


class TokenTable:
    """Per-token rows (one column per position), shown in blocks of positions that fit the page.

    ``rows`` maps a row name ("token", "input_ids", "label", ...) to one value per position. ``frame`` is
    the whole table (rows x positions); in a notebook or the book it is drawn as consecutive tables of at
    most ``width`` pixels each (an estimate from the number of characters), so no column is hidden beyond
    the right edge of the page.
    """

    CHAR_PX, CELL_PX = 8.0, 16.0     # a table cell's character and padding widths in the book's theme (estimates)

    def __init__(self, rows: dict, *, width: int = 620):
        import pandas as pd
        if not isinstance(rows, dict) or not rows:
            raise ValueError("rows must be a non-empty dict: row name -> one value per position")
        lengths = {name: len(values) for name, values in rows.items()}
        if len(set(lengths.values())) != 1:
            raise ValueError(f"rows must all have one value per position; got lengths {lengths}")
        whole_number("width", width, minimum=100)
        self.width = width
        self.frame = pd.DataFrame({name: list(values) for name, values in rows.items()}).T

    def blocks(self) -> list:
        """The frame cut into consecutive blocks of positions, each at most ``width`` pixels wide (estimated)."""
        px = lambda n: self.CELL_PX + self.CHAR_PX * n  # noqa: E731
        used0 = px(max(len(str(i)) for i in self.frame.index))
        blocks, start, used = [], 0, used0
        for j, col in enumerate(self.frame.columns):
            w = px(max([len(str(col))] + [len(str(v)) for v in self.frame[col]]))
            if j > start and used + w > self.width:
                blocks.append(self.frame.iloc[:, start:j])
                start, used = j, used0
            used += w
        blocks.append(self.frame.iloc[:, start:])
        return blocks

    def _repr_html_(self) -> str:
        parts = [b.to_html() for b in self.blocks()]
        return '<div class="labkit-token-table">' + "".join(parts) + "</div>"

    def __repr__(self) -> str:
        return "\n\n".join(b.to_string() for b in self.blocks())


def token_table(rows: dict, *, width: int = 620) -> TokenTable:
    """A :class:`TokenTable` of ``rows`` (row name -> one value per position), drawn in blocks that fit the page."""
    return TokenTable(rows, width=width)
