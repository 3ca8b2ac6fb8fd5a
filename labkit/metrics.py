"""Classification metrics on predicted labels: accuracy, F1, the confusion matrix; and calibration.

They take labels, as scikit-learn's functions of the same names do: ``accuracy_score(y_true, y_pred)``.
(``labkit.train.accuracy(output, target)`` is the other kind: a training metric on a batch of logits.)

A classifier's probabilities are *calibrated* when, among the predictions made
with confidence about 0.8, about 80% are right. The expected calibration error
(ECE, Guo et al. 2017, arXiv:1706.04599) measures the gap with equal-width bins
on the confidence :math:`\\hat p_i = \\max_c p_{ic}`:

.. math:: \\mathrm{ECE} = \\sum_{b=1}^{B} \\frac{n_b}{N}\\,\\bigl|\\mathrm{acc}(b) - \\mathrm{conf}(b)\\bigr|.

*Temperature scaling* divides the logits by one number :math:`T > 0` fitted on
the validation split (minimum negative log-likelihood). It changes the
confidences, never the argmax, so accuracy and F1 stay exactly the same.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from .check import one_of, whole_number

__all__ = ["accuracy_score", "confusion_matrix", "f1_score", "Calibration", "calibration",
           "fit_temperature", "reliability_diagram"]


def _labels(values, name: str) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().numpy()
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D sequence of class indices; got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty: need at least one label")
    if not np.issubdtype(arr.dtype, np.integer) and not (np.issubdtype(arr.dtype, np.number)
                                                         and np.all(arr == np.round(arr))):
        raise ValueError(f"{name} must hold whole-number class indices; got dtype {arr.dtype}")
    if arr.min() < 0:
        raise ValueError(f"{name} must hold class indices >= 0; got {arr.min()}")
    return arr.astype(np.int64)


def _pair(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    t, p = _labels(y_true, "y_true"), _labels(y_pred, "y_pred")
    if len(t) != len(p):
        raise ValueError(f"y_true and y_pred must have the same length; got {len(t)} and {len(p)}")
    return t, p


def accuracy_score(y_true, y_pred) -> float:
    """The fraction of predictions equal to the true label."""
    t, p = _pair(y_true, y_pred)
    return float((t == p).mean())


def confusion_matrix(y_true, y_pred, n_classes: int | None = None) -> np.ndarray:
    """``m[i, j]`` = how many examples of true class ``i`` were predicted as class ``j``."""
    t, p = _pair(y_true, y_pred)
    needed = int(max(t.max(), p.max())) + 1
    n = needed if n_classes is None else int(n_classes)
    if n < needed:
        raise ValueError(f"n_classes must be at least {needed} (the largest label + 1); got {n_classes}")
    m = np.zeros((n, n), dtype=np.int64)
    np.add.at(m, (t, p), 1)
    return m


def f1_score(y_true, y_pred, average: str = "binary", pos_label: int = 1, n_classes: int | None = None) -> float:
    """F1 = 2PR/(P+R). ``average="binary"``: of class ``pos_label``; ``"macro"``: the mean over classes.

    A class with no true and no predicted example has F1 = 0 (as in scikit-learn).
    """
    one_of("average", average, ("binary", "macro"))
    m = confusion_matrix(y_true, y_pred, n_classes)
    tp = np.diag(m).astype(float)
    denom = m.sum(0) + m.sum(1)                     # (tp + fp) + (tp + fn)
    f1 = np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)
    if average == "macro":
        return float(f1.mean())
    whole_number("pos_label (a class index)", pos_label, minimum=0, maximum=len(f1) - 1)
    return float(f1[pos_label])


# ----------------------------------------------------------------------------- calibration
def _probs(probs, name: str = "probs") -> np.ndarray:
    if isinstance(probs, torch.Tensor):
        probs = probs.detach().float().cpu().numpy()
    arr = np.asarray(probs, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] < 2:
        raise ValueError(f"{name} must have shape (n_examples, n_classes >= 2); got {arr.shape}")
    if arr.shape[0] == 0:
        raise ValueError(f"{name} is empty: need at least one row of probabilities")
    if not np.all(np.isfinite(arr)) or arr.min() < 0 or arr.max() > 1 or \
            not np.allclose(arr.sum(1), 1.0, atol=1e-4):
        raise ValueError(f"{name} must hold probabilities in [0, 1] whose rows sum to 1 "
                         f"(apply softmax to logits first)")
    return arr


@dataclass
class Calibration:
    """The ECE and, per confidence bin, what a reliability diagram draws."""
    ece: float
    edges: list[float]
    confidence: list[float | None] = field(repr=False)   # mean confidence per bin (None: empty bin)
    accuracy: list[float | None] = field(repr=False)     # accuracy per bin
    count: list[int] = field(repr=False)

    def table(self):
        import pandas as pd
        return pd.DataFrame({"bin": [f"({lo:.1f}, {hi:.1f}]" for lo, hi in zip(self.edges, self.edges[1:])],
                             "count": self.count, "mean confidence": self.confidence,
                             "accuracy": self.accuracy})


def calibration(probs, y_true, n_bins: int = 10) -> Calibration:
    """Expected calibration error with ``n_bins`` equal-width bins ``((b-1)/B, b/B]`` of the confidence."""
    whole_number("n_bins", n_bins)
    p = _probs(probs)
    t = _labels(y_true, "y_true")
    if len(t) != len(p):
        raise ValueError(f"probs and y_true must have the same length; got {len(p)} and {len(t)}")
    conf, correct = p.max(1), (p.argmax(1) == t).astype(float)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    # bin b holds (edges[b], edges[b+1]] (a confidence is at least 1/n_classes > 0)
    which = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, n_bins - 1)
    ece, confs, accs, counts = 0.0, [], [], []
    for b in range(n_bins):
        inside = which == b
        n = int(inside.sum())
        counts.append(n)
        if n == 0:
            confs.append(None)
            accs.append(None)
            continue
        c, a = float(conf[inside].mean()), float(correct[inside].mean())
        confs.append(c)
        accs.append(a)
        ece += n / len(t) * abs(a - c)
    return Calibration(float(ece), [float(e) for e in edges], confs, accs, counts)


def fit_temperature(logits, y_true, max_iter: int = 200) -> float:
    """The temperature ``T > 0`` minimising the cross-entropy of ``softmax(logits / T)`` (fit it on validation data).

    If every example is classified correctly, the loss keeps falling as ``T -> 0``
    and the returned ``T`` is wherever the optimiser stopped: check the accuracy.
    """
    z = torch.as_tensor(logits).detach().double().cpu()
    if z.ndim != 2 or z.shape[0] == 0 or z.shape[1] < 2:
        raise ValueError(f"logits must have shape (n_examples >= 1, n_classes >= 2); got {tuple(z.shape)}")
    t = torch.as_tensor(_labels(y_true, "y_true"))
    if len(t) != len(z):
        raise ValueError(f"logits and y_true must have the same length; got {len(z)} and {len(t)}")
    log_t = torch.zeros((), dtype=torch.float64, requires_grad=True)   # T = exp(log_t) stays positive
    opt = torch.optim.LBFGS([log_t], lr=0.5, max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(z / log_t.exp(), t)
        loss.backward()
        return loss

    opt.step(closure)
    return float(log_t.detach().exp())


def reliability_diagram(calibrations: dict[str, Calibration], title: str = "Reliability diagram"):
    """Accuracy against mean confidence per bin, one trace per entry, and the diagonal of perfect calibration."""
    import plotly.graph_objects as go
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="perfectly calibrated",
                             line=dict(dash="dash", color="gray")))
    for name, cal in calibrations.items():
        pts = [(c, a, n) for c, a, n in zip(cal.confidence, cal.accuracy, cal.count) if n]
        fig.add_trace(go.Scatter(
            x=[c for c, _, _ in pts], y=[a for _, a, _ in pts], mode="lines+markers",
            name=f"{name} (ECE {cal.ece:.3f})", text=[f"{n} examples" for _, _, n in pts],
            marker=dict(size=[6 + 14 * (n / max(cal.count)) ** 0.5 for _, _, n in pts])))
    fig.update_layout(title=title, xaxis_title="mean confidence in bin", yaxis_title="accuracy in bin",
                      xaxis_range=[0, 1.02], yaxis_range=[0, 1.02], width=560, height=480)
    return fig
