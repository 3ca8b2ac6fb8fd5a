"""Chapter 3.3: the shortcut measures, the verdicts (both ways), the sample statistics, the MLM + pair recipe, and
the chapter's exercises (right answers pass, the usual wrong ones are refused, no hint states the answer)."""
import math

import pytest
import torch

from labkit.data.corpus import PAIR_KINDS, follows_templates, make_corpus, pair_kind, word_topics
from labkit.data.pretraining import encode_pairs, nsp_pairs, sop_pairs
from labkit.data.tokenizer import get_tokenizer
from labkit.labs import ch03_3
from labkit.nn import BertForPretraining, TransformerConfig, count_parameters
from labkit.objectives import (accuracy_by, context_verdict, decoding_verdict, first_words_shortcut,
                               linear_probe_scores, order_verdict, pair_predictions, pretrain_mlm_pair,
                               probe_verdict, sample_stats, shortcut_verdict, topic_shortcut)
from exercise_checks import refuses, states_answer

CORPUS = make_corpus(200, 40, seed=0)
PLAIN = make_corpus(200, 40, seed=0, markers=False)
TOK = get_tokenizer("word", CORPUS.texts())


def _docs(corpus, split="train"):
    return [d.sentences for d in corpus._split(split)]


# ----------------------------------------------------------------------------- shortcuts
def test_the_first_word_solves_sop_only_with_markers():
    for corpus, lo, hi in ((CORPUS, 0.99, 1.0), (PLAIN, 0.55, 0.70)):
        train, held = sop_pairs(_docs(corpus), 2000, seed=1), sop_pairs(_docs(corpus, "val"), 800, seed=2)
        assert lo <= first_words_shortcut(train, held) <= hi


def test_the_topic_solves_nsp_but_not_sop():
    topics = word_topics()
    assert topic_shortcut(nsp_pairs(_docs(CORPUS, "val"), 800, seed=2), topics) > 0.8
    assert abs(topic_shortcut(sop_pairs(_docs(CORPUS, "val"), 800, seed=2), topics) - 0.5) < 0.06
    with pytest.raises(ValueError, match="pairs"):
        topic_shortcut([], topics)


def test_first_words_shortcut_reads_only_the_first_words():
    train = [("a x", "b y", 0), ("b x", "a y", 1)] * 5
    assert first_words_shortcut(train, [("a q", "b r", 0), ("b q", "a r", 1)]) == 1.0
    # the same first words, labels the other way: a table of first words cannot know
    assert first_words_shortcut(train, [("a q", "b r", 1), ("b q", "a r", 0)]) == 0.0
    assert first_words_shortcut(train, [("c q", "d r", 0)]) == 1.0    # unseen key: the majority label (0 on ties)
    with pytest.raises(ValueError, match="n_words"):
        first_words_shortcut(train, train, n_words=0)


def test_verdicts_follow_the_numbers():
    assert "solves it almost entirely" in shortcut_verdict("SOP", "the first word", 0.99)
    assert "solves part of it" in shortcut_verdict("SOP", "the first word", 0.62)
    assert "no better than chance" in shortcut_verdict("SOP", "the topic", 0.51)
    assert "uses the context" in context_verdict(2.0, 3.0)
    assert "by less than 0.5 nats" in context_verdict(2.8, 3.0)
    assert "not below it" in context_verdict(3.2, 3.0)
    assert "only memorises" in probe_verdict("p", {"train": 1.0, "test": 0.2}, 1 / 6)
    assert "generalises beyond them" in probe_verdict("p", {"train": 1.0, "test": 0.8}, 1 / 6)
    assert "does not even fit" in probe_verdict("p", {"train": 0.5, "test": 0.2}, 1 / 6)
    line = order_verdict("m", {"k1": (10, 0.98), "k2": (12, 0.52)})
    assert "k1 0.980 (10 pairs, +48 points from chance)" in line and "k2 0.520 (12 pairs, within 5 points" in line


def test_accuracy_by_kind():
    got = accuracy_by([1, 0, 1, 1], [1, 1, 1, 0], ["a", "b", "a", "b"])
    assert got == {"a": (2, 1.0), "b": (2, 0.0)}
    with pytest.raises(ValueError, match="same length"):
        accuracy_by([1], [1, 0], ["a"])


def test_sample_stats_and_decoding_verdict():
    good = "once there was a small red fox in the woods . first the fox eats the nuts ."
    repeat = "first the fox eats the nuts . then the fox eats the nuts . [SEP] once"
    stats = {"a": sample_stats([good], follows_templates), "b": sample_stats([repeat, "fox fox ."], follows_templates),
             "c": sample_stats(["no full stop"], follows_templates)}
    assert stats["a"] == {"sentences": 2, "follow the templates": 1.0, "repeat an earlier sentence": 0.0}
    assert stats["b"]["sentences"] == 3 and stats["b"]["repeat an earlier sentence"] == pytest.approx(1 / 3)
    assert stats["b"]["follow the templates"] == pytest.approx(2 / 3)
    lines = decoding_verdict(stats)
    assert lines[0] == "no complete sentence from: c."
    assert lines[1].startswith("b: the fewest sentences that follow the templates (67%")
    assert lines[2].startswith("b: the most sentences that repeat an earlier sentence (33%")
    assert decoding_verdict({"a": stats["a"]})[0].startswith("every setting that finished a sentence")
    same = {"x": stats["b"], "y": stats["a"], "z": stats["a"]}
    assert decoding_verdict(same)[0] == ("x: the fewest sentences that follow the templates (67%; the other settings "
                                         "100%).")


