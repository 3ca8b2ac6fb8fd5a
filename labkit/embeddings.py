"""Word embeddings: skip-gram with negative sampling (SGNS), neighbours and a 2-D map.

Skip-gram (Mikolov et al., arXiv:1301.3781; negative sampling: arXiv:1310.4546)
learns two vectors per word, ``v_w`` (as a centre word) and ``u_c`` (as a
context word). For every (centre, context) pair seen within a window, and ``k``
"negative" words drawn from the unigram distribution raised to the power 0.75,
it minimises

    -log σ(u_c · v_w) - Σ_{n=1..k} log σ(-u_{n} · v_w).

Two words end up with similar ``v`` when they are predicted to have the same
*contexts* (the distributional hypothesis), not when they stand next to each
other in the text. :func:`pair_table`, :func:`adjacency_groups` and
:func:`adjacency_verdict` measure that; :func:`neighbour_agreement` and
:func:`agreement_verdict` say whether words of one label (a class, a topic)
gather together.
"""
from __future__ import annotations

from collections import Counter
from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from .check import number, whole_number
from .train import fit

__all__ = ["noise_distribution", "skipgram_pairs", "SkipGramNS", "skipgram_forward", "skipgram_loss",
           "train_skipgram", "cosine_matrix", "nearest", "project_2d", "adjacency_counts", "neighbour_agreement",
           "agreement_verdict", "pair_table", "GROUPS", "adjacency_groups", "adjacency_summary",
           "adjacency_verdict"]


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


def train_skipgram(sentences: Sequence[Sequence[int]], vocab_size: int, *, dim: int, steps: int, window: int = 5,
                   negatives: int = 5, batch_size: int = 1024, lr: float = 0.02, seed: int = 0, device="cpu",
                   callbacks=()):
    """Chapter 3.1's recipe in one call: the (centre, context) pairs, the 3/4-power noise distribution, and
    SGNS trained with :func:`labkit.train.fit` for ``steps`` batches. Returns (model, history)."""
    centre, context = skipgram_pairs(sentences, window=window)
    counts = Counter(i for s in sentences for i in s)
    noise = noise_distribution([counts[i] for i in range(vocab_size)], power=0.75)
    torch.manual_seed(seed)
    model = SkipGramNS(vocab_size, dim, noise, negatives=negatives).to(device)
    history = fit(model, (centre, context), steps=steps, batch_size=batch_size, lr=lr, forward=skipgram_forward,
                  loss_fn=skipgram_loss, seed=seed, name="skip-gram", progress=False, callbacks=list(callbacks))
    return model, history


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


def neighbour_agreement(emb: torch.Tensor, stoi: dict[str, int], labels: dict[str, str], words: Sequence[str],
                        k: int = 5) -> tuple[float, float]:
    """How often a word's ``k`` nearest neighbours among ``words`` carry its label, and what chance gives.

    Returns (share, chance): ``share`` is the mean, over ``words``, of the fraction of its ``k`` nearest
    other words (by cosine) whose label equals its own; ``chance`` is the same mean for neighbours drawn at
    random among the other words (a word is never its own neighbour).
    """
    whole_number("k", k)
    words = [w for w in words if w in stoi]
    if len(words) <= k:
        raise ValueError(f"words must hold more than k={k} words of the vocabulary; got {len(words)}")
    missing = [w for w in words if w not in labels]
    if missing:
        raise ValueError(f"labels gives no label for {missing[:5]}")
    shares, chances = [], []
    for w in words:
        same = [labels[n] == labels[w] for n, _ in nearest(emb, stoi, w, k=k, among=words)]
        shares.append(sum(same) / k)
        chances.append((sum(labels[o] == labels[w] for o in words) - 1) / (len(words) - 1))
    return sum(shares) / len(shares), sum(chances) / len(chances)


def agreement_verdict(groups: str, label: str, share: float, chance: float, k: int = 5,
                      margin: float = 0.15) -> str:
    """One sentence worded from the numbers: do ``groups`` (e.g. "the word classes") gather together? They
    separate when ``share`` (from :func:`neighbour_agreement`) is at least ``margin`` above ``chance``."""
    number("margin", margin, minimum=0)
    shown = f"{share:.0%} of each word's {k} nearest neighbours share its {label}, against {chance:.0%} by chance"
    if share - chance >= margin:
        return f"{groups[:1].upper()}{groups[1:]} separate: {shown}."
    return (f"{groups[:1].upper()}{groups[1:]} do NOT separate at this size: {shown} (less than "
            f"{100 * margin:.0f} points above).")


