"""The pretraining batch builders, checked by their statistics on large seeded samples."""
import pytest
import torch

from labkit.data.corpus import make_corpus
from labkit.data.pretraining import (IGNORE, causal_lm_blocks, encode_pairs, mask_tokens, nsp_pairs, sop_pairs,
                                     token_stream)
from labkit.data.tokenizer import get_tokenizer

CORPUS = make_corpus(300, 20, seed=0)
TOK = get_tokenizer("word", CORPUS.texts())
DOCS = [d.sentences for d in CORPUS.train]
TAGGED = [[f"{d} {i}" for i in range(len(doc))] for d, doc in enumerate(DOCS)]  # "doc position"


def _where(s):
    d, i = s.split()
    return int(d), int(i)


def _mask(ids, seed=0, **kw):
    g = torch.Generator().manual_seed(seed)
    return mask_tokens(ids, vocab_size=TOK.vocab_size, mask_id=TOK.mask_id, special_ids=TOK.special_ids,
                       generator=g, **kw)


def _batch():
    data = encode_pairs(TOK, sop_pairs(DOCS, 2000, seed=0), max_len=32)
    return data.tensors[0]


def test_mlm_statistics():
    ids = _batch()
    special = torch.isin(ids, torch.tensor(TOK.special_ids))
    corrupted, labels = _mask(ids)
    chosen = labels != IGNORE
    assert not (chosen & special).any(), "special tokens must never be chosen"
    assert torch.equal(corrupted[special], ids[special])
    rate = chosen.sum().item() / (~special).sum().item()
    assert abs(rate - 0.15) < 0.01, rate
    assert torch.equal(labels[chosen], ids[chosen])
    n = chosen.sum().item()
    masked = (corrupted[chosen] == TOK.mask_id).sum().item() / n
    kept = (corrupted[chosen] == ids[chosen]).sum().item() / n
    replaced = 1 - masked - kept
    # a random replacement equals the original with probability 1/(non-special vocab): tiny, inside the tolerance
    assert abs(masked - 0.8) < 0.02 and abs(kept - 0.1) < 0.02 and abs(replaced - 0.1) < 0.02, (masked, kept)
    assert not torch.isin(corrupted[chosen & (corrupted != TOK.mask_id)], torch.tensor(TOK.special_ids)).any()
    assert torch.equal(corrupted[~chosen], ids[~chosen])  # nothing else changes


def test_mlm_is_seeded_and_checks_arguments():
    ids = _batch()[:100]
    a, b, c = _mask(ids, seed=1), _mask(ids, seed=1), _mask(ids, seed=2)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) and not torch.equal(a[1], c[1])
    with pytest.raises(ValueError, match="mlm_prob"):
        _mask(ids, mlm_prob=1.5)
    with pytest.raises(ValueError, match="mask_frac"):
        _mask(ids, mask_frac=0.95, random_frac=0.1)


def test_mlm_loss_only_at_chosen_positions():
    ids = _batch()[:64]
    _, labels = _mask(ids)
    logits = torch.randn(*ids.shape, TOK.vocab_size, requires_grad=True)
    torch.nn.functional.cross_entropy(logits.view(-1, TOK.vocab_size), labels.view(-1), ignore_index=IGNORE).backward()
    has_grad = logits.grad.abs().sum(-1) > 0
    assert torch.equal(has_grad, labels != IGNORE)


def test_nsp_balance_and_labels():
    pairs = nsp_pairs(TAGGED, 4000, seed=0)
    assert abs(sum(y for *_, y in pairs) / len(pairs) - 0.5) < 0.03
    for a, b, y in pairs:
        (da, ia), (db, ib) = _where(a), _where(b)
        if y == 0:
            assert da == db and ib == ia + 1
        else:
            assert da != db
    assert nsp_pairs(DOCS, 50, seed=3) == nsp_pairs(DOCS, 50, seed=3)


def test_sop_balance_and_labels():
    pairs = sop_pairs(TAGGED, 4000, seed=0)
    assert abs(sum(y for *_, y in pairs) / len(pairs) - 0.5) < 0.03
    for a, b, y in pairs:
        (da, ia), (db, ib) = _where(a), _where(b)
        assert da == db and ib - ia == (1 if y == 0 else -1)


def test_encode_pairs_layout():
    data = encode_pairs(TOK, sop_pairs(DOCS, 5, seed=0), max_len=32)
    ids, tt, mask, y = data.tensors
    for r in range(5):
        n = int(mask[r].sum())
        row = ids[r, :n].tolist()
        assert row[0] == TOK.cls_id and row[-1] == TOK.sep_id and row.count(TOK.sep_id) == 2
        first_sep = row.index(TOK.sep_id)
        assert tt[r, :first_sep + 1].eq(0).all() and tt[r, first_sep + 1:n].eq(1).all()
        assert ids[r, n:].eq(TOK.pad_id).all()
    with pytest.raises(ValueError, match="max_len"):
        encode_pairs(TOK, sop_pairs(DOCS, 5, seed=0), max_len=8)


def test_causal_lm_shift_is_exact():
    stream = token_stream(TOK, CORPUS.texts()[:50])
    assert (stream == TOK.sep_id).sum() == 50
    x, y = causal_lm_blocks(stream, 16).tensors
    assert torch.equal(x[:, 1:], y[:, :-1])
    flat = torch.cat([x[0], y[0, -1:]])
    assert torch.equal(flat, stream[:17])
    assert torch.equal(x[1, 0], stream[16])
    with pytest.raises(ValueError, match="block_size"):
        causal_lm_blocks(stream, 0)
