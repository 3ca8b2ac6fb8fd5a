"""Vision applications of a pretrained model (chapter 6.2): transfer, boxes scored with IoU, a small VAE.

**Transfer.** :class:`ImageClassifier` puts a new linear head on any backbone with a ``features()``
method (EfficientNet-Lite0, or :class:`ViTBackbone`) and refuses images of a shape it was not built
for. The arms of the experiment (:data:`ARMS`) differ only in where the weights start and what trains:

* *linear probe*: the ImageNet network frozen, its pooled features computed once
  (:func:`extract_features`), a logistic regression on top -- the same classifier as the raw-pixel
  baseline (:func:`classical_classifier`), so the comparison isolates the representation;
* *full fine-tuning*: every weight trains from the ImageNet values, the head faster (:func:`fine_tune`);
* *from scratch*: the same architecture, random weights, the same budget.

Batch norm keeps running statistics of the images it was trained on; ImageNet's do not describe
digits. :func:`recalibrate_batch_norm` re-estimates them on the training images after training.

**Localisation.** :func:`box_iou` (what ``torchvision.ops.box_iou`` computes), :class:`BoxRegressor`
(a small CNN predicting one box), :func:`box_loss` and :func:`threshold_boxes`, a rule-based baseline.

**Generation.** :class:`DigitVAE`, a variational autoencoder of the 8 x 8 digits with a binomial
likelihood of the 0..16 pixel counts, its :func:`elbo`, and :func:`independent_pixels_nll`, the
baseline that models every pixel on its own.
"""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .check import number, one_of, whole_number
from .data.digits import DIGIT_MAX, class_rows
from .train import History, default_forward, fit, make_adamw

__all__ = ["ARMS", "BATCH_NORM", "check_images", "ImageClassifier", "ViTBackbone", "HFViTBackbone", "Lite0Arms", "extract_features",
           "classical_classifier", "fine_tune", "recalibrate_batch_norm", "batch_norm_shift", "predict", "accuracy_of",
           "box_iou", "paired_iou", "box_loss", "BoxRegressor", "threshold_boxes",
           "DigitVAE", "binomial_log_prob", "kl_to_standard_normal", "elbo", "vae_loss",
           "independent_pixels_nll", "RunRecord", "Inputs", "FROZEN_ARMS", "frozen_curve", "trained_curve",
           "curve_table", "curve_summary", "curve_figure", "PRETRAINED_ARMS", "CLASSICAL_ARMS", "CLEAR_MARGIN", "verdict",
           "ahead", "how_far", "fit_line", "compare_arms",
           "image_grid", "train_vae", "vae_nats"]

ARMS = ("linear probe", "full fine-tuning", "from scratch")


# ================================================================== transfer
def check_images(images, *, channels: int, size: int, name: str = "images") -> torch.Tensor:
    """``images`` is a float tensor (batch, channels, size, size), else ValueError naming what was expected."""
    shape = tuple(images.shape) if hasattr(images, "shape") else type(images).__name__
    if (not isinstance(images, torch.Tensor) or images.dim() != 4 or images.shape[1] != channels
            or tuple(images.shape[-2:]) != (size, size)):
        raise ValueError(f"{name} must be a tensor of shape (batch, {channels}, {size}, {size}): {channels} "
                         f"channel(s) of {size} x {size} pixels, what this model was built for; got {shape}")
    if not images.is_floating_point():
        raise ValueError(f"{name} must hold normalised floats, not {images.dtype} pixel values")
    return images


class ImageClassifier(nn.Module):
    """backbone.features(images) -> (batch, width) -> new linear head -> (batch, n_classes) logits."""

    def __init__(self, backbone: nn.Module, width: int, n_classes: int, *, size: int, channels: int = 3):
        super().__init__()
        self.backbone = backbone
        self.head = nn.Linear(whole_number("width", width), whole_number("n_classes", n_classes, minimum=2))
        self.size, self.channels = whole_number("size", size), whole_number("channels", channels)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        check_images(images, channels=self.channels, size=self.size)
        return self.head(self.backbone.features(images))


class ViTBackbone(nn.Module):
    """labkit's ViT read as a backbone: ``features`` is the final [CLS] vector (what HF's
    ``ViTForImageClassification`` classifies; it has no pooler)."""

    def __init__(self, cfg):
        super().__init__()
        from .nn.vit import ViT
        self.vit, self.width = ViT(cfg), cfg.d_model

    def features(self, images: torch.Tensor) -> torch.Tensor:
        hidden, _ = self.vit(images)
        return hidden[:, 0]


