"""Chapter 5's pipeline: the unlabelled text, the encoded splits, the arms; and the article's parameter count."""
import os

import pytest
import torch

from labkit.data.reviews import HELD_OUT_WORDS, make_reviews
from labkit.data.vocab import Vocab, tokenize
from labkit.labs.lab05 import article_parameter_count
from labkit.project import (ARMS, compare, encode_reviews, one_thread, pretrain_encoder, save_encoder,
                            unlabelled_reviews)


@pytest.fixture(scope="module")
def data():
    return make_reviews(seed=0, n_train=40, n_val=10, n_test=20)


def test_unlabelled_text_has_held_out_words_and_no_labelled_sentence(data):
    texts = unlabelled_reviews(300, seed=1, exclude=data)
    assert len(texts) == len(set(texts)) == 300 and all(isinstance(t, str) for t in texts)
    labelled = {t for split in ("train", "val", "test") for t in data.texts(split)}
    assert not labelled & set(texts)
    words = {w for t in texts for w in tokenize(t)}
    assert {w for lab in HELD_OUT_WORDS.values() for w in lab["adj"]} <= words
    assert texts == unlabelled_reviews(300, seed=1, exclude=data)  # seeded
    with pytest.raises(ValueError, match="n"):
        unlabelled_reviews(0)


def test_encode_reviews_gives_float_labels_of_shape_n(data):
    vocab = Vocab.build(data.texts("train"))
    ids, lengths, y = encode_reviews(vocab, data.train).tensors
    assert ids.shape[0] == lengths.shape[0] == y.shape[0] == len(data.train)
    assert y.dtype == torch.float32 and y.ndim == 1 and set(y.tolist()) == {0.0, 1.0}
    with pytest.raises(ValueError, match="examples"):
        encode_reviews(vocab, [])


def test_one_thread_restores_the_thread_count():
    before = torch.get_num_threads()
    with one_thread():
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


def test_compare_runs_the_bilstm_arms_on_the_same_examples(data, tmp_path):
    texts = unlabelled_reviews(64, seed=1, exclude=data)
    vocab = Vocab.build(texts + data.texts("train"))
    encoder, history = pretrain_encoder(vocab, texts, embed_dim=8, hidden=8, epochs=1, batch_size=16)
    assert len(history.steps) == 4
    save_encoder(encoder, vocab, tmp_path / "enc.safetensors")
    arms = tuple(a for a in ARMS if a.startswith("bilstm"))
    results = compare(data, vocab, tmp_path / "enc.safetensors", None, 8, epochs=1, minilm_epochs=1,
                      embed_dim=8, hidden=8, arms=arms)
    assert [r.arm for r in results] == list(arms)
    frozen = next(r for r in results if r.arm == "bilstm-pretrained-frozen")
    assert frozen.trainable == 2 * 8 + 1  # only the head: Linear(2H, 1)
    assert all(0.0 <= r.test_acc <= 1.0 for r in results)
    with pytest.raises(ValueError, match="arms"):
        compare(data, vocab, tmp_path / "enc.safetensors", None, 8, epochs=1, minilm_epochs=1, arms=("lstm",))


def test_article_parameter_count_matches_keras():
    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras")
    if keras.backend.backend() != "torch":
        pytest.skip("keras was imported with another backend")
    inputs = keras.Input(shape=(6,))
    x = keras.layers.Embedding(7, 16)(inputs)
    x = keras.layers.Bidirectional(keras.layers.LSTM(32, return_sequences=True))(x)
    model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(x))
    assert model.count_params() == article_parameter_count(7, 16, 32) == 12_721
    assert model.output.shape == (None, 6, 1)  # one value per token: the article's defect 3


def test_closer_sentiment_finds_a_word_identical_to_a_seen_one():
    from labkit.nn.bilstm import BiLSTMEncoder
    from labkit.project import closer_sentiment, state_at_word
    vocab = Vocab.build(["the screen is great and", "the screen is awful and", "superb"])
    torch.manual_seed(0)
    encoder = BiLSTMEncoder(len(vocab), 8, 8)
    # a "held-out" word that is one of the seen words has cosine 1 to itself, so it must land on its side
    rows = closer_sentiment(encoder, vocab, {"great": "positive", "awful": "negative"},
                            {"positive": ["great"], "negative": ["awful"]})
    assert [r["closer to"] for r in rows] == ["positive", "negative"]
    assert rows[0]["cos to seen positive"] == 1.0 and rows[1]["cos to seen negative"] == 1.0
    assert state_at_word(encoder, vocab, "superb").shape == (16,)
    with pytest.raises(ValueError, match="seen"):
        closer_sentiment(encoder, vocab, {"great": "positive"}, {"positive": []})


