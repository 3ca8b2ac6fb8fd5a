"""The same fine-tuning with the tools people use: ``labkit.fit``, Hugging Face ``Trainer``, and a plain loop
with ``accelerate``'s ``Accelerator``; and ``peft``'s LoRA next to the book's own (:mod:`labkit.lora`).

Chapter 3.6's classifier (all-MiniLM-L6-v2 + a new head on the review set) is trained three times with one
:class:`Recipe`: the same initial weights, the same data order (:class:`SameOrder`, labkit's seeded order
handed to the other tools as their sampler), AdamW with the same learning rate and no weight decay, the same
warmup + cosine schedule (passed to ``Trainer`` as a ready scheduler: its own "cosine" counts warmup steps
from 0 where labkit counts from 1), clipping at 1.0. Dropout is off (``Recipe.dropout = 0``): each tool
draws its random numbers in its own order (a DataLoader takes a seed from the global generator, the Trainer
reseeds), so with dropout the three runs would differ by their dropout masks rather than by the tools.
With these settings the three runs are the same algorithm, and :func:`results_table` shows how close.
"""
from __future__ import annotations

import math
import tempfile
import time
from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset, Sampler, TensorDataset

from .check import number, whole_number
from .train import Batches, accuracy, evaluate, fit, warmup_cosine

__all__ = ["Recipe", "ToolRun", "SameOrder", "DictDataset", "WithLoss", "TOOLS", "no_dropout",
           "train_with_labkit", "train_with_trainer", "train_with_accelerate", "results_table", "agreement_verdict",
           "peft_lora", "labkit_lora", "copy_lora_init", "trainable"]

TOOLS = ("labkit.fit", "HF Trainer", "accelerate")


@dataclass
class Recipe:
    """The hyperparameters every tool gets."""
    lr: float = 1e-4
    epochs: int = 3
    batch_size: int = 16
    warmup_fraction: float = 0.1
    clip: float = 1.0
    seed: int = 0
    dropout: float = 0.0

    def __post_init__(self):
        number("lr", self.lr, minimum=0, open_low=True)
        whole_number("epochs", self.epochs)
        whole_number("batch_size", self.batch_size)
        number("warmup_fraction", self.warmup_fraction, minimum=0, maximum=1)

    def steps(self, n: int) -> int:
        return self.epochs * math.ceil(n / self.batch_size)

    def schedule(self, n: int):
        total = self.steps(n)
        return warmup_cosine(max(1, int(self.warmup_fraction * total)), total)


@dataclass
class ToolRun:
    tool: str
    model: nn.Module = field(repr=False)
    losses: list[float] = field(repr=False)
    seconds: float = 0.0
    accuracy: dict[str, float] = field(default_factory=dict)


def no_dropout(model: nn.Module) -> nn.Module:
    """Set every dropout probability to 0 (in place): training becomes a deterministic function of the data."""
    for m in model.modules():
        if isinstance(m, nn.Dropout):
            m.p = 0.0
    return model


class SameOrder(Sampler):
    """labkit's seeded order of epoch ``e`` (:meth:`labkit.train.Batches.order`), as a sampler for other tools.

    ``set_epoch`` is called by Trainer and accelerate at each epoch (as for a DistributedSampler); without a
    call, each pass over the sampler moves on to the next epoch.
    """

    def __init__(self, n: int, seed: int):
        self.batches = Batches(TensorDataset(torch.zeros(n)), 1, seed=seed)
        self.n, self.epoch, self._explicit = n, 0, False

    def set_epoch(self, epoch: int) -> None:
        self.epoch, self._explicit = int(epoch), True

    def __iter__(self):
        order = self.batches.order(self.epoch)
        if not self._explicit:
            self.epoch += 1
        self._explicit = False
        return iter(order.tolist())

    def __len__(self) -> int:
        return self.n


class DictDataset(Dataset):
    """(input_ids, attention_mask, label) tensors as the dicts Hugging Face tools expect."""

    def __init__(self, data: TensorDataset):
        self.data = data

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        ids, mask, label = self.data[i]
        return {"input_ids": ids, "attention_mask": mask, "labels": label}


