"""Chapter 6.4's exercises: NDCG of a ranking, the cold-start map's size, the seasonal-naive forecast, MASE.

Every expected answer is computed by :mod:`labkit.recsys` or :mod:`labkit.timeseries` (the code the chapter
shows), never typed in; tests/test_recsys.py and tests/test_timeseries.py check that each exercise refuses the
usual wrong answers.
"""
from __future__ import annotations

import numpy as np

from ..exercises import Exercise
from ..recsys import ndcg_at_k
from ..timeseries import mase, seasonal_naive

__all__ = ["exercises", "NDCG_CASES", "NAIVE_CASES", "MASE_CASE"]

# (gains in the order the model ranked the items, k): cases that tell the usual mistakes apart.
NDCG_CASES = [
    ([0, 1, 0, 0, 1], 3),
    ([1, 0, 0, 0], 2),            # a perfect ranking: 1.0
    ([0, 0, 1, 1, 0, 1], 10),     # k beyond the list
    ([0, 0, 0, 2, 1], 5),         # graded gains
    ([0, 0, 0, 1], 2),            # the relevant item is cut off: 0.0
]
# (history, horizon, period): a horizon longer than the period, and periods other than 12.
NAIVE_CASES = [
    (np.arange(1.0, 15.0), 5, 7),
    (np.sin(np.arange(40) / 3.0) + np.arange(40) * 0.1, 12, 12),
    (np.arange(30.0) % 4 + np.arange(30.0), 9, 4),
]
MASE_CASE = dict(insample=[12.0, 15, 11, 13, 14, 17, 12, 15, 13, 16, 15, 18], period=4,
                 actual=[13.0, 18, 14, 16], forecast=[15.0, 15, 13, 16])


def _ndcg_of_order(gains, k: int) -> float:
    gains = np.asarray(gains, dtype=float)
    return ndcg_at_k(gains, -np.arange(len(gains), dtype=float), k)


def exercises(*, text_dim: int = 384, mf_dim: int = 8) -> dict[str, Exercise]:
    def check_ndcg(fn) -> bool:
        for gains, k in NDCG_CASES:
            got, want = float(fn(list(gains), k)), _ndcg_of_order(gains, k)
            if not np.isclose(got, want, atol=1e-9):
                print(f"   ndcg({gains}, k={k}) gave {got:.4f}")
                return False
        return True

    def check_naive(fn) -> bool:
        for history, horizon, period in NAIVE_CASES:
            got = np.asarray(fn(np.array(history), horizon, period), dtype=float)
            if got.shape != (horizon,) or not np.allclose(got, seasonal_naive(history, horizon, period)):
                print(f"   seasonal_naive(history of {len(history)}, horizon={horizon}, period={period}) "
                      f"gave {np.round(got, 3).tolist()}")
                return False
        return True

    c = MASE_CASE
    return {
        "6.4.1": Exercise(
            "6.4.1", "Write ndcg(gains, k): NDCG@k of a ranking, given the gains of the items in the order the "
            "model ranked them (binary or graded).", check_fn=check_ndcg,
            hint="discount the gain at position i (counting from 1) by a logarithm that is 1 at the top, add up the "
                 "first k, and divide by the same sum for the best possible order of these gains",
            explain="DCG@k = sum_i gain_i / log2(i + 1) over the top k; NDCG divides by the DCG of the sorted gains."),
        "6.4.2": Exercise(
            "6.4.2", f"The cold-start map is a ridge regression from a {text_dim}-number description embedding "
            f"(plus an intercept) to an item's MF vector of {mf_dim} numbers plus its bias. How many numbers does it "
            f"learn?", expected=(text_dim + 1) * (mf_dim + 1),
            hint="one weight from every input (do not forget the constant input) to every output (do not forget "
                 "the item's bias)",
            explain="A weight matrix with one row per input feature and the intercept, one column per output."),
        "6.4.3": Exercise(
            "6.4.3", "Write seasonal_naive(history, horizon, period): the forecast that repeats the last season.",
            check_fn=check_naive,
            hint="step h of the forecast copies the value that lies a whole number of periods before it; "
                 "try a horizon longer than the period",
            explain="history[-period:] repeated: step h takes last_season[h % period]."),
        "6.4.4": Exercise(
            "6.4.4", f"MASE of the forecast {c['forecast']} of the values {c['actual']}, with the history "
            f"{c['insample']} and a period of {c['period']}?",
            expected=mase(c["actual"], c["forecast"], c["insample"], c["period"]), rel=1e-3,
            hint="the denominator is the mean absolute error that 'same value as one period earlier' makes inside "
                 "the history",
            explain="MAE of the forecast divided by the in-sample seasonal-naive MAE: below 1 beats the naive "
                    "forecast's in-sample error."),
    }
