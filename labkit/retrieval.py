"""Semantic search: sentence embeddings against keyword retrieval (BM25, TF-IDF), scored by recall@k.

A **sentence embedding** is what all-MiniLM-L6-v2 was trained to give: the mean of its token vectors over the
real tokens (padding excluded), scaled to length 1. Two texts that mean the same thing should get vectors with
a large dot product (= cosine similarity, since both have length 1), whatever words they use. Search is then
one matrix product: ``queries @ documents.T``, and each query's documents sorted by that score.

**BM25** (Robertson et al., TREC-3, 1994) is the classical baseline: a document scores by the query words it
contains, each weighted by its rarity (idf) and by a saturating function of how often it occurs, normalised
by document length. It cannot match a word the document does not contain. :class:`BM25` follows
``rank_bm25.BM25Okapi`` (the version most Python code uses), including its floor for words that occur in
more than half the documents (their idf would be negative; it is set to ``epsilon`` x the mean idf).

**recall@k**: the fraction of queries whose relevant document is among the k best ranked. With one relevant
document per query it equals scikit-learn's ``top_k_accuracy_score`` (tests/test_retrieval.py).
"""
from __future__ import annotations

import math
import re
from collections import Counter
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .check import number, whole_number
from .nn import mean_pool

__all__ = ["embed", "words", "BM25", "tfidf_scores", "ranking", "recall_at_k", "mean_reciprocal_rank",
           "retrieval_report"]


@torch.no_grad()
def embed(model, tokenizer, texts: Sequence[str], batch_size: int = 64, max_length: int = 128,
          normalize: bool = True) -> torch.Tensor:
    """(N, d) sentence embeddings: the masked mean of the last hidden states, then length 1 (sentence-transformers'
    all-MiniLM-L6-v2 recipe: Pooling(mean) + Normalize)."""
    if isinstance(texts, str) or not texts:
        raise ValueError("texts must be a non-empty list of strings")
    whole_number("batch_size", batch_size)
    model.eval()
    out = []
    for i in range(0, len(texts), batch_size):
        enc = tokenizer(list(texts[i:i + batch_size]), padding=True, truncation=True, max_length=max_length,
                        return_tensors="pt")
        hidden = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).last_hidden_state
        out.append(mean_pool(hidden, enc["attention_mask"]))
    emb = torch.cat(out)
    return F.normalize(emb, dim=-1) if normalize else emb


_WORD = re.compile(r"[a-z0-9]+")


def words(text: str) -> list[str]:
    """Lower-case letters-and-digits words: the tokens BM25 matches."""
    return _WORD.findall(text.lower())


class BM25:
    """Okapi BM25 over a fixed list of documents; ``scores(query)`` gives one score per document."""

    def __init__(self, documents: Sequence[str], k1: float = 1.5, b: float = 0.75, epsilon: float = 0.25):
        if isinstance(documents, str) or not documents:
            raise ValueError("documents must be a non-empty list of strings")
        self.k1 = number("k1", k1, minimum=0)
        self.b = number("b", b, minimum=0, maximum=1)
        self.epsilon = number("epsilon", epsilon, minimum=0)
        self.docs = [Counter(words(d)) for d in documents]            # term frequencies per document
        self.lengths = np.array([sum(c.values()) for c in self.docs], dtype=float)
        self.avg_length = self.lengths.mean()
        n = len(self.docs)
        df = Counter(w for c in self.docs for w in c)                   # in how many documents each word occurs
        # idf: log((N - n_w + 0.5) / (n_w + 0.5)), negative when a word is in more than half the documents
        self.idf = {w: math.log(n - k + 0.5) - math.log(k + 0.5) for w, k in df.items()}
        floor = self.epsilon * (sum(self.idf.values()) / len(self.idf))
        self.idf = {w: (v if v >= 0 else floor) for w, v in self.idf.items()}

    def scores(self, query: str) -> np.ndarray:
        s = np.zeros(len(self.docs))
        norm = self.k1 * (1 - self.b + self.b * self.lengths / self.avg_length)   # longer document, less per hit
        for w in words(query):
            tf = np.array([c.get(w, 0) for c in self.docs], dtype=float)
            s += self.idf.get(w, 0.0) * tf * (self.k1 + 1) / (tf + norm)          # saturates as tf grows
        return s

    def score_matrix(self, queries: Sequence[str]) -> np.ndarray:
        """(n_queries, n_documents)."""
        return np.stack([self.scores(q) for q in queries])


def tfidf_scores(documents: Sequence[str], queries: Sequence[str]) -> np.ndarray:
    """Cosine similarity of scikit-learn TF-IDF vectors (fitted on the documents): (n_queries, n_documents)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    vectorizer = TfidfVectorizer().fit(documents)
    return (vectorizer.transform(queries) @ vectorizer.transform(documents).T).toarray()


def ranking(scores) -> np.ndarray:
    """Each row's document indices from best to worst (ties keep the lower index first)."""
    scores = np.asarray(scores.detach() if isinstance(scores, torch.Tensor) else scores, dtype=float)
    if scores.ndim != 2:
        raise ValueError(f"scores must be (n_queries, n_documents); got shape {scores.shape}")
    return np.argsort(-scores, axis=1, kind="stable")


def _hits(ranked: np.ndarray, relevant: Sequence[int]) -> np.ndarray:
    relevant = np.asarray(relevant)
    if ranked.ndim != 2 or len(relevant) != ranked.shape[0]:
        raise ValueError(f"need one relevant document per query; got {len(relevant)} for {ranked.shape[0]} queries")
    return ranked == relevant[:, None]                      # (Q, D): True where the relevant one sits


def recall_at_k(ranked: np.ndarray, relevant: Sequence[int], k: int) -> float:
    """The fraction of queries whose relevant document is among the first ``k`` of their ranking."""
    ranked = np.asarray(ranked)
    whole_number("k", k, minimum=1, maximum=ranked.shape[1])
    return float(_hits(ranked, relevant)[:, :k].any(axis=1).mean())


def mean_reciprocal_rank(ranked: np.ndarray, relevant: Sequence[int]) -> float:
    """The mean of 1 / (rank of the relevant document), ranks counted from 1."""
    ranks = _hits(np.asarray(ranked), relevant).argmax(axis=1) + 1
    return float((1.0 / ranks).mean())


def retrieval_report(scores, relevant: Sequence[int], ks: Sequence[int] = (1, 5, 10)) -> dict[str, float]:
    """recall@k for each k and the MRR of one score matrix."""
    ranked = ranking(scores)
    return {**{f"recall@{k}": recall_at_k(ranked, relevant, k) for k in ks},
            "MRR": mean_reciprocal_rank(ranked, relevant)}
