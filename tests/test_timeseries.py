"""labkit.timeseries: the generated series and their splits, seasonal naive, MASE against scikit-learn's MAE and a
hand-worked value, the forecasters (scale invariance, a linear AR that recovers a linear process), and chapter
6.4's forecasting exercises."""
import numpy as np
import pytest
import torch
from sklearn.metrics import mean_absolute_error

from labkit import timeseries as ts
from labkit.labs import ch06_4
from exercise_checks import refuses


def test_series_are_seeded_and_use_the_listed_periods():
    a, pa = ts.make_series(6, 100, seed=1)
    b, pb = ts.make_series(6, 100, seed=1)
    c, _ = ts.make_series(6, 100, seed=2)
    assert a.shape == (6, 100) and np.array_equal(a, b) and np.array_equal(pa, pb) and not np.allclose(a, c)
    assert set(pa) <= set(ts.PERIODS)
    with pytest.raises(ValueError, match="length"):
        ts.make_series(2, 10)


def test_windows_cover_every_position_and_stay_inside_the_series():
    s = np.arange(20.0)
    x, y = ts.windows(s, 5, 3)
    assert x.shape == (13, 5) and y.shape == (13, 3)
    assert torch.equal(x[4], torch.arange(4.0, 9.0)) and torch.equal(y[4], torch.arange(9.0, 12.0))
    x2, _ = ts.windows(np.stack([s, s + 100]), 5, 3, stride=4)
    assert x2.shape == (8, 5)
    with pytest.raises(ValueError, match="context \\+ horizon"):
        ts.windows(np.arange(6.0), 5, 3)


def test_target_splits_have_no_look_ahead():
    t = ts.make_targets(1, 60, 12, seed=0)[0]
    cx, fut = t.context_and_future("val", 48)
    assert np.array_equal(cx, t.values[12:60]) and np.array_equal(fut, t.values[60:72])
    cx, fut = t.context_and_future("test", 48)
    assert np.array_equal(cx, t.values[24:72]) and np.array_equal(fut, t.values[72:84])
    assert len(t.insample("test")) == 72 and len(t.train) == 60
    x, y = ts.windows(t.train, 48, 12)
    assert x.shape[0] == 1                                      # the only window inside the history


def test_seasonal_naive():
    h = np.array([1.0, 2, 3, 10, 20, 30])
    assert np.array_equal(ts.seasonal_naive(h, 5, 3), [10, 20, 30, 10, 20])
    assert np.array_equal(ts.seasonal_naive(h, 2, 1), [30, 30])
    with pytest.raises(ValueError, match="period"):
        ts.seasonal_naive(h, 2, 7)


def test_mase_matches_scikit_learn_and_a_hand_worked_value():
    rng = np.random.default_rng(0)
    ins, actual, forecast = rng.normal(size=40), rng.normal(size=8), rng.normal(size=8)
    for m in (1, 4, 12):
        want = mean_absolute_error(actual, forecast) / mean_absolute_error(ins[m:], ins[:-m])
        assert ts.mase(actual, forecast, ins, m) == pytest.approx(want, rel=1e-12)
    # history 1, 3, 2, 4 with period 2: naive errors |2-1|, |4-3| -> scale 1; forecast errors 1 and 3 -> MAE 2
    assert ts.mase([5.0, 6.0], [4.0, 9.0], [1.0, 3.0, 2.0, 4.0], 2) == pytest.approx(2.0)
    with pytest.raises(ValueError, match="undefined"):
        ts.mase([1.0], [1.0], [1.0, 2.0, 1.0, 2.0], 2)
    with pytest.raises(ValueError, match="one shape"):
        ts.mase([1.0, 2.0], [1.0], [1.0, 2.0, 3.0], 1)


def test_forecasters_are_scale_invariant():
    torch.manual_seed(0)
    model = ts.MLPForecaster(24, 6, hidden=16)
    ctx = np.sin(np.arange(24) / 2.0) + 0.1 * np.arange(24)
    base = model.forecast(ctx)
    assert np.allclose(model.forecast(3.0 * ctx + 50.0), 3.0 * base + 50.0, atol=1e-3)
    x, y = ts.windows(ts.make_series(4, 100, seed=0)[0], 24, 6)
    lin = ts.LinearForecaster(1.0).fit(x, y)
    assert np.allclose(lin.forecast(3.0 * ctx + 50.0), 3.0 * lin.forecast(ctx) + 50.0, atol=1e-6)
    with pytest.raises(ValueError, match="context must hold 24"):
        model.forecast(np.zeros(10))


