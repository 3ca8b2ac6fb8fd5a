"""labkit.recsys: the catalogue and its shortcut checks, matrix factorisation, the cold-start map, NDCG@k and
recall@k against scikit-learn, and chapter 6.4's recommendation exercises."""
import re

import numpy as np
import pytest
import torch
from sklearn.metrics import ndcg_score

from labkit import recsys
from labkit.labs import ch06_4
from labkit.train import fit
from exercise_checks import refuses, states_answer


def _words(phrases):
    return {w for p in phrases for w in re.findall(r"[a-z0-9]+", p.lower())}


@pytest.fixture(scope="module")
def shop():
    return recsys.make_catalogue(n_users=150, n_warm=64, n_cold=32, per_user=16, seed=3)


# ----------------------------------------------------------------------------- metrics
@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("k", [1, 3, 10, 50])
def test_ndcg_matches_scikit_learn_with_ties_and_grades(seed, k):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 30))
    relevance = rng.integers(0, 3, n).astype(float) * (rng.random(n) < 0.5)
    scores = np.round(rng.normal(size=n), 1)                    # rounding makes ties
    want = ndcg_score(relevance[None], scores[None], k=k)
    assert recsys.ndcg_at_k(relevance, scores, k) == pytest.approx(want, abs=1e-12)


def test_ndcg_edge_cases():
    assert recsys.ndcg_at_k([0, 1, 0], [3.0, 2.0, 1.0], 1) == 0.0      # the relevant item is cut off
    assert recsys.ndcg_at_k([0, 1, 0], [1.0, 2.0, 0.0], 1) == 1.0
    assert recsys.ndcg_at_k([0, 0, 0], [1.0, 2.0, 3.0], 2) == 0.0      # nothing relevant: 0, as scikit-learn
    assert recsys.ndcg_at_k([1, 0], [0.0, 0.0], 1) == pytest.approx(ndcg_score([[1, 0]], [[0.0, 0.0]], k=1))
    with pytest.raises(ValueError, match="k must be"):
        recsys.ndcg_at_k([1, 0], [1.0, 0.0], 0)
    with pytest.raises(ValueError, match="one shape"):
        recsys.ndcg_at_k([1, 0, 1], [1.0, 0.0], 2)


def test_recall_at_k_counts_ties_in_proportion():
    assert recsys.recall_at_k([1, 0, 1, 0], [4.0, 3.0, 2.0, 1.0], 2) == 0.5
    assert recsys.recall_at_k([1, 0, 0, 0], [0.0, 0.0, 0.0, 0.0], 2) == 0.5   # expected over random tie-breaking
    assert recsys.recall_at_k([0, 0], [1.0, 0.0], 1) == 0.0


def test_rank_report_skips_users_without_relevant_items_and_excluded_items():
    truth = np.array([[1, 0, 0], [0, 0, 0], [0, 1, 0]], float)
    scores = np.array([[0.0, 1.0, 2.0], [1.0, 2.0, 3.0], [0.0, 1.0, 2.0]])
    exclude = np.array([[0, 1, 1], [0, 0, 0], [0, 0, 0]], float)
    report = recsys.rank_report(truth, scores, k=1, exclude=exclude)
    assert report["users"] == 2
    assert report["NDCG@1"] == pytest.approx(0.5)                      # user 0: only item 0 left; user 2: missed


# ----------------------------------------------------------------------------- data
def test_held_out_genre_phrases_share_no_word_with_seen_ones_or_the_templates():
    seen = _words(p for s, _ in recsys.GENRES.values() for p in s)
    held = _words(p for _, h in recsys.GENRES.values() for p in h)
    neutral = _words(recsys.QUALITIES + recsys.EXTRAS + recsys.TEMPLATES)
    assert not seen & held and not seen & neutral and not held & neutral


def test_catalogue_splits(shop):
    assert len(set(shop.warm) | set(shop.val_cold) | set(shop.test_cold)) == shop.n_items
    assert not set(shop.train[:, 1]) - set(shop.warm)                  # no new item has a training interaction
    assert set(shop.val_cold_pairs[:, 1]) <= set(shop.val_cold) and set(shop.test_cold_pairs[:, 1]) <= set(shop.test_cold)
    pairs = [tuple(p) for s in (shop.train, shop.val, shop.test, shop.val_cold_pairs, shop.test_cold_pairs) for p in s]
    assert len(pairs) == len(set(pairs)) == shop.n_users * 16
    held_things = [p for _, h in recsys.GENRES.values() for p in h]
    assert not any(t in shop.descriptions[i] for i in shop.warm for t in held_things)
    for i in shop.test_cold:                                            # a new item names a held-out thing of its genre
        _, held = recsys.GENRES[list(recsys.GENRES)[shop.genre[i]]]
        assert any(t in shop.descriptions[i] for t in held)


def test_catalogue_is_seeded_and_the_control_changes_only_new_descriptions(shop):
    again = recsys.make_catalogue(n_users=150, n_warm=64, n_cold=32, per_user=16, seed=3)
    assert again.descriptions == shop.descriptions and np.array_equal(again.train, shop.train)
    control = recsys.make_catalogue(n_users=150, n_warm=64, n_cold=32, per_user=16, seed=3, cold_words="seen")
    assert np.array_equal(control.test_cold_pairs, shop.test_cold_pairs) and np.array_equal(control.genre, shop.genre)
    changed = [i for i in range(shop.n_items) if control.descriptions[i] != shop.descriptions[i]]
    assert changed and set(changed) <= set(shop.val_cold) | set(shop.test_cold)


