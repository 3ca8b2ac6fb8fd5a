"""Pretraining objectives wired for fit(): CLM, MLM + pair loss, unigram entropy, probe, samples."""
import math

import pytest
import torch
import torch.nn.functional as F

from labkit.data.corpus import make_corpus
from labkit.data.pretraining import IGNORE, causal_lm_blocks, encode_pairs, sop_pairs, token_stream
from labkit.data.tokenizer import get_tokenizer
from labkit.nn.transformer import GPT, BertForPretraining, TransformerConfig
from labkit.objectives import (MLMPairForward, SampleEvery, clm_forward, clm_loss, linear_probe, mean_pool,
                               mlm_pair_loss, pair_accuracy, unigram_entropy)
from labkit.train import fit

CORPUS = make_corpus(120, 20, seed=0)
TOK = get_tokenizer("word", CORPUS.texts())


def test_unigram_entropy():
    assert unigram_entropy(torch.tensor([3, 3, 3])) == 0.0
    assert math.isclose(unigram_entropy(torch.tensor([0, 1, 2, 3])), math.log(4), rel_tol=1e-9)
    assert math.isclose(unigram_entropy(torch.tensor([0, 0, 0, 1])), -(0.75 * math.log(0.75) + 0.25 * math.log(0.25)))
    with pytest.raises(ValueError, match="stream"):
        unigram_entropy(torch.tensor([], dtype=torch.long))


def test_clm_loss_starts_near_ln_v_and_drops_below_unigram_entropy():
    torch.manual_seed(0)
    stream = token_stream(TOK, CORPUS.texts())
    data = causal_lm_blocks(stream, 24)
    cfg = TransformerConfig(vocab_size=TOK.vocab_size, max_len=32, d_model=32, n_heads=2, n_layers=1)
    gpt = GPT(cfg)
    seen = []
    sampler = SampleEvery(lambda m: TOK.decode(m.generate(torch.tensor([[TOK.stoi["once"]]]), 5, greedy=True)[0]),
                          every=40)
    hist = fit(gpt, data, steps=80, batch_size=16, lr=1e-2, forward=clm_forward,
               loss_fn=clm_loss, callbacks=[sampler], progress=False)
    assert abs(hist.steps[0]["loss"] - math.log(TOK.vocab_size)) < 0.3
    assert hist.steps[-1]["loss"] < unigram_entropy(stream) - 1.0
    assert [s for s, _ in sampler.printed] == [40, 80] and sampler.printed[0][1].startswith("once")


def test_mlm_pair_loss_is_the_sum_and_only_at_masked_positions():
    torch.manual_seed(0)
    cfg = TransformerConfig(vocab_size=TOK.vocab_size, max_len=32, d_model=32, n_heads=2, n_layers=1)
    model = BertForPretraining(cfg)
    batch = encode_pairs(TOK, sop_pairs([d.sentences for d in CORPUS.train], 8, seed=0), 32).tensors
    torch.manual_seed(1)
    out, y = MLMPairForward(TOK)(model, batch)
    mlm_logits, labels, pair_logits = out
    assert (labels != IGNORE).any() and labels.shape == batch[0].shape
    mlm = F.cross_entropy(mlm_logits.reshape(-1, TOK.vocab_size), labels.reshape(-1), ignore_index=IGNORE)
    assert torch.allclose(mlm_pair_loss(out, y), mlm + F.cross_entropy(pair_logits, y))
    assert torch.allclose(mlm_pair_loss((mlm_logits, labels, None), y), mlm)
    assert 0 <= float(pair_accuracy(out, y)) <= 1


def test_mean_pool_ignores_padding_and_probe_learns():
    h = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]])
    assert torch.allclose(mean_pool(h, torch.tensor([[1, 1, 0]])), torch.tensor([[2.0, 3.0]]))
    g = torch.Generator().manual_seed(0)
    x = torch.randn(80, 4, generator=g)
    y = (x[:, 0] > 0).long()
    assert linear_probe(x[:40], y[:40], x[40:], y[40:], epochs=100, lr=0.1) > 0.9
    with pytest.raises(ValueError, match="lengths"):
        linear_probe(x[:40], y[:30], x[40:], y[40:])
