"""Chapter 5's exercises (labkit.labs.ch05): each passes the right answer, worked out by hand or by a second
route, and refuses the naive answer, the article's, a constant and an answer that ignores an argument; no hint
states its answer."""
import os

import numpy as np
import pytest
import torch

from labkit.data.reviews import HELD_OUT_WORDS, make_reviews
from labkit.data.vocab import Vocab, tokenize
from labkit.labs import ch05
from labkit.labs.lab05 import article_parameter_count
from labkit.project import imbalanced_subset
from labkit.transfer import RunResult
from test_labs import refuses, states_answer


def _no_hint_states_the_answer(ex, answers):
    for key, answer in answers.items():
        assert not states_answer(ex[key].hint, answer), key


# ----------------------------------------------------------------------------- 5.1
@pytest.mark.parametrize("n", [256, 1024])
def test_5_1_right_answers_pass_and_naive_ones_fail(n):
    ex = ch05.exercises_5_1(n, n_gpu=4096)
    right = {"5.1.1": 2 * n ** 3, "5.1.2": 4, "5.1.3": 192.0}      # 3 x 4096^2 x 4 bytes = 192 MiB
    for key, answer in right.items():
        assert ex[key].check(answer), key
    _no_hint_states_the_answer(ex, right)
    other = 1024 if n == 256 else 256
    assert refuses(ex["5.1.1"], n ** 3, n ** 2, 2 * n ** 2, 2 * other ** 3)    # multiplications only; another n
    assert refuses(ex["5.1.2"], 7, 5, 1, 0)            # the article's "3.6 and above"; 3.6-3.10; one; none
    assert refuses(ex["5.1.3"], 64, 128, 384, 3 * 4096 ** 2 * 4,                 # one matrix, two, float64, bytes
                   3 * n ** 2 * 4 / 2 ** 20)                                      # this run's n, not the gpu one


# ----------------------------------------------------------------------------- 5.2
@pytest.fixture(scope="module")
def article():
    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras")
    if keras.backend.backend() != "torch":
        pytest.skip("keras was imported with another backend")
    words = ["hello", "world", "this", "is", "a", "test"]
    word_index = {w: i for i, w in enumerate(words)}
    inputs = keras.Input(shape=(6,))
    x = keras.layers.Embedding(7, 16)(inputs)
    x = keras.layers.Bidirectional(keras.layers.LSTM(32, return_sequences=True))(x)
    model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(x))
    test_sequence = keras.utils.pad_sequences([[word_index[w] for w in ["hello", "world", "is", "this"]]], maxlen=6)
    return model, test_sequence, word_index


def test_5_2_right_answers_pass_and_naive_ones_fail(article):
    model, test_sequence, word_index = article
    ex = ch05.exercises_5_2(model, test_sequence, word_index, vocab_size=7, embed_dim=16, units=32)
    torch_count = article_parameter_count() + 2 * 4 * 32                 # PyTorch: bias_ih and bias_hh
    right = {"5.2.1": (3, 6, 1), "5.2.2": 3, "5.2.3": torch_count}
    for key, answer in right.items():
        assert ex[key].check(answer), key
    assert ex["5.2.1"].check([3, 6, 1]) and ex["5.2.1"].check(torch.Size([3, 6, 1]))
    _no_hint_states_the_answer(ex, {"5.2.2": 3, "5.2.3": torch_count})
    assert "(3, 6, 1)" not in ex["5.2.1"].hint
    assert refuses(ex["5.2.1"], (3, 1), (3,), (1, 6, 1), (3, 6), (3.0, 6.0, 1.0), (True, 6, 1), "3, 6, 1", 18)
    assert refuses(ex["5.2.2"], 1, 2, 0, 6)            # the real "hello"; the padding alone; none; all
    assert refuses(ex["5.2.3"], article_parameter_count(),                # the Keras count
                   article_parameter_count() + 4 * 32,                    # the second bias in one direction only
                   article_parameter_count() + 2 * 32)


# ----------------------------------------------------------------------------- 5.3
def _run(arm, acc, trainable):
    return RunResult(arm, 64, acc, 0.5, trainable, 1.0, history=None)


@pytest.fixture(scope="module")
def reviews():
    return make_reviews(seed=0, n_test=60)