class HFViTBackbone(nn.Module):
    """A Hugging Face ViT body (``ViTModel``, or the ``.vit`` of a ``ViTForImageClassification`` such as
    ``zoo.load("vit-base-patch16-224").model``) read as a backbone: ``features`` is its final [CLS] vector,
    as in :class:`ViTBackbone`. Used where the published weights load (online)."""

    def __init__(self, hf_vit: nn.Module):
        super().__init__()
        self.vit, self.width = hf_vit, hf_vit.config.hidden_size

    def features(self, images: torch.Tensor) -> torch.Tensor:
        return self.vit(pixel_values=images).last_hidden_state[:, 0]


class Lite0Arms:
    """EfficientNet-Lite0's ImageNet weights, loaded once; a fresh classifier for each arm and run."""

    width = 1280  # EfficientNet-Lite0's pooled feature size

    def __init__(self, size: int, n_classes: int = 10):
        from .nn.efficientnet import load_packaged_lite0
        self.pretrained = load_packaged_lite0()
        self.size, self.n_classes = whole_number("size", size, minimum=8), n_classes

    def classifier(self, arm: str, seed: int = 0) -> ImageClassifier:
        """"full fine-tuning": a copy of the ImageNet network; "from scratch": the same architecture, random."""
        from .nn.efficientnet import EfficientNetLite0
        one_of("arm", arm, ARMS[1:])
        torch.manual_seed(seed)
        backbone = copy.deepcopy(self.pretrained) if arm == "full fine-tuning" else EfficientNetLite0()
        backbone._fc = nn.Identity()          # the 1,000 ImageNet logits are not used; the new head replaces them
        return ImageClassifier(backbone, self.width, self.n_classes, size=self.size)

    def features(self, images: torch.Tensor, batch_size: int = 128) -> torch.Tensor:
        """Pooled ImageNet features of ``images`` (computed once and reused by every linear probe)."""
        return extract_features(self.pretrained, check_images(images, channels=3, size=self.size), batch_size)


def _device_of(model: nn.Module) -> torch.device:
    """Where ``model``'s weights are (the CPU for a model without any)."""
    return next(model.parameters(), torch.empty(0)).device


@torch.no_grad()
def _in_batches(fn, model: nn.Module, images: torch.Tensor, batch_size: int) -> torch.Tensor:
    """``fn(batch)`` over ``images`` batch by batch, with ``model`` in eval mode and no gradients; each batch goes
    to the model's device and its result comes back to the CPU."""
    whole_number("batch_size", batch_size)
    was_training, device = model.training, _device_of(model)
    model.eval()
    out = torch.cat([fn(images[i:i + batch_size].to(device)).cpu() for i in range(0, len(images), batch_size)])
    model.train(was_training)
    return out


def extract_features(backbone: nn.Module, images: torch.Tensor, batch_size: int = 128) -> torch.Tensor:
    """(n, C, H, W) -> (n, width) pooled features from ``backbone.features`` (eval mode, no gradients)."""
    return _in_batches(backbone.features, backbone, images, batch_size)


