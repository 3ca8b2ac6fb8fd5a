"""Fine-tuning strategies side by side (chapter 3.5): one classifier, one budget, different parameters trained.

Each strategy is a function that takes a fresh :class:`~labkit.nn.SequenceClassifier`
(pretrained encoder + new head) and decides what trains; :func:`run_strategy`
trains it with :func:`~labkit.train.fit` for the same epochs on the same data,
then measures test accuracy, trainable parameters, wall time, peak memory and
the training-state memory of one batch.

:data:`STRATEGIES` is keyed by short ids (``"lora"``, ``"bitfit"``); :data:`LABELS`
holds the names a table shows, and :data:`LEARNING_RATES` the rate each
strategy starts from (chapter 3.5 and Lab 3c read them from here).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch

from .adapters import add_adapters
from .check import one_of
from .finetune import GradualUnfreezing, Meter, bitfit, layerwise_param_groups, memory_breakdown, unfreeze_top_k
from .lora import inject_lora
from .nn import SequenceClassifier, count_parameters, freeze
from .train import History, accuracy, evaluate, fit, make_adamw

__all__ = ["STRATEGIES", "LABELS", "LEARNING_RATES", "PEFT", "Setup", "StrategyResult", "run_strategy",
           "cost_verdicts"]


@dataclass
class Setup:
    """What a strategy hands to ``fit``: an optimizer (else AdamW at ``lr`` over trainable parameters) and callbacks."""
    optimizer: torch.optim.Optimizer | None = None
    callbacks: list = field(default_factory=list)


def full(model, lr, **_):
    return Setup()


def linear_probe(model, lr, **_):
    freeze(model.encoder)
    return Setup()


def top_k(model, lr, k=2, **_):
    unfreeze_top_k(model.encoder, k)
    return Setup()


def gradual(model, lr, decay=0.8, **_):
    """ULMFiT: one more block per epoch, top-down, each block with its own (smaller) learning rate."""
    optimizer = make_adamw(layerwise_param_groups(model, base_lr=lr, decay=decay), lr=lr)
    return Setup(optimizer=optimizer, callbacks=[GradualUnfreezing(model.encoder)])


def lora(model, lr, r=8, alpha=16, targets=("query", "value"), **_):
    freeze(model.encoder)
    inject_lora(model.encoder, list(targets), r=r, alpha=alpha)
    return Setup()


def adapters(model, lr, bottleneck=16, **_):
    freeze(model.encoder)
    add_adapters(model.encoder, ["output.dense"], bottleneck=bottleneck)
    return Setup()


def bitfit_(model, lr, **_):
    bitfit(model)
    return Setup()


STRATEGIES: dict[str, Callable] = {
    "full": full, "linear_probe": linear_probe, "top_k": top_k, "gradual": gradual, "lora": lora,
    "adapters": adapters, "bitfit": bitfit_,
}
# What a table shows; the names carry each strategy's default settings.
LABELS = {
    "full": "full fine-tuning", "linear_probe": "linear probe", "top_k": "top-2 blocks",
    "gradual": "gradual unfreezing + discriminative LR", "lora": "LoRA (r=8, query/value)",
    "adapters": "adapters (bottleneck 16)", "bitfit": "BitFit",
}
# The fewer parameters train, the larger the step they want: a common rule of thumb, not tuned per run.
PEFT = ("lora", "adapters", "bitfit")  # the parameter-efficient ones: a few added or chosen parameters train
LEARNING_RATES = {"full": 1e-4, "linear_probe": 1e-2, "top_k": 2e-4, "gradual": 3e-4, "lora": 1e-3,
                  "adapters": 1e-3, "bitfit": 1e-3}


@dataclass
class StrategyResult:
    strategy: str  # an id of STRATEGIES, or any name for a run that is not one (e.g. a distilled student)
    test_acc: float
    trainable: int
    total: int
    seconds: float
    peak_mb: float
    memory: dict
    history: History = field(repr=False)
    model: torch.nn.Module = field(repr=False)

    @property
    def label(self) -> str:
        """The name a table shows: :data:`LABELS` of the strategy, else the strategy as given."""
        return LABELS.get(self.strategy, self.strategy)

    def row(self) -> dict:
        """One table row: the label, accuracy, what trains and what it costs."""
        return {"strategy": self.label, "test accuracy": round(self.test_acc, 3), "trainable params": self.trainable,
                "trainable %": round(100 * self.trainable / self.total, 3), "seconds": round(self.seconds, 1),
                "peak RSS Δ MB": round(self.peak_mb), "grads+AdamW MB": round(
                    self.memory["grads MB"] + self.memory["AdamW state MB"], 2),
                "activations MB": round(self.memory["activations MB"], 1)}


def run_strategy(name: str, encoder: torch.nn.Module, train, test, *, lr: float, epochs: int,
                 batch_size: int = 16, n_classes: int = 2, seed: int = 0, callbacks=(), **options) -> StrategyResult:
    """Build the classifier on ``encoder`` (a fresh copy), apply strategy ``name`` (an id of :data:`STRATEGIES`),
    train, test."""
    one_of("name", name, STRATEGIES)
    torch.manual_seed(seed)
    model = SequenceClassifier(encoder, n_classes=n_classes)
    setup = STRATEGIES[name](model, lr, **options)
    with Meter() as meter:
        history = fit(model, train, epochs=epochs, batch_size=batch_size, seed=seed, name=LABELS[name],
                      lr=None if setup.optimizer else lr, optimizer=setup.optimizer,
                      callbacks=[*setup.callbacks, *callbacks])
    scores = evaluate(model, test, batch_size=64, metrics={"acc": accuracy})
    trainable = count_parameters(model, trainable_only=True)
    if isinstance(setup.optimizer, torch.optim.Optimizer):  # gradual: count what had a gradient in the last step
        trainable = sum(p.numel() for p in model.parameters() if p.grad is not None)
    ids, mask = (t[:batch_size] for t in train.tensors[:2])
    memory = memory_breakdown(model, ids, mask)  # one batch, with the (final) set of trainable parameters
    return StrategyResult(name, scores["acc"], trainable, count_parameters(model), meter.seconds, meter.peak_mb,
                          memory, history, model)


def _state_mb(r: StrategyResult) -> float:
    return r.memory["grads MB"] + r.memory["AdamW state MB"]


def cost_verdicts(results: dict[str, StrategyResult], *, reference: str = "full", small: float = 0.02) -> list[str]:
    """Sentences on what each strategy trains and what it costs, worded from the measured results: the share of
    parameters the PEFT methods train (under ``small`` or not), their training state and activation memory as a
    share of ``reference``'s, the linear probe's activations, and what gradual unfreezing trained by the end."""
    if reference not in results:
        raise ValueError(f"reference must be one of the strategies run {sorted(results)}; got {reference!r}")
    ref = results[reference]
    lines = []
    peft = [results[k] for k in PEFT if k in results]
    if peft:
        shares = {r.label: r.trainable / r.total for r in peft}
        under = all(v < small for v in shares.values())
        lines.append(f"{', '.join(f'{k} trains {100 * v:.2f}%' for k, v in shares.items())} of the parameters: "
                     + (f"all under {100 * small:g}%." if under else f"not all under {100 * small:g}%."))
        for r in peft:
            state = _state_mb(r) / _state_mb(ref)
            acts = r.memory["activations MB"] / ref.memory["activations MB"]
            lines.append(f"{r.label}: gradients + AdamW state {100 * state:.1f}% of {ref.label}'s, activations "
                         f"{100 * acts:.0f}% of its: the activations shrink "
                         + ("far less than" if acts > 5 * state else "about as much as" if acts > state / 5 else
                            "far more than") + " the optimizer state.")
    if "linear_probe" in results:
        probe = results["linear_probe"]
        least = min(results.values(), key=lambda r: r.memory["activations MB"])
        lines.append(f"{probe.label}: activations {probe.memory['activations MB']:.1f} MB against "
                     f"{ref.memory['activations MB']:.1f} MB for {ref.label}: "
                     + ("the smallest of all strategies (no backward pass through the encoder)." if least is probe
                        else f"not the smallest ({least.label} has {least.memory['activations MB']:.1f} MB)."))
    if "gradual" in results:
        g = results["gradual"]
        # what had a gradient in the reference's last step (a pooler that the classifier never reads has none)
        full = (sum(p.numel() for p in ref.model.parameters() if p.grad is not None)
                if ref.model is not None else ref.trainable)
        lines.append(f"{g.label}: {g.trainable:,} parameters had a gradient in the last step, "
                     f"{100 * g.trainable / full:.0f}% of those of {ref.label}"
                     + (": with this budget it never reached the whole network." if g.trainable < full
                        else ": by the end it trained the whole network."))
    return lines
