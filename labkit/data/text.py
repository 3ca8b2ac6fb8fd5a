"""Turning texts and labels into tensors a model can batch."""
from __future__ import annotations

import torch
from torch.utils.data import TensorDataset


def encode(tokenizer, examples: list[tuple[str, int]], max_length: int = 48) -> TensorDataset:
    """(input_ids, attention_mask, label) tensors, padded to the longest text (at most ``max_length``)."""
    if not examples:
        raise ValueError("examples is empty: need at least one (text, label) pair")
    texts = [t for t, _ in examples]
    if any(not isinstance(t, str) or not t.strip() for t in texts):
        raise ValueError("every text must be a non-empty string")
    enc = tokenizer(texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    labels = torch.tensor([y for _, y in examples], dtype=torch.long)
    return TensorDataset(enc["input_ids"], enc["attention_mask"], labels)