class WithLoss(nn.Module):
    """A classifier returning ``{"loss", "logits"}``, the contract of a Hugging Face model, for ``Trainer``."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask, labels=None, **_):
        logits = self.model(input_ids, attention_mask)
        out = {"logits": logits}
        if labels is not None:
            out["loss"] = F.cross_entropy(logits, labels)
        return out


def _score(model: nn.Module, splits: dict[str, TensorDataset]) -> dict[str, float]:
    return {name: evaluate(model, data, metrics={"acc": accuracy})["acc"] for name, data in splits.items()}


def train_with_labkit(new_model: Callable[[], nn.Module], train: TensorDataset, recipe: Recipe,
                      splits: dict[str, TensorDataset]) -> ToolRun:
    model = no_dropout(new_model()) if recipe.dropout == 0 else new_model()
    t0 = time.perf_counter()
    h = fit(model, train, epochs=recipe.epochs, batch_size=recipe.batch_size, lr=recipe.lr,
            scheduler=recipe.schedule(len(train)), clip_grad_norm=recipe.clip, seed=recipe.seed, progress=False,
            name="labkit.fit")
    return ToolRun("labkit.fit", model, [s["loss"] for s in h.steps], time.perf_counter() - t0, _score(model, splits))


def train_with_trainer(new_model: Callable[[], nn.Module], train: TensorDataset, recipe: Recipe,
                       splits: dict[str, TensorDataset]) -> ToolRun:
    """Hugging Face ``Trainer``: the loop, logging, checkpointing, evaluation and devices in one object."""
    from transformers import PrinterCallback, Trainer, TrainingArguments
    from transformers.utils import logging as hf_logging
    hf_logging.set_verbosity_error()
    model = no_dropout(new_model()) if recipe.dropout == 0 else new_model()
    wrapped = WithLoss(model)
    sampler = SameOrder(len(train), recipe.seed)

    class SameOrderTrainer(Trainer):
        def _get_train_sampler(self, *args, **kwargs):
            return sampler

    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=recipe.lr, weight_decay=0.0)
    sched = recipe.schedule(len(train))(opt)
    with tempfile.TemporaryDirectory() as out:
        args = TrainingArguments(output_dir=out, per_device_train_batch_size=recipe.batch_size,
                                 num_train_epochs=recipe.epochs, learning_rate=recipe.lr, max_grad_norm=recipe.clip,
                                 logging_steps=1, save_strategy="no", eval_strategy="no", report_to=[],
                                 seed=recipe.seed, dataloader_num_workers=0, use_cpu=not torch.cuda.is_available(),
                                 disable_tqdm=True, dataloader_pin_memory=False)
        trainer = SameOrderTrainer(model=wrapped, args=args, train_dataset=DictDataset(train), optimizers=(opt, sched))
        trainer.remove_callback(PrinterCallback)          # its log lines would fill the notebook
        t0 = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - t0
    losses = [row["loss"] for row in trainer.state.log_history if "loss" in row]
    model.to("cpu")
    return ToolRun("HF Trainer", model, losses, seconds, _score(model, splits))


def train_with_accelerate(new_model: Callable[[], nn.Module], train: TensorDataset, recipe: Recipe,
                          splits: dict[str, TensorDataset]) -> ToolRun:
    """A plain PyTorch loop with ``accelerate``: ``prepare`` places model, data and optimizer on the devices,
    ``accelerator.backward`` handles mixed precision and gradient accumulation; the loop stays yours."""
    from accelerate import Accelerator
    from torch.utils.data import DataLoader
    model = no_dropout(new_model()) if recipe.dropout == 0 else new_model()
    accelerator = Accelerator(cpu=not torch.cuda.is_available(), mixed_precision="no")
    loader = DataLoader(train, batch_size=recipe.batch_size, sampler=SameOrder(len(train), recipe.seed))
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=recipe.lr, weight_decay=0.0)
    sched = recipe.schedule(len(train))(opt)
    model, opt, loader, sched = accelerator.prepare(model, opt, loader, sched)
    losses = []
    t0 = time.perf_counter()
    for epoch in range(recipe.epochs):
        model.train()
        loader.set_epoch(epoch)
        for ids, mask, labels in loader:
            loss = F.cross_entropy(model(ids, mask), labels)
            opt.zero_grad(set_to_none=True)
            accelerator.backward(loss)
            accelerator.clip_grad_norm_(model.parameters(), recipe.clip)
            opt.step()
            sched.step()
            losses.append(loss.item())
    seconds = time.perf_counter() - t0
    model = accelerator.unwrap_model(model).to("cpu")
    return ToolRun("accelerate", model, losses, seconds, _score(model, splits))


def results_table(runs: list[ToolRun], reference: str = "labkit.fit"):
    """One row per tool: accuracy on each split, wall time, and how far its losses and weights are from the
    reference run's."""
    import pandas as pd
    ref = next(r for r in runs if r.tool == reference)
    ref_w = ref.model.state_dict()
    rows = []
    for r in runs:
        w = r.model.state_dict()
        rows.append({"tool": r.tool, **{f"{k} accuracy": v for k, v in r.accuracy.items()},
                     "steps": len(r.losses), "wall time (s)": r.seconds,
                     f"max |loss - {reference}'s|": max(abs(a - b) for a, b in zip(r.losses, ref.losses)),
                     f"max |weight - {reference}'s|": max(float((w[k].float() - ref_w[k].float()).abs().max())
                                                          for k in ref_w)})
    return pd.DataFrame(rows).set_index("tool")


