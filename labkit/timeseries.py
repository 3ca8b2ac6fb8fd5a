"""Forecasting with a pretrained model: pretrain on many generated series, fine-tune on a short one.

A *forecaster* reads the last ``context`` values of a series and predicts the next ``horizon``. Each window is
scaled by its own context (mean and standard deviation, the "instance normalisation" that pretrained
forecasters such as Chronos and PatchTST use), so one model can read series of any level and amplitude. The
same scaled windows feed every model here:

* :func:`seasonal_naive`: repeat the last season (the classical baseline every forecast must beat);
* :class:`LinearForecaster`: a linear autoregression, one ridge regression from the context to each future step;
* :class:`MLPForecaster`: a small network trained with :func:`labkit.train.fit` (:func:`scaled_forward` is its
  forward), first on a corpus of many series (pretraining), then on one short series (fine-tuning), or on the
  short series alone (from scratch).

**MASE** (mean absolute scaled error, Hyndman & Koehler 2006, the M4 competition's measure): the forecast's
mean absolute error divided by the in-sample mean absolute error of the seasonal-naive forecast,
:math:`\\frac{1}{n-m}\\sum_{t=m+1}^{n} |y_t - y_{t-m}|`. Below 1: better than repeating last season's value
was inside the history. It does not depend on the series' scale, so it can be averaged over series.

Data card
---------
* **What**: seasonal series with a trend and autocorrelated noise,
  :math:`y_t = c + b\\,t + \\sum_{k=1}^{2} a_k \\sin(2\\pi k t/m + \\phi_k) + \\varepsilon_t` with
  :math:`\\varepsilon_t = \\rho\\,\\varepsilon_{t-1} + \\sigma z_t`. Each series draws its own period
  :math:`m \\in` :data:`PERIODS`, level, slope, harmonic amplitudes and phases, :math:`\\rho` and :math:`\\sigma`
  (the ranges are in :func:`make_series`).
* **How it was made**: by :func:`make_series` with NumPy's seeded generator; nothing is downloaded. The
  pretraining corpus and the target series come from different seeds, so no target series is in the corpus
  (:func:`closest_in_corpus` measures it).
* **Splits of a target series**: the first ``history`` values train (every window inside them); the next
  ``horizon`` values are the validation forecast, the ``horizon`` after those the test forecast, each made
  from the context just before it. Windows never reach past their forecast origin, and the scaling of a
  window reads only its context.
* **Limits**: one family of generated signals; real series have holidays, level shifts, missing values and
  several seasonalities. The corpus and the targets share the family: a pretrained forecaster transfers far
  less to a domain it never saw.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .check import number, whole_number
from .train import Callback, fit

__all__ = ["PERIODS", "make_series", "windows", "TargetSeries", "make_targets", "seasonal_naive",
           "mase", "scaled_forward", "MLPForecaster", "LinearForecaster", "closest_in_corpus", "l1_loss",
           "score", "train_and_score"]

PERIODS = (7, 12, 24)   # daily data with a weekly season, monthly with a yearly one, hourly with a daily one


def make_series(n: int, length: int, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` series of ``length`` values from the family in the data card: ``(series (n, length), periods (n,))``."""
    whole_number("n (number of series)", n)
    whole_number("length", length, minimum=3 * max(PERIODS))
    rng = np.random.default_rng(seed)
    t = np.arange(length)
    periods = rng.choice(PERIODS, size=n)
    out = np.empty((n, length))
    for i, m in enumerate(periods):
        level, slope = rng.uniform(5, 50), rng.normal(0, 0.03)
        amps = rng.uniform(1, 4) * np.array([1.0, rng.uniform(0, 0.6)])
        phases = rng.uniform(0, 2 * np.pi, size=2)
        season = sum(a * np.sin(2 * np.pi * (k + 1) * t / m + p) for k, (a, p) in enumerate(zip(amps, phases)))
        rho, sigma = rng.uniform(0.2, 0.8), rng.uniform(0.1, 0.4) * amps[0]
        noise = np.empty(length)
        noise[0] = rng.normal(0, sigma)
        for j in range(1, length):
            noise[j] = rho * noise[j - 1] + rng.normal(0, sigma)
        out[i] = level + slope * t + season + noise
    return out, periods


