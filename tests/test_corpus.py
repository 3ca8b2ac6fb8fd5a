"""The generated corpus and the two tokenizers."""
import itertools

import pytest

from labkit.data.corpus import MARKERS, TOPICS, make_corpus, word_classes, word_topics
from labkit.data.tokenizer import SPECIALS, CharTokenizer, WordTokenizer, get_tokenizer


def test_corpus_is_reproducible_and_split():
    a, b = make_corpus(50, 10, seed=3), make_corpus(50, 10, seed=3)
    assert a.texts() == b.texts() and a.texts("val") == b.texts("val")
    assert a.texts() != make_corpus(50, 10, seed=4).texts()
    assert len(a.train) == 50 and len(a.val) == 10
    assert a.texts("val") != a.texts()[:10]  # val is drawn with its own seed


def test_documents_follow_the_markers_and_one_topic():
    corpus = make_corpus(200, 10, seed=0)
    topics = word_topics()
    for doc in corpus.train:
        assert [s.split()[0] for s in doc.sentences] == list(MARKERS)
        assert {topics[w] for w in doc.text.split() if w in topics} == {doc.topic}
    assert {d.topic for d in corpus.train} == set(TOPICS)


def test_words_of_one_class_are_never_adjacent():
    classes = word_classes()
    corpus = make_corpus(300, 10, seed=1)
    for s in corpus.sentences():
        for a, b in itertools.pairwise(s.split()):
            assert not (a in classes and b in classes and classes[a] == classes[b]), s


def test_corpus_refuses_bad_sizes():
    with pytest.raises(ValueError, match="n_train"):
        make_corpus(0)
    with pytest.raises(ValueError, match="split"):
        make_corpus(5, 5).texts("test")


def test_word_tokenizer_round_trip_and_specials():
    tok = WordTokenizer(["The fox eats the berries.", "a cat ."])
    assert tok.itos[:5] == list(SPECIALS) and tok.pad_id == 0
    ids = tok.encode("the fox eats the berries .")
    assert tok.decode(ids) == "the fox eats the berries ."
    assert tok.encode("the zebra")[1] == tok.unk_id
    assert tok.encode("[MASK] fox") == [tok.mask_id, tok.stoi["fox"]]
    ids, types = tok.encode_pair("a cat .", "the fox .")
    assert ids[0] == tok.cls_id and ids.count(tok.sep_id) == 2
    assert types == [0] * 5 + [1] * 4


def test_pad_and_char_tokenizer():
    tok = CharTokenizer(["abc ab"])
    assert tok.decode(tok.encode("cab a")) == "cab a"
    ids, mask = tok.pad([[5, 6, 7], [5]])
    assert ids.tolist() == [[5, 6, 7], [5, 0, 0]] and mask.tolist() == [[1, 1, 1], [1, 0, 0]]
    ids, mask = tok.pad([[5, 6, 7]], max_len=2)
    assert ids.shape == (1, 2)


def test_factory_names_the_parameter():
    assert isinstance(get_tokenizer("word", ["a b"]), WordTokenizer)
    with pytest.raises(ValueError, match="name must be one of 'word', 'char'"):
        get_tokenizer("bpe", ["a b"])
    with pytest.raises(ValueError, match="texts"):
        WordTokenizer([])
