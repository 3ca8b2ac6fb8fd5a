"""Continual learning: one model, task after task, and two ways to forget less (replay and EWC).

Chapter 3.5 measured *catastrophic forgetting*: fine-tune a model on task A (review sentiment), then
on task B (product category), and task A's accuracy falls, because task B's updates move the encoder
weights that task A's head reads. This module holds the set-up and two classic remedies:

* :class:`TaskHeads`: one encoder, one linear head per task; each row of a batch carries its task id
  and gets its own task's logits (the other classes padded with a large negative number, so
  cross-entropy and arg-max see only its own classes). Training on task B never touches head A.
* **Replay** (experience replay; see Rolnick et al., "Experience Replay for Continual Learning",
  NeurIPS 2019, arXiv:1811.11682): keep a small memory of task A's training examples, a fraction
  ``k`` of them, and mix it into task B's training set (:func:`replay_examples`).
* **EWC**, elastic weight consolidation (Kirkpatrick et al., "Overcoming catastrophic forgetting in
  neural networks", PNAS 2017, arXiv:1612.00796): after task A, estimate how much each weight matters
  to it by the diagonal of the Fisher information, F_i = E[(∂ log p(y|x) / ∂θ_i)²] over task A's
  training examples (:func:`fisher_diagonal`, the *empirical* Fisher: the true labels y), and train task
  B with a quadratic pull towards the task-A weights θ*: L_B(θ) + (λ/2) Σ_i F_i (θ_i − θ*_i)²
  (:class:`EWCLoss`).

  With Adam the penalty in the loss misbehaves: Adam divides every coordinate's gradient by its own
  running scale, so on a weight whose task-B gradient is tiny a tiny penalty gradient still makes a
  full-size step, and the pull turns into noise on millions of weights. It is the reason AdamW
  *decouples* weight decay from the gradient (Loshchilov & Hutter, arXiv:1711.05101; chapter 4.2).
  :class:`EWCPull` applies EWC's pull the same way, after each optimizer step and outside Adam:
  θ_i ← θ_i − r_i (θ_i − θ*_i) with r_i = min(1, s · F_i / mean F), the share of the way back weight i
  goes each step: s for a weight of average importance, all the way for the most important ones
  (with plain SGD the loss form gives r_i = lr · λ · F_i, so s = lr · λ · mean F).

A third way avoids the problem: a frozen base with one LoRA module per task (:mod:`labkit.lora`); the
base never changes, so swapping the task's adapters back in restores task A exactly.
"""
from __future__ import annotations

import random
from typing import Iterable

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import TensorDataset

from .check import number, probability, whole_number
from .nn.classifier import mean_pool
from .train import Callback

__all__ = ["PAD_LOGIT", "TaskHeads", "encode_tasks", "replay_examples", "fisher_diagonal", "EWCLoss", "EWCPull",
           "task_accuracy", "forgetting_rows", "continual_verdicts"]

PAD_LOGIT = -1e4     # the logit of a class that is not the row's task's: probability 0 after softmax


class TaskHeads(nn.Module):
    """``encoder`` -> masked mean -> dropout -> the row's own task head. ``n_classes``: {task: classes}."""

    def __init__(self, encoder: nn.Module, n_classes: dict[str, int], dropout: float = 0.1):
        super().__init__()
        if not n_classes:
            raise ValueError("n_classes must name at least one task, e.g. {'sentiment': 2}")
        for task, k in n_classes.items():
            whole_number(f"n_classes[{task!r}]", k, minimum=2)
        self.encoder, self.tasks = encoder, list(n_classes)
        width = encoder.config.hidden_size
        self.dropout = nn.Dropout(dropout)
        self.heads = nn.ModuleDict({t: nn.Linear(width, k) for t, k in n_classes.items()})
        self.width = max(n_classes.values())

    def task_id(self, task: str) -> int:
        if task not in self.tasks:
            raise ValueError(f"task must be one of {self.tasks}; got {task!r}")
        return self.tasks.index(task)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, task: torch.Tensor) -> torch.Tensor:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        h = self.dropout(mean_pool(hidden, attention_mask))
        # every head on every row, padded to the widest task, then each row picks its own task's logits
        # (no data-dependent branch, so torch.func can vmap over it; a head gets gradients only from its rows)
        padded = torch.stack([F.pad(self.heads[t](h), (0, self.width - self.heads[t].out_features), value=PAD_LOGIT)
                              for t in self.tasks])                                  # (tasks, B, width)
        return padded[task, torch.arange(len(h), device=h.device)]


def encode_tasks(tokenizer, examples: list[tuple[str, int, int]], max_length: int = 48) -> TensorDataset:
    """(input_ids, attention_mask, task id, label) for (text, label, task id) triples, padded together."""
    if not examples:
        raise ValueError("examples is empty: need (text, label, task id) triples")
    enc = tokenizer([t for t, _, _ in examples], padding=True, truncation=True, max_length=max_length,
                    return_tensors="pt")
    return TensorDataset(enc["input_ids"], enc["attention_mask"], torch.tensor([k for _, _, k in examples]),
                         torch.tensor([y for _, y, _ in examples]))


def replay_examples(new: list, old: list, fraction: float, seed: int = 0) -> list:
    """``new`` plus a memory of ``round(fraction * len(old))`` examples of ``old`` drawn without replacement."""
    probability("fraction", fraction)
    k = round(fraction * len(old))
    return list(new) + random.Random(seed).sample(list(old), k)


