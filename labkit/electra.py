"""ELECTRA's replaced-token detection (Clark et al., ICLR 2020, arXiv:2003.10555).

A small **generator** is trained as a masked LM; at each masked position it *samples* a token,
and the sampled sequence goes to the **discriminator**, which labels every token *original* (0) or
*replaced* (1). A position where the generator happened to sample the right token is *original*.
Both are trained together on

    L = L_MLM(generator) + λ · L_disc(discriminator),   λ = 50 in the paper,

where L_disc is the binary cross-entropy over **every** real token, not only the 15% that MLM
scores: that is where ELECTRA's efficiency comes from. Sampling is not differentiable, so the
discriminator's loss does not reach the generator (the paper: "we do not back-propagate the
discriminator loss through the generator"). After pretraining the generator is thrown away and
the discriminator is the model one fine-tunes. (The paper also ties the two models' token embeddings;
here the generator is narrower and keeps its own, which changes nothing above.)

Use it with :func:`labkit.train.fit`::

    model = ELECTRA(MLMGenerator(small_cfg), Discriminator(cfg), tokenizer)
    fit(model, (ids, mask), forward=electra_forward, loss_fn=electra_loss, ...)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .check import number, positive
from .data.pretraining import IGNORE, mask_tokens
from .nn.transformer import BertEncoder, BertForPretraining, TransformerConfig

__all__ = ["MLMGenerator", "Discriminator", "ELECTRA", "ElectraOutput", "replace_tokens", "electra_forward",
           "electra_loss", "discriminator_loss", "detection_accuracy", "replaced_fraction", "generator_accuracy"]


class MLMGenerator(nn.Module):
    """The generator: a (small) BERT with its MLM head. (ids, attention_mask) -> logits (B, T, V)."""

    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.bert = BertForPretraining(cfg)
        self.bert.pooler.requires_grad_(False)     # the NSP/SOP head is not used by ELECTRA
        self.bert.pair_head.requires_grad_(False)

    def forward(self, input_ids, attention_mask=None):
        return self.bert(input_ids, attention_mask)[0]


class Discriminator(nn.Module):
    """The discriminator: a BERT encoder and a per-token head (Linear -> GELU -> Linear(d, 1)).

    (ids, attention_mask) -> one logit per token (B, T): > 0 means "replaced".
    """

    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.encoder = BertEncoder(cfg)
        self.head = nn.Sequential(nn.Linear(cfg.d_model, cfg.d_model), nn.GELU(), nn.Linear(cfg.d_model, 1))

    def forward(self, input_ids, attention_mask=None):
        return self.head(self.encoder(input_ids, attention_mask)).squeeze(-1)


@torch.no_grad()
def replace_tokens(input_ids: torch.Tensor, mlm_labels: torch.Tensor, gen_logits: torch.Tensor, *,
                   special_ids: Sequence[int] = (), generator: torch.Generator | None = None
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample the generator's guess at every masked position; label each token 1 if it now differs.

    Returns (corrupted ids, labels): ``labels = (corrupted != input_ids)``, so a masked position
    where the sample equals the original is labelled 0 (*original*). Special tokens are never
    sampled. Runs without gradient: a sample is a discrete choice and passes no gradient back.
    """
    chosen = mlm_labels != IGNORE
    logits = gen_logits.detach()[chosen].float()
    logits[:, list(special_ids)] = float("-inf")
    sampled = torch.multinomial(logits.softmax(-1), 1, generator=generator).squeeze(1)
    corrupted = input_ids.clone()
    corrupted[chosen] = sampled
    return corrupted, (corrupted != input_ids).long()


