"""Pretraining objectives as ``forward`` / ``loss_fn`` pairs for :func:`labkit.train.fit`.

* causal LM (GPT):  :func:`clm_forward` + :func:`clm_loss`
* MLM + a pair task (BERT: NSP; ALBERT: SOP): :class:`MLMPairForward` + :func:`mlm_pair_loss`,
  the total loss ``L = L_MLM + L_pair`` (a sum, not one overwriting the other).
* bidirectional LM (ELMo's biLM, the BiLSTM of chapter 5): :func:`bilm_forward` + :func:`bilm_loss`,
  next word for the forward LSTM, previous word for the backward one.

And what a chapter measures around them: the unigram entropy of a token
stream (the loss of the best model that ignores context), mean-pooled encoder
features for a probe, and a callback that prints a sample while a GPT trains.
"""
from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F

from .check import whole_number
from .data.pretraining import IGNORE, mask_tokens
from .nn.bilstm import check_batch
from .nn.classifier import mean_pool
from .train import Callback, TrainState, accuracy, evaluate, fit

__all__ = ["clm_forward", "clm_loss", "MLMPairForward", "mlm_pair_loss", "pair_accuracy", "bilm_targets",
           "bilm_forward", "bilm_loss", "unigram_entropy", "mean_pool", "encoder_features", "SampleEvery",
           "perplexity", "linear_probe"]


def clm_forward(model, batch):
    """(inputs, targets) -> (logits (B, T, V), targets (B, T))."""
    x, y = batch
    return model(x), y


def clm_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy over every position, in nats per token."""
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1), ignore_index=IGNORE)


class MLMPairForward:
    """Masks a batch (freshly, every time: dynamic masking) and runs a BertForPretraining.

    The batch is (input_ids, token_type_ids, attention_mask, pair_label) as built by
    :func:`labkit.data.pretraining.encode_pairs`. The output is (mlm_logits,
    mlm_labels, pair_logits) and the target the pair label, ready for :func:`mlm_pair_loss`.
    """

    def __init__(self, tokenizer, mlm_prob: float = 0.15, use_pair: bool = True):
        self.vocab_size, self.mask_id = tokenizer.vocab_size, tokenizer.mask_id
        self.special_ids, self.mlm_prob, self.use_pair = list(tokenizer.special_ids), mlm_prob, use_pair

    def __call__(self, model, batch):
        ids, types, mask, pair = batch
        corrupted, labels = mask_tokens(ids, vocab_size=self.vocab_size, mask_id=self.mask_id,
                                        special_ids=self.special_ids, mlm_prob=self.mlm_prob)
        mlm_logits, pair_logits = model(corrupted, mask, types)
        if not self.use_pair:
            pair_logits = None
        return (mlm_logits, labels, pair_logits), pair


def mlm_pair_loss(output, pair_label: torch.Tensor) -> torch.Tensor:
    """L = L_MLM (only at the chosen positions) + L_pair (NSP or SOP; left out when its logits are None)."""
    mlm_logits, labels, pair_logits = output
    loss = F.cross_entropy(mlm_logits.reshape(-1, mlm_logits.size(-1)), labels.reshape(-1), ignore_index=IGNORE)
    if pair_logits is not None:
        loss = loss + F.cross_entropy(pair_logits, pair_label)
    return loss


def pair_accuracy(output, pair_label: torch.Tensor) -> torch.Tensor:
    """Accuracy of the NSP/SOP head (a metric for :func:`labkit.train.fit`)."""
    pair_logits = output[2]
    if pair_logits is None:
        return torch.tensor(float("nan"))
    return (pair_logits.argmax(-1) == pair_label).float().mean()


def bilm_targets(ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Targets (B, 2, T): ``[:, 0, t]`` = word t+1, ``[:, 1, t]`` = word t-1, ``IGNORE`` where there is none."""
    check_batch(ids, lengths)
    B, T = ids.shape
    real = torch.arange(T, device=ids.device)[None, :] < lengths[:, None].to(ids.device)
    words = torch.where(real, ids, torch.full_like(ids, IGNORE))
    nxt = torch.full_like(ids, IGNORE)
    prv = torch.full_like(ids, IGNORE)
    nxt[:, :-1] = words[:, 1:]
    prv[:, 1:] = words[:, :-1]
    prv[~real] = IGNORE  # a padding position has no "previous word" to predict
    return torch.stack([nxt, prv], dim=1)


