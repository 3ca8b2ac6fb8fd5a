"""A word vocabulary with the two ids the article's code forgot: padding and unknown.

    vocab = Vocab.build(train_texts, min_count=1)   # from the training text only
    ids, lengths = vocab.encode(["the screen is superb ."])

* id 0 is ``<pad>``: ``pad_sequences`` and :meth:`Vocab.encode` fill with 0, so
  0 must never be a real word (in the article it is "hello").
* id 1 is ``<unk>``: a word the vocabulary never saw maps to it instead of
  raising ``KeyError``.
* Words are numbered by frequency (then alphabetically), so the same texts
  always give the same ids.
"""
from __future__ import annotations

import re
from collections import Counter
from typing import Iterable

import torch

from ..check import whole_number

__all__ = ["Vocab", "tokenize", "PAD", "UNK"]

PAD, UNK = "<pad>", "<unk>"
_WORD = re.compile(r"[a-z0-9']+|[^\sa-z0-9']")


def tokenize(text: str) -> list[str]:
    """Lower-case words and single punctuation marks: ``"Superb phone!"`` -> ``["superb", "phone", "!"]``."""
    if not isinstance(text, str):
        raise ValueError(f"text must be a string; got {type(text).__name__}")
    return _WORD.findall(text.lower())


def _check_texts(texts) -> list[str]:
    if isinstance(texts, str):
        raise ValueError("texts must be a list of strings, not one string (wrap it: [text])")
    texts = list(texts)
    if not texts:
        raise ValueError("texts is empty: need at least one text")
    for i, t in enumerate(texts):
        if not isinstance(t, str) or not tokenize(t):
            raise ValueError(f"texts[{i}] must be a string with at least one word; got {t!r}")
    return texts


class Vocab:
    """id <-> word, with ``<pad>`` = 0 and ``<unk>`` = 1."""

    pad_id, unk_id = 0, 1

    def __init__(self, words: Iterable[str]):
        words = list(words)
        if words[:2] != [PAD, UNK]:
            raise ValueError(f"words must start with {PAD!r}, {UNK!r}; got {words[:2]!r}")
        if len(set(words)) != len(words):
            raise ValueError("words must not repeat")
        self.words = words
        self.index = {w: i for i, w in enumerate(words)}

    @classmethod
    def build(cls, texts: Iterable[str], min_count: int = 1) -> "Vocab":
        """Every word seen at least ``min_count`` times in ``texts`` (pass the training text only)."""
        whole_number("min_count", min_count)
        counts = Counter(w for t in _check_texts(texts) for w in tokenize(t))
        kept = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
        return cls([PAD, UNK, *kept])

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: str) -> bool:
        return word in self.index

    def __repr__(self) -> str:
        return f"Vocab({len(self)} words: {', '.join(self.words[:6])}, ...)"

    def lookup(self, word: str) -> int:
        """The id of ``word``; ``<unk>`` (1) for a word the vocabulary never saw."""
        return self.index.get(word, self.unk_id)

    def ids(self, text: str) -> list[int]:
        return [self.lookup(w) for w in tokenize(text)]

    def encode(self, texts: Iterable[str], max_len: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(ids, lengths)``: ids (B, T) right-padded with 0, lengths (B,) the true lengths.

        T is the longest text (cut to ``max_len`` words when given).
        """
        whole_number("max_len", max_len, allow_none=True)
        rows = [self.ids(t)[:max_len] for t in _check_texts(texts)]
        lengths = torch.tensor([len(r) for r in rows], dtype=torch.long)
        ids = torch.full((len(rows), int(lengths.max())), self.pad_id, dtype=torch.long)
        for i, r in enumerate(rows):
            ids[i, :len(r)] = torch.tensor(r, dtype=torch.long)
        return ids, lengths

    def decode(self, ids) -> list[str]:
        """Words for the ids of one sequence, padding dropped."""
        return [self.words[int(i)] for i in ids if int(i) != self.pad_id]
