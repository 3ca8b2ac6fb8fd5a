"""labkit.practice: the range test, class weights (= scikit-learn's "balanced") and resampling, the leakage tools
(near-duplicates found, groups kept apart), the top-block fine-tuning parity with the full encoder, and chapter
6.5's exercises."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.utils.class_weight import compute_class_weight

from labkit import practice
from labkit.data.reviews import make_reviews
from labkit.labs import ch06_5
from exercise_checks import refuses, states_answer


def blobs(n=200, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    x = torch.randn(n, 8, generator=g) + 2.0 * F.one_hot(y, 8).float()
    return x, y


# ----------------------------------------------------------------------------- range test
def test_lr_range_test_grows_the_rate_geometrically_and_leaves_the_model_alone():
    x, y = blobs()
    torch.manual_seed(0)
    model = practice.MLPHead(8, 2, hidden=16)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    found = practice.lr_range_test(model, (x, y), lr_min=1e-4, lr_max=1e3, steps=60, batch_size=20)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    ratios = np.array(found.lrs[1:]) / np.array(found.lrs[:-1])
    assert np.allclose(ratios, (1e7) ** (1 / 59))
    assert len(found.lrs) < 60                                   # it stopped when the loss exploded
    assert found.smoothed[-1] > 4 * min(found.smoothed) or not math.isfinite(found.losses[-1])
    assert found.suggestion() == pytest.approx(found.lr_at_min / 10)
    assert found.lrs[0] <= found.steepest <= found.lr_at_min


def test_lr_range_test_bad_input():
    x, y = blobs(20)
    with pytest.raises(ValueError, match="lr_max"):
        practice.lr_range_test(practice.MLPHead(8), (x, y), lr_min=1e-2, lr_max=1e-3)
    with pytest.raises(ValueError, match="optimizer"):
        practice.lr_range_test(practice.MLPHead(8), (x, y), optimizer="lion")


def test_the_suggested_rate_trains_better_than_the_extremes():
    x, y = blobs(400)
    found = practice.lr_range_test(practice.MLPHead(8, 2, 16), (x[:300], y[:300]), lr_min=1e-5, lr_max=10.0,
                                   steps=80, batch_size=20)
    losses = {}
    for lr in (found.suggestion(), 1e-5, 30 * found.lr_at_min):
        _, h = practice.train_head((x[:300], y[:300]), val=(x[300:], y[300:]), hidden=16, lr=lr, epochs=2, batch_size=20)
        losses[lr] = h.last("val_loss")
    assert losses[found.suggestion()] == min(losses.values())


# ----------------------------------------------------------------------------- imbalance
@pytest.mark.parametrize("labels", [[0, 0, 0, 1], [2, 0, 1, 1, 2, 2, 2], [1] * 9 + [0]])
def test_class_weights_match_scikit_learn(labels):
    want = compute_class_weight("balanced", classes=np.unique(labels), y=np.array(labels))
    assert np.allclose(practice.class_weights(labels).numpy(), want)


def test_class_weights_refuse_a_missing_class():
    with pytest.raises(ValueError, match="no example"):
        practice.class_weights([0, 2, 2])
    with pytest.raises(ValueError, match="n_classes"):
        practice.class_weights([0, 1, 2], n_classes=2)


def test_oversample_keeps_everything_and_balances():
    y = np.array([0] * 3 + [1] * 10 + [2] * 5)
    idx = practice.oversample(y, seed=0)
    assert set(range(len(y))) <= set(idx.tolist())
    assert np.bincount(y[idx]).tolist() == [10, 10, 10]


def test_imbalanced_subset():
    y = np.array([0] * 50 + [1] * 100)
    idx = practice.imbalanced_subset(y, 0, 100, 0.05, seed=1)
    assert len(idx) == len(set(idx.tolist())) == 100 and (y[idx] == 0).sum() == 5
    with pytest.raises(ValueError, match="cannot draw"):
        practice.imbalanced_subset(y, 0, 150, 0.05)


def test_weighting_or_resampling_raises_the_rare_class_f1():
    from labkit.metrics import f1_score
    x, y = blobs(600, seed=1)
    x = x + 0.8 * torch.randn_like(x)
    pick = practice.imbalanced_subset(y[:400], 0, 200, 0.05, seed=0)
    xt, yt = x[:400][pick], y[:400][pick]
    plain, _ = practice.train_head((xt, yt), lr=1e-2, epochs=5, hidden=16)
    w = practice.class_weights(yt)
    weighted, _ = practice.train_head((xt, yt), lr=1e-2, epochs=5, hidden=16,
                                      loss_fn=lambda o, t: F.cross_entropy(o, t, weight=w))
    f = {name: f1_score(y[400:], practice.predict(m, x[400:]), pos_label=0) for name, m in (("plain", plain), ("weighted", weighted))}
    assert f["weighted"] > f["plain"]


def test_linear_scaling():
    assert practice.linear_scaling(0.1, 32, 256) == pytest.approx(0.8)
    with pytest.raises(ValueError, match="base_lr"):
        practice.linear_scaling(-0.1, 32, 64)


# ----------------------------------------------------------------------------- leakage
@pytest.fixture(scope="module")
def leaky():
    sources = make_reviews(seed=0, n_train=80, n_val=2, n_test=2).train
    rows, source = practice.make_near_duplicates(sources, mean_copies=2.0, seed=0)
    return sources, rows, source


def test_near_duplicates_keep_the_label_of_their_source(leaky):
    sources, rows, source = leaky
    assert set(source.tolist()) == set(range(len(sources)))
    assert all(rows[i][1] == sources[s][1] for i, s in enumerate(source))
    assert len(rows) > 2 * len(sources)


def test_the_detector_finds_the_copies_and_little_else(leaky):
    _, rows, source = leaky
    groups = practice.near_duplicate_groups([t for t, _ in rows], threshold=0.7)
    scores = practice.pair_scores(groups, source)
    assert scores["recall"] > 0.9 and scores["precision"] > 0.8


def test_group_split_keeps_groups_apart_and_random_split_does_not(leaky):
    _, rows, source = leaky
    texts = [t for t, _ in rows]
    tr, te = practice.group_split(source, 0.25, seed=0)
    assert not set(source[tr]) & set(source[te]) and len(tr) + len(te) == len(rows)
    assert abs(len(te) - 0.25 * len(rows)) <= np.bincount(source).max()
    assert practice.cross_split_duplicates([texts[i] for i in tr], [texts[i] for i in te]) < 0.1
    tr, te = practice.random_split(len(rows), 0.25, seed=0)
    assert set(source[tr]) & set(source[te])
    assert practice.cross_split_duplicates([texts[i] for i in tr], [texts[i] for i in te]) > 0.5


def test_jaccard_and_pair_scores_by_hand():
    sim = practice.jaccard_matrix(["abcd", "abce", "xyz"])
    assert sim[0, 1] == pytest.approx(1 / 3) and sim[0, 2] == 0 and sim[0, 0] == 1
    assert practice.pair_scores([0, 0, 1, 1], [0, 0, 0, 1]) == {"precision": 0.5, "recall": pytest.approx(1 / 3)}


def test_label_noise_rate():
    rows = [("x", 0)] * 2000
    flipped = sum(y for _, y in practice.with_label_noise(rows, 0.2, seed=0))
    assert 300 < flipped < 500


def test_nearest_neighbour_memorises():
    x, y = blobs(50)
    assert (practice.nearest_neighbour(x, y.numpy(), x) == y.numpy()).all()


# ----------------------------------------------------------------------------- top blocks
@pytest.fixture(scope="module")
def tiny_bert():
    from transformers import AutoTokenizer, BertConfig, BertModel
    from labkit import zoo
    tok = AutoTokenizer.from_pretrained(str(zoo.packaged_path(zoo.card("all-MiniLM-L6-v2"))))
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=3, num_attention_heads=4,
                     intermediate_size=64)
    return BertModel(cfg).eval(), tok


def test_top_blocks_on_lower_states_equal_the_full_encoder(tiny_bert):
    from labkit.retrieval import embed
    model, tok = tiny_bert
    texts = ["a short review.", "this one is a good deal longer than the first review is", "ok"]
    for k in (1, 2):
        hidden, mask = practice.lower_block_states(model, tok, texts, keep_top=k)
        top = practice.TopBlocks(model, k=k).eval()
        with torch.no_grad():
            got = top.features(hidden, mask)
        want = embed(model, tok, texts, normalize=False)
        assert torch.allclose(got, want, atol=1e-5)
        assert top(hidden, mask).shape == (3, 2)
    with pytest.raises(ValueError, match="keep_top"):
        practice.lower_block_states(model, tok, texts, keep_top=4)


# ----------------------------------------------------------------------------- exercises
def test_exercise_class_weights():
    ex = ch06_5.exercises()["6.5.1"]
    assert ex.check(lambda y: len(y) / (len(set(y)) * np.bincount(y)))
    assert refuses(ex, lambda y: 1 / np.bincount(y), lambda y: np.bincount(y) / len(y), lambda y: np.ones(max(y) + 1),
                   lambda y: len(y) / np.bincount(y), lambda y: [1.0, 2.0])


def test_exercise_linear_scaling():
    ex = ch06_5.exercises(base_lr=0.1, base_batch=8, batch=128)
    assert ex["6.5.2"].check(1.6)
    assert refuses(ex["6.5.2"], 0.1, 0.4, 0.1 / 16, 0.1 * 16 ** 0.5)
    assert ch06_5.exercises(base_lr=0.02, base_batch=8, batch=32)["6.5.2"].check(0.08)
    assert not states_answer(ex["6.5.2"].hint, 1.6)


def test_exercise_range_rule():
    ex = ch06_5.exercises()["6.5.3"]
    assert ex.check(lambda lrs, s: lrs[int(np.argmin(s))] / 10)
    assert refuses(ex, lambda lrs, s: lrs[int(np.argmin(s))], lambda lrs, s: lrs[-1] / 10, lambda lrs, s: lrs[0],
                   lambda lrs, s: lrs[int(np.argmax(s))] / 10, lambda lrs, s: 1e-3)


def test_exercise_group_split():
    ex = ch06_5.exercises()["6.5.4"]
    assert ex.check(practice.group_split)
    assert refuses(ex, lambda g, f: practice.random_split(len(g), f),          # rows, not groups
                   lambda g, f: practice.group_split(g, 0.9),                   # ignores test_fraction
                   lambda g, f: (np.arange(len(g)), np.arange(len(g))[:2]),     # overlapping
                   lambda g, f: (np.arange(len(g)), np.array([], int)))         # empty test set


def test_exercise_early_stopping_epochs():
    ex = ch06_5.exercises(best_epoch=5, patience=10, budget=150)
    assert ex["6.5.5"].check(15)
    assert refuses(ex["6.5.5"], 5, 10, 150, 16, 14)
    assert ch06_5.exercises(best_epoch=145, patience=10, budget=150)["6.5.5"].check(150)
    assert not states_answer(ex["6.5.5"].hint, 15)