def test_linear_ar_recovers_a_pure_season():
    s = np.tile([1.0, 4.0, 2.0, 8.0, 5.0, 7.0], 20)
    x, y = ts.windows(s[:90], 12, 6)
    lin = ts.LinearForecaster(alpha=1e-6).fit(x, y)
    assert np.allclose(lin.forecast(s[78:90]), s[90:96], atol=1e-3)


def test_pretraining_on_the_corpus_beats_seasonal_naive_on_new_series():
    corpus, _ = ts.make_series(60, 200, seed=1)
    x, y = ts.windows(corpus, 48, 12, stride=3)
    torch.manual_seed(0)
    from labkit.train import fit
    model = ts.MLPForecaster(48, 12, hidden=64)
    fit(model, (x, y), steps=300, batch_size=128, lr=2e-3, forward=ts.scaled_forward, loss_fn=ts.l1_loss, progress=False)
    targets = ts.make_targets(12, 96, 12, seed=50)
    pre = np.mean([ts.score(model.forecast, t, 48)["test"] for t in targets])
    naive = np.mean([ts.mase(t.context_and_future("test", 48)[1], ts.seasonal_naive(t.insample("test"), 12, t.period),
                             t.insample("test"), t.period) for t in targets])
    assert pre < naive
    assert ts.closest_in_corpus(corpus, targets) < 0.999


def test_closest_in_corpus_finds_a_copy():
    corpus, _ = ts.make_series(5, 100, seed=0)
    target = ts.TargetSeries(corpus[2].copy(), 12, 76, 12)
    assert ts.closest_in_corpus(corpus, [target]) == pytest.approx(1.0)


def test_train_and_score_records_the_requested_steps():
    t = ts.make_targets(1, 72, 12, seed=0)[0]
    torch.manual_seed(0)
    model = ts.MLPForecaster(48, 12, hidden=16)
    before = ts.score(model.forecast, t, 48)
    scores = ts.train_and_score(model, t, [0, 3, 10], lr=1e-2)
    assert sorted(scores) == [0, 3, 10] and scores[0] == before
    assert scores[10]["train"] < scores[0]["train"]             # training lowers the training error
    with pytest.raises(ValueError, match="step count"):
        ts.train_and_score(model, t, [-1], lr=1e-2)


# ----------------------------------------------------------------------------- exercises
def test_exercise_seasonal_naive():
    ex = ch06_4.exercises()["6.4.3"]
    assert ex.check(lambda h, horizon, m: np.array([h[-m:][i % m] for i in range(horizon)]))
    last_value = lambda h, horizon, m: np.repeat(h[-1], horizon)
    truncated = lambda h, horizon, m: h[-m:][:horizon]                    # wrong length when horizon > period
    period_12 = lambda h, horizon, m: np.array([h[-12:][i % 12] for i in range(horizon)])
    one_off = lambda h, horizon, m: np.array([h[-m - 1:-1][i % m] for i in range(horizon)])
    assert refuses(ex, last_value, truncated, period_12, one_off)


def test_exercise_mase():
    ex = ch06_4.exercises()["6.4.4"]
    c = ch06_4.MASE_CASE
    a, f, ins, m = (np.array(c[k], float) if k != "period" else c[k] for k in ("actual", "forecast", "insample", "period"))
    assert ex.check(np.mean(np.abs(a - f)) / np.mean(np.abs(ins[m:] - ins[:-m])))
    wrong_m1 = np.mean(np.abs(a - f)) / np.mean(np.abs(np.diff(ins)))
    plain_mae = np.mean(np.abs(a - f))
    scale_on_actual = np.mean(np.abs(a - f)) / np.mean(np.abs(np.diff(a)))
    assert refuses(ex, wrong_m1, plain_mae, scale_on_actual, 1.0)
    assert str(round(float(ex.expected), 3)) not in ex.hint