def agreement_verdict(runs: list[ToolRun], split: str = "test", points: float = 1.0) -> str:
    """Whether every tool's accuracy on ``split`` is within ``points`` accuracy points of every other's."""
    number("points", points, minimum=0, open_low=True)
    acc = {r.tool: 100 * r.accuracy[split] for r in runs}
    spread = max(acc.values()) - min(acc.values())
    listing = ", ".join(f"{t} {a:.1f}%" for t, a in acc.items())
    if spread <= points:
        return f"{split} accuracy: {listing}: within {spread:.1f} points of each other (<= {points:g}): the same result"
    return (f"{split} accuracy: {listing}: {spread:.1f} points apart (> {points:g}): the tools did NOT train the "
            f"same model; look for a setting that differs")


# ----------------------------------------------------------------------------- LoRA: peft and the book's
def trainable(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def peft_lora(model: nn.Module, r: int = 8, alpha: float = 16, targets=("query", "value")) -> nn.Module:
    """``model`` (a SequenceClassifier) with ``peft`` LoRA in its encoder; the head stays trainable."""
    import peft
    model.encoder = peft.get_peft_model(model.encoder, peft.LoraConfig(r=r, lora_alpha=alpha, lora_dropout=0.0,
                                                                       target_modules=list(targets)))
    return model


def labkit_lora(model: nn.Module, r: int = 8, alpha: float = 16, targets=("query", "value")) -> nn.Module:
    """The same with the book's :func:`labkit.lora.inject_lora` (frozen encoder, LoRA matrices, trainable head)."""
    from .lora import inject_lora
    from .nn import freeze
    freeze(model.encoder)
    inject_lora(model.encoder, list(targets), r=r, alpha=alpha)
    return model


def copy_lora_init(ours: nn.Module, theirs: nn.Module) -> int:
    """Copy peft's random A matrices (and B, zero) into the book's LoRA layers; returns how many layers."""
    from .lora import LoRALinear
    base = theirs.encoder.base_model.model
    copied = 0
    for name, m in ours.encoder.named_modules():
        if isinstance(m, LoRALinear):
            target = base.get_submodule(name)
            with torch.no_grad():
                m.lora_A.copy_(target.lora_A["default"].weight)
                m.lora_B.copy_(target.lora_B["default"].weight)
            copied += 1
    return copied