def classical_classifier(kind: str, C: float = 1.0):
    """A scikit-learn classifier: "logistic regression" (standardised inputs) or "1-NN" (nearest neighbour)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    one_of("kind", kind, ("logistic regression", "1-NN"))
    if kind == "1-NN":
        return KNeighborsClassifier(n_neighbors=1)
    return make_pipeline(StandardScaler(), LogisticRegression(C=number("C", C, minimum=0, open_low=True),
                                                               max_iter=3000))


BATCH_NORM = ("frozen", "recalibrated")


def _frozen_norm_forward(model: nn.Module, batch) -> tuple[torch.Tensor, torch.Tensor]:
    """A ``fit`` forward that keeps every batch norm in eval mode: it normalises with its stored statistics
    (its scale and shift still train). ``fit`` puts the model in training mode each epoch, so this runs per step."""
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()
    images, labels = batch
    return model(images), labels


def fine_tune(model: ImageClassifier, images: torch.Tensor, labels: torch.Tensor, *, steps: int, lr: float,
              head_lr: float | None = None, batch_norm: str = "frozen", batch_size: int = 32, seed: int = 0,
              callbacks=(), name: str = "run") -> History:
    """Train every weight of ``model`` for ``steps`` steps with AdamW (the new head at ``head_lr``).

    ``batch_norm="frozen"``: batch norm keeps the statistics it has (ImageNet's, for a pretrained
    backbone) and normalises with them in training too. ``"recalibrated"``: the usual training mode
    (batch statistics), then :func:`recalibrate_batch_norm` on the training images.
    """
    one_of("batch_norm", batch_norm, BATCH_NORM)
    head = list(model.head.parameters())
    body = [p for p in model.parameters() if all(p is not h for h in head)]
    optimizer = make_adamw([{"params": body, "lr": lr}, {"params": head, "lr": head_lr or lr}], lr=lr)
    forward = _frozen_norm_forward if batch_norm == "frozen" else default_forward
    history = fit(model, (images, labels), steps=steps, batch_size=min(batch_size, len(labels)),
                  optimizer=optimizer, forward=forward, seed=seed, callbacks=callbacks, name=name, progress=False)
    if batch_norm == "recalibrated":
        recalibrate_batch_norm(model, images)
    return history


@torch.no_grad()
def recalibrate_batch_norm(model: nn.Module, images: torch.Tensor, batch_size: int = 64) -> int:
    """Replace every batch norm's running mean and variance by those of ``images``; returns how many.

    In training mode batch norm normalises with the statistics of the batch, and keeps a slow moving
    average (momentum 0.01 in EfficientNet) for evaluation. After a short fine-tuning that average
    still describes ImageNet photos, not the new images: evaluation then normalises with the wrong
    numbers. One pass over the training images in training mode, with a cumulative average
    (``momentum=None``: every batch counts the same), gives the statistics that training-mode batch
    norm used on these images; the weights do not change.
    """
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return 0
    was_training, momenta = model.training, [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    for i in range(0, len(images), batch_size):
        model(images[i:i + batch_size].to(_device_of(model)))
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum
    model.train(was_training)
    return len(norms)


@torch.no_grad()
def batch_norm_shift(model: nn.Module, images: torch.Tensor):
    """How far ``images`` move each batch norm's inputs from the statistics it stored, layer by layer.

    For every batch-norm layer (in forward order): the mean over channels of |z|, where z is the
    channel's mean on ``images`` minus its stored mean, in stored standard deviations; and the median
    over channels of (variance on ``images``) / (stored variance). On the data the statistics came from,
    |z| is near 0 and the ratio near 1.
    """
    import pandas as pd
    rows, hooks = [], []

    def record(name):
        def hook(module, inputs, output):
            x = inputs[0]
            std = (module.running_var + module.eps).sqrt()
            z = (x.mean((0, 2, 3)) - module.running_mean) / std
            ratio = x.var((0, 2, 3)) / (module.running_var + module.eps)
            rows.append({"layer": name, "mean |z|": z.abs().mean().item(), "variance ratio (median)": ratio.median().item()})
        return hook

    for name, m in model.named_modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            hooks.append(m.register_forward_hook(record(name)))
    was_training = model.training
    try:
        model.eval()
        images = images.to(_device_of(model))
        model.features(images) if hasattr(model, "features") else model(images)
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return pd.DataFrame(rows).set_index("layer")


def predict(model: nn.Module, images: torch.Tensor, batch_size: int = 128) -> torch.Tensor:
    """Predicted class of every image (eval mode, no gradients)."""
    return _in_batches(lambda x: model(x).argmax(-1), model, images, batch_size)


def accuracy_of(model: nn.Module, images: torch.Tensor, labels) -> float:
    return float((predict(model, images) == torch.as_tensor(labels)).float().mean())


@dataclass
class RunRecord:
    """One point of a label-count curve: a task, an arm, k labels per class, which draw of the k.

    ``draw`` seeds the choice of the k labelled images of each class and the run's own randomness (a new
    head, the batch order). With all labels there is nothing to choose: the draws of a trained arm differ
    only in that randomness, and a frozen arm (deterministic) runs once."""
    task: str
    arm: str
    labels_per_class: int | str
    draw: int
    train_acc: float
    val_acc: float
    test_acc: float
    seconds: float


@dataclass(frozen=True)
class Inputs:
    """One representation of a task's train / validation / test examples, with their labels: each an
    ``(inputs, labels)`` pair. Refused: a pair whose lengths differ, and a validation or test label that the
    training split never has (:func:`labkit.transfer.check_label_sets`)."""
    train: tuple
    val: tuple
    test: tuple

    def __post_init__(self):
        from .transfer import check_label_sets
        for name in ("train", "val", "test"):
            part = getattr(self, name)
            if not isinstance(part, (tuple, list)) or len(part) != 2:
                raise ValueError(f"{name} must be an (inputs, labels) pair; got {type(part).__name__}")
            if len(part[0]) != len(part[1]):
                raise ValueError(f"{name} has {len(part[0])} inputs but {len(part[1])} labels: one label per input")
        check_label_sets(self.train[1], val=self.val[1], test=self.test[1])


FROZEN_ARMS = {  # arm -> (representation, classifier): no gradient reaches the network
    "linear probe": ("features", "logistic regression"),
    "logistic regression (pixels)": ("pixels", "logistic regression"),
    "1-NN (pixels)": ("pixels", "1-NN"),
}


def _accuracies(score, data: Inputs, rows: np.ndarray) -> tuple[float, float, float]:
    """(train on the labelled rows, validation, test) accuracy of ``score(x, y)``."""
    x, y = data.train
    return tuple(round(float(score(x_, y_)), 4) for x_, y_ in ((x[rows], y[rows]), data.val, data.test))


def frozen_curve(task: str, pixels: Inputs, features: Inputs, ks, *, draws: int = 5, C: float = 0.1) -> list[RunRecord]:
    """The linear probe and the two raw-pixel baselines at every k of ``ks`` (None: all labels), over
    ``draws`` random draws of the k labelled examples per class (one draw for "all")."""
    whole_number("draws", draws)
    inputs, records = {"pixels": pixels, "features": features}, []
    for k in ks:
        for draw in range(draws if k is not None else 1):
            rows = class_rows(pixels.train[1], k, seed=draw)
            for arm, (representation, kind) in FROZEN_ARMS.items():
                start, data = time.perf_counter(), inputs[representation]
                clf = classical_classifier(kind, C=C).fit(data.train[0][rows], data.train[1][rows])
                records.append(RunRecord(task, arm, "all" if k is None else k, draw, *_accuracies(clf.score, data, rows),
                                         round(time.perf_counter() - start, 2)))
    return records


def trained_curve(task: str, arm: str, make_model, images: Inputs, ks, *, steps: dict, batch_size: dict,
                  draws: int = 1, plot=None, **settings) -> list[RunRecord]:
    """``make_model(seed)`` trained with :func:`fine_tune` (``settings``: its learning rates and batch-norm
    handling) on k labelled images per class, for every k of ``ks``, over ``draws`` draws (draw d: the images
    of ``class_rows(..., seed=d)`` and seed d for the model and the batches; with all labels, seed d only);
    ``steps[k]`` and ``batch_size[k]`` give the budget (keys: the k, or "all"). ``plot`` (a LiveLossPlot)
    follows every run."""
    whole_number("draws", draws)
    records = []
    for k in ks:
        key = "all" if k is None else k
        for draw in range(draws):
            rows = class_rows(images.train[1].numpy(), k, seed=draw)
            start, model = time.perf_counter(), make_model(draw)
            callbacks = [plot.track(f"{arm} · k={key}" + (f" · draw {draw}" if draws > 1 else ""))] if plot is not None else []
            fine_tune(model, images.train[0][rows], images.train[1][rows], steps=steps[key],
                      batch_size=batch_size[key], seed=draw, callbacks=callbacks, name=f"{arm} k={key}", **settings)
            score = lambda x, y: accuracy_of(model, x, y)  # noqa: E731
            records.append(RunRecord(task, arm, key, draw, *_accuracies(score, images, rows),
                                     round(time.perf_counter() - start, 2)))
    return records


def fit_line(records: list[RunRecord], threshold: float = 0.95) -> str:
    """Each arm's lowest training accuracy over its draws and label counts, and whether every run of it fitted
    its labelled images (>= ``threshold``): where a run did not, the step budget stopped it first, and its test
    accuracy is a floor for the arm rather than what it can reach."""
    number("threshold", threshold, minimum=0, maximum=1)
    lowest: dict[str, float] = {}
    for r in records:
        lowest[r.arm] = min(lowest.get(r.arm, 1.0), r.train_acc)
    short = [arm for arm, v in lowest.items() if v < threshold]
    return ("lowest training accuracy over draws and label counts: " + ", ".join(f"{a} {v:.3f}" for a, v in lowest.items())
            + (f"; every run fitted its labelled images (>= {threshold:.2f})" if not short else
               f"; {', '.join(short)} did not fit its labelled images in every run (< {threshold:.2f}): there the step "
               "budget stopped it first"))


def curve_table(records: list[RunRecord], value: str = "test_acc", how: str = "mean"):
    """One row per arm, one column per labels-per-class: the mean (or ``how="std"``: the spread over draws)."""
    import pandas as pd
    frame = pd.DataFrame([vars(r) for r in records]).astype({"labels_per_class": str})
    order = list(dict.fromkeys(str(r.labels_per_class) for r in records))
    aggregate = (lambda v: float(np.std(v))) if how == "std" else how     # one draw: a spread of 0, not NaN
    return frame.pivot_table(index="arm", columns="labels_per_class", values=value, aggfunc=aggregate, sort=False,
                             dropna=False)[order]


def curve_summary(records: list[RunRecord], value: str = "test_acc", digits: int = 3):
    """:func:`curve_table` as text: "mean ± spread (n)" per arm and labels per class, the spread being the
    standard deviation over the n draws (0 for a single run)."""
    mean, spread = curve_table(records, value), curve_table(records, value, how="std")
    count = curve_table(records, value, how="count")
    out = mean.copy().astype(object)
    for arm in mean.index:
        for k in mean.columns:
            out.loc[arm, k] = ("" if np.isnan(mean.loc[arm, k]) else
                               f"{mean.loc[arm, k]:.{digits}f} ± {spread.loc[arm, k]:.{digits}f} ({int(count.loc[arm, k])})")
    return out


def curve_figure(records: list[RunRecord], title: str, counts: dict | None = None):
    """Test accuracy against labels per class, one line per arm; error bars: the spread over draws."""
    import plotly.graph_objects as go
    from .plots import PALETTE
    mean, spread = curve_table(records), curve_table(records, how="std").fillna(0.0)
    x = [f"{k} ({counts[k]})" if counts and k in counts else k for k in mean.columns]
    fig = go.Figure()
    for i, arm in enumerate(mean.index):
        fig.add_trace(go.Scatter(x=x, y=mean.loc[arm], name=arm, mode="lines+markers",
                                 line=dict(color=PALETTE[i % len(PALETTE)]),
                                 error_y=dict(type="data", array=spread.loc[arm], visible=True)))
    fig.update_layout(title=title, xaxis_title="labelled training images per class", yaxis_title="test accuracy",
                      template="plotly_white", height=420, margin=dict(l=50, r=20, t=50, b=40),
                      legend=dict(orientation="h", yanchor="top", y=-0.2, xanchor="left", x=0))
    return fig


def image_grid(images, titles=None, *, cols: int = 10, boxes=None, title: str | None = None, size: int = 80):
    """Grey images (n, H, W) side by side as plotly heatmaps (row 0 at the top); ``boxes`` (n, 4) as
    (x1, y1, x2, y2) fractions of the side are drawn as red rectangles."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots
    images = np.asarray(images, dtype=np.float32)
    n, rows = len(images), -(-len(images) // cols)
    fig = make_subplots(rows=rows, cols=min(cols, n), subplot_titles=titles, horizontal_spacing=0.01,
                        vertical_spacing=0.12 / max(rows, 1))
    for i, image in enumerate(images):
        r, c = i // cols + 1, i % cols + 1
        fig.add_trace(go.Heatmap(z=image, colorscale="gray", showscale=False, hoverinfo="skip"), row=r, col=c)
        fig.update_yaxes(scaleanchor=f"x{i + 1 if i else ''}", row=r, col=c)         # square pixels
        if boxes is not None:
            h, w = image.shape
            x1, y1, x2, y2 = (np.asarray(boxes[i], dtype=float) * [w, h, w, h] - 0.5).tolist()
            fig.add_shape(type="rect", x0=x1, y0=y1, x1=x2, y1=y2, line=dict(color="red", width=2), row=r, col=c)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False, autorange="reversed")
    fig.update_layout(title=title, height=size * rows + (60 if title else 20) + (20 if titles else 0),
                      width=max(size * min(cols, n) + 40, 300), margin=dict(l=10, r=10, t=40 if title else 20, b=10),
                      template="plotly_white")
    if titles:
        fig.update_annotations(font_size=10)
    return fig


