"""Lab 3c: fine-tuning strategies from a panel, and exercises that count what each one trains.

:class:`StrategyLab` maps the panel's choices (a strategy, the LoRA rank ``r``,
the number ``k`` of unfrozen top blocks, a learning rate, epochs) onto
:data:`labkit.strategies.STRATEGIES`, trains a fresh copy of the pretrained
encoder with :func:`~labkit.strategies.run_strategy` and adds a row to one
results table. Every expected answer of :func:`exercises` is computed from the
real model, never typed in.
"""
from __future__ import annotations

from dataclasses import replace
from functools import cache

import torch
from torch import nn

from ..adapters import add_adapters
from ..check import one_of, whole_number
from ..exercises import Exercise
from ..lora import LoRALinear, merge_lora
from ..nn import SequenceClassifier, count_parameters
from ..strategies import LEARNING_RATES, STRATEGIES, run_strategy

__all__ = ["CHOICES", "SUGGESTED_LR", "StrategyLab", "settings", "exercises", "trainable_after", "adamw_state_mb",
           "mergeable", "added_parameters", "inference_extra"]

# The panel's choices -> the ids of labkit.strategies.STRATEGIES.
CHOICES = {
    "full fine-tuning": "full",
    "linear probe": "linear_probe",
    "top-k blocks": "top_k",
    "gradual unfreezing": "gradual",
    "LoRA": "lora",
    "adapters": "adapters",
    "BitFit": "bitfit",
}
# Chapter 3.5's learning rates (labkit.strategies.LEARNING_RATES), by the panel's names.
SUGGESTED_LR = {choice: LEARNING_RATES[sid] for choice, sid in CHOICES.items()}
LORA_TARGETS = ("query", "value")
ALPHA_PER_RANK = 2  # alpha = 2 r: the scale alpha / r stays 2, so r changes the capacity, not the step size
BOTTLENECK = 16


def settings(strategy: str, r: int = 8, k: int = 2) -> tuple[str, dict]:
    """The row label (with the settings that matter) and the options for ``run_strategy``."""
    one_of("strategy", strategy, CHOICES)
    if strategy == "LoRA":
        whole_number("r (the LoRA rank)", r, minimum=1)
        alpha = ALPHA_PER_RANK * r
        return f"LoRA r={r} (α={alpha}, q/v)", {"r": r, "alpha": alpha, "targets": LORA_TARGETS}
    if strategy == "top-k blocks":
        return f"top-k k={k}", {"k": k}
    if strategy == "adapters":
        return f"adapters (bottleneck {BOTTLENECK})", {"bottleneck": BOTTLENECK}
    return strategy, {}


class StrategyLab:
    """Runs one strategy per call on a fresh pretrained encoder; keeps a table and a loss plot of every run."""

    def __init__(self, encoders, train, test, *, batch_size: int = 16, seed: int = 0, plot=None):
        self.encoders, self.train, self.test = encoders, train, test
        self.batch_size, self.seed, self.plot = batch_size, seed, plot
        self.rows: list[dict] = []
        self.results: list = []  # every run's StrategyResult, without its model (memory)
        self.last = None  # the latest StrategyResult, with its trained model
        self._handle = None

    def run(self, strategy: str, r: int = 8, k: int = 2, lr: float = 1e-3, epochs: int = 3) -> dict:
        """Train ``strategy`` with these settings, test it, add a row to the table and return the row."""
        label, options = settings(strategy, r, k)
        name = f"#{len(self.rows) + 1} {label}"
        callbacks = [self.plot.track(name)] if self.plot is not None else []
        result = run_strategy(CHOICES[strategy], self.encoders.encoder("pretrained"), self.train, self.test,
                              lr=lr, epochs=epochs, batch_size=min(self.batch_size, len(self.train)),
                              seed=self.seed, callbacks=callbacks, **options)
        row = {"run": len(self.rows) + 1, **result.row(), "strategy": label, "lr": lr, "epochs": epochs}
        self.rows.append(row)
        self.results.append(replace(result, model=None))
        self.last = result
        if self._handle is not None:
            self._handle.update(self.table())
        return row

    def table(self):
        import pandas as pd
        columns = ["strategy", "lr", "epochs", "test accuracy", "trainable params", "trainable %", "seconds",
                   "peak RSS Δ MB", "grads+AdamW MB"]
        return pd.DataFrame(self.rows, columns=["run", *columns]).set_index("run")

    def show(self) -> None:
        """Draw the (empty) loss plot and table here; every later run updates both in place."""
        from IPython.display import display
        if self.plot is not None:
            self.plot.draw()
        self._handle = display(self.table(), display_id=True)


