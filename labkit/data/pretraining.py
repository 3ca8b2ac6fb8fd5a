"""Batch builders for the pretraining objectives: MLM, NSP, SOP and causal LM.

* **Masked LM** (BERT, arXiv:1810.04805): choose 15% of the non-special tokens;
  of those, 80% become ``[MASK]``, 10% a random token, 10% stay as they are. The
  labels are the original tokens at the chosen positions and ``-100`` elsewhere,
  so ``F.cross_entropy(..., ignore_index=-100)`` scores only the chosen ones.
* **Next-sentence prediction** (BERT): a pair (A, B); label 0 (IsNext) when B
  follows A in its document, 1 (NotNext) when B is a sentence of another
  document; 50/50.
* **Sentence-order prediction** (ALBERT, arXiv:1909.11942): two consecutive
  sentences, label 0 in their order, 1 swapped; 50/50.
* **Causal LM** (GPT): the token stream cut into blocks; targets are the inputs
  shifted by one position.

Labels follow the Hugging Face convention (``next_sentence_label`` and
``sentence_order_label``: 0 = the real order).
"""
from __future__ import annotations

import random
from typing import Sequence

import torch
from torch.utils.data import TensorDataset

from ..check import number, probability, whole_number

__all__ = ["IGNORE", "mask_tokens", "nsp_pairs", "sop_pairs", "encode_pairs", "causal_lm_blocks",
           "token_stream"]

IGNORE = -100  # the ignore_index of F.cross_entropy


def mask_tokens(input_ids: torch.Tensor, *, vocab_size: int, mask_id: int, special_ids: Sequence[int],
                mlm_prob: float = 0.15, mask_frac: float = 0.8, random_frac: float = 0.1,
                generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT masking: returns (corrupted inputs, labels with -100 outside the chosen positions).

    Special tokens (``[CLS]``, ``[SEP]``, ``[PAD]``, ...) are never chosen; random
    replacements are drawn from the non-special tokens.
    """
    number("mlm_prob", mlm_prob, minimum=0, maximum=1, open_low=True, open_high=True)
    if probability("mask_frac", mask_frac) + probability("random_frac", random_frac) > 1:
        raise ValueError(f"mask_frac and random_frac must be >= 0 with a sum <= 1; got {mask_frac}, {random_frac}")
    special = torch.zeros(vocab_size, dtype=torch.bool)
    special[list(special_ids)] = True
    if int(input_ids.max()) >= vocab_size or int(input_ids.min()) < 0:
        raise ValueError(f"input_ids must lie in [0, vocab_size={vocab_size})")
    g = generator
    device = input_ids.device
    u = torch.rand(input_ids.shape, generator=g, device=device)
    chosen = (u < mlm_prob) & ~special.to(device)[input_ids]
    labels = torch.where(chosen, input_ids, torch.full_like(input_ids, IGNORE))
    how = torch.rand(input_ids.shape, generator=g, device=device)
    to_mask = chosen & (how < mask_frac)
    to_random = chosen & (how >= mask_frac) & (how < mask_frac + random_frac)
    normal = (~special).nonzero().squeeze(1).to(device)
    random_ids = normal[torch.randint(len(normal), input_ids.shape, generator=g, device=device)]
    corrupted = torch.where(to_mask, torch.full_like(input_ids, mask_id), input_ids)
    corrupted = torch.where(to_random, random_ids, corrupted)
    return corrupted, labels


def _check_docs(documents: Sequence[Sequence[str]], need: int) -> None:
    if len(documents) < need:
        raise ValueError(f"documents must hold at least {need} documents; got {len(documents)}")
    if any(len(d) < 2 for d in documents):
        raise ValueError("documents must each have at least 2 sentences")


def nsp_pairs(documents: Sequence[Sequence[str]], n: int, seed: int = 0) -> list[tuple[str, str, int]]:
    """``n`` (A, B, label) triples: label 0 = B is the next sentence, 1 = B comes from another document."""
    _check_docs(documents, 2)
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        d = rng.randrange(len(documents))
        i = rng.randrange(len(documents[d]) - 1)
        a = documents[d][i]
        if rng.random() < 0.5:
            out.append((a, documents[d][i + 1], 0))
        else:
            other = rng.randrange(len(documents) - 1)
            other += other >= d  # any document but d
            out.append((a, rng.choice(documents[other]), 1))
    return out


def sop_pairs(documents: Sequence[Sequence[str]], n: int, seed: int = 0) -> list[tuple[str, str, int]]:
    """``n`` (A, B, label) triples of consecutive sentences: label 0 = in order, 1 = swapped."""
    _check_docs(documents, 1)
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        d = rng.randrange(len(documents))
        i = rng.randrange(len(documents[d]) - 1)
        a, b = documents[d][i], documents[d][i + 1]
        out.append((a, b, 0) if rng.random() < 0.5 else (b, a, 1))
    return out


def encode_pairs(tokenizer, pairs: Sequence[tuple[str, str, int]], max_len: int) -> TensorDataset:
    """(input_ids, token_type_ids, attention_mask, label) tensors in the BERT layout ``[CLS] A [SEP] B [SEP]``."""
    if not pairs:
        raise ValueError("pairs is empty")
    rows, types = zip(*(tokenizer.encode_pair(a, b) for a, b, _ in pairs))
    longest = max(map(len, rows))
    if longest > max_len:
        raise ValueError(f"max_len={max_len} is shorter than the longest pair ({longest} tokens)")
    ids, mask = tokenizer.pad(list(rows), max_len)
    tt = torch.zeros_like(ids)
    for i, t in enumerate(types):
        tt[i, :len(t)] = torch.tensor(t)
    labels = torch.tensor([y for *_, y in pairs], dtype=torch.long)
    return TensorDataset(ids, tt, mask, labels)


def token_stream(tokenizer, texts: Sequence[str], sep: bool = True) -> torch.Tensor:
    """All texts encoded one after another, each followed by ``[SEP]`` (the end-of-document mark)."""
    ids: list[int] = []
    for t in texts:
        ids += tokenizer.encode(t) + ([tokenizer.sep_id] if sep else [])
    return torch.tensor(ids, dtype=torch.long)


def causal_lm_blocks(stream: torch.Tensor, block_size: int, stride: int | None = None) -> TensorDataset:
    """(inputs, targets) blocks of ``block_size`` tokens; ``targets[t] = inputs[t + 1]`` in the stream."""
    whole_number("block_size", block_size)
    stride = whole_number("stride", block_size if stride is None else stride)
    if stream.ndim != 1 or len(stream) < block_size + 1:
        raise ValueError(f"stream must be 1-D with at least block_size + 1 = {block_size + 1} tokens; "
                         f"got shape {tuple(stream.shape)}")
    starts = torch.arange(0, len(stream) - block_size, stride)
    idx = starts[:, None] + torch.arange(block_size + 1)
    chunks = stream[idx]
    return TensorDataset(chunks[:, :-1].contiguous(), chunks[:, 1:].contiguous())
