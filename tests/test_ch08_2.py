"""Chapter 8.2's exercises (right answers pass; the naive, the article's, a constant and an ignored argument fail;
hints never state the answer) and its verdict wording (numbers that go both ways)."""
import numpy as np
import pytest
import torch
from torch import nn

from labkit import federated, quantize
from labkit.labs import ch08_2
from labkit.privacy import DPResult
from test_labs import refuses, states_answer


@pytest.fixture(scope="module")
def objects():
    torch.manual_seed(0)
    body = nn.Sequential(nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 32))
    int4 = quantize.quantize_linears(body, "int4", 64, skip=())
    x, y = torch.randn(60, 4), torch.arange(60) % 3
    new_model = lambda: nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 3))
    fed = federated.fedavg(new_model, x, y, federated.label_skew_split(y.numpy(), 3), x_test=x, y_test=y, rounds=2,
                           name="FedAvg non-IID")
    dp = DPResult(None, 1.5, 0.8, 0.05, 100, 3.0, 1e-5, [0.8], 0.9)
    ig = {"f_x": 2.345, "f_baseline": -0.5, "tokens": torch.tensor([0.0, 1.0, 1.845, 0.0])}
    return body, int4, fed, dp, ig, new_model


def test_right_answers_pass_and_wrong_ones_fail(objects):
    body, int4, fed, dp, ig, new_model = objects
    ex = ch08_2.exercises(int4, fed, dp, 64, ig, "positive")
    n = 128 * 64 + 64 * 32
    scales = n // 64
    right = {"8.2.1": n // 2 + 4 * scales, "8.2.2": fed.bytes_sent, "8.2.3": 1.5 * 0.8 / 64,
             "8.2.4": 2.345 - 2.845}
    assert set(ex) == set(right)
    for key, answer in right.items():
        assert ex[key].check(answer), key
        assert not states_answer(ex[key].hint, answer), key
    assert refuses(ex["8.2.1"], n // 2, n, 4 * n, 0)                            # no scales; int8; fp32; constant
    params = sum(p.numel() for p in new_model().parameters())
    assert refuses(ex["8.2.2"], fed.bytes_sent // 2, fed.bytes_sent // 3, 60 * 4 * 4, 0, params * 4)
    assert refuses(ex["8.2.3"], 1.5, 1.5 * 0.8, 1.5 / 64, 0.8 / 64, 0.0)        # σ; σC; forgot C; forgot σ
    # F(x) alone; the attributions' sum; its negative; attention's 1; the sign flipped
    assert refuses(ex["8.2.4"], 2.345, 2.845, -2.845, 1.0, 2.845 - 2.345, 0.0)


def test_expected_answers_follow_the_objects(objects):
    body, int4, fed, dp, ig, _ = objects
    int8 = quantize.quantize_linears(body, "int8", skip=())
    other = ch08_2.exercises(int8, fed, DPResult(None, 3.0, 0.8, 0.05, 100, 1.0, 1e-5, [0.7], 1.0), 32,
                             {"f_x": 1.0, "f_baseline": 0.25, "tokens": torch.tensor([0.5, 0.25])}, "negative")
    n = 128 * 64 + 64 * 32
    assert other["8.2.1"].check(n + 4 * (64 + 32)) and not other["8.2.1"].check(n // 2 + 4 * (n // 64))
    assert other["8.2.3"].check(3.0 * 0.8 / 32) and other["8.2.4"].check(0.25) and not other["8.2.4"].check(0.75)
    with pytest.raises(ValueError, match="QuantizedLinear"):
        ch08_2.stored_bytes(body)


def test_verdicts_follow_the_numbers():
    more = ch08_2.communication_verdict(5_800_000, 345_000, 30)
    assert "5.80 MB of weights in 30 rounds" in more and "16.8x the data" in more and "costs more" in more
    less = ch08_2.communication_verdict(100_000, 345_000, 3)
    assert "0.3x the data" in less and "less than the data here" in less
    leak = ch08_2.leak_verdict(2e-7, 1.3)
    assert "(exactly: the shared gradient IS the data)" in leak and "the noise hides it" in leak
    kept = ch08_2.leak_verdict(0.2, 0.1)
    assert "(not exactly)" in kept and "does not hide it" in kept
    with pytest.raises(ValueError, match="data_bytes"):
        ch08_2.communication_verdict(10, 0, 1)
    assert np.isfinite(ch08_2.noise_std(DPResult(None, 1.0, 1.0, 0.1, 1, 1.0, 1e-5, [0.5], 0.0), 10))