# ----------------------------------------------------------------------------- verdicts: each wording follows the numbers
from labkit.project import (balance_verdict, chance_verdict, class_recall, imbalanced_subset, leak_verdict,  # noqa: E402
                            majority_accuracy, noise_verdict, oov_rate, overfit_verdict, padding_effect,
                            padding_verdict, predict, pretraining_verdict, seed_verdict, selection_verdict,
                            throughput_verdict, token_loss, train_bilstm, train_throughput, trend_verdict, versus)
from labkit.nn import BiLSTMClassifier, BiLSTMEncoder  # noqa: E402
from labkit.train import History  # noqa: E402


def test_versus_beats_trails_and_ties():
    acc = {"a": 0.80, "b": 0.50, "c": 0.51}
    assert versus(acc, "a", "b") == "a beats b: 0.800 vs 0.500 (+30.0 points)"
    assert versus(acc, "b", "a").startswith("b is behind a")
    assert versus(acc, "c", "b").startswith("c ties with (within 2 points) b")


def test_chance_verdict_above_below_near():
    assert chance_verdict("val", 0.81) == "val 0.810: 31 points above chance (0.50)"
    assert "below chance" in chance_verdict("val", 0.30)
    assert "within 10 points of chance" in chance_verdict("test", 0.55)


def test_trend_verdict_rises_falls_stays():
    assert trend_verdict("val", [16, 256], [0.53, 0.99]).endswith("it rises as labels grow")
    assert trend_verdict("val", [16, 256], [0.90, 0.60]).endswith("it falls as labels grow")
    assert "stays within 5 points" in trend_verdict("test", [16, 64, 256], [0.48, 0.47, 0.51])
    with pytest.raises(ValueError, match="two sizes"):
        trend_verdict("x", [16], [0.5])


def test_pretraining_verdict_says_why_only_when_the_numbers_say_so():
    agree = {"random": 0.5, "pretrained": 0.83}
    worked = pretraining_verdict({"bilstm-pretrained": 0.85, "bilstm-scratch": 0.50}, agree, 20, 0, 20)
    assert "raised its test accuracy by 35.0 points" in worked
    assert "this pretraining worked because its text was written to contain them" in worked
    partly = pretraining_verdict({"bilstm-pretrained": 0.85, "bilstm-scratch": 0.50}, agree, 12, 0, 20)
    assert "written to contain them" not in partly and "part of what the test needs" in partly
    flat = pretraining_verdict({"bilstm-pretrained": 0.51, "bilstm-scratch": 0.50}, agree, 20, 0, 20)
    assert "left its test accuracy within 2 points" in flat and "bought nothing" in flat
    worse = pretraining_verdict({"bilstm-pretrained": 0.40, "bilstm-scratch": 0.50}, agree, 20, 0, 20)
    assert "lowered its test accuracy by 10.0 points" in worse and "worked" not in worse


def test_seed_and_noise_verdicts():
    assert seed_verdict("val", [0.70, 0.80, 0.75]).startswith("val over 3 seeds: 0.700 to 0.800, a spread of 10.0 points")
    with pytest.raises(ValueError, match="two seeds"):
        seed_verdict("val", [0.7])
    assert "larger than the seed spread of 5.0 points" in noise_verdict("gap", 0.08, 0.05)
    assert "within the seed spread" in noise_verdict("gap", -0.03, 0.05)
    assert "cannot tell them apart" in noise_verdict("gap", 0.0, 0.05)


