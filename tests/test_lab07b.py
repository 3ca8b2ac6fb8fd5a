"""Lab 7b: every check passes the right answer and refuses the naive one, the inverse, the ideal, a constant and an
answer that ignores an argument; expected values follow the launches' results; hints never state the answer; the
verdicts follow the numbers. The launches are stood in for by results of the same shape (the lab notebook's test
runs real ones)."""
import random

import pytest

from labkit.labs import lab07b
from test_labs import refuses, states_answer

G, LR = 16, 1e-4


def fit_run(spec, world, per_proc, steps, seconds, acc, seen):
    return {"spec": spec, "kind": "fit", "batch_size": per_proc, "global_batch_size": per_proc * world,
            "seconds": {"setup": 3.0, "train": seconds}, "seen": seen,
            "history": {"steps": [{"loss": 1.0}] * steps, "epochs": [{"val_acc": acc}]}}


def hand_run(spec, per_proc, sampler, seen):
    return {"spec": spec, "kind": "hand", "batch_size": per_proc, "sampler": sampler, "losses": [1.0] * 8,
            "seconds": {"setup": 3.0, "train": 2.0}, "seen": seen}


def results(t_one=10.0, t_two=6.5, n=64):
    order = list(range(n))
    random.Random(0).shuffle(order)
    halves = [[order[i] for i in range(r, n, 2)] for r in range(2)]
    one = {"world": 1, "runs": [fit_run(f"fit:global={G}", 1, G, 8, t_one, 0.9, [[order]])]}
    runs = lab07b.two_process_runs(G)
    two = {"world": 2, "runs": [fit_run(runs[0], 2, G // 2, 8, t_two, 0.9, [[halves[0]], [halves[1]]]),
                                fit_run(runs[1], 2, G, 4, t_two / 2, 0.8, [[halves[0]], [halves[1]]]),
                                hand_run(runs[2], G // 2, False, [[order], [order]]),
                                hand_run(runs[3], G // 2, True, [[halves[0]], [halves[1]]])]}
    return one, two


def strided(batch, rank, world):
    return batch[rank::world]


def contiguous(batch, rank, world):            # also right: a share need not be a stride
    k, extra = divmod(len(batch), world)
    start = rank * k + min(rank, extra)
    return batch[start:start + k + (rank < extra)]


def test_right_answers_pass_and_hints_do_not_state_them():
    one, two = results()
    ex = lab07b.exercises(one, two, G, LR)
    right = {"7b.1": G // 2, "7b.2": 10.0 / 6.5, "7b.3": 2 * G, "7b.4": 2 * LR, "7b.5": 1.0, "7b.6": strided}
    assert set(ex) == set(right)
    for key, answer in right.items():
        assert ex[key].check(answer), key
        if not callable(answer):
            assert not states_answer(ex[key].hint, answer), key
    assert ex["7b.6"].check(contiguous)


def test_wrong_answers_are_refused():
    one, two = results()
    ex = lab07b.exercises(one, two, G, LR)
    assert refuses(ex["7b.1"], G, 2 * G, 1)                            # the global batch; the unchanged one; one
    assert refuses(ex["7b.2"], 6.5 / 10.0, 2.0, 1.0, (3 + 10.0) / (3 + 6.5))   # inverse, ideal, none, with set-up
    assert refuses(ex["7b.3"], G, G // 2, 4 * G)                       # batch_size read as global; the share
    assert refuses(ex["7b.4"], LR, LR / 2, 4 * LR, LR * 2 ** 0.5)      # unchanged, inverse, squared, sqrt rule
    assert refuses(ex["7b.5"], 0.0, 0.5)                               # what a sampler gives; a guess
    assert refuses(ex["7b.6"],
                   lambda b, r, w: b,                                  # ignores rank: the sampler mistake
                   lambda b, r, w: b[r::2],                            # ignores world
                   lambda b, r, w: b[r * (len(b) // w):(r + 1) * (len(b) // w)],   # drops the remainder
                   lambda b, r, w: [],                                 # a constant
                   lambda b, r, w: random.sample(b, len(b) // w))      # overlapping, random


def test_expected_values_follow_the_results():
    one, two = results(t_one=12.0, t_two=4.0)
    ex = lab07b.exercises(one, two, G, LR)
    assert ex["7b.2"].check(3.0) and not ex["7b.2"].check(10.0 / 6.5)
    assert ex["7b.4"].check(2 * 3e-4) is False
    ex = lab07b.exercises(one, two, G, 3e-4)
    assert ex["7b.4"].check(6e-4)
    two["runs"][2]["seen"] = [[list(range(32))], [list(range(16, 48))]]
    assert lab07b.exercises(one, two, G, LR)["7b.5"].check(0.5)


def test_table_and_overlap():
    one, two = results()
    t = lab07b.table(one, two)
    assert list(t["optimizer steps"]) == [8, 8, 4, 8, 8]
    assert list(t["global batch"]) == [G, G, 2 * G, G, G]
    assert list(t["rank overlap"].iloc[1:]) == [0.0, 0.0, 1.0, 0.0]
    assert list(t["distinct examples, epoch 1"]) == [64, 64, 64, 64, 64]
    assert lab07b.speedup(one, two) == pytest.approx(10 / 6.5)
    with pytest.raises(ValueError, match="2 processes"):
        lab07b.overlap(one["runs"][0])


def test_verdicts_follow_the_numbers():
    assert "close to the ideal" in lab07b.speedup_verdict(1.8, 2)
    assert "short of 2x" in lab07b.speedup_verdict(1.3, 2)
    assert "no speed-up" in lab07b.speedup_verdict(0.9, 2)
    one, two = results()
    right, unchanged = two["runs"][0], two["runs"][1]
    v = lab07b.batch_verdict(right, unchanged)
    assert "global batch of 32 instead of 16: 4 optimizer steps instead of 8" in v and "10.0 accuracy points lower" in v
    unchanged["history"]["epochs"][-1]["val_acc"] = 0.895
    assert "within 1 point" in lab07b.batch_verdict(right, unchanged)
    unchanged["history"]["epochs"][-1]["val_acc"] = 0.95
    assert "higher" in lab07b.batch_verdict(right, unchanged)
    assert "the same data" in lab07b.sampler_verdict(1.0, 0.0)
    assert "the same data" not in lab07b.sampler_verdict(0.4, 0.0)
    with pytest.raises(ValueError, match="without"):
        lab07b.sampler_verdict(1.5, 0.0)


def test_bad_input():
    with pytest.raises(ValueError, match="global_batch_size=15 does not split evenly over the 2 processes"):
        lab07b.two_process_runs(15)
    with pytest.raises(ValueError, match="task"):
        lab07b.launch(1, ["fit"], task="cifar")
    assert lab07b.two_process_runs(16) == ["fit:global=16", "fit:batch=16", "hand:batch=8,sampler=0",
                                            "hand:batch=8,sampler=1"]