def bilm_forward(model, batch) -> tuple[torch.Tensor, torch.Tensor]:
    """For a :class:`~labkit.nn.BiLSTMLanguageModel`: a batch ``(ids, lengths)`` -> ``(logits, targets)``."""
    ids, lengths = batch[0], batch[1]
    return model(ids, lengths), bilm_targets(ids, lengths)


def bilm_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over every position that has a next (or previous) word, both directions."""
    return F.cross_entropy(logits.flatten(0, 2), targets.flatten(), ignore_index=IGNORE)


def unigram_entropy(stream: torch.Tensor, vocab_size: int | None = None) -> float:
    """H = -Σ p(w) ln p(w) of the token frequencies in ``stream``, in nats.

    It is the cross-entropy of the best predictor that ignores the context, so a
    language model that learned anything from context must go below it.
    """
    stream = torch.as_tensor(stream).reshape(-1)
    if stream.numel() == 0:
        raise ValueError("stream is empty")
    counts = torch.bincount(stream, minlength=vocab_size or 0).double()
    p = counts[counts > 0] / counts.sum()
    return float(-(p * p.log()).sum())


@torch.no_grad()
def encoder_features(encoder, ids: torch.Tensor, mask: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Mean-pooled features of a (frozen) encoder, in eval mode, batch by batch; returned on the CPU."""
    was = encoder.training
    encoder.eval()
    device = next(encoder.parameters()).device
    ids, mask = ids.to(device), mask.to(device)
    out = [mean_pool(encoder(ids[i:i + batch_size], mask[i:i + batch_size]), mask[i:i + batch_size]).cpu()
           for i in range(0, len(ids), batch_size)]
    encoder.train(was)
    return torch.cat(out)


class SampleEvery(Callback):
    """Every ``every`` steps (and at the end), print ``sample(model)``: watch a GPT learn to write."""

    def __init__(self, sample: Callable, every: int = 100):
        whole_number("every", every)
        self.sample, self.every, self.printed = sample, every, []

    def _show(self, state: TrainState) -> None:
        was = state.model.training
        state.model.eval()
        text = self.sample(state.model)
        state.model.train(was)
        self.printed.append((state.step, text))
        print(f"step {state.step:>5} | loss {state.loss:.3f} | {text}")

    def on_step_end(self, state: TrainState) -> None:
        if state.step % self.every == 0:
            self._show(state)

    def on_fit_end(self, state: TrainState) -> None:
        if not self.printed or self.printed[-1][0] != state.step:
            self._show(state)


def linear_probe(train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor, test_y: torch.Tensor, *,
                 epochs: int = 300, lr: float = 3e-2, seed: int = 0) -> float:
    """Fit a linear classifier on frozen features (full batch, AdamW) and return its test accuracy."""
    if len(train_x) != len(train_y) or len(test_x) != len(test_y):
        raise ValueError("train_x/train_y and test_x/test_y must have the same lengths")
    torch.manual_seed(seed)
    head = torch.nn.Linear(train_x.shape[1], int(max(train_y.max(), test_y.max())) + 1)
    fit(head, (train_x, train_y), epochs=epochs, batch_size=len(train_y), lr=lr, seed=seed, progress=False)
    return evaluate(head, (test_x, test_y), metrics={"acc": accuracy})["acc"]


def perplexity(loss: float) -> float:
    """exp(loss): the effective number of equally likely choices per token."""
    return math.exp(loss)
