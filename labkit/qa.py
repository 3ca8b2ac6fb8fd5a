"""Extractive question answering: the answer is a span of the context, found by a start head and an end head.

The input is one sequence, ``[CLS] question [SEP] context [SEP]`` (segment ids 0 for the question, 1 for the
context). On top of the encoder one linear layer gives two numbers per token: a *start* score and an *end*
score. Training is cross-entropy on the gold start token and on the gold end token (BERT, Devlin et al. 2019,
§4.2). Predicting is a search over spans inside the context: the best ``start_score[i] + end_score[j]`` with
``i <= j < i + max_answer_tokens``. The span goes back to characters through the tokenizer's offsets, so the
answer is the context's own text. Nothing is generated: a model like this can only point into the context.

Scores follow SQuAD (Rajpurkar et al. 2016, the official v1.1 evaluation script): both strings are
*normalised* (lower case, punctuation removed, the articles a / an / the removed, white space collapsed);
**exact match** is 1 if they are then equal; **F1** is the harmonic mean of the precision and recall of their
words (as multisets). With several gold answers, the best one counts. Both are reported in percent. An answer
that normalises to nothing scores F1 0, as in the v1.1 script (SQuAD 2.0's script gives 1 when both are empty).
"""
from __future__ import annotations

import re
import string
from collections import Counter
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import TensorDataset

from .check import whole_number
from .ner import trim_padding

__all__ = ["normalize_answer", "exact_match", "token_f1", "squad_scores", "SpanQA", "qa_forward", "span_loss", "encode_qa",
           "best_span", "predict_answers", "window_overlap_answer"]

_PUNCT = set(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_answer(s: str) -> str:
    """SQuAD's normalisation: lower case, no punctuation, no articles, single spaces."""
    s = "".join(ch for ch in s.lower() if ch not in _PUNCT)
    return " ".join(_ARTICLES.sub(" ", s).split())


def _golds(golds: str | Sequence[str]) -> list[str]:
    golds = [golds] if isinstance(golds, str) else list(golds)
    if not golds:
        raise ValueError("need at least one gold answer")
    return golds


def exact_match(prediction: str, golds: str | Sequence[str]) -> float:
    """1.0 if the normalised prediction equals a normalised gold answer, else 0.0."""
    return float(any(normalize_answer(prediction) == normalize_answer(g) for g in _golds(golds)))


def _f1(prediction: str, gold: str) -> float:
    pred, true = normalize_answer(prediction).split(), normalize_answer(gold).split()
    common = sum((Counter(pred) & Counter(true)).values())   # words in both, counted with multiplicity
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(true)
    return 2 * precision * recall / (precision + recall)


def token_f1(prediction: str, golds: str | Sequence[str]) -> float:
    """The best word-overlap F1 of the prediction against the gold answers (after normalisation)."""
    return max(_f1(prediction, g) for g in _golds(golds))


def squad_scores(predictions: Sequence[str], golds: Sequence[str | Sequence[str]]) -> dict[str, float]:
    """{"exact_match": ..., "f1": ...} in percent, averaged over questions (SQuAD v1.1's definitions)."""
    if len(predictions) != len(golds) or not predictions:
        raise ValueError(f"need one prediction per question (and at least one); got {len(predictions)} "
                         f"predictions for {len(golds)} questions")
    n = len(predictions)
    return {"exact_match": 100 * sum(exact_match(p, g) for p, g in zip(predictions, golds)) / n,
            "f1": 100 * sum(token_f1(p, g) for p, g in zip(predictions, golds)) / n}


# ----------------------------------------------------------------------------- the model
class SpanQA(nn.Module):
    """An encoder and a linear layer to two scores per token: logits (B, T, 2) = (start, end)."""

    def __init__(self, encoder: nn.Module):
        super().__init__()
        self.encoder = encoder
        self.head = nn.Linear(encoder.config.hidden_size, 2)

    def forward(self, input_ids, attention_mask, token_type_ids):
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask,
                              token_type_ids=token_type_ids).last_hidden_state             # (B, T, d)
        return self.head(hidden)


def qa_forward(model: SpanQA, batch):
    """For ``labkit.train.fit``: (input_ids, attention_mask, token_type_ids, target) -> (logits, target)."""
    *inputs, target = batch
    return model(*trim_padding(*inputs)), target