# ----------------------------------------------------------------------------- the recipe and the probe
def test_pretrain_mlm_pair_trains_reproducibly_and_predictions_read_the_pair_head():
    cfg = TransformerConfig(vocab_size=TOK.vocab_size, max_len=64, d_model=16, n_heads=2, n_layers=1)
    data = encode_pairs(TOK, sop_pairs(_docs(CORPUS), 128, seed=0), 32)
    model, hist = pretrain_mlm_pair(cfg, TOK, data, 12, batch_size=32, lr=1e-2, seed=0)
    again, _ = pretrain_mlm_pair(cfg, TOK, data, 12, batch_size=32, lr=1e-2, seed=0)
    assert len(hist.steps) == 12 and hist.steps[-1]["loss"] < hist.steps[0]["loss"]
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))
    ids, types, mask, _ = data.tensors
    pred = pair_predictions(model, data, batch_size=100)           # batched, in eval mode, unmasked inputs
    model.eval()
    with torch.no_grad():
        assert torch.equal(pred, model(ids, mask, types)[1].argmax(-1))
    model.train()
    assert pair_predictions(model, data).shape == (128,) and model.training


def test_linear_probe_scores_reports_train_and_test():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(60, 20, generator=g)
    noise = torch.randint(0, 2, (60,), generator=g)            # labels that no feature explains
    scores = linear_probe_scores(x[:20], noise[:20], x[20:], noise[20:], epochs=100, lr=0.3)
    assert scores["train"] == 1.0 and scores["test"] < 0.75    # fits 20 points in 20 dimensions; cannot generalise


# ----------------------------------------------------------------------------- the exercises
@pytest.fixture(scope="module")
def chapter():
    cfg = TransformerConfig(vocab_size=TOK.vocab_size, max_len=64, d_model=32, n_heads=4, n_layers=1)
    model = BertForPretraining(cfg)
    batch = encode_pairs(TOK, sop_pairs(_docs(CORPUS), 16, seed=2), 32).tensors
    pairs = sop_pairs(_docs(PLAIN, "val"), 300, seed=1)
    return model, batch, pairs


def test_chapter_3_3_right_answers_pass_and_wrong_ones_fail(chapter):
    model, batch, pairs = chapter
    ex = ch03_3.exercises(pairs, model, batch, TOK)
    d, V = model.cfg.d_model, TOK.vocab_size
    edge = sum(("there" in a.split() or "sleeps" in a.split() or "there" in b.split() or "sleeps" in b.split())
               for a, b, _ in pairs) / len(pairs)
    ceiling = edge + (1 - edge) / 2
    untrained = (d * d + d) + 2 * d + V               # the MLM transform (Linear, LayerNorm) and the decoder bias
    normal = V - len(set(TOK.special_ids))
    unchanged = 0.1 + 0.1 / normal
    right = {"3.3.1": ceiling, "3.3.2": untrained, "3.3.3": unchanged}
    assert set(ex) == set(right)
    for key, answer in right.items():
        assert ex[key].check(answer), key
        assert not states_answer(ex[key].hint, answer), key
    assert 0.65 < ceiling < 0.85
    assert refuses(ex["3.3.1"], 0.5, 1.0, edge, 0.625)                     # chance; perfect; edges only; first word
    assert refuses(ex["3.3.2"], 0, untrained - V,                          # nothing; forgot the decoder bias
                   untrained + V * d,                                      # forgot that the decoder is tied
                   count_parameters(model))                                # everything
    assert refuses(ex["3.3.3"], 0.1, 0.2, 0.1 + 0.1 / V)                   # naive; both; drawn from every token


def test_chapter_3_3_exercises_follow_their_arguments(chapter):
    model, batch, pairs = chapter
    middle_only = [p for p in pairs if pair_kind(p[0], p[1]) == PAIR_KINDS[1]]
    assert ch03_3.exercises(middle_only, model, batch, TOK)["3.3.1"].check(0.5)
    wide = BertForPretraining(TransformerConfig(vocab_size=TOK.vocab_size, max_len=64, d_model=64, n_heads=4,
                                                n_layers=1))
    assert ch03_3.untrained_by_overwriting(wide, batch, TOK) == 64 * 64 + 64 + 2 * 64 + TOK.vocab_size
    narrow = ch03_3.untrained_by_overwriting(model, batch, TOK)
    assert not ch03_3.exercises(pairs, wide, batch, TOK)["3.3.2"].check(narrow)
    assert math.isclose(ch03_3.order_ceiling(sop_pairs(_docs(PLAIN, "val"), 4000, seed=3)), 0.75, abs_tol=0.02)
    with pytest.raises(ValueError, match="pairs"):
        ch03_3.order_ceiling([])
