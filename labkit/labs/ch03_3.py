"""Chapter 3.3's exercises: how well any model can order sentences once the order markers are gone, what the
article's overwritten loss leaves untrained, and how often BERT's recipe leaves a chosen token unchanged.

Every expected answer is computed from the chapter's objects (its validation pairs, its tiny BERT's config and
a batch, its tokenizer and ``mask_tokens``' defaults), never typed in; ``tests/test_ch03_3.py`` checks that each
refuses the usual wrong answers.
"""
from __future__ import annotations

import inspect
from typing import Sequence

import torch
import torch.nn.functional as F

from ..data.corpus import PAIR_KINDS, pair_kind
from ..data.pretraining import IGNORE, mask_tokens
from ..exercises import Exercise
from ..nn import BertForPretraining

__all__ = ["order_ceiling", "untrained_by_overwriting", "unchanged_share", "exercises"]


def order_ceiling(pairs: Sequence[tuple[str, str, int]]) -> float:
    """The best sentence-order accuracy any model can reach on ``pairs`` of the corpus without markers: a pair
    with the opening or the closing sentence gives its order away; two middle sentences, drawn independently,
    do not (a coin: 1/2)."""
    if not pairs:
        raise ValueError("pairs is empty")
    boundary = sum(pair_kind(a, b) == PAIR_KINDS[0] for a, b, _ in pairs) / len(pairs)
    return boundary + (1 - boundary) / 2


def untrained_by_overwriting(model: BertForPretraining, batch, tokenizer, seed: int = 0) -> int:
    """Run the article's pseudo-code on a fresh copy of ``model``'s architecture (L = L_MLM, then L = L_pair) and
    count the parameters in tensors that receive no gradient at all. ``batch``: (ids, types, mask, label)."""
    torch.manual_seed(seed)
    fresh = BertForPretraining(model.cfg)
    ids, types, mask, label = batch
    g = torch.Generator().manual_seed(seed)
    corrupted, labels = mask_tokens(ids, vocab_size=tokenizer.vocab_size, mask_id=tokenizer.mask_id,
                                    special_ids=tokenizer.special_ids, generator=g)
    mlm_logits, pair_logits = fresh(corrupted, mask, types)
    L = F.cross_entropy(mlm_logits.reshape(-1, mlm_logits.size(-1)), labels.reshape(-1), ignore_index=IGNORE)
    L = F.cross_entropy(pair_logits, label)   # the article's second assignment: the first one is lost
    L.backward()
    return sum(p.numel() for p in fresh.parameters() if p.grad is None or not bool(p.grad.any()))


def unchanged_share(tokenizer) -> float:
    """The expected share of chosen tokens that come out of ``mask_tokens`` (its defaults) as they went in: the
    ones kept on purpose, plus the random replacements that happen to draw the original token."""
    defaults = inspect.signature(mask_tokens).parameters
    mask_frac, random_frac = defaults["mask_frac"].default, defaults["random_frac"].default
    normal = tokenizer.vocab_size - len(set(tokenizer.special_ids))
    return (1 - mask_frac - random_frac) + random_frac / normal


def exercises(plain_val_pairs: Sequence[tuple[str, str, int]], model: BertForPretraining, batch,
              tokenizer) -> dict[str, Exercise]:
    """Three questions on the chapter's objects: the SOP validation pairs of the corpus without markers, the
    tiny BERT (its architecture), one batch of encoded pairs, and the tokenizer."""
    return {
        "3.3.1": Exercise(
            "3.3.1", f"Without the order markers, what is the best SOP accuracy ANY model can reach on the "
            f"{len(plain_val_pairs)} validation pairs `plain_val_pairs`?",
            expected=lambda: order_ceiling(plain_val_pairs), rel=1e-3,
            hint="sort the pairs by kind (labkit.data.corpus.pair_kind): for which kind does the generator leave "
                 "a clue to the order, what can a model do with the other kind, and how often does each occur?",
            explain="The accuracy by kind of pair printed above shows how close the tiny BERT gets."),
        "3.3.2": Exercise(
            "3.3.2", "Run the article's pseudo-code on a fresh tiny BERT of the same architecture (L assigned the "
            "MLM loss, then overwritten by the pair loss; one backward). How many of its parameters sit in "
            "tensors that receive no gradient at all?",
            expected=lambda: untrained_by_overwriting(model, batch, tokenizer),
            hint="follow the pair loss back from the pair head to the embeddings: which modules of "
                 "BertForPretraining does it never pass through? Mind which weight the MLM decoder shares with the "
                 "encoder",
            explain="The MLM head's transform and the decoder's bias never learn; the decoder's matrix is the "
                    "embedding matrix, which the pair loss does reach."),
        "3.3.3": Exercise(
            "3.3.3", f"With BERT's recipe as mask_tokens implements it (defaults) and this tokenizer "
            f"({tokenizer.vocab_size} entries, {len(set(tokenizer.special_ids))} of them special), what share of "
            "the chosen tokens do you expect to come out unchanged?",
            expected=lambda: unchanged_share(tokenizer), rel=1e-4,
            hint="two ways lead to an unchanged token; one of them is a random replacement: from which tokens "
                 "does mask_tokens draw it, and can it draw the original?",
            explain="The table of measured rates above shows it within sampling noise; the 'random token' share "
                    "there is correspondingly a little below its nominal rate."),
    }
