"""Chapter 3.2: its verdicts follow the numbers (both ways), and its exercises pass the right answers and refuse
the usual wrong ones, with hints that do not state the answer."""
import math

import pytest
import torch

from labkit import zoo
from labkit.labs import ch03_2
from labkit.nn import attention_weights
from exercise_checks import refuses, states_answer


def _masked(n=6, real=4):
    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(1, n, 8, generator=g), torch.randn(1, n, 8, generator=g)
    keep = torch.tensor([[True] * real + [False] * (n - real)])
    return attention_weights(q, k, keep[:, None, :], causal=True)[0]


def test_chapter_3_2_right_answers_pass_and_wrong_ones_fail():
    w = _masked()
    ex = ch03_2.exercises(w, 2048, 64.0)
    cfg = zoo.card("gpt2").config("real")
    right_1 = sum(min(i + 1, 4) for i in range(6))        # a query sees keys up to itself, never a padding key
    right = {"3.2.1": right_1, "3.2.2": cfg.vocab_size * cfg.n_embd, "3.2.3": 256.0}
    assert set(ex) == set(right)
    for key, answer in right.items():
        assert ex[key].check(answer), key
        assert not states_answer(ex[key].hint, answer), key
    assert refuses(ex["3.2.1"], 21, 24, 10, 36)                   # causal only; padding only; real queries only; none
    V, d = cfg.vocab_size, cfg.n_embd
    assert refuses(ex["3.2.2"], V * d + V, d * d, V, V * d * 2)   # with a bias; square; one per token; two matrices
    assert refuses(ex["3.2.3"], 128.0, 64.0, 512.0)               # linear; unchanged; cubic


def test_chapter_3_2_exercises_follow_their_arguments():
    assert ch03_2.exercises(_masked(n=5, real=5), 64, 1.0)["3.2.1"].check(15)     # causal alone: n(n+1)/2
    assert ch03_2.exercises(_masked(), 64, 0.0625)["3.2.3"].check(0.25)
    assert not ch03_2.exercises(_masked(), 64, 0.0625)["3.2.3"].check(256.0)
    with pytest.raises(ValueError, match="weights_mib"):
        ch03_2.exercises(_masked(), 64, 0.0)


def test_position_band_verdict_goes_both_ways():
    t = torch.arange(128.0)[:, None]
    smooth = torch.cat([torch.sin(t / 40 * f) for f in (1, 2, 3)] + [torch.cos(t / 40 * f) for f in (1, 2, 3)], 1)
    near, far = ch03_2.position_similarity(smooth, n=128, far=32)
    assert near > far + 0.1 and "a band along the diagonal" in ch03_2.band_verdict(near, far)
    rnd = torch.randn(128, 64, generator=torch.Generator().manual_seed(0))
    assert "no band" in ch03_2.band_verdict(*ch03_2.position_similarity(rnd))
    with pytest.raises(ValueError, match="far"):
        ch03_2.position_similarity(rnd[:10], far=32)


def test_evenness_parity_and_slope():
    assert "pre-LN spreads the gradient most evenly" in ch03_2.evenness_verdict({"pre-LN": 0.9, "post-LN": 0.1}, 24)
    assert "post-LN spreads" in ch03_2.evenness_verdict({"pre-LN": 9.0, "post-LN": 1.1}, 24)
    assert "factor of 10.0" in ch03_2.evenness_verdict({"a": 1.0, "b": 0.1}, 4)
    with pytest.raises(ValueError, match="ratios"):
        ch03_2.evenness_verdict({"a": 1.0}, 4)
    assert "the same function" in ch03_2.parity_verdict("x", 2e-6)
    assert "NOT the same function" in ch03_2.parity_verdict("x", 3e-3)
    assert math.isclose(ch03_2.loglog_slope([1, 2, 4], [5, 4, 16]), 2.0)
    assert math.isclose(ch03_2.loglog_slope([10, 20], [3, 6]), 1.0)
    with pytest.raises(ValueError):
        ch03_2.loglog_slope([1], [1])
