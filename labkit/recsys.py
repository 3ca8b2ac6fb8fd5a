"""Recommendation: matrix factorisation, and new ("cold-start") items placed by pretrained text embeddings.

**Matrix factorisation** (MF; Koren, Bell & Volinsky 2009) gives every user a vector :math:`p_u` and every
item a vector :math:`q_i` and a bias :math:`b_i`, and scores a pair by :math:`p_u^\\top q_i + b_i`. Here it is
trained on implicit feedback (who interacted with what) as a logistic model: each observed pair against a few
items the user did not touch (negative sampling). An item that nobody has touched yet has no trained vector:
MF alone cannot rank it, and neither can popularity (its count is 0).

**Cold start from content.** Each item comes with a one-line description. On the items MF knows, learn a
linear map from a description's features to the item's MF vector and bias (ridge regression: Gantner et al.
2010, "attribute-to-feature mapping"); a new item's vector is the map applied to its description. The features
are either TF-IDF word counts (the classical choice) or the sentence embedding of the pretrained
all-MiniLM-L6-v2 (:func:`labkit.retrieval.embed`).

**NDCG@k** (normalised discounted cumulative gain, Järvelin & Kekäläinen 2002): the gain of each relevant item
in the top k, discounted by :math:`1/\\log_2(\\text{rank}+1)`, divided by the best possible value. 1 = every
relevant item at the top. :func:`ndcg_at_k` follows scikit-learn's ``ndcg_score`` (tests/test_recsys.py).

Data card
---------
* **What**: users, items with one-line descriptions, and implicit interactions (who bought what). Each item
  belongs to one of the :data:`GENRES` and has a popularity :math:`w_i` (log-normal). Each user has genre
  tastes :math:`\\theta_u \\sim \\mathrm{Dirichlet}(0.3)` (most users like one or two genres) and makes
  ``per_user`` interactions, drawn without replacement with probability :math:`\\propto \\theta_{u,g(i)}\\,w_i`.
  That is the known structure: the best possible ranking for a user sorts items by :math:`\\theta_{u,g(i)}w_i`
  (:meth:`Catalogue.oracle_scores`).
* **Descriptions**: a template (shared by all genres) around a thing of the item's genre, e.g. "a
  well-reviewed trail map, ships in two days.". Items MF trains on are described only with the *seen* things of
  their genre; new items only with *held-out* things ("trekking poles", "compass") that no trained item's
  description contains. Only the thing tells the genre: templates, qualities and extras are drawn
  independently of it.
* **Splits**: the items are split into *warm* items (MF trains on them), *validation-cold* and *test-cold* items
  (no interaction in training). Each user's interactions with warm items are split at random into train
  (80%), validation (10%) and test (10%); all interactions with cold items are validation-cold or test-cold
  interactions. Choices (the MF size, the ridge penalty) use validation only.
* **How it was made**: by :func:`make_catalogue` with NumPy's seeded generator; nothing is downloaded.
* **Limits**: genres are the only taste structure, tastes do not change over time, and a description names
  its genre through one noun phrase. Real catalogues are far messier; the point here is the mechanism.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .check import number, whole_number

__all__ = ["GENRES", "Catalogue", "make_catalogue", "MatrixFactorization", "training_pairs", "ridge_map",
           "ndcg_at_k", "recall_at_k", "rank_report", "popularity_scores", "tfidf_features", "bce_logits",
           "random_scores"]

# genre: (seen things: in the descriptions of items MF trains on; held-out things: only in new items' descriptions)
GENRES = {
    "hiking": (["hiking boots", "trail map", "camping stove", "rain jacket", "tent", "head torch"],
               ["trekking poles", "sleeping quilt", "compass", "mountaineering rucksack", "water filter", "bivvy sack"]),
    "cooking": (["frying pan", "chef's knife", "spice rack", "cookbook", "rice cooker", "oven mitts"],
                ["saucepan", "chopping board", "baking tray", "whisk", "pressure canner", "pasta maker"]),
    "jazz": (["jazz vinyl record", "saxophone album", "swing music anthology", "trumpet solos",
              "piano trio songbook", "live concert recording"],
             ["bebop collection", "big band CD", "blues ballads LP", "smooth sax playlist", "double bass grooves",
              "Coltrane reissue"]),
    "gardening": (["flower seeds", "garden hose", "pruning shears", "potting soil", "raised bed", "lawn rake"],
                  ["watering can", "rose bush", "compost bin", "hedge trimmer", "seedling tray", "weeding gloves"]),
    "science fiction": (["space opera novel", "robot short stories", "alien invasion book", "time travel novel",
                         "cyberpunk thriller", "mars colony saga"],
                        ["starship adventure paperback", "dystopian future epic", "android detective tale",
                         "galactic empire trilogy", "first contact fiction", "post-apocalyptic odyssey"]),
    "fitness": (["yoga mat", "dumbbells", "running shoes", "protein powder", "exercise bike", "foam roller"],
                ["kettlebell", "resistance bands", "treadmill", "jump rope", "pull-up bar", "rowing machine"]),
    "baby": (["baby stroller", "diapers", "teething toy", "crib sheets", "baby bottle", "changing mat"],
             ["pacifier", "nursery monitor", "formula warmer", "infant car seat", "bibs", "cot mobile"]),
    "photography": (["camera lens", "tripod", "memory card", "camera bag", "photo printer", "studio light"],
                    ["flash unit", "polarising filter", "DSLR strap", "exposure meter", "film roll", "remote shutter"]),
}
QUALITIES = ["well-reviewed", "budget", "premium", "compact", "classic", "popular", "handmade", "lightweight",
             "durable", "limited edition"]
EXTRAS = ["ships in two days", "comes in blue", "sold by a small shop", "gift wrapping available",
          "free returns", "back in stock", "new this season", "two-year warranty"]
TEMPLATES = ["a {quality} {thing}, {extra}.", "{quality} {thing}: {extra}.", "the {thing}, {quality} and {extra}.",
             "{thing} ({quality}), {extra}."]


@dataclass
class Catalogue:
    """Items, their descriptions and genres, and the interactions of every split (arrays of (user, item))."""

    descriptions: list[str]
    genre: np.ndarray            # (n_items,) genre index
    popularity: np.ndarray       # (n_items,) w_i
    taste: np.ndarray            # (n_users, n_genres) theta_u
    warm: np.ndarray             # item ids MF trains on
    val_cold: np.ndarray         # new items used for choices
    test_cold: np.ndarray        # new items for the final measurement
    train: np.ndarray            # (n, 2) user, item
    val: np.ndarray
    test: np.ndarray
    val_cold_pairs: np.ndarray
    test_cold_pairs: np.ndarray

    @property
    def n_users(self) -> int:
        return self.taste.shape[0]

    @property
    def n_items(self) -> int:
        return len(self.descriptions)

    def oracle_scores(self) -> np.ndarray:
        """(n_users, n_items): the true interaction weight theta_{u, g(i)} w_i (the best possible ranking)."""
        return self.taste[:, self.genre] * self.popularity[None, :]

    def matrix(self, pairs: np.ndarray, items: np.ndarray | None = None) -> np.ndarray:
        """A 0/1 (n_users, len(items)) matrix of ``pairs``, columns in the order of ``items`` (all items if None)."""
        items = np.arange(self.n_items) if items is None else np.asarray(items)
        column = {int(i): c for c, i in enumerate(items)}
        m = np.zeros((self.n_users, len(items)))
        for u, i in pairs:
            if int(i) in column:
                m[u, column[int(i)]] = 1.0
        return m


def _describe(rng: np.random.Generator, thing: str) -> str:
    template = TEMPLATES[rng.integers(len(TEMPLATES))]
    return template.format(quality=QUALITIES[rng.integers(len(QUALITIES))], thing=thing,
                           extra=EXTRAS[rng.integers(len(EXTRAS))])


def make_catalogue(n_users: int = 600, n_warm: int = 240, n_cold: int = 80, per_user: int = 24, *,
                   seed: int = 0, cold_words: str = "held-out") -> Catalogue:
    """The data set of the data card. ``cold_words="seen"`` describes new items with the seen things instead
    (the control in which a word-count model can place them too)."""
    whole_number("n_users", n_users)
    whole_number("n_warm (items MF trains on)", n_warm, minimum=len(GENRES))
    whole_number("n_cold (new items, half validation, half test)", n_cold, minimum=2)
    whole_number("per_user (interactions per user)", per_user, minimum=2, maximum=(n_warm + n_cold) // 2)
    if cold_words not in ("held-out", "seen"):
        raise ValueError(f"cold_words must be 'held-out' or 'seen'; got {cold_words!r}")
    rng = np.random.default_rng(seed)
    n_items, names = n_warm + n_cold, list(GENRES)
    genre = np.arange(n_items) % len(names)
    rng.shuffle(genre)
    popularity = rng.lognormal(0.0, 0.75, size=n_items)
    order = rng.permutation(n_items)
    warm, cold = np.sort(order[:n_warm]), order[n_warm:]
    val_cold, test_cold = np.sort(cold[:n_cold // 2]), np.sort(cold[n_cold // 2:])
    is_warm = np.zeros(n_items, bool)
    is_warm[warm] = True
    descriptions = []
    for i in range(n_items):
        seen, held = GENRES[names[genre[i]]]
        things = seen if is_warm[i] or cold_words == "seen" else held
        descriptions.append(_describe(rng, things[rng.integers(len(things))]))
    taste = rng.dirichlet(np.full(len(names), 0.3), size=n_users)
    splits = {k: [] for k in ("train", "val", "test", "val_cold", "test_cold")}
    in_val_cold = np.isin(np.arange(n_items), val_cold)
    for u in range(n_users):
        p = taste[u, genre] * popularity
        items = rng.choice(n_items, size=per_user, replace=False, p=p / p.sum())
        warm_items = [i for i in items if is_warm[i]]
        r = rng.random(len(warm_items))
        for i, x in zip(warm_items, r):
            splits["train" if x < 0.8 else "val" if x < 0.9 else "test"].append((u, i))
        for i in items:
            if not is_warm[i]:
                splits["val_cold" if in_val_cold[i] else "test_cold"].append((u, i))
    pairs = {k: np.array(v, dtype=np.int64).reshape(-1, 2) for k, v in splits.items()}
    return Catalogue(descriptions, genre, popularity, taste, warm, val_cold, test_cold, pairs["train"],
                     pairs["val"], pairs["test"], pairs["val_cold"], pairs["test_cold"])


# ----------------------------------------------------------------------------- models
class MatrixFactorization(nn.Module):
    """score(u, i) = p_u . q_i + b_i, a logit of "u interacts with i"."""

    def __init__(self, n_users: int, n_items: int, dim: int = 16):
        super().__init__()
        whole_number("dim", dim)
        self.users = nn.Embedding(whole_number("n_users", n_users), dim)
        self.items = nn.Embedding(whole_number("n_items", n_items), dim)
        self.bias = nn.Embedding(n_items, 1)
        for e in (self.users, self.items):
            nn.init.normal_(e.weight, std=0.1)
        nn.init.zeros_(self.bias.weight)

    def forward(self, user: torch.Tensor, item: torch.Tensor) -> torch.Tensor:
        return (self.users(user) * self.items(item)).sum(-1) + self.bias(item).squeeze(-1)

    @torch.no_grad()
    def scores(self, items=None, *, item_vectors: np.ndarray | None = None) -> np.ndarray:
        """(n_users, n_items) scores of ``items`` (all if None), or of items given as ``item_vectors`` rows
        ``[q_i, b_i]`` (the cold-start map's output)."""
        p = self.users.weight.numpy()
        if item_vectors is None:
            idx = torch.arange(self.items.num_embeddings) if items is None else torch.as_tensor(items)
            item_vectors = self.item_vectors(idx)
        return p @ item_vectors[:, :-1].T + item_vectors[:, -1][None, :]

    @torch.no_grad()
    def item_vectors(self, items) -> np.ndarray:
        """Rows ``[q_i, b_i]``: what the cold-start map learns to predict from a description."""
        idx = torch.as_tensor(items)
        return torch.cat([self.items(idx), self.bias(idx)], dim=-1).numpy()


def training_pairs(pairs: np.ndarray, items: np.ndarray, n_negatives: int = 4, *,
                   seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(users, items, targets) for ``fit``: each observed pair (target 1) and ``n_negatives`` items of ``items``
    the user was not seen with (target 0), drawn once with a seed."""
    whole_number("n_negatives", n_negatives, minimum=0)
    rng = np.random.default_rng(seed)
    seen = set(map(tuple, pairs.tolist()))
    users, chosen = [], []
    for u, _ in pairs:
        for _ in range(n_negatives):
            while True:
                j = int(items[rng.integers(len(items))])
                if (int(u), j) not in seen:
                    break
            users.append(int(u))
            chosen.append(j)
    u_all = np.concatenate([pairs[:, 0], np.array(users, dtype=np.int64)])
    i_all = np.concatenate([pairs[:, 1], np.array(chosen, dtype=np.int64)])
    y = np.concatenate([np.ones(len(pairs)), np.zeros(len(users))])
    return torch.as_tensor(u_all), torch.as_tensor(i_all), torch.as_tensor(y, dtype=torch.float32)


def ridge_map(features: np.ndarray, targets: np.ndarray, alpha: float = 1.0):
    """A linear map ``features -> targets`` by ridge regression (scikit-learn's ``Ridge``: the intercept is not
    penalised); returns the function that applies it."""
    from sklearn.linear_model import Ridge
    model = Ridge(alpha=number("alpha (ridge penalty)", alpha, minimum=0)).fit(features, targets)
    return model.predict


def tfidf_features(fit_on: list[str], transform: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """TF-IDF vectors (scikit-learn, words) fitted on ``fit_on``'s vocabulary, for both lists."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    v = TfidfVectorizer().fit(fit_on)
    return v.transform(fit_on).toarray(), v.transform(transform).toarray()


def popularity_scores(catalogue: Catalogue, items) -> np.ndarray:
    """(n_users, len(items)): every user gets the items' training interaction counts."""
    counts = np.bincount(catalogue.train[:, 1], minlength=catalogue.n_items).astype(float)
    return np.tile(counts[np.asarray(items)], (catalogue.n_users, 1))


# ----------------------------------------------------------------------------- ranking metrics
def _ranked_gains(relevance: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Relevance sorted by decreasing score; ties get the mean gain of their tied group (as scikit-learn does)."""
    order = np.argsort(-scores, kind="stable")
    s, r = scores[order], relevance[order].astype(float)
    out = r.copy()
    start = 0
    while start < len(s):
        end = start
        while end + 1 < len(s) and s[end + 1] == s[start]:
            end += 1
        out[start:end + 1] = r[start:end + 1].mean()
        start = end + 1
    return out


def ndcg_at_k(relevance, scores, k: int) -> float:
    """NDCG@k of one user: ``relevance`` (gains, e.g. 0/1) and ``scores`` of the same items; ties averaged."""
    relevance, scores = np.asarray(relevance, dtype=float), np.asarray(scores, dtype=float)
    whole_number("k", k)
    if relevance.shape != scores.shape or relevance.ndim != 1:
        raise ValueError(f"relevance and scores must be 1-D and of one shape; got {relevance.shape}, {scores.shape}")
    discount = 1.0 / np.log2(np.arange(2, len(relevance) + 2))[:k]
    ideal = float(np.sort(relevance)[::-1][:k] @ discount)
    if ideal == 0:
        return 0.0
    return float(_ranked_gains(relevance, scores)[:k] @ discount) / ideal


def recall_at_k(relevance, scores, k: int) -> float:
    """Share of one user's relevant items (relevance > 0) in the top ``k`` by score; a tied group that straddles
    the cut counts in proportion (the expectation over random tie-breaking, as NDCG's tie averaging)."""
    relevance, scores = np.asarray(relevance, dtype=float), np.asarray(scores, dtype=float)
    whole_number("k", k)
    hits = (relevance > 0).astype(float)
    n = hits.sum()
    return float(_ranked_gains(hits, scores)[:k].sum() / n) if n else 0.0


def rank_report(truth: np.ndarray, scores: np.ndarray, k: int = 10, exclude: np.ndarray | None = None) -> dict[str, float]:
    """Mean NDCG@k and recall@k over the users (rows) with at least one relevant item; ``exclude`` marks items a
    user already interacted with (they are not ranked)."""
    truth, scores = np.asarray(truth, dtype=float), np.asarray(scores, dtype=float)
    if truth.shape != scores.shape:
        raise ValueError(f"truth and scores must have one shape; got {truth.shape} and {scores.shape}")
    ndcg, recall = [], []
    for u in np.flatnonzero(truth.sum(1) > 0):
        keep = np.ones(truth.shape[1], bool) if exclude is None else exclude[u] == 0
        ndcg.append(ndcg_at_k(truth[u, keep], scores[u, keep], k))
        recall.append(recall_at_k(truth[u, keep], scores[u, keep], k))
    return {f"NDCG@{k}": float(np.mean(ndcg)), f"recall@{k}": float(np.mean(recall)), "users": len(ndcg)}


def bce_logits(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The training loss of :class:`MatrixFactorization`: logistic loss on interaction logits."""
    return F.binary_cross_entropy_with_logits(output, target)


def random_scores(n_users: int, n_items: int, seed: int = 0) -> np.ndarray:
    """Scores of a random ranking (chance level)."""
    return np.random.default_rng(seed).random((n_users, n_items))

