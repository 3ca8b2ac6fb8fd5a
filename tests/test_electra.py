"""ELECTRA's replaced-token detection: labels, masking, sampling and where the gradient goes."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from labkit.data.corpus import make_corpus
from labkit.data.pretraining import IGNORE
from labkit.data.tokenizer import get_tokenizer
from labkit.electra import (ELECTRA, Discriminator, MLMGenerator, detection_accuracy, discriminator_loss,
                            electra_forward, electra_loss, replace_tokens, replaced_fraction)
from labkit.nn.transformer import TransformerConfig

CORPUS = make_corpus(64, 4, seed=0)
TOK = get_tokenizer("word", CORPUS.texts())
IDS, MASK = TOK.pad([TOK.encode_pair(t)[0] for t in CORPUS.texts()])
SPECIAL = torch.isin(IDS, torch.tensor(TOK.special_ids))


def _cfg(d):
    return TransformerConfig(vocab_size=TOK.vocab_size, max_len=64, d_model=d, n_heads=2, n_layers=1)


def _model(seed=0):
    torch.manual_seed(seed)
    return ELECTRA(MLMGenerator(_cfg(16)), Discriminator(_cfg(32)), TOK)


class Scripted(nn.Module):
    """A stand-in generator: records its input and returns logits that favour chosen tokens."""

    def __init__(self, favour):
        super().__init__()
        self.favour, self.seen = favour, None
        self.scale = nn.Parameter(torch.tensor(1.0))

    def forward(self, ids, mask=None):
        self.seen = ids.clone()
        return self.scale * 1e4 * F.one_hot(self.favour(ids), TOK.vocab_size).float()


def test_labels_are_1_exactly_where_the_token_changed():
    torch.manual_seed(0)
    out = _model()(IDS, MASK)
    chosen = out.mlm_labels != IGNORE
    assert torch.equal(out.disc_labels, (out.corrupted != IDS).long())
    assert torch.equal(out.corrupted[~chosen], IDS[~chosen])        # only masked positions can change
    assert out.disc_labels[chosen].float().mean() > 0.5              # a random generator rarely guesses right
    assert 0 < float(replaced_fraction(out)) < 0.2


def test_a_right_guess_is_labelled_original():
    g = torch.Generator().manual_seed(0)
    labels = torch.where(torch.rand(IDS.shape, generator=g) < 0.3, IDS, torch.full_like(IDS, IGNORE))
    labels[SPECIAL] = IGNORE
    right = 1e4 * F.one_hot(IDS, TOK.vocab_size).float()             # the generator knows the answer
    corrupted, disc = replace_tokens(IDS, labels, right, special_ids=TOK.special_ids)
    assert (labels != IGNORE).sum() > 100
    assert torch.equal(corrupted, IDS) and disc.sum() == 0            # masked, but labelled original
    shifted = (IDS + 1).clamp(max=TOK.vocab_size - 1)
    wrong = 1e4 * F.one_hot(torch.where(shifted == IDS, IDS - 1, shifted), TOK.vocab_size).float()
    corrupted, disc = replace_tokens(IDS, labels, wrong, special_ids=TOK.special_ids)
    assert torch.equal(disc.bool(), labels != IGNORE)                 # every wrong guess is labelled replaced


def test_the_same_inside_the_model():
    model = ELECTRA(Scripted(lambda ids: IDS), Discriminator(_cfg(32)), TOK)
    out = model(IDS, MASK)
    assert (out.mlm_labels != IGNORE).any() and out.disc_labels.sum() == 0


def test_generator_sees_mask_at_15_percent_of_non_special_tokens_never_at_specials():
    gen = Scripted(lambda ids: torch.full_like(ids, TOK.mask_id))     # it would love to write [MASK] / [CLS]
    model = ELECTRA(gen, Discriminator(_cfg(32)), TOK)
    chosen_total = 0
    for seed in range(20):
        torch.manual_seed(seed)
        out = model(IDS, MASK)
        chosen = out.mlm_labels != IGNORE
        assert not (chosen & SPECIAL).any()                           # special tokens are never masked
        assert torch.equal(gen.seen[chosen], torch.full_like(IDS[chosen], TOK.mask_id))
        assert torch.equal(gen.seen[~chosen], IDS[~chosen])
        assert not torch.isin(out.corrupted[chosen], torch.tensor(TOK.special_ids)).any()   # nor sampled
        assert torch.equal(out.corrupted[SPECIAL], IDS[SPECIAL]) and out.disc_labels[SPECIAL].sum() == 0
        chosen_total += int(chosen.sum())
    rate = chosen_total / (20 * int((~SPECIAL).sum()))
    assert abs(rate - 0.15) < 0.01, rate


def test_discriminator_loss_does_not_reach_the_generator():
    model = _model()
    torch.manual_seed(1)
    out = model(IDS, MASK)
    discriminator_loss(out).backward(retain_graph=True)
    gen_grads = [p.grad for p in model.generator.parameters()]
    assert all(g is None or not g.any() for g in gen_grads)
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.discriminator.parameters())
    # with the total loss, the generator's gradient is exactly that of its MLM loss
    model.zero_grad()
    electra_loss(out).backward(retain_graph=True)
    total = [p.grad.clone() for p in model.generator.parameters() if p.grad is not None]
    model.zero_grad()
    mlm = F.cross_entropy(out.gen_logits.reshape(-1, TOK.vocab_size), out.mlm_labels.reshape(-1), ignore_index=IGNORE)
    mlm.backward()
    alone = [p.grad for p in model.generator.parameters() if p.grad is not None]
    assert len(total) == len(alone) > 0 and all(torch.allclose(a, b) for a, b in zip(total, alone))


def test_loss_is_mlm_plus_50_times_the_detection_loss():
    torch.manual_seed(2)
    out = _model()(IDS, MASK)
    real = MASK.bool()
    mlm = F.cross_entropy(out.gen_logits[out.mlm_labels != IGNORE], out.mlm_labels[out.mlm_labels != IGNORE])
    p = torch.sigmoid(out.disc_logits[real])
    y = out.disc_labels[real].float()
    bce = -(y * p.log() + (1 - y) * (1 - p).log()).mean()               # by hand, over every real token
    assert torch.allclose(electra_loss(out), mlm + 50 * bce, atol=1e-4)
    assert torch.allclose(electra_loss(out, disc_weight=1.0), mlm + bce, atol=1e-5)
    acc = float(detection_accuracy(out))
    assert acc == pytest.approx(float(((p > 0.5).float() == y).float().mean()))
    with pytest.raises(ValueError, match="disc_weight"):
        electra_loss(out, disc_weight=-1)
    with pytest.raises(ValueError, match="mask_prob"):
        ELECTRA(MLMGenerator(_cfg(16)), Discriminator(_cfg(32)), TOK, mask_prob=0)


def test_a_short_run_lowers_the_loss():
    from labkit.train import evaluate, fit
    model = _model()
    data = (IDS, MASK)
    before = evaluate(model, data, forward=electra_forward, loss_fn=electra_loss)["loss"]
    fit(model, data, epochs=8, batch_size=32, lr=3e-3, forward=electra_forward, loss_fn=electra_loss,
        progress=False, seed=0)
    torch.manual_seed(0)
    after = evaluate(model, data, forward=electra_forward, loss_fn=electra_loss)["loss"]
    assert after < 0.7 * before, (before, after)
