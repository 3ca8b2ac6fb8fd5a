"""Chapter 3.4's verdicts follow their numbers both ways; its exercises accept the right answer and refuse the
naive one, the article's, a constant and an ignored argument; no hint states its answer."""
import math

import pytest
import torch
from torch import nn

from labkit import scale
from labkit.labs import ch03_4
from labkit.nn import GPT, TransformerConfig, count_parameters
from labkit.train import warmup_cosine
from test_labs import refuses, states_answer


# ----------------------------------------------------------------------------- the two-weight demo
def test_two_weights_matches_the_closed_form_of_decoupled_decay():
    w = ch03_4.two_weights(torch.optim.AdamW, steps=100, lr=0.01, wd=0.1)
    assert w[0] == pytest.approx((1 - 0.01 * 0.1) ** 100, rel=1e-5)   # no gradient: AdamW's decay alone (float32)
    w_l2 = ch03_4.two_weights(torch.optim.Adam, steps=100, lr=0.01, wd=0.1)
    assert w_l2[0] < 0.5 < w[0]                                         # L2 through Adam: about lr per step
    assert ch03_4.two_weights(torch.optim.AdamW, wd=0.0)[0] == 1.0


# ----------------------------------------------------------------------------- verdicts, both ways
def test_one_update_verdict():
    assert "1.50 times as far" in ch03_4.one_update_verdict(0.2, 0.3) and "different algorithm" in \
        ch03_4.one_update_verdict(0.2, 0.3)
    assert "equally far" in ch03_4.one_update_verdict(0.2, 0.201)
    with pytest.raises(ValueError, match="correct must be > 0"):
        ch03_4.one_update_verdict(0.0, 0.1)


def test_residual_verdict():
    good = ch03_4.residual_verdict({"ratio": 1e-3, "acc": 0.5}, {"ratio": 0.5, "acc": 0.99})
    assert "the residual stack keeps" in good and "the residual MLP fits" in good and "plain MLP does not fit" in good
    bad = ch03_4.residual_verdict({"ratio": 0.9, "acc": 0.97}, {"ratio": 1e-2, "acc": 0.6})
    assert "the plain stack keeps" in bad and "the residual MLP does not fit" in bad and "the plain MLP fits" in bad


def test_norm_verdict_follows_the_losses():
    same = ch03_4.norm_verdict({"layer": 1.00, "rms": 1.02, "batch": 1.05})
    assert "about as well as layer norm" in same
    worse = ch03_4.norm_verdict({"layer": 1.00, "rms": 1.02, "batch": 1.50}, {"layer": 1.0, "rms": 1.02, "batch": 0.8})
    assert "does worse than layer norm, by 50%" in worse and "reading information from the rest of the batch" in worse
    better = ch03_4.norm_verdict({"layer": 1.0, "rms": 1.2, "batch": 0.5}, {"layer": 1.0, "rms": 1.2, "batch": 0.5})
    assert "does better than layer norm" in better and "leak little" in better
    with pytest.raises(ValueError, match="val_losses needs 'batch'"):
        ch03_4.norm_verdict({"layer": 1.0})


def test_init_stream_decay_and_recompute_verdicts():
    v = ch03_4.init_verdict({"big": 25.0, "small": 1e-20, "he": 0.6})
    assert "big: std 2.50e+01, explodes" in v and "small: std 1.00e-20, vanishes" in v and "he: std 6.00e-01, keeps" in v
    assert "scaling the init grows less" in ch03_4.stream_verdict([1.0, 2.0], [1.0, 1.2])
    assert "grows at least as much" in ch03_4.stream_verdict([1.0, 1.2], [1.0, 2.0])
    assert "decays the two weights unequally" in ch03_4.decay_verdict([0.2, 0.98], [0.9, 0.89], 0.9)
    assert "treat the weights alike" in ch03_4.decay_verdict([0.9, 0.9], [0.9, 0.5], 0.9)
    assert "1 extra forward pass" in ch03_4.recompute_verdict(2, 4, 2)
    assert "0 extra forward pass" in ch03_4.recompute_verdict(2, 2, 2)


# ----------------------------------------------------------------------------- exercises
@pytest.fixture(scope="module")
def objects():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 2))
    x = 3 + 2 * torch.randn(64, 4)
    bn_input = net[0](x).detach()
    cfg = TransformerConfig(vocab_size=32, max_len=32, d_model=64, n_heads=4, n_layers=2)
    block = GPT(cfg).blocks[0]
    opt = torch.optim.AdamW([nn.Parameter(torch.zeros(1))], lr=3e-4)
    sched = warmup_cosine(100, 1000)(opt)
    lrs = []
    for _ in range(1000):
        lrs.append(opt.param_groups[0]["lr"]); opt.step(); sched.step()
    return x, bn_input, cfg, block, lrs


def test_exercises_accept_the_right_answers_and_refuse_the_wrong_ones(objects):
    x, bn_input, cfg, block, lrs = objects
    ex = ch03_4.exercises(bn_input, block, lrs, base_lr=3e-4, warmup=100)
    mean0 = bn_input[:, 0].mean().item()
    d, f = cfg.d_model, cfg.d_ff
    progress = (400 - 100) / 900
    right = {"3.4.1": 0.1 * mean0, "3.4.2": 4 * d * d + 4 * d + 2 * d * f + f + d + 4 * d,
             "3.4.3": 3e-4 * 0.5 * (1 + math.cos(math.pi * progress)), "3.4.4": (1 - 0.01 * 0.1) ** 100}
    assert set(ex) == set(right)
    for key, answer in right.items():
        assert ex[key].check(answer), key
        assert not states_answer(ex[key].hint, answer), key
    assert right["3.4.2"] == scale.block_params(cfg) == count_parameters(block)
    # 3.4.1: the article's (BN is a step after the update: the forward call leaves it at 0), momentum 1, the
    # other side of the average, the raw input's mean (the Linear ignored)
    assert refuses(ex["3.4.1"], 0.0, mean0, 0.9 * mean0, 0.1 * x[:, 0].mean().item())
    # 3.4.2: 12 d^2 (no biases, no norms), attention alone, a block with d_ff = 2d (the config ignored)
    assert refuses(ex["3.4.2"], 12 * d * d, 4 * d * d + 4 * d, 4 * d * d + 4 * d + 2 * d * (2 * d) + 2 * d + d + 4 * d)
    # 3.4.3: the base rate (no schedule), cosine counted from step 0 (warmup ignored), a linear decay
    assert refuses(ex["3.4.3"], 3e-4, 3e-4 * 0.5 * (1 + math.cos(math.pi * 0.4)), 3e-4 * (1 - progress))
    # 3.4.4: no decay, a linear decay, the decay without lr, Adam + L2's weight
    assert refuses(ex["3.4.4"], 1.0, 1 - 100 * 0.01 * 0.1, 0.9 ** 100,
                   ch03_4.two_weights(torch.optim.Adam)[0])


def test_exercises_follow_their_arguments(objects):
    x, bn_input, cfg, block, lrs = objects
    other = ch03_4.exercises(2 * bn_input, block, lrs, base_lr=3e-4, warmup=100, step=700, steps=50)
    assert other["3.4.1"].check(0.2 * bn_input[:, 0].mean().item())
    assert other["3.4.3"].check(lrs[700]) and not other["3.4.3"].check(lrs[400])
    assert other["3.4.4"].check(0.999 ** 50) and not other["3.4.4"].check(0.999 ** 100)
    with pytest.raises(ValueError, match="step must be in"):
        ch03_4.exercises(bn_input, block, lrs, base_lr=3e-4, warmup=100, step=1000)
