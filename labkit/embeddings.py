"""Word embeddings: skip-gram with negative sampling (SGNS), neighbours and a 2-D map.

Skip-gram (Mikolov et al., arXiv:1301.3781; negative sampling: arXiv:1310.4546)
learns two vectors per word, ``v_w`` (as a centre word) and ``u_c`` (as a
context word). For every (centre, context) pair seen within a window, and ``k``
"negative" words drawn from the unigram distribution raised to the power 0.75,
it minimises

    -log σ(u_c · v_w) - Σ_{n=1..k} log σ(-u_{n} · v_w).

Two words end up with similar ``v`` when they are predicted to have the same
*contexts* (the distributional hypothesis), not when they stand next to each
other in the text.
"""
from __future__ import annotations

from collections import Counter
from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from .check import whole_number

__all__ = ["noise_distribution", "skipgram_pairs", "SkipGramNS", "skipgram_forward", "skipgram_loss",
           "cosine_matrix", "nearest", "project_2d", "adjacency_counts"]


def noise_distribution(counts: Sequence[float] | torch.Tensor, power: float = 0.75) -> torch.Tensor:
    """Probabilities ∝ count**power (the word2vec choice: power 0.75 flattens the unigram distribution)."""
    c = torch.as_tensor(counts, dtype=torch.float64)
    if c.ndim != 1 or (c < 0).any() or c.sum() <= 0:
        raise ValueError("counts must be a 1-D sequence of non-negative numbers with a positive sum")
    p = c.pow(power) * (c > 0)
    return (p / p.sum()).float()


def skipgram_pairs(sentences: Sequence[Sequence[int]], window: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """Every (centre, context) pair with the context at most ``window`` positions away, within a sentence."""
    whole_number("window", window)
    centres, contexts = [], []
    for s in sentences:
        n = len(s)
        for i, w in enumerate(s):
            for j in range(max(0, i - window), min(n, i + window + 1)):
                if j != i:
                    centres.append(w)
                    contexts.append(s[j])
    if not centres:
        raise ValueError("sentences give no pairs: each needs at least two tokens")
    return torch.tensor(centres, dtype=torch.long), torch.tensor(contexts, dtype=torch.long)


class SkipGramNS(nn.Module):
    """Centre vectors ``inp`` (the embeddings we keep) and context vectors ``out``."""

    def __init__(self, vocab_size: int, dim: int, noise: torch.Tensor, negatives: int = 5):
        super().__init__()
        whole_number("dim", dim)
        whole_number("negatives", negatives)
        if len(noise) != vocab_size:
            raise ValueError(f"noise must have vocab_size={vocab_size} entries; got {len(noise)}")
        self.inp = nn.Embedding(vocab_size, dim)
        self.out = nn.Embedding(vocab_size, dim)
        nn.init.uniform_(self.inp.weight, -0.5 / dim, 0.5 / dim)  # word2vec's initialisation
        nn.init.zeros_(self.out.weight)
        self.register_buffer("noise", torch.as_tensor(noise, dtype=torch.float))
        self.negatives = negatives

    def forward(self, centre: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """The mean SGNS loss of a batch of pairs (negatives drawn here, from the noise distribution)."""
        neg = torch.multinomial(self.noise, centre.numel() * self.negatives, replacement=True)
        v = self.inp(centre)                                   # (B, d)
        u_pos = self.out(context)                              # (B, d)
        u_neg = self.out(neg.view(-1, self.negatives))         # (B, k, d)
        pos = F.logsigmoid((v * u_pos).sum(-1))
        negs = F.logsigmoid(-(u_neg @ v.unsqueeze(-1)).squeeze(-1)).sum(-1)
        return -(pos + negs).mean()

    @property
    def embeddings(self) -> torch.Tensor:
        """The centre vectors v_w (one row per word), on the CPU."""
        return self.inp.weight.detach().cpu()


def skipgram_forward(model: SkipGramNS, batch) -> tuple[torch.Tensor, torch.Tensor]:
    """For :func:`labkit.train.fit`: the batch is (centre, context); the "output" is already the loss."""
    centre, context = batch
    return model(centre, context), context


def skipgram_loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """For :func:`labkit.train.fit`: the model returned its loss, so pass it on."""
    return output


def cosine_matrix(emb: torch.Tensor) -> torch.Tensor:
    """All pairwise cosine similarities of the rows of ``emb``."""
    e = F.normalize(emb.float(), dim=-1)
    return e @ e.T


def nearest(emb: torch.Tensor, stoi: dict[str, int], word: str, k: int = 5,
            among: Sequence[str] | None = None) -> list[tuple[str, float]]:
    """The ``k`` words whose vectors have the highest cosine with ``word`` (itself left out)."""
    if word not in stoi:
        raise ValueError(f"word {word!r} is not in the vocabulary")
    whole_number("k", k)
    candidates = [w for w in (among if among is not None else stoi) if w != word and w in stoi]
    if not candidates:
        raise ValueError(f"among has no word of the vocabulary other than {word!r}: nothing to rank")
    e = F.normalize(emb.float(), dim=-1)
    idx = torch.tensor([stoi[w] for w in candidates])
    sims = e[idx] @ e[stoi[word]]
    top = sims.topk(min(k, len(candidates)))
    return [(candidates[i], float(s)) for s, i in zip(top.values, top.indices)]


def project_2d(emb: torch.Tensor) -> torch.Tensor:
    """PCA to 2-D: centre the rows, project on the top two right singular vectors (sign fixed)."""
    x = emb.float() - emb.float().mean(0, keepdim=True)
    if x.shape[0] < 2 or x.shape[1] < 2:
        raise ValueError(f"emb must have at least 2 rows and 2 columns; got shape {tuple(emb.shape)}")
    _, _, vh = torch.linalg.svd(x, full_matrices=False)
    comps = vh[:2]
    signs = torch.sign(comps[torch.arange(2), comps.abs().argmax(1)])  # deterministic orientation
    return x @ (comps * signs[:, None]).T


def adjacency_counts(sentences: Sequence[Sequence[int]], vocab_size: int) -> torch.Tensor:
    """How often each pair of tokens stands side by side (either order): a symmetric (V, V) count matrix."""
    pairs = Counter((a, b) for s in sentences for a, b in zip(s, s[1:]))
    m = torch.zeros(vocab_size, vocab_size)
    for (a, b), c in pairs.items():
        m[a, b] += c
        m[b, a] += c
    return m