def pair_table(emb: torch.Tensor, sentences: Sequence[Sequence[int]], stoi: dict[str, int], words: Sequence[str],
               classes: dict[str, str], topics: dict[str, str] | None = None):
    """Every pair of ``words``: how often they stand side by side in ``sentences``, their cosine, and whether
    they *share contexts*: the same class and, for a class split by topic, the same topic (a pandas frame)."""
    import pandas as pd
    topics = topics or {}
    words = [w for w in dict.fromkeys(words) if w in stoi]
    adj, cos = adjacency_counts(sentences, len(emb)), cosine_matrix(emb)
    rows = []
    for i, a in enumerate(words):
        for b in words[i + 1:]:
            x, y = stoi[a], stoi[b]
            same = classes.get(a) is not None and classes.get(a) == classes.get(b)
            rows.append({"a": a, "b": b, "adjacent (times)": int(adj[x, y]), "cosine": float(cos[x, y]),
                         "same class": same, "share contexts": same and topics.get(a) == topics.get(b)})
    return pd.DataFrame(rows)


GROUPS = ("share contexts, never adjacent", "share contexts, adjacent", "different classes, most often adjacent")


def adjacency_groups(pairs, top: int = 100) -> dict:
    """The three kinds of pair the test compares (``GROUPS``): classmates that never stand side by side,
    classmates that do, and the ``top`` most often adjacent pairs of different classes (at most as many as the
    first group, so the means are over groups of similar size)."""
    whole_number("top", top)
    shared = pairs[pairs["share contexts"]]
    never, adjacent = shared[shared["adjacent (times)"] == 0], shared[shared["adjacent (times)"] > 0]
    other = pairs[~pairs["same class"] & (pairs["adjacent (times)"] > 0)]
    n = max(1, min(top, len(never))) if len(never) else top
    return dict(zip(GROUPS, (never, adjacent, other.nlargest(n, "adjacent (times)"))))


def adjacency_summary(groups: dict):
    """Pairs, mean adjacency and mean cosine of each group (a pandas frame, NaN for an empty group)."""
    import pandas as pd
    return pd.DataFrame({"pairs": [len(g) for g in groups.values()],
                         "mean adjacency": [g["adjacent (times)"].mean() for g in groups.values()],
                         "mean cosine": [g["cosine"].mean() for g in groups.values()]},
                        index=list(groups)).round(3)


def adjacency_verdict(summary, margin: float = 0.1) -> list[str]:
    """Sentences worded from :func:`adjacency_summary`: the article's claim against the distributional
    hypothesis; and, where the corpus has classmates that stand side by side, what adjacency adds with shared
    contexts held fixed, and what sharing contexts adds with adjacency held (at least) fixed. A difference of
    mean cosines counts when it is at least ``margin``."""
    number("margin", margin, minimum=0)
    cos = summary["mean cosine"]
    never, adjacent, other = (float(cos[g]) for g in GROUPS)
    n_never, n_adjacent = (int(summary.loc[g, "pairs"]) for g in GROUPS[:2])

    def compare(d: float, more: str, less: str) -> str:
        return more if d >= margin else less if d <= -margin else f"no clear difference (under {margin:g})"

    gap = never - other
    claim = compare(gap, "REFUTED on this corpus: the most adjacent pairs are the farther apart",
                    "SUPPORTED on this corpus: the most adjacent pairs are the closer")
    lines = [f"Article 3.1.1, 'adjacent words become close': {n_never} pairs of words that share contexts and never "
             f"stand side by side have a mean cosine of {never:+.3f}, the most adjacent pairs of different classes "
             f"{other:+.3f} (difference {gap:+.3f}): {claim}."]
    if n_adjacent == 0:
        lines.append("No two words that share contexts ever stand side by side in this corpus, so this test cannot "
                     "tell whether adjacency adds closeness to words that already share contexts: its two groups "
                     "differ in adjacency AND in class.")
        return lines
    effect, by_context = adjacent - never, adjacent - other
    lines.append(f"Shared contexts held fixed: {n_adjacent} pairs of classmates that stand side by side have a mean "
                 f"cosine of {adjacent:+.3f}, the {n_never} that never do {never:+.3f} (difference {effect:+.3f}): "
                 + compare(effect, "adjacency makes them closer", "adjacency makes them farther apart") + ".")
    times = summary["mean adjacency"]
    level = "at least as often" if float(times[GROUPS[2]]) >= float(times[GROUPS[1]]) else "less often"
    lines.append(f"Side by side, with or without shared contexts: adjacent classmates (side by side "
                 f"{float(times[GROUPS[1]]):.0f} times on average) {adjacent:+.3f}, the most adjacent pairs of "
                 f"different classes ({level}: {float(times[GROUPS[2]]):.0f} times) {other:+.3f} (difference "
                 f"{by_context:+.3f}): "
                 + compare(by_context, "sharing contexts makes them closer",
                           "sharing contexts makes them farther apart") + ".")
    if by_context >= margin and abs(effect) < by_context / 2:
        lines.append("Closeness follows shared contexts: adjacency moves the cosine by less than half as much.")
    elif effect >= margin and effect >= by_context / 2:
        lines.append("Adjacency matters here at least half as much as shared contexts.")
    return lines
