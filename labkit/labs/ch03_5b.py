"""Chapter 3.5b (regularisation while fine-tuning): the exercises.

Every expected answer is computed (by torch, or from the chapter's labelled set), never typed in;
``tests/test_regularisation.py`` checks that each refuses the usual wrong answers.
"""
from __future__ import annotations

import torch
from torch import nn

from ..data.reviews import ASPECTS, PRODUCTS, SEEN_WORDS
from ..exercises import Exercise
from ..regularisation import one_label_words, words_in

__all__ = ["adam_l2_step", "kept_value", "missing_cues", "exercises"]

SEEN_ADJECTIVES = tuple(w for y in (1, 0) for w in SEEN_WORDS[y]["adj"])


def adam_l2_step(lr: float, lam: float, theta: float) -> float:
    """How far one step of Adam with L2 (``torch.optim.Adam(weight_decay=lam)``) moves a weight ``theta`` whose
    loss gradient is 0 (its first step from fresh optimizer state)."""
    w = nn.Parameter(torch.tensor([theta], dtype=torch.float64))
    opt = torch.optim.Adam([w], lr=lr, weight_decay=lam)
    w.grad = torch.zeros_like(w)
    opt.step()
    return abs(float(w.detach()) - theta)


def kept_value(p: float, n: int = 10_000, seed: int = 0) -> float:
    """What ``nn.Dropout(p)`` in train mode makes of an activation equal to 1 that it keeps."""
    torch.manual_seed(seed)
    out = nn.Dropout(p).train()(torch.ones(n))
    return float(out[out != 0][0])


def missing_cues(examples) -> int:
    """Seen sentiment adjectives that the sentiment swap can write but the labelled set never shows."""
    return len(SEEN_ADJECTIVES) - len(words_in(examples, SEEN_ADJECTIVES))


def exercises(examples: list[tuple[str, int]], *, lr: float = 1e-4, lam: float = 0.01, theta: float = 0.05,
              p: float = 0.1) -> dict[str, Exercise]:
    """Four questions: one Adam + L2 step, dropout's scaling, and two counts on ``examples`` (a labelled set of
    the chapter)."""
    n = len(examples)
    return {
        "3.5b.1": Exercise(
            "3.5b.1", f"A weight θ = {theta:g} gets no loss gradient at all. One step of Adam with L2 in the loss "
            f"(lr = {lr:g}, λ = {lam:g}, fresh optimizer state): how far does θ move?",
            expected=lambda: adam_l2_step(lr, lam, theta), rel=1e-3,
            hint="the only gradient is λθ; Adam's first step divides the bias-corrected first moment by the square "
                 "root of the bias-corrected second moment, both made from that one gradient",
            explain=f"AdamW would move it by lr·λ·θ = {lr * lam * theta:.1e}: the same λ, a step "
                    f"{adam_l2_step(lr, lam, theta) / (lr * lam * theta):,.0f} times smaller."),
        "3.5b.2": Exercise(
            "3.5b.2", f"nn.Dropout(p={p:g}) in train mode: an activation equal to 1 that it keeps comes out as what?",
            expected=lambda: kept_value(p), rel=1e-6,
            hint="PyTorch uses inverted dropout: it rescales what it keeps during training so that the expected "
                 "output equals the input, and does nothing in eval mode",
            explain="That is why eval mode needs no rescaling: dropout simply turns off."),
        "3.5b.3": Exercise(
            "3.5b.3", f"The sentiment swap can write any of the {len(SEEN_ADJECTIVES)} seen sentiment adjectives. How "
            f"many of them does the labelled set of {n} reviews (seed 0) never show?",
            expected=lambda: missing_cues(examples),
            hint="collect the seen adjectives (both labels) that occur in the labelled set, each counted once, "
                 "and compare with the full list",
            explain="Those are the words the swap teaches; it cannot teach a word that is not on its list."),
        "3.5b.4": Exercise(
            "3.5b.4", f"Products and aspects carry no label. How many of them occur, in the labelled set of {n} "
            "reviews (seed 0), in reviews of one label only?",
            expected=lambda: len(one_label_words(examples, PRODUCTS + ASPECTS)),
            hint="for each label, collect the products and aspects of its reviews (multi-word aspects count as one); "
                 "count those found under exactly one label",
            explain="In a handful of labels, each of these looks like a cue; swapping them breaks the coincidence."),
    }