PRETRAINED_ARMS = ("linear probe", "full fine-tuning")
CLASSICAL_ARMS = tuple(arm for arm, (rep, _) in FROZEN_ARMS.items() if rep == "pixels")
CLEAR_MARGIN = 0.05   # five accuracy points: "clearly" better or worse


def verdict(difference: float, margin: float = CLEAR_MARGIN) -> str:
    """The words for an accuracy difference "pretrained minus baseline": a clear win either way, or level."""
    if difference >= margin:
        return "pretrained wins clearly"
    if difference <= -margin:
        return "baseline wins clearly"
    return f"level (within {100 * margin:.0f} points)"


def ahead(difference: float, subject: str, margin: float = 0.02) -> str:
    """Words for an accuracy difference "``subject`` minus the other": ahead, behind, or level within ``margin``."""
    if difference >= margin:
        return f"{subject} is ahead by {100 * difference:.1f} points"
    if difference <= -margin:
        return f"{subject} is behind by {-100 * difference:.1f} points"
    return f"level ({100 * difference:+.1f} points, within {100 * margin:.0f})"


def how_far(ratio: float) -> str:
    """Words for "distance on digits / distance on photos" of the batch-norm inputs from their stored statistics."""
    return f"{ratio:.1f} times further from" if ratio > 1 else f"no further (ratio {ratio:.2f}) from"