def test_leak_verdict_follows_the_rates_and_the_rows():
    leak = leak_verdict({"train": 0.159, "all": 0.0}, unchanged_rows=41, test_only=41)
    assert "15.9% of the test tokens" in leak and "chosen by looking at the test split" in leak
    assert "Training moved 0 of those 41" in leak and "nothing but the leak" in leak
    moved = leak_verdict({"train": 0.159, "all": 0.0}, unchanged_rows=30, test_only=41)
    assert "Training moved 11 of those 41 embedding rows." in moved
    none = leak_verdict({"train": 0.0, "all": 0.0}, unchanged_rows=0, test_only=0)
    assert "chosen by looking" not in none and "Training moved" not in none


def test_padding_verdict_packed_and_unpacked():
    same = padding_verdict("packed", {"alone": 0.8, "padded": 0.8, "max_change": 1e-7, "flipped": 0.0})
    assert "changes no logit" in same
    changed = padding_verdict("unpacked", {"alone": 0.8, "padded": 0.7, "max_change": 3.2, "flipped": 0.12})
    assert "flips 12.0% of the predictions" in changed and "(-10.0 points)" in changed
    logits_only = padding_verdict("unpacked", {"alone": 0.8, "padded": 0.8, "max_change": 0.5, "flipped": 0.0})
    assert "flips no prediction" in logits_only


def test_balance_verdict_against_the_majority_baseline():
    level = balance_verdict(0.875, 0.875, {0: 0.2, 1: 0.97}, minority=0)
    assert "level with the 0.875" in level and "minority label 0: 0.200" in level
    assert "above the 0.500" in balance_verdict(0.6, 0.5, {0: 0.3, 1: 0.9}, minority=0)
    assert "below the 0.875" in balance_verdict(0.85, 0.875, {0: 0.2, 1: 0.94}, minority=0)


def _history(val_loss, val_acc):
    return History(epochs=[{"epoch": i + 1, "train_loss": 1.0 / (i + 1), "val_loss": v, "val_acc": a}
                           for i, (v, a) in enumerate(zip(val_loss, val_acc))])


def test_overfit_verdict_reads_the_validation_curve():
    rising = overfit_verdict(_history([0.7, 0.6, 0.8, 0.9], [0.6, 0.77, 0.8, 0.8]))
    assert "lowest at epoch 2" in rising and "(overfitting)" in rising and "over-confident" in rising
    falls = overfit_verdict(_history([0.7, 0.6, 0.8, 0.9], [0.6, 0.8, 0.7, 0.65]))
    assert "validation accuracy fell too" in falls
    improving = overfit_verdict(_history([0.7, 0.6, 0.5], [0.6, 0.7, 0.8]))
    assert "did not overfit" in improving and "lowest at epoch 3" in improving
    with pytest.raises(ValueError, match="val_loss"):
        overfit_verdict(History(epochs=[{"epoch": 1, "train_loss": 0.5}]))


def test_selection_verdict_measures_what_peeking_adds():
    rows = [{"config": "A", "val": 0.82, "test": 0.47}, {"config": "B", "val": 0.80, "test": 0.51}]
    peek = selection_verdict(rows)
    assert "validation split: A" in peek and "test split: B" in peek and "4.0 points more" in peek
    honest = selection_verdict([{"config": "A", "val": 0.82, "test": 0.55}, {"config": "B", "val": 0.8, "test": 0.5}])
    assert "same test score" in honest
    with pytest.raises(ValueError, match="two configurations"):
        selection_verdict(rows[:1])


def test_throughput_verdict_compares_the_extremes():
    assert throughput_verdict({1: 40.0, 16: 270.0, 128: 800.0}, "cpu").endswith("20.0 times as many")
    assert throughput_verdict({1: 40.0, 128: 20.0}, "cpu").endswith("0.5 times as few")


# ----------------------------------------------------------------------------- cautions helpers
def test_oov_rate_counts_tokens_not_types():
    vocab = Vocab.build(["the screen is great"])
    assert oov_rate(vocab, ["the screen is superb", "superb superb"]) == pytest.approx(3 / 6)
    assert oov_rate(vocab, ["the screen is great"]) == 0.0
    with pytest.raises(ValueError, match="tokens"):
        oov_rate(vocab, [])