def test_catalogue_bad_input():
    with pytest.raises(ValueError, match="cold_words"):
        recsys.make_catalogue(cold_words="new")
    with pytest.raises(ValueError, match="per_user"):
        recsys.make_catalogue(n_warm=10, n_cold=4, per_user=10)


# ----------------------------------------------------------------------------- models
def test_training_pairs_negatives_are_unobserved_warm_items(shop):
    users, items, y = recsys.training_pairs(shop.train, shop.warm, n_negatives=3, seed=0)
    assert len(y) == 4 * len(shop.train) and y.sum() == len(shop.train)
    observed = set(map(tuple, shop.train.tolist()))
    negatives = list(zip(users[y == 0].tolist(), items[y == 0].tolist()))
    assert not set(negatives) & observed and set(items[y == 0].tolist()) <= set(shop.warm.tolist())


def test_mf_scores_equal_forward_and_mf_beats_popularity(shop):
    torch.manual_seed(0)
    mf = recsys.MatrixFactorization(shop.n_users, shop.n_items, dim=8)
    pairs = recsys.training_pairs(shop.train, shop.warm, seed=0)
    fit(mf, pairs, epochs=6, batch_size=128, lr=1e-2, loss_fn=recsys.bce_logits, progress=False)
    with torch.no_grad():
        direct = mf(torch.tensor([3, 7]), torch.tensor([5, 11])).numpy()
    assert np.allclose(mf.scores()[[3, 7], [5, 11]], direct, atol=1e-5)
    truth, seen = shop.matrix(shop.train, shop.warm), None
    fitted = recsys.rank_report(truth, mf.scores(shop.warm), 10, seen)["NDCG@10"]
    popular = recsys.rank_report(truth, recsys.popularity_scores(shop, shop.warm), 10, seen)["NDCG@10"]
    assert fitted > popular + 0.1                                         # MF fits its training interactions
    # a new item's vector never got a gradient: it is still the initial one
    assert np.allclose(mf.item_vectors(shop.test_cold)[:, -1], 0.0)


def test_popularity_cannot_order_new_items(shop):
    scores = recsys.popularity_scores(shop, shop.test_cold)
    assert np.all(scores == 0)


def test_ridge_map_is_the_closed_form_with_an_unpenalised_intercept():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(40, 6)) + 3.0, rng.normal(size=(40, 3)) + 5.0
    x1 = np.hstack([x, np.ones((40, 1))])
    penalty = 2.0 * np.eye(7)
    penalty[-1, -1] = 0.0
    w = np.linalg.solve(x1.T @ x1 + penalty, x1.T @ y)
    assert np.allclose(recsys.ridge_map(x, y, alpha=2.0)(x[:5]), x1[:5] @ w, atol=1e-8)
    with pytest.raises(ValueError, match="alpha"):
        recsys.ridge_map(x, y, alpha=-1.0)


def test_tfidf_features_know_only_the_fitted_vocabulary():
    a, b = recsys.tfidf_features(["red tent", "blue tent"], ["green kettle", "red kettle"])
    assert a.shape[1] == b.shape[1] == 3
    assert not b[0].any() and b[1].any()


# ----------------------------------------------------------------------------- exercises
def test_exercise_ndcg():
    ex = ch06_4.exercises()["6.4.1"]

    def right(gains, k):
        gains = np.asarray(gains, float)
        d = 1 / np.log2(np.arange(2, len(gains) + 2))
        ideal = np.sort(gains)[::-1][:k] @ d[:k]
        return 0.0 if ideal == 0 else (gains[:k] @ d[:k]) / ideal

    def dcg_only(gains, k):
        gains = np.asarray(gains, float)
        return gains[:k] @ (1 / np.log2(np.arange(2, len(gains) + 2)))[:k]

    def off_by_one(gains, k):                       # log2(rank) instead of log2(rank + 1): 1/0 at the top
        gains = np.asarray(gains, float)
        with np.errstate(divide="ignore", invalid="ignore"):
            d = 1 / np.log2(np.arange(1, len(gains) + 1))
            return (gains[:k] @ d[:k]) / (np.sort(gains)[::-1][:k] @ d[:k])

    def ignores_k(gains, k):
        return right(gains, len(gains))

    def unsorted_ideal(gains, k):
        gains = np.asarray(gains, float)
        d = 1 / np.log2(np.arange(2, len(gains) + 2))
        return (gains[:k] @ d[:k]) / max(gains @ d, 1e-12)

    assert ex.check(right)
    assert refuses(ex, dcg_only, off_by_one, ignores_k, unsorted_ideal, lambda g, k: 1.0)


def test_exercise_map_size():
    ex = ch06_4.exercises(mf_dim=8)
    assert ex["6.4.2"].check(385 * 9)
    assert refuses(ex["6.4.2"], 384 * 8, 385 * 8, 384 * 9, 384 + 9)
    assert ch06_4.exercises(mf_dim=16)["6.4.2"].check(385 * 17)
    assert not states_answer(ex["6.4.2"].hint, 385 * 9)