def windows(series: np.ndarray, context: int, horizon: int, stride: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Every (context, future) pair inside ``series`` (one series, or a batch of them): float32 tensors
    ``(N, context)`` and ``(N, horizon)``."""
    whole_number("context", context)
    whole_number("horizon", horizon)
    whole_number("stride", stride)
    series = np.atleast_2d(np.asarray(series, dtype=np.float64))
    span = context + horizon
    if series.shape[1] < span:
        raise ValueError(f"a series needs at least context + horizon = {span} values; got {series.shape[1]}")
    starts = np.arange(0, series.shape[1] - span + 1, stride)
    both = np.stack([series[:, s:s + span] for s in starts], axis=1).reshape(-1, span)
    both = torch.tensor(both, dtype=torch.float32)
    return both[:, :context], both[:, context:]


@dataclass
class TargetSeries:
    """One short series to forecast: ``values`` = history + validation horizon + test horizon."""

    values: np.ndarray
    period: int
    history: int
    horizon: int

    @property
    def train(self) -> np.ndarray:
        return self.values[:self.history]

    def origin(self, split: str) -> int:
        """Where the ``split`` ("val" or "test") forecast starts."""
        return self.history + (self.horizon if split == "test" else 0)

    def context_and_future(self, split: str, context: int) -> tuple[np.ndarray, np.ndarray]:
        o = self.origin(split)
        if o < context:
            raise ValueError(f"context ({context}) is longer than the history before the {split} forecast ({o})")
        return self.values[o - context:o], self.values[o:o + self.horizon]

    def insample(self, split: str) -> np.ndarray:
        """All the values known at the ``split`` forecast's origin (the scale of MASE)."""
        return self.values[:self.origin(split)]


def make_targets(n: int, history: int, horizon: int, *, seed: int) -> list[TargetSeries]:
    """``n`` target series with ``history`` values to learn from and two horizons (validation, test) after."""
    whole_number("history", history)
    series, periods = make_series(n, history + 2 * horizon, seed=seed)
    return [TargetSeries(s, int(m), history, horizon) for s, m in zip(series, periods)]


def seasonal_naive(history, horizon: int, period: int) -> np.ndarray:
    """Repeat the last full season: the forecast of step h is the value one (or more) period(s) before it."""
    history = np.asarray(history, dtype=np.float64)
    whole_number("horizon", horizon)
    whole_number("period", period, maximum=len(history))
    last = history[-period:]
    return np.array([last[h % period] for h in range(horizon)])


def mase(actual, forecast, insample, period: int) -> float:
    """Mean absolute scaled error: MAE of the forecast / in-sample MAE of the seasonal-naive forecast."""
    actual, forecast = np.asarray(actual, dtype=np.float64), np.asarray(forecast, dtype=np.float64)
    insample = np.asarray(insample, dtype=np.float64)
    if actual.shape != forecast.shape or actual.size == 0:
        raise ValueError(f"actual and forecast must be non-empty and of one shape; got {actual.shape} and {forecast.shape}")
    whole_number("period", period, maximum=len(insample) - 1)
    scale = np.mean(np.abs(insample[period:] - insample[:-period]))
    if scale == 0:
        raise ValueError("the in-sample seasonal-naive error is 0 (a perfectly periodic history): MASE is undefined")
    return float(np.mean(np.abs(actual - forecast)) / scale)


def _scale(context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and standard deviation of each context (the standard deviation floored, for flat windows)."""
    mu = context.mean(dim=-1, keepdim=True)
    sd = context.std(dim=-1, keepdim=True).clamp_min(1e-3 * (mu.abs() + 1))
    return mu, sd


def scaled_forward(model: nn.Module, batch) -> tuple[torch.Tensor, torch.Tensor]:
    """``fit``'s forward for forecasters: scale context and future by the context, predict in that scale."""
    context, future = batch
    mu, sd = _scale(context)
    return model((context - mu) / sd), (future - mu) / sd


class MLPForecaster(nn.Module):
    """Scaled context (``context`` values) -> scaled future (``horizon`` values), through two hidden layers."""

    def __init__(self, context: int, horizon: int, hidden: int = 128):
        super().__init__()
        self.context, self.horizon = whole_number("context", context), whole_number("horizon", horizon)
        self.net = nn.Sequential(nn.Linear(context, hidden), nn.GELU(), nn.Linear(hidden, hidden), nn.GELU(),
                                 nn.Linear(hidden, horizon))

    def forward(self, scaled_context: torch.Tensor) -> torch.Tensor:
        return self.net(scaled_context)

    @torch.no_grad()
    def forecast(self, context) -> np.ndarray:
        """The next ``horizon`` values after one context (or a batch of contexts), in the series' own scale."""
        x = torch.as_tensor(np.asarray(context), dtype=torch.float32)
        if x.shape[-1] != self.context:
            raise ValueError(f"context must hold {self.context} values; got {x.shape[-1]}")
        mu, sd = _scale(x)
        was = self.training
        self.eval()
        y = self(((x - mu) / sd)) * sd + mu
        self.train(was)
        return y.numpy().astype(np.float64)


class LinearForecaster:
    """A linear autoregression on scaled windows: ridge regression (scikit-learn) from the context to each future
    step."""

    def __init__(self, alpha: float = 1.0):
        self.alpha = number("alpha (ridge penalty)", alpha, minimum=0)
        self.model = None

    def fit(self, context: torch.Tensor, future: torch.Tensor) -> "LinearForecaster":
        from sklearn.linear_model import Ridge
        mu, sd = _scale(context)
        self.model = Ridge(alpha=self.alpha).fit(((context - mu) / sd).double().numpy(),
                                                 ((future - mu) / sd).double().numpy())
        return self

    def forecast(self, context) -> np.ndarray:
        if self.model is None:
            raise RuntimeError("call fit(context, future) before forecast")
        x = torch.as_tensor(np.atleast_2d(np.asarray(context, dtype=np.float64)))
        if x.shape[-1] != self.model.n_features_in_:
            raise ValueError(f"context must hold {self.model.n_features_in_} values; got {x.shape[-1]}")
        mu, sd = _scale(x)
        y = self.model.predict(((x - mu) / sd).numpy()) * sd.numpy() + mu.numpy()
        return y[0] if np.ndim(context) == 1 else y


def closest_in_corpus(corpus: np.ndarray, targets: list[TargetSeries]) -> float:
    """The largest correlation between any target's history and the same span of any corpus series: 1.0 would
    mean a target was copied into the pretraining corpus."""
    best = -1.0
    for t in targets:
        a = t.train
        b = corpus[:, :len(a)]
        a = (a - a.mean()) / a.std()
        b = (b - b.mean(1, keepdims=True)) / b.std(1, keepdims=True)
        best = max(best, float((b @ a / len(a)).max()))
    return best


def l1_loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The training loss of the forecasters: mean absolute error in the scaled space (MASE is an absolute error)."""
    return F.l1_loss(output, target)


def score(forecast, target: TargetSeries, context: int) -> dict[str, float]:
    """MASE of ``forecast`` (a function: context values -> horizon values) on the target's train windows (mean),
    validation and test forecasts."""
    out = {}
    x, y = windows(target.train, context, target.horizon)
    out["train"] = float(np.mean([mase(yi, fi, target.train, target.period)
                                  for yi, fi in zip(y.numpy(), np.atleast_2d(forecast(x.numpy())))]))
    for split in ("val", "test"):
        cx, future = target.context_and_future(split, context)
        out[split] = mase(future, forecast(cx), target.insample(split), target.period)
    return out


class _ScoreAt(Callback):
    def __init__(self, model: "MLPForecaster", target: TargetSeries, at: set[int], scores: dict):
        self.model, self.target, self.at, self.scores = model, target, at, scores

    def on_step_end(self, state) -> None:
        if state.step in self.at:
            self.scores[state.step] = score(self.model.forecast, self.target, self.model.context)


def train_and_score(model: "MLPForecaster", target: TargetSeries, at, *, lr: float, batch_size: int = 16,
                    weight_decay: float = 0.0, seed: int = 0) -> dict[int, dict[str, float]]:
    """Train ``model`` on the target's history windows and score it (:func:`score`) after each step count in
    ``at`` (0 = before any step), so that the number of steps can be chosen on validation afterwards."""
    at = sorted({whole_number("a step count in at", int(a), minimum=0) for a in at})
    scores = {0: score(model.forecast, target, model.context)} if 0 in at else {}
    if at[-1] > 0:
        x, y = windows(target.train, model.context, target.horizon)
        fit(model, (x, y), steps=at[-1], batch_size=min(batch_size, len(x)), lr=lr, weight_decay=weight_decay,
            forward=scaled_forward, loss_fn=l1_loss, seed=seed, progress=False,
            callbacks=[_ScoreAt(model, target, set(at), scores)])
    return scores