# ----------------------------------------------------------------------------- exercises
def _prepared(encoders, strategy: str, r: int = 8, k: int = 2, seed: int = 0) -> SequenceClassifier:
    """A fresh classifier on which ``strategy`` (a panel choice) has decided what trains, as in a run."""
    torch.manual_seed(seed)
    model = SequenceClassifier(encoders.encoder("pretrained"), n_classes=2)
    STRATEGIES[CHOICES[strategy]](model, lr=None, **settings(strategy, r, k)[1])
    return model


def trainable_after(encoders, strategy: str, r: int = 8, k: int = 2) -> int:
    """Trainable parameters of the classifier (head included) once ``strategy`` decided what trains."""
    one_of("strategy", strategy, ("LoRA", "top-k blocks", "BitFit", "full fine-tuning"))
    return count_parameters(_prepared(encoders, strategy, r, k), trainable_only=True)


def adamw_state_mb(encoders, strategy: str, r: int = 8) -> float:
    """AdamW's state, measured: build the optimizer, take one step, add up exp_avg and exp_avg_sq (MiB)."""
    one_of("strategy", strategy, ("LoRA", "full fine-tuning"))
    model = _prepared(encoders, strategy, r=r)
    params = [p for p in model.parameters() if p.requires_grad]
    for p in params:
        p.grad = torch.zeros_like(p)
    opt = torch.optim.AdamW(params, lr=1e-3)
    opt.step()
    state = [t for s in opt.state.values() for key, t in s.items() if key in ("exp_avg", "exp_avg_sq")]
    return sum(t.numel() * t.element_size() for t in state) / 2 ** 20


def mergeable(width: int = 16, seed: int = 0) -> str:
    """Which added module folds into the frozen weight: compare the merged linear map with the trained module."""
    torch.manual_seed(seed)
    x = torch.randn(5, width)
    lora = LoRALinear(nn.Linear(width, width), r=4, alpha=8)
    nn.init.normal_(lora.lora_B)  # as if trained
    with torch.no_grad():
        before = lora(x)
        merge_lora(lora)
        lora_ok = torch.allclose(lora.base(x), before, atol=1e-5)
    base = nn.Sequential(nn.Linear(width, width))
    add_adapters(base, ["0"], bottleneck=4)
    adapter = base[0].adapter
    nn.init.normal_(adapter.up.weight)  # as if trained
    with torch.no_grad():  # the best single linear map (least squares) through the adapted layer's outputs
        xs = torch.randn(200, width)
        ys = base(xs)
        ones = torch.ones(len(xs), 1)
        w = torch.linalg.lstsq(torch.cat([xs, ones], 1), ys).solution
        adapter_ok = torch.allclose(torch.cat([xs, ones], 1) @ w, ys, atol=1e-4)
    if lora_ok == adapter_ok:
        raise RuntimeError(f"expected exactly one mergeable module; LoRA: {lora_ok}, adapters: {adapter_ok}")
    return "LoRA" if lora_ok else "adapters"


def added_parameters(encoders, strategy: str, r: int = 8) -> int:
    """Parameters that ``strategy`` ("LoRA" or "adapters", the panel's settings) adds to the classifier."""
    one_of("strategy", strategy, ("LoRA", "adapters"))
    torch.manual_seed(0)
    plain = SequenceClassifier(encoders.encoder("pretrained"), n_classes=2)
    return count_parameters(_prepared(encoders, strategy, r=r)) - count_parameters(plain)