def fisher_diagonal(model: nn.Module, data: TensorDataset,
                    params: Iterable[str] | None = None) -> dict[str, torch.Tensor]:
    """Empirical Fisher diagonal: the mean over the examples of (∂ log p(y|x) / ∂θ)², one example at a time,
    in eval mode (no dropout). ``params``: names to cover (default: the encoder's parameters)."""
    names = list(params) if params is not None else [n for n, _ in model.named_parameters() if n.startswith("encoder.")]
    table = dict(model.named_parameters())
    missing = [n for n in names if n not in table]
    if missing:
        raise ValueError(f"params names {missing[:3]} are not parameters of the model")
    fisher = {n: torch.zeros_like(table[n]) for n in names}
    was = model.training
    model.eval()
    for row in zip(*data.tensors):
        *inputs, label = (t.unsqueeze(0) for t in row)
        model.zero_grad(set_to_none=True)
        F.cross_entropy(model(*inputs), label).backward()      # -log p(y|x): its square is what counts
        for n in names:
            if table[n].grad is not None:
                fisher[n] += table[n].grad.detach() ** 2
    model.zero_grad(set_to_none=True)
    model.train(was)
    return {n: f / len(data) for n, f in fisher.items()}


class EWCLoss:
    """``loss_fn`` for :func:`labkit.train.fit`: cross-entropy + (λ/2) Σ F (θ - θ*)², θ* the weights at creation."""

    def __init__(self, model: nn.Module, fisher: dict[str, torch.Tensor], lam: float):
        self.lam = number("lam (the EWC strength λ)", lam, minimum=0)
        table = dict(model.named_parameters())
        self.terms = [(table[n], f, table[n].detach().clone()) for n, f in fisher.items()]

    def penalty(self) -> torch.Tensor:
        return 0.5 * self.lam * sum((f * (p - anchor) ** 2).sum() for p, f, anchor in self.terms)

    def __call__(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(output, target) + self.penalty()


class EWCPull(Callback):
    """EWC's pull towards the task-A weights, decoupled from the optimizer (see the module docstring):
    after every step, θ ← θ − r ⊙ (θ − θ*) with r = min(1, strength · F / mean F)."""

    def __init__(self, model: nn.Module, fisher: dict[str, torch.Tensor], strength: float):
        self.strength = number("strength", strength, minimum=0, open_low=True)
        total = sum(float(f.sum()) for f in fisher.values())
        count = sum(f.numel() for f in fisher.values())
        if not total > 0:
            raise ValueError("fisher is all zero: task A's gradients were zero, there is nothing to protect")
        mean = total / count
        table = dict(model.named_parameters())
        self.terms = [(table[n], (self.strength * f / mean).clamp(max=1.0), table[n].detach().clone())
                      for n, f in fisher.items()]

    def rates(self) -> torch.Tensor:
        """r for every protected weight, flattened (how hard each is pulled back per step)."""
        return torch.cat([r.flatten() for _, r, _ in self.terms])

    @torch.no_grad()
    def on_step_end(self, state) -> None:
        for p, rate, anchor in self.terms:
            p -= rate * (p - anchor)


@torch.no_grad()
def task_accuracy(model: TaskHeads, data: TensorDataset, batch_size: int = 64) -> float:
    """Accuracy on (ids, mask, task, label) rows, in eval mode."""
    was = model.training
    model.eval()
    right = 0
    for i in range(0, len(data), batch_size):
        ids, mask, task, y = (t[i:i + batch_size] for t in data.tensors)
        right += int((model(ids, mask, task).argmax(-1) == y).sum())
    model.train(was)
    return right / len(data)


def forgetting_rows(a_before: float, arms: dict[str, tuple[float, float]]):
    """One row per arm: task A accuracy after task B, the points of A lost, task B accuracy."""
    import pandas as pd
    return pd.DataFrame({name: {"task A accuracy after B": a, "task A points lost": 100 * (a_before - a),
                                "task B accuracy": b} for name, (a, b) in arms.items()}).T


def continual_verdicts(a_before: float, arms: dict[str, tuple[float, float]], naive: str = "naive sequential",
                       *, margin: float = 2.0, b_margin: float = 5.0) -> list[str]:
    """For every arm against ``naive``: how many of the lost task-A points it saves, and what task B pays.
    ``margin`` / ``b_margin``: differences in points smaller than these count as level."""
    if naive not in arms:
        raise ValueError(f"naive must be one of the arms {list(arms)}; got {naive!r}")
    a_naive, b_naive = arms[naive]
    lost = 100 * (a_before - a_naive)
    lines = [f"{naive}: task A {a_before:.3f} -> {a_naive:.3f} ({abs(lost):.1f} points {'lost' if lost >= 0 else 'gained'}); "
             f"task B {b_naive:.3f}."
             + (" Forgetting is measurable." if lost > margin else " No forgetting beyond the margin: "
                "the remedies below have nothing to repair at this budget.")]
    for name, (a, b) in arms.items():
        if name == naive:
            continue
        saved = 100 * (a - a_naive)
        if lost > margin:
            share = f" ({100 * saved / lost:.0f}% of the loss)" if saved > margin else ""
            how = (f"saves {saved:.1f} of the {lost:.1f} lost points{share}" if saved > margin else
                   f"saves no more than {margin:g} points ({saved:+.1f})")
        else:
            how = f"task A {saved:+.1f} points against {naive}"
        db = 100 * (b - b_naive)
        cost = ("task B level with naive" if abs(db) < b_margin
                else f"task B {abs(db):.1f} points {'lower' if db < 0 else 'higher'} than naive")
        lines.append(f"{name}: task A {a:.3f}; {how}; {cost} ({b:.3f}).")
    return lines