def span_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean of the start and end cross-entropies: logits (B, T, 2), target (B, 2) = (start token, end token)."""
    return (F.cross_entropy(logits[..., 0], target[:, 0]) + F.cross_entropy(logits[..., 1], target[:, 1])) / 2


def _tokenize(tokenizer, examples, max_length: int):
    enc = tokenizer([e.question for e in examples], [e.context for e in examples], padding=True,
                    truncation=False, return_offsets_mapping=True, return_tensors="pt")
    if enc["input_ids"].shape[1] > max_length:
        longest = int(enc["attention_mask"].sum(1).argmax())
        raise ValueError(f"example {longest} has {int(enc['attention_mask'][longest].sum())} tokens, more than "
                         f"max_length={max_length}; raise max_length (a cut context may lose its answer)")
    return enc


def encode_qa(tokenizer, examples, max_length: int = 128) -> TensorDataset:
    """(input_ids, attention_mask, token_type_ids, target) with target (N, 2) the answer's first and last token.

    The character span of each answer is mapped to tokens with the offsets of a fast tokenizer: the start
    token is the context token whose span contains the answer's first character, the end token the one that
    contains its last character.
    """
    whole_number("max_length", max_length, minimum=8)
    if not examples:
        raise ValueError("examples is empty: need at least one question")
    enc = _tokenize(tokenizer, examples, max_length)
    targets = []
    for i, e in enumerate(examples):
        first, last = e.answer_start, e.answer_start + len(e.answer) - 1
        start = end = None
        for t, (seq, (a, b)) in enumerate(zip(enc.sequence_ids(i), enc["offset_mapping"][i].tolist())):
            if seq != 1:                                   # only context tokens can hold the answer
                continue
            if start is None and a <= first < b:
                start = t
            if a <= last < b:
                end = t
        if start is None or end is None:
            raise ValueError(f"example {i}: the answer {e.answer!r} is not covered by the context's tokens")
        targets.append((start, end))
    return TensorDataset(enc["input_ids"], enc["attention_mask"], enc["token_type_ids"], torch.tensor(targets))


def best_span(start: torch.Tensor, end: torch.Tensor, allowed: torch.Tensor, max_answer_tokens: int = 8):
    """(i, j) maximising start[i] + end[j] over allowed tokens with i <= j < i + max_answer_tokens (1-D inputs)."""
    T = start.shape[0]
    scores = start[:, None] + end[None, :]                                  # (T, T): row i = start, col j = end
    i, j = torch.meshgrid(torch.arange(T), torch.arange(T), indexing="ij")
    ok = (j >= i) & (j < i + max_answer_tokens) & allowed[:, None] & allowed[None, :]
    flat = scores.masked_fill(~ok, float("-inf")).argmax()
    return int(flat // T), int(flat % T)


@torch.no_grad()
def predict_answers(model: SpanQA, tokenizer, examples, max_length: int = 128, batch_size: int = 32,
                    max_answer_tokens: int = 8) -> list[str]:
    """The answer text of each question: the best span of the context, cut from the context by its offsets."""
    model.eval()
    answers = []
    for k in range(0, len(examples), batch_size):
        chunk = examples[k:k + batch_size]
        enc = _tokenize(tokenizer, chunk, max_length)
        logits = model(enc["input_ids"], enc["attention_mask"], enc["token_type_ids"])
        for i, e in enumerate(chunk):
            allowed = torch.tensor([s == 1 for s in enc.sequence_ids(i)])
            a, b = best_span(logits[i, :, 0], logits[i, :, 1], allowed, max_answer_tokens)
            offsets = enc["offset_mapping"][i]
            answers.append(e.context[int(offsets[a][0]):int(offsets[b][1])])
    return answers


# ----------------------------------------------------------------------------- a classical baseline
_WORD = re.compile(r"\w+")


def window_overlap_answer(question: str, context: str, max_words: int = 3, window: int = 6) -> str:
    """The sliding-window baseline (after Richardson et al. 2013 and the SQuAD paper's): every span of up to
    ``max_words`` context words that are not in the question is scored by how many question words occur
    within ``window`` words of it; the best (then the shortest, then the first) wins."""
    whole_number("max_words", max_words)
    whole_number("window", window)
    q = {w.lower() for w in _WORD.findall(question)}
    spans = [(m.start(), m.end(), m.group().lower()) for m in _WORD.finditer(context)]
    best, best_key = "", None
    for i in range(len(spans)):
        for j in range(i, min(i + max_words, len(spans))):
            words = [s[2] for s in spans[i:j + 1]]
            if any(w in q for w in words):
                continue
            near = {s[2] for s in spans[max(0, i - window):i] + spans[j + 1:j + 1 + window]}
            key = (len(near & q), -(j - i))
            if best_key is None or key > best_key:
                best, best_key = context[spans[i][0]:spans[j][1]], key
    return best
