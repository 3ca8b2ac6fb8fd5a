"""Chapter 3.1: the corpus variants (default unchanged, markers removed, classmates side by side), the verdicts
on neighbours and adjacency (both ways), skip-gram in one call, and the chapter's exercises (right answers pass,
the usual wrong ones are refused, no hint states the answer)."""
import itertools
import math
from collections import Counter

import pytest
import torch

from labkit.data import corpus as cm
from labkit.data.tokenizer import get_tokenizer
from labkit.embeddings import (GROUPS, adjacency_groups, adjacency_summary, adjacency_verdict, agreement_verdict,
                               neighbour_agreement, pair_table, train_skipgram)
from labkit.labs import ch03_1
from exercise_checks import refuses, states_answer


# ----------------------------------------------------------------------------- the corpus variants
def test_variants_tell_the_same_stories_and_change_only_what_they_say():
    base = cm.make_corpus(200, 20, seed=0)
    plain = cm.make_corpus(200, 20, seed=0, markers=False)
    doubled = cm.make_corpus(200, 20, seed=0, classmates_adjacent=0.5)
    assert cm.make_corpus(200, 20, seed=0, markers=True, classmates_adjacent=0.0).texts() == base.texts()
    for split in ("train", "val"):
        for b, p, d in zip(base._split(split), plain._split(split), doubled._split(split)):
            assert b.topic == p.topic == d.topic
            assert [" ".join(s.split()[1:]) for s in b.sentences] == p.sentences        # only the marker is gone
            undoubled = [" ".join(w for i, w in enumerate(s.split())
                                  if not (i and cm.PARTNERS.get(s.split()[i - 1]) == w)) for s in d.sentences]
            assert undoubled == b.sentences                                              # only partners were added
    assert all(s.split()[0] not in cm.MARKERS for s in plain.sentences())
    assert doubled.texts() != base.texts()


def test_only_partners_stand_side_by_side_in_the_variant():
    classes = cm.word_classes()
    adjacent_classmates = Counter()
    for s in cm.make_corpus(300, 10, seed=1, classmates_adjacent=0.5).sentences():
        for a, b in itertools.pairwise(s.split()):
            if a in classes and classes[a] == classes.get(b):
                adjacent_classmates[frozenset((a, b))] += 1
    assert adjacent_classmates and all(cm.PARTNERS[a] == b for a, b in map(tuple, adjacent_classmates))
    topics = cm.word_topics()
    for a, b in cm.PARTNER_PAIRS:        # a partner shares its word's class and topic
        assert classes[a] == classes[b] and topics.get(a) == topics.get(b)


def test_every_generated_sentence_follows_the_templates_and_broken_ones_do_not():
    for options in ({}, {"markers": False}, {"classmates_adjacent": 1.0}):
        assert all(cm.follows_templates(s) for s in cm.make_corpus(60, 10, seed=2, **options).sentences())
    for broken in ("once there was a the fox .", "then the fox eats the barn .", "the fox sleeps in the",
                   "first the fox sees a red near the cave .", "finally finally the fox sleeps in the den ."):
        assert not cm.follows_templates(broken), broken


def test_sentence_roles_and_pair_kinds():
    doc = cm.make_corpus(5, 1, seed=0, markers=False).train[0].sentences
    assert [cm.sentence_role(s) for s in doc] == ["opening", "middle", "middle", "middle", "closing"]
    assert cm.pair_kind(doc[1], doc[2]) == cm.PAIR_KINDS[1]
    assert cm.pair_kind(doc[0], doc[1]) == cm.pair_kind(doc[4], doc[3]) == cm.PAIR_KINDS[0]


def test_variants_refuse_bad_options():
    with pytest.raises(ValueError, match="classmates_adjacent"):
        cm.make_corpus(5, 5, classmates_adjacent=1.5)
    with pytest.raises(ValueError, match="markers"):
        cm.make_corpus(5, 5, markers="no")


