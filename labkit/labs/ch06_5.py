"""Chapter 6.5's exercises: class weights, the linear-scaling rule, the range-test rule, a leak-free split and
what early stopping ran.

Every expected answer is computed by :mod:`labkit.practice` or passed in from what the notebook measured, never
typed in; tests/test_practice.py checks that each exercise refuses the usual wrong answers.
"""
from __future__ import annotations

import numpy as np

from ..exercises import Exercise
from ..practice import LRRange, class_weights, linear_scaling

__all__ = ["exercises", "WEIGHT_CASES", "RANGE_CASES", "GROUP_CASES"]

WEIGHT_CASES = [[0, 0, 0, 1], [0, 1, 1, 2, 2, 2, 2, 2], [1, 0, 1, 1, 1, 1, 1, 1, 1, 1]]
# (learning rates, smoothed losses)
RANGE_CASES = [
    ([1e-4, 1e-3, 1e-2, 1e-1, 1.0], [0.70, 0.60, 0.30, 0.20, 0.90]),
    ([1e-5, 1e-4, 1e-3, 1e-2], [0.70, 0.40, 0.50, 2.00]),
    ([2e-6, 2e-5, 2e-4, 2e-3, 2e-2, 2e-1], [1.0, 0.99, 0.90, 0.50, 0.45, 3.0]),
]
# (group ids, test fraction)
GROUP_CASES = [
    ([0, 0, 1, 2, 2, 2, 3, 4, 4, 5, 6, 6], 0.25),
    (list(np.repeat(np.arange(20), 3)), 0.3),
    ([5, 5, 5, 5, 1, 2, 3, 4, 6, 7, 8, 9, 9, 9], 0.2),
]


def _group_split_ok(fn, groups, fraction) -> bool:
    groups = np.asarray(groups)
    train, test = (np.asarray(a, dtype=int) for a in fn(groups.copy(), fraction))
    if len(np.intersect1d(train, test)) or sorted(np.concatenate([train, test]).tolist()) != list(range(len(groups))):
        print("   every example must be in exactly one of train and test")
        return False
    if set(groups[train]) & set(groups[test]):
        print(f"   groups {sorted(int(g) for g in set(groups[train]) & set(groups[test]))} are on both sides")
        return False
    biggest = max(np.bincount(groups))
    if not (len(test) > 0 and abs(len(test) - fraction * len(groups)) <= biggest):
        print(f"   {len(test)} test examples for test_fraction={fraction} of {len(groups)}")
        return False
    return True


def exercises(*, base_lr: float = 0.1, base_batch: int = 8, batch: int = 128, best_epoch: int = 5,
              patience: int = 10, budget: int = 150) -> dict[str, Exercise]:
    def check_weights(fn) -> bool:
        for y in WEIGHT_CASES:
            got = np.asarray(fn(list(y)), dtype=float)
            if got.shape != (max(y) + 1,) or not np.allclose(got, class_weights(y).numpy(), rtol=1e-5):
                print(f"   class_weights({y}) gave {np.round(got, 3).tolist()}")
                return False
        return True

    def check_range(fn) -> bool:
        for lrs, smoothed in RANGE_CASES:
            want = LRRange(lrs, smoothed, smoothed).suggestion()
            got = float(fn(list(lrs), list(smoothed)))
            if not np.isclose(got, want, rtol=1e-6):
                print(f"   suggest({lrs}, {smoothed}) gave {got:g}")
                return False
        return True

    def check_split(fn) -> bool:
        return all(_group_split_ok(fn, g, f) for g, f in GROUP_CASES)

    return {
        "6.5.1": Exercise(
            "6.5.1", "Write class_weights(labels) -> one loss weight per class, 'balanced' as scikit-learn defines "
            "it.", check_fn=check_weights,
            hint="each class should carry the same total weight, and a balanced data set should get weights of 1",
            explain="n / (K n_c): rare classes count more, and the weights average to 1 over the examples."),
        "6.5.2": Exercise(
            "6.5.2", f"A learning rate of {base_lr:g} works at batch size {base_batch}. What learning rate does the "
            f"linear-scaling rule give for batch size {batch}?", expected=linear_scaling(base_lr, base_batch, batch),
            hint="the rule keeps the change per example the same: scale by the ratio of the batch sizes itself, not "
                 "its square root",
            explain="The rule is an approximation that holds while the learning rate stays below the largest stable "
                    "one; the grid in this chapter shows where it breaks."),
        "6.5.3": Exercise(
            "6.5.3", "Write suggest(lrs, smoothed_losses) -> the learning rate the range-test rule of this chapter "
            "picks.", check_fn=check_range,
            hint="find where the smoothed loss is lowest; is that the learning rate to train with?",
            explain="The lowest-loss learning rate is already on the edge of instability: one tenth of it trains "
                    "fast and stays stable."),
        "6.5.4": Exercise(
            "6.5.4", "Write split(groups, test_fraction) -> (train indices, test indices) with no group on both "
            "sides and about test_fraction of the examples in test.", check_fn=check_split,
            hint="choose which groups go to the test set, not which rows",
            explain="Splitting by group is what keeps near-duplicates from leaking the test set into training."),
        "6.5.5": Exercise(
            "6.5.5", f"Early stopping with patience {patience} found the best validation loss at epoch {best_epoch}. "
            f"How many epochs did the run train, out of a budget of {budget}?",
            expected=min(budget, best_epoch + patience),
            hint="it waits a number of epochs without improvement after the best one before it stops",
            explain="best epoch + patience (capped by the budget); the weights of the best epoch are then restored."),
    }
