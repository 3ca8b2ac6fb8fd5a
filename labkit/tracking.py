"""Experiment tracking: a :func:`labkit.train.fit` callback that writes TensorBoard event files, and the reader
that brings them back as tables.

:class:`TensorBoard` logs, under ``log_dir``:

* ``train/loss`` and ``train/lr`` at every step (the learning rate the step used);
* every number of the epoch record (``epoch/train_loss``, ``epoch/val_loss``, ``epoch/val_acc`` ...) at the
  step the epoch ended;
* a histogram of every trainable weight tensor at the end of each epoch (``weights/<name>``).

Open them with ``tensorboard --logdir LOG_DIR`` (a browser tab), inside JupyterLab or Colab with
``%load_ext tensorboard`` then ``%tensorboard --logdir LOG_DIR``, or read them back in Python with
:func:`read_events` (TensorBoard's own ``EventAccumulator``), which is what the book does so that the
rendered page shows the curves without a server. Under torchrun only rank 0 writes. A resumed run
continues the same files: steps after the checkpoint that an interrupted run had already logged are
dropped (``purge_step``), so every step appears once.
"""
from __future__ import annotations

from pathlib import Path

import torch

from .check import whole_number
from .train import Callback, TrainState

__all__ = ["TensorBoard", "read_events", "Events", "plot_scalars", "plot_histograms", "weight_stats"]


class TensorBoard(Callback):
    """Write a run's loss, learning rate, epoch metrics and weight histograms as TensorBoard events."""

    def __init__(self, log_dir, *, every: int = 1, histograms: bool = True):
        self.log_dir = Path(log_dir)
        self.every = whole_number("every (steps between logged points)", every)
        self.histograms = bool(histograms)
        self.writer = None

    def on_fit_start(self, state: TrainState) -> None:
        from torch.utils.tensorboard import SummaryWriter
        # a resumed run starts after state.step: anything logged past it by the interrupted run is dropped
        self.writer = SummaryWriter(str(self.log_dir), purge_step=state.step + 1 if state.step else None)

    def on_step_end(self, state: TrainState) -> None:
        if state.step % self.every:
            return
        row = state.history.steps[-1]
        self.writer.add_scalar("train/loss", row["loss"], state.step)
        self.writer.add_scalar("train/lr", row["lr"], state.step)

    def on_epoch_end(self, state: TrainState) -> None:
        row = state.history.epochs[-1]
        for key, value in row.items():
            if key not in ("epoch", "step"):
                self.writer.add_scalar(f"epoch/{key}", value, state.step)
        if self.histograms:
            for name, p in state.model.named_parameters():
                if p.requires_grad:
                    values = p.detach().full_tensor() if hasattr(p, "full_tensor") else p.detach()
                    self.writer.add_histogram(f"weights/{name}", values.float().cpu(), row["epoch"])
        self.writer.flush()

    def on_fit_end(self, state: TrainState) -> None:
        if self.writer is not None:
            self.writer.close()


class Events:
    """What :func:`read_events` returns: ``scalars`` (tag, step, value) and ``histograms`` (tag, step, and
    the bucket edges and counts of each), as pandas tables."""

    def __init__(self, scalars, histograms):
        self.scalars, self.histograms = scalars, histograms

    def scalar(self, tag: str):
        """One scalar's (step, value) rows, in step order."""
        rows = self.scalars[self.scalars.tag == tag]
        if rows.empty:
            raise KeyError(f"no scalar {tag!r}; the event files have {sorted(self.scalars.tag.unique())}")
        return rows.sort_values("step")[["step", "value"]].reset_index(drop=True)

    def __repr__(self) -> str:
        return (f"Events({self.scalars.tag.nunique()} scalar tags, {len(self.scalars)} points; "
                f"{self.histograms.tag.nunique() if len(self.histograms) else 0} histogram tags)")


def read_events(log_dir) -> Events:
    """Every scalar and histogram in the event files under ``log_dir`` (TensorBoard's EventAccumulator,
    nothing sampled away)."""
    import pandas as pd
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    where = Path(log_dir)
    if not where.is_dir() or not any(where.glob("events.out.tfevents.*")):
        raise FileNotFoundError(f"no TensorBoard event files in {str(where)!r}: was the TensorBoard callback "
                                f"given this log_dir?")
    acc = EventAccumulator(str(where), size_guidance={"scalars": 0, "histograms": 0})
    acc.Reload()
    tags = acc.Tags()
    scalars = pd.DataFrame([{"tag": t, "step": e.step, "value": e.value} for t in tags["scalars"]
                            for e in acc.Scalars(t)], columns=["tag", "step", "value"])
    hist = []
    for t in tags["histograms"]:
        for e in acc.Histograms(t):
            h = e.histogram_value
            hist.append({"tag": t, "step": e.step, "min": h.min, "max": h.max, "num": int(h.num), "sum": h.sum,
                         "edges": list(h.bucket_limit), "counts": list(h.bucket)})
    histograms = pd.DataFrame(hist, columns=["tag", "step", "min", "max", "num", "sum", "edges", "counts"])
    return Events(scalars, histograms)


def plot_scalars(events: Events, tags: list[str], title: str = "TensorBoard scalars, read back"):
    """The scalars ``tags`` against the step, one panel each (a plotly figure)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots
    fig = make_subplots(rows=1, cols=len(tags), subplot_titles=tags)
    for i, tag in enumerate(tags, start=1):
        rows = events.scalar(tag)
        fig.add_trace(go.Scatter(x=rows.step, y=rows.value, mode="lines+markers", name=tag,
                                 marker=dict(size=4)), row=1, col=i)
        fig.update_xaxes(title_text="step", row=1, col=i)
        fig.update_yaxes(title_text=tag.rsplit("/", 1)[-1], row=1, col=i)   # e.g. "loss", "lr"
    fig.update_layout(title=title, height=330, showlegend=False)
    return fig


def plot_histograms(events: Events, tag: str, title: str | None = None):
    """One weight tensor's histogram at each logged epoch, as lines of (bucket centre, count)."""
    import plotly.graph_objects as go
    rows = events.histograms[events.histograms.tag == tag].sort_values("step")
    if rows.empty:
        raise KeyError(f"no histogram {tag!r}; the event files have {sorted(events.histograms.tag.unique())}")
    fig = go.Figure()
    for _, r in rows.iterrows():
        edges, counts = r["edges"], r["counts"]
        lows = [r["min"]] + edges[:-1]
        centres = [(lo + min(hi, r["max"])) / 2 for lo, hi in zip(lows, edges)]
        keep = [i for i, c in enumerate(counts) if c > 0]
        fig.add_trace(go.Scatter(x=[centres[i] for i in keep], y=[counts[i] for i in keep], mode="lines",
                                 name=f"epoch {r['step']}"))
    fig.update_layout(title=title or f"{tag}: histogram at each epoch end", xaxis_title="weight value",
                      yaxis_title="count", height=330)
    return fig


def weight_stats(model: torch.nn.Module) -> dict[str, dict[str, float]]:
    """min, max, count and sum of each trainable weight: what a histogram summary stores besides its buckets."""
    return {name: {"min": float(p.detach().min()), "max": float(p.detach().max()), "num": p.numel(),
                   "sum": float(p.detach().sum())} for name, p in model.named_parameters() if p.requires_grad}