def compare_arms(records: list[RunRecord], margin: float = CLEAR_MARGIN):
    """Per labels-per-class: the best pretrained arm against the best raw-pixel baseline (mean test accuracy),
    the margin between them, from scratch where it ran, and a verdict that follows the margin. Every mean comes
    with its spread (standard deviation over draws); ``beyond spreads`` says whether the best pretrained arm and
    from scratch differ by more than their two spreads added together."""
    import pandas as pd
    table, spread, rows = curve_table(records), curve_table(records, how="std"), []
    for k in table.columns:
        pre = table.loc[[a for a in PRETRAINED_ARMS if a in table.index], k]
        base = table.loc[[a for a in CLASSICAL_ARMS if a in table.index], k]
        diff = pre.max() - base.max()
        row = {"labels per class": k, "best pretrained arm": pre.idxmax(), "pretrained acc": round(pre.max(), 3),
               "pretrained spread": round(spread.loc[pre.idxmax(), k], 3),
               "best pixel baseline": base.idxmax(), "baseline acc": round(base.max(), 3),
               "baseline spread": round(spread.loc[base.idxmax(), k], 3),
               "margin (points)": round(100 * diff, 1), "verdict": verdict(diff, margin)}
        if "from scratch" in table.index:
            row["from scratch acc"] = round(table.loc["from scratch", k], 3)
            row["from scratch spread"] = round(spread.loc["from scratch", k], 3)
            row["beyond spreads"] = bool(abs(pre.max() - table.loc["from scratch", k])
                                         > spread.loc[pre.idxmax(), k] + spread.loc["from scratch", k])
        rows.append(row)
    return pd.DataFrame(rows).set_index("labels per class")


