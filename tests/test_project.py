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
