"""Skip-gram with negative sampling, neighbours and the 2-D projection."""
from collections import Counter

import numpy as np
import pytest
import torch

from labkit.data.corpus import make_corpus, word_classes
from labkit.data.tokenizer import get_tokenizer
from labkit.embeddings import (SkipGramNS, adjacency_counts, cosine_matrix, nearest, noise_distribution,
                               project_2d, skipgram_forward, skipgram_loss, skipgram_pairs)
from labkit.train import fit


def test_noise_distribution_is_unigram_to_the_three_quarters():
    p = noise_distribution([0, 1, 16, 81])
    expected = np.array([0, 1, 8, 27]) / 36
    assert torch.allclose(p, torch.tensor(expected, dtype=torch.float), atol=1e-7)
    with pytest.raises(ValueError, match="counts"):
        noise_distribution([0, 0])


def test_skipgram_pairs_stay_in_window_and_sentence():
    c, x = skipgram_pairs([[1, 2, 3], [4, 5]], window=1)
    assert sorted(zip(c.tolist(), x.tolist())) == [(1, 2), (2, 1), (2, 3), (3, 2), (4, 5), (5, 4)]
    c, _ = skipgram_pairs([[1, 2, 3, 4]], window=2)
    assert len(c) == 2 + 3 + 3 + 2
    with pytest.raises(ValueError, match="window"):
        skipgram_pairs([[1, 2]], window=0)


def test_loss_matches_the_formula_with_fixed_negatives():
    torch.manual_seed(0)
    m = SkipGramNS(6, 4, torch.ones(6) / 6, negatives=2)
    torch.nn.init.normal_(m.out.weight)
    centre, context = torch.tensor([1, 2]), torch.tensor([3, 4])
    torch.manual_seed(1)
    loss = m(centre, context)
    torch.manual_seed(1)
    neg = torch.multinomial(m.noise, 4, replacement=True).view(2, 2)
    v, u, un = m.inp.weight[centre], m.out.weight[context], m.out.weight[neg]
    by_hand = -(torch.log(torch.sigmoid((v * u).sum(1)))
                + torch.log(torch.sigmoid(-torch.einsum("bkd,bd->bk", un, v))).sum(1)).mean()
    assert torch.allclose(loss, by_hand, atol=1e-6)


def test_sgns_puts_words_of_a_class_together():
    torch.manual_seed(0)
    corpus = make_corpus(400, 10, seed=0)
    tok = get_tokenizer("word", corpus.texts())
    sents = [tok.encode(s) for s in corpus.sentences()]
    counts = Counter(i for s in sents for i in s)
    model = SkipGramNS(tok.vocab_size, 24, noise_distribution([counts[i] for i in range(tok.vocab_size)]))
    hist = fit(model, skipgram_pairs(sents, 2), epochs=1, batch_size=512, lr=0.02,
               forward=skipgram_forward, loss_fn=skipgram_loss, progress=False)
    assert hist.steps[-1]["loss"] < 0.6 * hist.steps[0]["loss"]
    classes = word_classes()
    for word in ("cow", "berries", "red", "barn", "eats"):
        top = nearest(model.embeddings, tok.stoi, word, k=3)
        assert all(classes.get(w) == classes[word] for w, _ in top), (word, top)
    # same class (never adjacent) is closer than frequently adjacent pairs
    adj, cos = adjacency_counts(sents, tok.vocab_size), cosine_matrix(model.embeddings)
    s = tok.stoi
    assert adj[s["cow"], s["pig"]] == 0 and adj[s["red"], s["brown"]] == 0
    assert cos[s["cow"], s["pig"]] > cos[s["the"], s["cow"]] + 0.3
    assert cos[s["red"], s["brown"]] > cos[s["a"], s["red"]] + 0.2


def test_nearest_and_projection():
    emb = torch.tensor([[1.0, 0, 0], [0.9, 0.1, 0], [0, 1, 0], [0, 0, 1]])
    stoi = {"a": 0, "b": 1, "c": 2, "d": 3}
    assert nearest(emb, stoi, "a", k=1)[0][0] == "b"
    assert [w for w, _ in nearest(emb, stoi, "a", k=2, among=["c", "d"])] in (["c", "d"], ["d", "c"])
    with pytest.raises(ValueError, match="word"):
        nearest(emb, stoi, "zzz")
    x = torch.randn(50, 8, generator=torch.Generator().manual_seed(0)) * torch.linspace(3, 0.1, 8)
    p = project_2d(x)
    xc = (x - x.mean(0)).numpy()
    _, _, vt = np.linalg.svd(xc, full_matrices=False)
    ref = xc @ vt[:2].T
    for k in range(2):  # the same axes up to sign
        assert np.allclose(np.abs(p[:, k].numpy()), np.abs(ref[:, k]), atol=1e-4)
    assert abs(float(p[:, 0] @ p[:, 1])) < 1e-2 and p[:, 0].var() >= p[:, 1].var()