@dataclass
class ElectraOutput:
    """Everything one ELECTRA step produces, for the loss and the metrics."""
    gen_logits: torch.Tensor      # (B, T, V) generator's MLM logits
    mlm_labels: torch.Tensor      # (B, T) original token at masked positions, -100 elsewhere
    corrupted: torch.Tensor       # (B, T) the discriminator's input
    disc_logits: torch.Tensor     # (B, T) one logit per token
    disc_labels: torch.Tensor     # (B, T) 1 = replaced, 0 = original
    attention_mask: torch.Tensor  # (B, T) 1 = real token, 0 = padding


class ELECTRA(nn.Module):
    """Generator + discriminator, trained together. ``forward`` masks, samples and discriminates."""

    def __init__(self, generator: nn.Module, discriminator: nn.Module, tokenizer, mask_prob: float = 0.15):
        super().__init__()
        self.generator, self.discriminator = generator, discriminator
        self.vocab_size, self.mask_id = tokenizer.vocab_size, tokenizer.mask_id
        self.special_ids = list(tokenizer.special_ids)
        self.mask_prob = number("mask_prob", mask_prob, minimum=0, maximum=1, open_low=True, open_high=True)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> ElectraOutput:
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        # 1. mask 15% of the non-special tokens, all with [MASK] (the paper's generator input)
        masked, mlm_labels = mask_tokens(input_ids, vocab_size=self.vocab_size, mask_id=self.mask_id,
                                         special_ids=self.special_ids, mlm_prob=self.mask_prob,
                                         mask_frac=1.0, random_frac=0.0)
        # 2. the generator predicts the masked tokens
        gen_logits = self.generator(masked, attention_mask)
        # 3. its samples replace them (no gradient flows through a sample)
        corrupted, disc_labels = replace_tokens(input_ids, mlm_labels, gen_logits, special_ids=self.special_ids)
        # 4. the discriminator labels every token original / replaced
        disc_logits = self.discriminator(corrupted, attention_mask)
        return ElectraOutput(gen_logits, mlm_labels, corrupted, disc_logits, disc_labels, attention_mask)


def electra_forward(model: ELECTRA, batch) -> tuple[ElectraOutput, torch.Tensor]:
    """For :func:`labkit.train.fit`: a batch (input_ids, attention_mask, ...) -> (output, discriminator labels)."""
    ids, mask = batch[0], batch[1]
    out = model(ids, mask)
    return out, out.disc_labels


def discriminator_loss(out: ElectraOutput) -> torch.Tensor:
    """Binary cross-entropy of the discriminator, averaged over every real (non-padding) token."""
    real = out.attention_mask.bool()
    return F.binary_cross_entropy_with_logits(out.disc_logits[real], out.disc_labels[real].float())


def electra_loss(out: ElectraOutput, target=None, disc_weight: float = 50.0) -> torch.Tensor:
    """L = L_MLM(generator, masked positions only) + λ · L_disc(discriminator, every token); λ = 50."""
    positive("disc_weight", disc_weight)
    mlm = F.cross_entropy(out.gen_logits.reshape(-1, out.gen_logits.size(-1)), out.mlm_labels.reshape(-1),
                          ignore_index=IGNORE)
    return mlm + disc_weight * discriminator_loss(out)


# ---------------------------------------------------------------- metrics (for fit / evaluate)
def detection_accuracy(out: ElectraOutput, target=None) -> torch.Tensor:
    """Share of real tokens the discriminator labels correctly (original vs replaced)."""
    real = out.attention_mask.bool()
    return ((out.disc_logits[real] > 0).long() == out.disc_labels[real]).float().mean()


def replaced_fraction(out: ElectraOutput, target=None) -> torch.Tensor:
    """Share of real tokens that were replaced: the accuracy of always answering *original* is 1 minus this."""
    return out.disc_labels[out.attention_mask.bool()].float().mean()


def generator_accuracy(out: ElectraOutput, target=None) -> torch.Tensor:
    """Share of masked positions where the generator's most likely token is the original."""
    chosen = out.mlm_labels != IGNORE
    return (out.gen_logits[chosen].argmax(-1) == out.mlm_labels[chosen]).float().mean()