# ----------------------------------------------------------------------------- neighbours and their verdict
def _two_clusters(noise: float):
    g = torch.Generator().manual_seed(0)
    centres = torch.tensor([[5.0, 0, 0, 0], [0, 5.0, 0, 0]])
    emb = torch.cat([centres[i // 6] + noise * torch.randn(4, generator=g) for i in range(12)]).view(12, 4)
    words = [f"w{i}" for i in range(12)]
    return emb, {w: i for i, w in enumerate(words)}, {w: "ab"[i // 6] for i, w in enumerate(words)}, words


def test_neighbour_agreement_and_its_verdict_go_both_ways():
    emb, stoi, labels, words = _two_clusters(noise=0.1)
    share, chance = neighbour_agreement(emb, stoi, labels, words, k=3)
    assert share == 1.0 and chance == pytest.approx(5 / 11)
    assert agreement_verdict("the clusters", "cluster", share, chance, k=3).startswith("The clusters separate: 100%")
    mixed = {w: "ab"[i % 2] for i, w in enumerate(words)}          # labels that ignore the geometry
    share, chance = neighbour_agreement(emb, stoi, mixed, words, k=3)
    assert share - chance < 0.15
    assert "do NOT separate" in agreement_verdict("the clusters", "cluster", share, chance, k=3)
    with pytest.raises(ValueError, match="more than k"):
        neighbour_agreement(emb, stoi, labels, words[:3], k=3)
    with pytest.raises(ValueError, match="labels"):
        neighbour_agreement(emb, stoi, {}, words, k=3)


# ----------------------------------------------------------------------------- the adjacency test and its verdict
def _summary(never, adjacent, other, n_adjacent=5, times=(0, 50, 300)):
    import pandas as pd
    return pd.DataFrame({"pairs": [100, n_adjacent, 100], "mean adjacency": list(times),
                         "mean cosine": [never, adjacent if n_adjacent else float("nan"), other]}, index=list(GROUPS))


def test_adjacency_verdict_follows_the_numbers():
    refuted = adjacency_verdict(_summary(0.8, float("nan"), 0.2, n_adjacent=0))
    assert "REFUTED on this corpus" in refuted[0] and "cannot tell whether adjacency adds" in refuted[1]
    assert "SUPPORTED on this corpus" in adjacency_verdict(_summary(0.2, float("nan"), 0.8, n_adjacent=0))[0]
    assert "no clear difference" in adjacency_verdict(_summary(0.5, float("nan"), 0.45, n_adjacent=0))[0]
    fixed = adjacency_verdict(_summary(0.80, 0.83, 0.25))
    assert "difference +0.030): no clear difference" in fixed[1]
    assert "at least as often" in fixed[2] and "sharing contexts makes them closer" in fixed[2]
    assert fixed[3].startswith("Closeness follows shared contexts")
    closer = adjacency_verdict(_summary(0.40, 0.90, 0.30, times=(0, 400, 300)))
    assert "adjacency makes them closer" in closer[1] and "less often" in closer[2]
    assert closer[3].startswith("Adjacency matters here")
    assert "adjacency makes them farther apart" in adjacency_verdict(_summary(0.8, 0.5, 0.2))[1]


def test_pair_table_groups_the_pairs_the_test_compares():
    # sentences of ids: 0 1 and 2 3 side by side; classes: 0, 1 = "x"; 2, 3 = "y"; 4 = "x" (never adjacent)
    sentences = [[0, 1, 2], [2, 3], [4, 2]]
    emb = torch.eye(5)
    stoi = {f"t{i}": i for i in range(5)}
    classes = {"t0": "x", "t1": "x", "t2": "y", "t3": "y", "t4": "x"}
    pairs = pair_table(emb, sentences, stoi, list(stoi), classes)
    row = pairs[(pairs.a == "t0") & (pairs.b == "t1")].iloc[0]
    assert row["adjacent (times)"] == 1 and row["share contexts"] and row["cosine"] == 0
    groups = adjacency_groups(pairs, top=10)
    assert {(r.a, r.b) for r in groups[GROUPS[0]].itertuples()} == {("t0", "t4"), ("t1", "t4")}
    assert {(r.a, r.b) for r in groups[GROUPS[1]].itertuples()} == {("t0", "t1"), ("t2", "t3")}
    assert set(groups[GROUPS[2]]["same class"]) == {False} and len(groups[GROUPS[2]]) <= 2
    assert list(adjacency_summary(groups)["pairs"]) == [2, 2, len(groups[GROUPS[2]])]
    topics = {"t0": "farm", "t4": "sea"}               # a topic split: t0 and t4 no longer share contexts
    assert ("t0", "t4") not in {(r.a, r.b) for r in adjacency_groups(pair_table(
        emb, sentences, stoi, list(stoi), classes, topics))[GROUPS[0]].itertuples()}


def test_train_skipgram_learns_and_is_reproducible():
    corpus = cm.make_corpus(60, 5, seed=0)
    tok = get_tokenizer("word", corpus.texts())
    sents = [tok.encode(s) for s in corpus.sentences()]
    m1, h1 = train_skipgram(sents, tok.vocab_size, dim=8, steps=20, window=2, batch_size=256, seed=3)
    m2, _ = train_skipgram(sents, tok.vocab_size, dim=8, steps=20, window=2, batch_size=256, seed=3)
    assert len(h1.steps) == 20 and h1.steps[-1]["loss"] < h1.steps[0]["loss"]
    assert torch.equal(m1.embeddings, m2.embeddings)


# ----------------------------------------------------------------------------- the exercises
@pytest.fixture(scope="module")
def chapter():
    corpus = cm.make_corpus(80, 5, seed=0)
    tok = get_tokenizer("word", corpus.texts())
    sents = [tok.encode(s) for s in corpus.sentences()]
    variant = [tok.encode(s) for s in cm.make_corpus(80, 5, seed=0, classmates_adjacent=0.5).sentences()]
    return tok, sents, variant


def test_chapter_3_1_right_answers_pass_and_wrong_ones_fail(chapter):
    tok, sents, variant = chapter
    window = 5
    ex = ch03_1.exercises(sents, tok, window, variant)
    n = len(sents[0])
    pairs = sum(min(i, window) + min(n - 1 - i, window) for i in range(n))
    counts = Counter(i for s in sents for i in s)
    weights = {i: counts[i] ** 0.75 for i in range(tok.vocab_size)}
    cow = tok.stoi["cow"]
    noise = weights[cow] / sum(weights.values())
    red, brown = tok.stoi["red"], tok.stoi["brown"]
    one_way = sum((a, b) == (red, brown) for s in variant for a, b in zip(s, s[1:]))
    both = one_way + sum((a, b) == (brown, red) for s in variant for a, b in zip(s, s[1:]))
    right = {"3.1.1": pairs, "3.1.2": noise, "3.1.3": both}
    assert set(ex) == set(right)
    for key, answer in right.items():
        assert ex[key].check(answer), key
        assert not states_answer(ex[key].hint, answer), key
    assert 0 < one_way < both
    assert refuses(ex["3.1.1"], n * 2 * window, n * (n - 1), pairs // 2)             # no edges; every pair; unordered
    assert refuses(ex["3.1.2"], counts[cow] / sum(counts.values()), 1 / tok.vocab_size, weights[cow])
    assert refuses(ex["3.1.3"], 0, one_way, 2 * both)                                   # default; one order; twice


def test_chapter_3_1_exercises_follow_their_arguments(chapter):
    tok, sents, variant = chapter
    assert ch03_1.exercises(sents, tok, 2, variant)["3.1.1"].check(ch03_1.pairs_of(sents[0], 2))
    assert not ch03_1.exercises(sents, tok, 2, variant)["3.1.1"].check(ch03_1.pairs_of(sents[0], 5))
    on_default = ch03_1.exercises(sents, tok, 5, sents)
    assert on_default["3.1.3"].check(0)                 # the default corpus never puts red next to brown
    other = ch03_1.exercises(sents, tok, 5, variant, word="pig")
    assert not other["3.1.2"].check(ch03_1.noise_probability(sents, tok.vocab_size, tok.stoi["cow"]))
    assert math.isclose(sum(ch03_1.noise_probability(sents, tok.vocab_size, i) for i in range(tok.vocab_size)), 1,
                        rel_tol=1e-5)
    with pytest.raises(ValueError, match="vocabulary"):
        ch03_1.exercises(sents, tok, 5, variant, word="zebra")