def inference_extra(encoders, r: int = 8) -> int:
    """How many more parameters the adapters model computes with at inference than the LoRA model, each merged
    into the frozen weights where that is possible (which one merges is measured by :func:`mergeable`)."""
    merges = mergeable()
    extra = {s: 0 if s == merges else added_parameters(encoders, s, r=r) for s in ("LoRA", "adapters")}
    return extra["adapters"] - extra["LoRA"]


def exercises(encoders, r: int = 4, k: int = 2) -> dict[str, Exercise]:
    """The lab's six questions, for the LoRA rank ``r`` and the top-``k`` setting given.

    Each expected value is measured on the real model the first time an answer is checked, then kept."""
    config = encoders.loaded.model.config
    width, blocks = config.hidden_size, config.num_hidden_layers
    alpha = ALPHA_PER_RANK * 8
    return {
        "3c.1": Exercise("3c.1", f"LoRA with r={r} on query and value of all {blocks} blocks (width {width}): how many "
                         "parameters train, the classifier head included?",
                         expected=cache(lambda: trainable_after(encoders, "LoRA", r=r)),
                         hint=f"each adapted layer adds A (r x {width}) and B ({width} x r); how many layers? "
                              f"then add the head: {width} x 2 weights + 2 biases",
                         explain="The frozen encoder contributes nothing; the count grows linearly in r."),
        "3c.2": Exercise("3c.2", f"Top-k unfreezing with k={k}: how many parameters train, head included?",
                         expected=cache(lambda: trainable_after(encoders, "top-k blocks", k=k)),
                         hint="count the parameters of one block (count_parameters(encoder.encoder.layer[-1])), "
                              "multiply by k, add the head",
                         explain="Every block has the same size, so top-k costs k blocks' worth of optimizer state."),
        "3c.3": Exercise("3c.3", "BitFit: how many parameters train (every bias in the encoder, plus the head)?",
                         expected=cache(lambda: trainable_after(encoders, "BitFit")),
                         hint="add up p.numel() for every encoder parameter whose name ends with 'bias' "
                              "(LayerNorm biases count too), then the head's weights and bias",
                         explain="Biases are a tiny share of a transformer: almost everything is in the matrices."),
        "3c.4": Exercise("3c.4", "Full fine-tuning with AdamW: how many MiB (2**20 bytes) do the optimizer's two "
                         "float32 moments take? (to 1%)",
                         expected=cache(lambda: adamw_state_mb(encoders, "full fine-tuning")), rel=0.01,
                         hint="two moments (exp_avg, exp_avg_sq) x 4 bytes x the trainable parameters, / 2**20",
                         explain="Plus 4 bytes of gradient per parameter: 12 bytes of training state for each "
                                 "weight, which is what parameter-efficient methods save."),
        "3c.5": Exercise("3c.5", f"LoRA adds (alpha / r) · B A to a frozen weight. With r=8 and alpha={alpha}, "
                         "what number multiplies B A?",
                         expected=lambda: LoRALinear(nn.Linear(width, width), r=8, alpha=alpha).scale,
                         hint="alpha divided by r",
                         explain="This lab sets alpha = 2 r, so the scale stays the same at every rank."),
        "3c.6": Exercise("3c.6", f"You deploy two fine-tuned models: LoRA (r=8 on query and value) and adapters "
                         f"(bottleneck {BOTTLENECK}, after both output projections of every block), each merged into "
                         "the frozen weights wherever that is possible. How many more parameters does the adapters "
                         "model compute with at inference than the LoRA model? (negative if fewer)",
                         expected=cache(lambda: inference_extra(encoders)),
                         hint="count what each method adds (A and B; down and up with their biases), then ask of each "
                              "whether its trained update can be folded into one weight matrix: is it linear in x?",
                         explain="LoRA's update is linear, W0 + (α/r)BA is one matrix, so it costs nothing at "
                                 "inference; an adapter has a GELU between its two projections, so every one of its "
                                 "parameters stays as an extra layer."),
    }
