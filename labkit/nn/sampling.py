"""Choosing the next token from a decoder's logits: greedy, or a sample (temperature, top-k, top-p).

Shared by the book's GPT (``transformer.GPT.generate``) and the Llama-style decoder (``llama.Llama.generate``).
"""
from __future__ import annotations

import torch

__all__ = ["next_token"]


def next_token(logits: torch.Tensor, *, greedy: bool = False, temperature: float = 1.0, top_k: int | None = None,
               top_p: float | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
    """(B, vocab_size) logits -> (B, 1) next ids: the argmax, or a sample from softmax(logits / T).

    ``top_k`` keeps the k most likely tokens; ``top_p`` keeps the smallest set whose probability
    mass reaches p (nucleus sampling); everything else gets probability 0.
    """
    if greedy:
        return logits.argmax(-1, keepdim=True)
    logits = logits / temperature                                    # < 1 sharpens, > 1 flattens
    if top_k is not None:                                            # keep the k most likely
        kth = torch.topk(logits, min(top_k, logits.size(-1))).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None:                                            # keep the smallest set with mass >= p
        sorted_logits, order = logits.sort(-1, descending=True)
        probs = sorted_logits.softmax(-1)
        drop = probs.cumsum(-1) - probs >= top_p                     # mass BEFORE this token already >= p
        sorted_logits = sorted_logits.masked_fill(drop, float("-inf"))
        logits = torch.full_like(logits, float("-inf")).scatter(-1, order, sorted_logits)
    return torch.multinomial(logits.softmax(-1), 1, generator=generator)