def test_imbalanced_subset_and_majority_accuracy(data):
    sub = imbalanced_subset(data.train, 16, 0.75, seed=0)
    assert len(sub) == 16 and sum(y for _, y in sub) == 12
    assert sub == imbalanced_subset(data.train, 16, 0.75, seed=0) != imbalanced_subset(data.train, 16, 0.75, seed=1)
    assert majority_accuracy(sub) == 0.75 and majority_accuracy(data.test) == 0.5
    with pytest.raises(ValueError, match="positive_fraction"):
        imbalanced_subset(data.train, 16, 1.5)
    with pytest.raises(ValueError, match="needs"):
        imbalanced_subset(data.train, 40, 1.0)   # 40 positives; the 40-review training split has 20


def test_class_recall_of_a_constant_model(data):
    class Always(torch.nn.Module):   # predicts "positive" for every review
        def forward(self, ids, lengths):
            return torch.ones(ids.shape[0])
    r = class_recall(Always(), Vocab.build(data.texts("train")), data.test)
    assert r == {"acc": 0.5, 0: 0.0, 1: 1.0}
    assert predict(Always(), Vocab.build(data.texts("train")), data.texts("test")).shape == (len(data.test),)


def test_padding_effect_packed_is_zero_unpacked_is_not(data):
    vocab = Vocab.build(data.texts("train"))
    torch.manual_seed(0)
    packed = BiLSTMClassifier(BiLSTMEncoder(len(vocab), 8, 8))
    unpacked = BiLSTMClassifier(BiLSTMEncoder(len(vocab), 8, 8, pack=False))
    unpacked.load_state_dict(packed.state_dict())   # the same weights; only the reading of padding differs
    p, u = padding_effect(packed, vocab, data.val, extra=10), padding_effect(unpacked, vocab, data.val, extra=10)
    assert p["max_change"] < 1e-5 and p["alone"] == p["padded"] and p["flipped"] == 0.0
    assert u["max_change"] > 1e-3
    assert p["alone"] == pytest.approx(u["alone"], abs=1e-9)   # alone, nothing is padded: the two models agree
    with pytest.raises(ValueError, match="pack"):
        BiLSTMEncoder(10, pack="yes")


def test_token_loss_ignores_padding_only_when_asked():
    torch.manual_seed(0)
    logits, tags = torch.randn(1, 4, 3), torch.tensor([[2, 0, 1, 2]])
    lengths = torch.tensor([4])
    padded_logits = torch.cat([logits, torch.randn(1, 5, 3)], dim=1)
    padded_tags = torch.cat([tags, torch.zeros(1, 5, dtype=torch.long)], dim=1)
    ref = torch.nn.functional.cross_entropy(logits[0], tags[0])
    assert torch.isclose(token_loss(logits, tags, lengths), ref)
    assert torch.isclose(token_loss(padded_logits, padded_tags, lengths), ref)
    assert not torch.isclose(token_loss(padded_logits, padded_tags, lengths, ignore_padding=False), ref)
    with pytest.raises(ValueError, match="logits must be"):
        token_loss(logits[0], tags, lengths)


def test_train_bilstm_reports_every_split_and_takes_examples_and_weights(data):
    vocab = Vocab.build(data.texts("train"))
    sub = imbalanced_subset(data.train, 12, 0.75, seed=0)
    torch.manual_seed(0)
    r, _ = train_bilstm(BiLSTMEncoder(len(vocab), 8, 8), vocab, data, 12, arm="x", epochs=1, lr=1e-2,
                        examples=sub, pos_weight=3 / 9, with_val=True)
    assert r.n_labels == 12 and set(r.accuracy) == {"train", "val", "test"} and r.accuracy["test"] == r.test_acc
    with pytest.raises(ValueError, match="pos_weight"):
        train_bilstm(BiLSTMEncoder(len(vocab), 8, 8), vocab, data, 12, arm="x", epochs=1, lr=1e-2, pos_weight=0)


def test_train_throughput_is_a_positive_rate(data):
    vocab = Vocab.build(data.texts("train"))
    rate = train_throughput(BiLSTMClassifier(BiLSTMEncoder(len(vocab), 8, 8)), vocab, data.texts("train"), 4, steps=2)
    assert rate > 0
    with pytest.raises(ValueError, match="batch_size"):
        train_throughput(BiLSTMClassifier(BiLSTMEncoder(len(vocab), 8, 8)), vocab, data.texts("train"), 0)
