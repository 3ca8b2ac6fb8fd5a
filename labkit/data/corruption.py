"""Corruptions for encoder-decoder pretraining: T5's span corruption and BART's denoising.

Both turn a token sequence into an (input, target) pair for a sequence-to-sequence model; the
labels come for free from the text, as for MLM and causal LM (``labkit.data.pretraining``).

* **Span corruption** (T5, Raffel et al., arXiv:1910.10683, section 3.1.4): 15% of the tokens
  (the noise density), in spans of mean length 3, are dropped; each span is replaced by one
  *sentinel* id in the input, and the target lists each sentinel followed by the span it hides,
  then one final sentinel. Sentinels are the top ids of the vocabulary, counting down:
  ``<extra_id_0>`` is the last id, ``<extra_id_1>`` the one before, as in T5's tokenizer::

      original  the fox eats the berries in the woods .
      input     the fox <extra_id_0> berries in <extra_id_1> .
      target    <extra_id_0> eats the <extra_id_1> the woods <extra_id_2>

* **Denoising** (BART, Lewis et al., arXiv:1910.13461, section 2.2): *text infilling* draws span
  lengths from Poisson(λ = 3) until 30% of the tokens are covered and replaces each span by a
  single mask token (a span of length 0 inserts a mask: the model must also learn how many tokens
  are missing); *sentence permutation* shuffles the sentences of a document. The target is the
  original text, whole.

Every function takes a ``torch.Generator`` so an example repeats exactly.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch.utils.data import TensorDataset

from ..check import number, positive, probability, whole_number
from .pretraining import IGNORE

__all__ = ["sentinel_ids", "random_spans_mask", "span_corruption", "restore_spans", "infilling_span_lengths",
           "text_infilling", "split_sentences", "sentence_permutation", "bart_noise", "seq2seq_dataset"]


# ---------------------------------------------------------------- T5: span corruption
def sentinel_ids(vocab_size: int, n: int) -> list[int]:
    """The ids of ``<extra_id_0>`` ... ``<extra_id_{n-1}>``: the top ``n`` ids of the vocabulary, descending."""
    whole_number("n (number of sentinels)", n, minimum=1, maximum=vocab_size)
    return [vocab_size - 1 - k for k in range(n)]


def _random_segmentation(n_items: int, n_segments: int, generator: torch.Generator | None) -> list[int]:
    """Split ``n_items`` into ``n_segments`` non-empty parts, uniformly over all such splits."""
    cuts = torch.randperm(n_items - 1, generator=generator)[:n_segments - 1].sort().values + 1
    bounds = [0, *cuts.tolist(), n_items]
    return [b - a for a, b in zip(bounds, bounds[1:])]


def random_spans_mask(length: int, noise_density: float = 0.15, mean_span: float = 3.0, *,
                      generator: torch.Generator | None = None) -> list[bool]:
    """T5's noise mask: ``round(length * noise_density)`` noisy tokens in ``round(that / mean_span)`` spans.

    Noise and non-noise runs alternate, starting with non-noise; the run lengths are random
    partitions, so every sequence gets the same noise density (up to rounding).
    """
    whole_number("length", length, minimum=2)
    number("noise_density", noise_density, minimum=0, maximum=1, open_low=True, open_high=True)
    number("mean_span", mean_span, minimum=1)
    n_noise = min(max(round(length * noise_density), 1), length - 1)
    n_spans = min(max(round(n_noise / mean_span), 1), length - n_noise)
    noise = _random_segmentation(n_noise, n_spans, generator)
    keep = _random_segmentation(length - n_noise, n_spans, generator)
    mask: list[bool] = []
    for k, n in zip(keep, noise):
        mask += [False] * k + [True] * n
    return mask


def span_corruption(ids: Sequence[int], sentinels: Sequence[int], *, noise_density: float = 0.15,
                    mean_span: float = 3.0, eos_id: int | None = None,
                    generator: torch.Generator | None = None) -> tuple[list[int], list[int]]:
    """(input, target) for T5: each noise span becomes one sentinel in the input; the target is
    ``sentinel_0 span_0 sentinel_1 span_1 ... sentinel_n`` (a final sentinel closes it), then ``eos_id``."""
    ids = [int(i) for i in ids]
    if set(ids) & set(sentinels):
        raise ValueError("ids must not contain sentinel ids: the sentinels are the top ids of the vocabulary, "
                         "above every token of the text")
    mask = random_spans_mask(len(ids), noise_density, mean_span, generator=generator)
    inputs, targets, k = [], [], 0
    for i, (token, noisy) in enumerate(zip(ids, mask)):
        starts_span = noisy and (i == 0 or not mask[i - 1])
        if starts_span:
            if k + 1 >= len(sentinels):
                raise ValueError(f"sentinels: {len(sentinels)} are too few; this sequence has more than "
                                 f"{len(sentinels) - 1} spans (one sentinel per span, plus the final one)")
            inputs.append(sentinels[k])
            targets.append(sentinels[k])
            k += 1
        (targets if noisy else inputs).append(token)
    targets.append(sentinels[k])
    if eos_id is not None:
        inputs.append(eos_id)
        targets.append(eos_id)
    return inputs, targets


def _without_eos(seq: Sequence[int], eos_id: int | None) -> list[int]:
    seq = [int(t) for t in seq]
    return seq[:-1] if eos_id is not None and seq[-1:] == [eos_id] else seq


def restore_spans(inputs: Sequence[int], targets: Sequence[int], sentinels: Sequence[int],
                  eos_id: int | None = None) -> list[int]:
    """Put each span of ``targets`` back in place of its sentinel in ``inputs``: the original sequence."""
    inputs, targets = _without_eos(inputs, eos_id), _without_eos(targets, eos_id)
    where = {s: k for k, s in enumerate(sentinels)}
    spans: dict[int, list[int]] = {}
    current = None
    for token in targets:
        if token in where:
            current = where[token]
            spans[current] = []
        elif current is None:
            raise ValueError("targets must start with a sentinel")
        else:
            spans[current].append(token)
    out: list[int] = []
    for token in inputs:
        out += spans[where[token]] if token in where else [token]
    return out


# ---------------------------------------------------------------- BART: text infilling, sentence permutation
def infilling_span_lengths(n_tokens: int, mask_ratio: float = 0.3, poisson_lambda: float = 3.0, *,
                           generator: torch.Generator | None = None) -> list[int]:
    """Span lengths ~ Poisson(λ), drawn until they cover ``round(n_tokens * mask_ratio)`` tokens; the last
    one is cut so that they cover exactly that many (as in fairseq's BART). Lengths of 0 are kept."""
    budget = round(whole_number("n_tokens", n_tokens, minimum=1) * probability("mask_ratio", mask_ratio))
    rate = torch.tensor(positive("poisson_lambda", poisson_lambda))
    lengths: list[int] = []
    while sum(lengths) < budget:
        lengths.append(int(torch.poisson(rate, generator=generator)))
    if lengths:
        lengths[-1] -= sum(lengths) - budget
    return lengths


def text_infilling(ids: Sequence[int], mask_id: int, *, mask_ratio: float = 0.3, poisson_lambda: float = 3.0,
                   generator: torch.Generator | None = None) -> tuple[list[int], list[tuple[int, int]]]:
    """BART's text infilling: returns (corrupted ids, spans as (start in ``ids``, length)).

    Each span, of any length including 0, becomes exactly one ``mask_id``. Spans do not overlap:
    each is placed in one of the gaps between the tokens that stay (two may share a gap, which
    gives two masks in a row).
    """
    ids = [int(i) for i in ids]
    if mask_id in ids:
        raise ValueError(f"ids must not contain mask_id ({mask_id}) before corruption")
    lengths = infilling_span_lengths(len(ids), mask_ratio, poisson_lambda, generator=generator)
    n_keep = len(ids) - sum(lengths)
    gaps = torch.randint(n_keep + 1, (len(lengths),), generator=generator).tolist()
    by_gap: dict[int, list[int]] = {}
    for gap, n in sorted(zip(gaps, lengths), key=lambda t: t[0]):
        by_gap.setdefault(gap, []).append(n)
    out, spans, pos = [], [], 0
    for gap in range(n_keep + 1):
        for n in by_gap.get(gap, []):
            spans.append((pos, n))
            out.append(mask_id)
            pos += n
        if gap < n_keep:
            out.append(ids[pos])
            pos += 1
    return out, spans


def split_sentences(ids: Sequence[int], sentence_end_id: int) -> list[list[int]]:
    """The sentences of a document: cut after each ``sentence_end_id`` (a trailing part without one counts too)."""
    sentences, current = [], []
    for token in ids:
        current.append(int(token))
        if token == sentence_end_id:
            sentences.append(current)
            current = []
    return sentences + ([current] if current else [])


def sentence_permutation(ids: Sequence[int], sentence_end_id: int, *,
                         generator: torch.Generator | None = None) -> list[int]:
    """BART's sentence permutation: split after each ``sentence_end_id`` (a full stop) and shuffle the sentences."""
    sentences = split_sentences(ids, sentence_end_id)
    order = torch.randperm(len(sentences), generator=generator).tolist()
    return [t for k in order for t in sentences[k]]


def bart_noise(ids: Sequence[int], *, mask_id: int, sentence_end_id: int, mask_ratio: float = 0.3,
               poisson_lambda: float = 3.0, permute: bool = True,
               generator: torch.Generator | None = None) -> tuple[list[int], list[int]]:
    """(input, target) for BART: sentence permutation, then text infilling; the target is the original."""
    noisy = sentence_permutation(ids, sentence_end_id, generator=generator) if permute else list(ids)
    noisy, _ = text_infilling(noisy, mask_id, mask_ratio=mask_ratio, poisson_lambda=poisson_lambda,
                              generator=generator)
    return noisy, [int(i) for i in ids]


# ---------------------------------------------------------------- batches for a seq2seq model
def seq2seq_dataset(pairs: Sequence[tuple[Sequence[int], Sequence[int]]], pad_id: int,
                    max_input: int | None = None, max_target: int | None = None) -> TensorDataset:
    """(input_ids, attention_mask, labels) tensors, right-padded; labels are padded with -100 (ignored)."""
    if not pairs:
        raise ValueError("pairs is empty")
    longest_in, longest_out = max(len(a) for a, _ in pairs), max(len(b) for _, b in pairs)
    max_input, max_target = max_input or longest_in, max_target or longest_out
    if longest_in > max_input or longest_out > max_target:
        raise ValueError(f"max_input={max_input} / max_target={max_target} are shorter than the longest "
                         f"input ({longest_in}) / target ({longest_out})")
    ids = torch.full((len(pairs), max_input), pad_id, dtype=torch.long)
    labels = torch.full((len(pairs), max_target), IGNORE, dtype=torch.long)
    for i, (a, b) in enumerate(pairs):
        ids[i, :len(a)] = torch.tensor(a, dtype=torch.long)
        labels[i, :len(b)] = torch.tensor(b, dtype=torch.long)
    return TensorDataset(ids, (ids != pad_id).long(), labels)