def test_5_3_right_answers_pass_and_naive_ones_fail(reviews):
    vocab = Vocab.build(reviews.texts("train"))
    results = [_run("bilstm-scratch", 0.50, 30_000), _run("bilstm-pretrained-frozen", 0.70, 129),
               _run("bilstm-pretrained", 0.82, 30_000)]
    ex = ch05.exercises_5_3(vocab, reviews, results)
    test_tokens = [w for t in reviews.texts("test") for w in tokenize(t)]
    types = len(set(test_tokens) - set(vocab.words))
    right = {"5.3.1": types, "5.3.2": 129, "5.3.3": 32.0}
    for key, answer in right.items():
        assert ex[key].check(answer), key
    _no_hint_states_the_answer(ex, right)
    held_out = sum(len(g["adj"]) for g in HELD_OUT_WORDS.values())
    tokens = sum(w not in vocab for w in test_tokens)
    assert tokens != types and held_out != types
    assert refuses(ex["5.3.1"], tokens, held_out, 0)                   # tokens, not types; only the adjectives
    assert refuses(ex["5.3.2"], 128, 65, 30_000)                       # no bias; one direction; the whole model
    assert refuses(ex["5.3.3"], -32.0, 0.32, 20.0, 12.0)               # sign; a fraction; the frozen arm's gaps
    with pytest.raises(ValueError, match="bilstm-pretrained-frozen"):
        ch05.exercises_5_3(vocab, reviews, results[::2])


def test_5_3_follows_its_arguments(reviews):
    vocab = Vocab.build(reviews.texts("train"))
    other = [_run("bilstm-scratch", 0.50, 30_000), _run("bilstm-pretrained-frozen", 0.70, 65),
             _run("bilstm-pretrained", 0.45, 30_000)]
    ex = ch05.exercises_5_3(vocab, reviews, other)
    assert ex["5.3.2"].check(65) and ex["5.3.3"].check(-5.0) and not ex["5.3.3"].check(32.0)
    assert ex["5.3.1"].check(len({w for t in reviews.texts("test") for w in tokenize(t)} - set(vocab.words)))


# ----------------------------------------------------------------------------- 5.4
def test_5_4_right_answers_pass_and_naive_ones_fail(reviews):
    vocab = Vocab.build(reviews.texts("train"))
    vocab_all = Vocab.build(reviews.texts("train") + reviews.texts("val") + reviews.texts("test"))
    val = imbalanced_subset(reviews.val, 40, 7 / 8, seed=1)
    seeds = [0.70, 0.90, 0.75, 0.80]
    ex = ch05.exercises_5_4(vocab, reviews, seeds, val)
    tokens = [w for t in reviews.texts("test") for w in tokenize(t)]
    rate = sum(w not in vocab for w in tokens) / len(tokens)
    type_rate = len(set(tokens) - set(vocab.words)) / len(set(tokens))
    right = {"5.4.1": rate, "5.4.2": 20.0, "5.4.3": 35 / 40}
    for key, answer in right.items():
        assert ex[key].check(answer), key
    _no_hint_states_the_answer(ex, right)
    assert refuses(ex["5.4.1"], 0.0, type_rate, 100 * rate,                          # the all-data vocabulary;
                   sum(w not in vocab_all for w in tokens) / len(tokens))           # types; percent
    assert refuses(ex["5.4.2"], float(100 * np.std(seeds)), 0.2, 0.0, 90.0)          # std; a fraction; max
    assert refuses(ex["5.4.3"], 0.5, 5 / 40, 1.0)                                    # balanced; minority; all
    with pytest.raises(ValueError, match="seed_val_acc"):
        ch05.exercises_5_4(vocab, reviews, seeds[:1], val)
    assert ch05.exercises_5_4(vocab, reviews, [0.5, 0.6], val)["5.4.2"].check(10.0)  # follows its argument


def test_same_shape_accepts_sequences_of_whole_numbers_only():
    check = ch05.same_shape((3, 6, 1))
    assert check((3, 6, 1)) and check([3, 6, 1]) and check(np.array([3, 6, 1]))
    assert not check(3) and not check((3, 6)) and not check((3.0, 6, 1))