# ================================================================== localisation
def _check_boxes(boxes: torch.Tensor, name: str) -> torch.Tensor:
    if not isinstance(boxes, torch.Tensor) or boxes.dim() != 2 or boxes.shape[1] != 4:
        shape = tuple(boxes.shape) if hasattr(boxes, "shape") else type(boxes).__name__
        raise ValueError(f"{name} must be a tensor of shape (n, 4) holding (x1, y1, x2, y2); got {shape}")
    if bool((boxes[:, 2:] < boxes[:, :2]).any()):
        raise ValueError(f"{name}: every box needs x2 >= x1 and y2 >= y1 (corners, not width and height)")
    return boxes if boxes.is_floating_point() else boxes.float()   # integer boxes: IoU is a fraction


def _area(boxes: torch.Tensor) -> torch.Tensor:
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(n, m) intersection over union of every box of ``a`` with every box of ``b``, boxes as (x1, y1, x2, y2).

    The overlap of two boxes is a box too: its left edge is the larger of the two left edges, its
    right edge the smaller of the right edges (same for top and bottom). When they do not overlap,
    that "box" has a negative side, clamped to 0. IoU = overlap / (area a + area b - overlap).
    """
    a, b = _check_boxes(a, "a"), _check_boxes(b, "b")
    top_left = torch.maximum(a[:, None, :2], b[None, :, :2])          # (n, m, 2)
    bottom_right = torch.minimum(a[:, None, 2:], b[None, :, 2:])      # (n, m, 2)
    overlap = (bottom_right - top_left).clamp(min=0).prod(-1)         # (n, m): 0 where disjoint
    union = _area(a)[:, None] + _area(b)[None, :] - overlap
    return overlap / union


def paired_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(n,) IoU of box i of ``a`` with box i of ``b`` (the diagonal of :func:`box_iou`, without the n x m matrix)."""
    if _check_boxes(a, "a").shape != _check_boxes(b, "b").shape:
        raise ValueError(f"a and b must hold the same number of boxes; got {len(a)} and {len(b)}")
    overlap = (torch.minimum(a[:, 2:], b[:, 2:]) - torch.maximum(a[:, :2], b[:, :2])).clamp(min=0).prod(-1)
    return overlap / (_area(a) + _area(b) - overlap)


