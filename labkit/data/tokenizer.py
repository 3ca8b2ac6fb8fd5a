"""Two tokenizers small enough to read: word-level and character-level.

Both build their vocabulary from a corpus, put the special tokens first
(``[PAD]`` = 0, ``[UNK]``, ``[CLS]``, ``[SEP]``, ``[MASK]``) and map unknown
words (or characters) to ``[UNK]``::

    tok = get_tokenizer("word", texts)
    ids = tok.encode("the fox eats the berries .")
    tok.decode(ids)
"""
from __future__ import annotations

import re
from collections import Counter
from typing import Iterable

import torch

from ..check import whole_number

__all__ = ["SPECIALS", "WordTokenizer", "CharTokenizer", "get_tokenizer", "TOKENIZERS"]

SPECIALS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
_WORD = re.compile(r"\[[A-Z]+\]|\w+|[^\w\s]")


class _Tokenizer:
    """Shared by both: the vocabulary, special ids, encoding of pairs and padding."""

    def __init__(self, tokens: Iterable[str]):
        self.itos = list(SPECIALS) + sorted(set(tokens) - set(SPECIALS))
        self.stoi = {t: i for i, t in enumerate(self.itos)}
        self.pad_id, self.unk_id, self.cls_id, self.sep_id, self.mask_id = (self.stoi[s] for s in SPECIALS)
        self.special_ids = [self.stoi[s] for s in SPECIALS]

    def __len__(self) -> int:
        return len(self.itos)

    @property
    def vocab_size(self) -> int:
        return len(self.itos)

    def split(self, text: str) -> list[str]:
        raise NotImplementedError

    def encode(self, text: str) -> list[int]:
        return [self.stoi.get(t, self.unk_id) for t in self.split(text)]

    def decode(self, ids, skip_special: bool = False) -> str:
        if isinstance(ids, torch.Tensor):
            ids = ids.tolist()
        toks = [self.itos[i] for i in ids if not (skip_special and i in self.special_ids)]
        return self._join(toks)

    def _join(self, toks: list[str]) -> str:
        raise NotImplementedError

    def encode_pair(self, a: str, b: str | None = None) -> tuple[list[int], list[int]]:
        """BERT layout: ``[CLS] a [SEP]`` (+ ``b [SEP]``); returns (ids, token_type_ids)."""
        ids = [self.cls_id] + self.encode(a) + [self.sep_id]
        types = [0] * len(ids)
        if b is not None:
            more = self.encode(b) + [self.sep_id]
            ids, types = ids + more, types + [1] * len(more)
        return ids, types

    def pad(self, rows: list[list[int]], max_len: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Right-pad (and cut) to ``max_len`` or the longest row: (ids, attention_mask) tensors."""
        if not rows:
            raise ValueError("rows is empty: nothing to pad")
        length = max_len or max(len(r) for r in rows)
        if length < 1:
            raise ValueError(f"max_len must be >= 1; got {max_len!r}")
        ids = torch.full((len(rows), length), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), length), dtype=torch.long)
        for i, r in enumerate(rows):
            r = r[:length]
            ids[i, :len(r)] = torch.tensor(r, dtype=torch.long)
            mask[i, :len(r)] = 1
        return ids, mask

    def __repr__(self) -> str:
        return f"{type(self).__name__}(vocab_size={self.vocab_size})"


class WordTokenizer(_Tokenizer):
    """Lower-cased words and punctuation marks; special tokens written as ``[MASK]`` stay whole."""

    def __init__(self, texts: Iterable[str], min_count: int = 1):
        whole_number("min_count", min_count)
        counts = Counter(t for text in texts for t in self.split(text))
        if not counts:
            raise ValueError("texts is empty: the vocabulary needs at least one word")
        super().__init__(t for t, c in counts.items() if c >= min_count)

    def split(self, text: str) -> list[str]:
        return [t if t in SPECIALS else t.lower() for t in _WORD.findall(text)]

    def _join(self, toks: list[str]) -> str:
        return " ".join(toks)


class CharTokenizer(_Tokenizer):
    """One token per character (including spaces)."""

    def __init__(self, texts: Iterable[str]):
        chars = {c for text in texts for c in text}
        if not chars:
            raise ValueError("texts is empty: the vocabulary needs at least one character")
        super().__init__(chars)

    def split(self, text: str) -> list[str]:
        return list(text)

    def _join(self, toks: list[str]) -> str:
        return "".join(t if len(t) == 1 else f" {t} " for t in toks)


TOKENIZERS = {"word": WordTokenizer, "char": CharTokenizer}


def get_tokenizer(name: str, texts: Iterable[str]) -> _Tokenizer:
    """A tokenizer by name (``"word"`` or ``"char"``), its vocabulary built from ``texts``."""
    if name not in TOKENIZERS:
        raise ValueError(f"name must be one of {', '.join(map(repr, TOKENIZERS))}; got {name!r}")
    return TOKENIZERS[name](texts)