def box_loss(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L1 distance of the corners + (1 - IoU), averaged over the batch (DETR pairs L1 with a generalised IoU)."""
    return F.l1_loss(predicted, target) + (1 - paired_iou(predicted, target)).mean()


class BoxRegressor(nn.Module):
    """A small CNN: (batch, 1, size, size) grey image -> one box (x1, y1, x2, y2) as fractions of the side.

    Three conv + pool stages halve the image three times; a linear layer reads the map and predicts
    the box centre and size through a sigmoid (so they stay inside the image), turned into corners.
    """

    def __init__(self, size: int = 32, width: int = 16):
        super().__init__()
        self.size = whole_number("size", size, minimum=8)
        if size % 8:
            raise ValueError(f"size must be a multiple of 8 (three halvings); got {size}")
        layers, c = [], 1
        for c_out in (width, 2 * width, 4 * width):
            layers += [nn.Conv2d(c, c_out, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
            c = c_out
        self.conv = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(c * (size // 8) ** 2, 64), nn.ReLU(), nn.Linear(64, 4))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        check_images(images, channels=1, size=self.size)
        centre, side = self.head(self.conv(images)).sigmoid().split(2, dim=-1)   # (B, 2) each, in (0, 1)
        return torch.cat([centre - side / 2, centre + side / 2], dim=-1)          # (B, 4) corners


def threshold_boxes(images: torch.Tensor, blur: int = 3) -> torch.Tensor:
    """The rule-based baseline: blur, keep the pixels brighter than halfway between the image's median
    (the background) and its maximum, and return the bounding box of those pixels."""
    whole_number("blur", blur, minimum=1)
    images = check_images(images, channels=1, size=images.shape[-1])
    smooth = F.avg_pool2d(images, blur, stride=1, padding=blur // 2, count_include_pad=False)
    flat = smooth.flatten(1)
    level = (flat.median(dim=1).values + flat.max(dim=1).values) / 2
    mask = smooth[:, 0] > level[:, None, None]                                # (B, H, W)
    side = images.shape[-1]
    boxes = []
    for m in mask:
        ys, xs = torch.nonzero(m, as_tuple=True)
        boxes.append(torch.stack([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]).float() / side)
    return torch.stack(boxes)


# ================================================================== generation
def binomial_log_prob(counts: torch.Tensor, logits: torch.Tensor, total: int = DIGIT_MAX) -> torch.Tensor:
    """log P(counts) under Binomial(total, sigmoid(logits)), summed over the last dimension.

    A digit pixel counts the "on" pixels of a 4 x 4 block: a number from 0 to 16, which a binomial
    with 16 trials describes exactly as a distribution (a proper likelihood, unlike a Bernoulli
    cross-entropy on grey values). log C(n, x) + x log p + (n - x) log(1 - p), with the log
    probabilities computed from the logits for stability.
    """
    log_choose = torch.lgamma(torch.tensor(total + 1.0)) - torch.lgamma(counts + 1) - torch.lgamma(total - counts + 1)
    return (log_choose + counts * F.logsigmoid(logits) + (total - counts) * F.logsigmoid(-logits)).sum(-1)


def kl_to_standard_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL( N(mu, exp(logvar)) || N(0, I) ) per row: 1/2 sum(mu^2 + sigma^2 - log sigma^2 - 1)."""
    return 0.5 * (mu.pow(2) + logvar.exp() - logvar - 1).sum(-1)


class DigitVAE(nn.Module):
    """A variational autoencoder of 8 x 8 digits: 64 pixel counts -> q(z|x) = N(mu, sigma^2) -> p(x|z).

    The encoder maps a digit to the mean and log-variance of its latent code; a code is sampled as
    mu + sigma * noise (the reparameterisation trick, so gradients reach mu and sigma); the decoder
    maps it to 64 binomial logits.
    """

    def __init__(self, latent: int = 8, hidden: int = 128, pixels: int = 64):
        super().__init__()
        self.latent = whole_number("latent", latent)
        self.encoder = nn.Sequential(nn.Linear(pixels, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                                     nn.Linear(hidden, 2 * latent))
        self.decoder = nn.Sequential(nn.Linear(latent, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                                     nn.Linear(hidden, pixels))
        self.pixels = pixels

    def encode(self, counts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if counts.dim() != 2 or counts.shape[1] != self.pixels:
            raise ValueError(f"counts must have shape (batch, {self.pixels}) (8 x 8 digits flattened, pixels "
                             f"0..{DIGIT_MAX}); got {tuple(counts.shape)}")
        mu, logvar = self.encoder(counts / DIGIT_MAX).chunk(2, dim=-1)
        return mu, logvar

    def forward(self, counts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(decoder logits, mu, logvar) for one sampled code per digit."""
        mu, logvar = self.encode(counts)
        z = mu + (0.5 * logvar).exp() * torch.randn_like(mu)
        return self.decoder(z), mu, logvar

    @torch.no_grad()
    def sample(self, n: int, seed: int = 0) -> torch.Tensor:
        """(n, 8, 8) expected pixel counts of digits decoded from codes drawn from the prior N(0, I)."""
        g = torch.Generator().manual_seed(seed)
        z = torch.randn(whole_number("n", n), self.latent, generator=g)
        return (DIGIT_MAX * self.decoder(z).sigmoid()).view(n, 8, 8)


def elbo(model: DigitVAE, counts: torch.Tensor, samples: int = 1) -> torch.Tensor:
    """(batch,) evidence lower bound, in nats: E_q[log p(x|z)] - KL(q(z|x) || p(z)), <= log p(x).

    ``samples`` codes per digit average the reconstruction term (a less noisy estimate).
    """
    whole_number("samples", samples)
    mu, logvar = model.encode(counts)
    recon = 0.0
    for _ in range(samples):
        z = mu + (0.5 * logvar).exp() * torch.randn_like(mu)
        recon = recon + binomial_log_prob(counts, model.decoder(z))
    return recon / samples - kl_to_standard_normal(mu, logvar)


def vae_loss(output: tuple[torch.Tensor, torch.Tensor, torch.Tensor], counts: torch.Tensor) -> torch.Tensor:
    """The training loss of ``fit``: minus the ELBO, averaged over the batch (nats per digit)."""
    logits, mu, logvar = output
    return (kl_to_standard_normal(mu, logvar) - binomial_log_prob(counts, logits)).mean()


def independent_pixels_nll(train: torch.Tensor, test: torch.Tensor, prior: float = 1.0) -> float:
    """Baseline: each pixel its own binomial, p = its mean count / 16 over ``train`` (plus ``prior`` pseudo-counts
    so no probability is 0); returns the mean negative log-likelihood of ``test`` in nats per digit (exact)."""
    number("prior", prior, minimum=0, open_low=True)
    p = (train.sum(0) + prior) / (DIGIT_MAX * len(train) + 2 * prior)
    logits = torch.log(p) - torch.log1p(-p)
    return float(-binomial_log_prob(test, logits.expand_as(test)).mean())


def train_vae(counts: torch.Tensor, *, steps: int, lr: float = 2e-3, batch_size: int = 64, seed: int = 0,
              start_from: DigitVAE | None = None, val: torch.Tensor | None = None, patience: int | None = None,
              callbacks=(), name: str = "VAE") -> tuple[DigitVAE, History]:
    """Train a :class:`DigitVAE` (a new one, or a copy of ``start_from``: fine-tuning) on ``counts`` (n, 64)
    by minimising minus the ELBO; with ``val`` and ``patience``, stop early and keep the best weights."""
    from .train import EarlyStopping
    torch.manual_seed(seed)
    model = copy.deepcopy(start_from) if start_from is not None else DigitVAE()
    callbacks = list(callbacks)
    if val is not None and patience is not None:
        callbacks.append(EarlyStopping(monitor="val_loss", patience=patience))
    history = fit(model, (counts, counts), steps=steps, batch_size=min(batch_size, len(counts)), lr=lr,
                  loss_fn=vae_loss, val=None if val is None else (val, val), seed=seed, callbacks=callbacks,
                  name=name, progress=False)
    return model.eval(), history


@torch.no_grad()
def vae_nats(model: DigitVAE, counts: torch.Tensor, samples: int = 10, seed: int = 0) -> float:
    """Minus the mean ELBO of ``counts`` in nats per digit (an upper bound on the negative log-likelihood),
    with ``samples`` codes per digit and a fixed seed, so the same model always scores the same."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return float(-elbo(model, counts, samples=samples).mean())
