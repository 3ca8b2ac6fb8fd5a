"""Lab 8 and chapter 8.1's exercises: every check passes the right answer and refuses the naive answer, the
article's scale ("数百万甚至数亿个参数"; a "高性能CPU" instead of GPUs), a constant and an answer that ignores an
argument; hints never state the answer; the held-out check reads a table both ways; a real (tiny) press of Run
trains what it says and the panel refuses what cannot run."""
import math

import numpy as np
import pandas as pd
import pytest
import torch

from labkit import scale, scaling
from labkit.labs import ch08_1, lab08
from labkit.scaling import ModelSize
from test_labs import refuses, states_answer

ARTICLE_PARAMS = (1e6, 1e8)      # the article's "数百万甚至数亿个参数"


def _table(law=lambda n, d: 0.6 + 30 * n ** -0.4 + 200 * d ** -0.45, sizes=lab08.LADDERS["width (depth 2)"][:5],
           tokens=(256_000, 512_000, 1_024_000), held_out_bump=1.0):
    rows = []
    for d in tokens:
        for i, s in enumerate(sizes):
            cfg = s.config(126)
            n = scaling.non_embedding_params(cfg)
            loss = law(n, d) * (held_out_bump if i == len(sizes) - 1 else 1.0)
            rows.append({"size": s.name, "N (non-embedding)": n, "parameters": scale.param_count(cfg, "gpt"),
                         "tokens D": d, "val loss": loss})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def result():
    return scaling.held_out_check(_table(held_out_bump=1.02), lab08.LADDERS["width (depth 2)"][:5], 0.05)


# ----------------------------------------------------------------------------- the held-out check
def test_held_out_check_fits_without_the_largest_and_words_the_check_both_ways(result):
    sizes = lab08.LADDERS["width (depth 2)"][:5]
    assert result.law.n_points == 4 and result.held_out == sizes[-1]
    assert result.prediction["relative error"] == pytest.approx(1 / 1.02 - 1, abs=0.01)
    assert "within the stated ±5%" in result.lines[0]
    off = scaling.held_out_check(_table(held_out_bump=1.3), sizes, 0.05)
    assert "outside the stated ±5%" in off.lines[0] and "too optimistic" in off.lines[0]
    assert off.limits is not None and "runs were data-limited" in off.lines[-1]
    one = scaling.held_out_check(_table(tokens=(512_000,)), sizes, 0.05)
    assert one.limits is None and len(one.lines) == 2
    with pytest.raises(ValueError, match="must be the largest"):
        scaling.held_out_check(_table(), sizes[::-1], 0.05)
    with pytest.raises(ValueError, match="a run of every size"):
        scaling.held_out_check(_table(sizes=sizes[:4]), sizes, 0.05)


def test_budgets_halve_the_largest():
    assert lab08.budgets(1000, 3) == [250 * 1024, 500 * 1024, 1000 * 1024]
    assert lab08.budgets(7, 1) == [7 * 1024]
    with pytest.raises(ValueError, match="cannot be halved"):
        lab08.budgets(2, 3)


def test_most_data_hungry_reads_the_two_largest_budgets(result):
    lim = result.limits
    last = lim[lim["next budget"] == lim["next budget"].max()]
    assert lab08.most_data_hungry(lim) == last.sort_values("drop per doubling").iloc[-1]["size"]
    with pytest.raises(ValueError, match="2 budgets or more"):
        lab08.most_data_hungry(None)


# ----------------------------------------------------------------------------- Lab 8's exercises
def test_lab08_right_answers_pass_and_wrong_ones_fail(result):
    ex = lab08.exercises(result)
    assert set(ex) == {"8.1", "8.2", "8.3", "8.4", "8.5", "8.6"}
    held = result.held_out_row
    n, d, total = int(held["N (non-embedding)"]), int(held["tokens D"]), int(held["parameters"])
    small = result.largest[result.largest["size"] != result.held_out.name]
    slope, _ = np.polyfit(np.log(small["N (non-embedding)"]), np.log(small["val loss"]), 1)
    hungry = lab08.most_data_hungry(result.limits)
    err = result.prediction["relative error"]
    right = {"8.1": -slope, "8.2": result.law.E + result.law.A * (10 * n) ** -result.law.alpha, "8.3": 6 * n * d,
             "8.4": 20 * total, "8.5": hungry, "8.6": result.prediction["predicted"] / result.prediction["measured"] - 1}
    for key, answer in right.items():
        assert ex[key].check(answer), key
        assert not states_answer(ex[key].hint, answer), key
    assert refuses(ex["8.1"], result.law.alpha, slope, 0.076, 0.0)           # with E; the slope's sign; Kaplan's α_N
    every = result.table[result.table["tokens D"] == d]                         # the held-out size in the fit too
    assert refuses(ex["8.1"], -np.polyfit(np.log(every["N (non-embedding)"]), np.log(every["val loss"]), 1)[0])
    assert refuses(ex["8.2"], result.law.E, result.law(n), held["val loss"], result.line(10 * n))
    assert refuses(ex["8.3"], 6 * total * d, 2 * n * d, 6 * n * int(held["tokens D"]) // 1024,
                   *(6 * p * d for p in ARTICLE_PARAMS))
    assert refuses(ex["8.4"], 20 * n, d, total, *(20 * p for p in ARTICLE_PARAMS))
    assert refuses(ex["8.5"], *[s.name for s in result.sizes if s.name != hungry], "largest")
    assert refuses(ex["8.6"], -err, result.prediction["measured"] / result.prediction["predicted"] - 1,
                   result.prediction["predicted"] - result.prediction["measured"], 0.0, result.tolerance)


def test_lab08_exercise_8_5_needs_two_budgets():
    one = scaling.held_out_check(_table(tokens=(512_000,)), lab08.LADDERS["width (depth 2)"][:5], 0.05)
    assert "8.5" not in lab08.exercises(one)


def test_lab08_exercises_follow_the_result(result):
    other = scaling.held_out_check(_table(law=lambda n, d: 0.9 + 10 * n ** -0.25 + 50 * d ** -0.3),
                                   lab08.LADDERS["width (depth 2)"][:5], 0.05)
    a, b = lab08.exercises(result), lab08.exercises(other)
    assert a["8.1"]._expected() != pytest.approx(b["8.1"]._expected(), rel=1e-3)
    assert a["8.2"]._expected() != pytest.approx(b["8.2"]._expected(), rel=1e-3)


# ----------------------------------------------------------------------------- a real press of Run, tiny
@pytest.fixture(scope="module")
def lab():
    return lab08.ScalingLab(scaling.scaling_data(8 * 1024, n_val_docs=20))


def test_a_tiny_press_of_run_trains_fits_and_checks(lab, capsys):
    torch.set_num_threads(1)
    p = lab08.panel(lab, steps=4, n_sizes=4, n_budgets=2)
    out = p.run()
    text = capsys.readouterr().out
    assert "3 · predict d32·L2" in text and text.index("3 · predict") < text.index("4 · train d32·L2")
    assert len(out.table) == 8 and out.law.n_points == 3 and out.held_out.name == "d32·L2"
    assert set(out.table["tokens D"]) == {2048, 4096}
    assert math.isfinite(out.prediction["relative error"])
    assert lab08.explorer(out).layout.sliders[0].steps[0].label == "3"
    p.run(n_sizes=5)                               # one more size: only its 2 runs are new
    assert len(lab.sweep(3e-3).runs) == 10


def test_the_panel_refuses_what_cannot_run(lab, capsys):
    p = lab08.panel(lab, steps=4)
    assert p.run(n_sizes=3) is None and "n_sizes" in capsys.readouterr().out
    assert p.run(steps=10_000) is None and "steps must be" in capsys.readouterr().out
    assert p.run(steps=2, n_budgets=3) is None and "cannot be halved" in capsys.readouterr().out
    assert p.applicable({**p.defaults(), "n_budgets": 1})["threshold"] is False


# ----------------------------------------------------------------------------- chapter 8.1's exercises
def test_ch08_1_right_answers_pass_and_wrong_ones_fail():
    ex = ch08_1.exercises()
    h = scaling.story_entropy()
    n70 = scaling.training_cost(scaling.llama2_config("70B"), 1.0)["parameters"]
    n7 = scaling.training_cost(scaling.llama2_config("7B"), 1.0)["parameters"]
    D = 2.0e12
    right = {"8.1.1": h["nats per story"] / h["tokens per story"], "8.1.2": 6 * n70 * D,
             "8.1.3": math.ceil(16 * n70 / 80e9), "8.1.4": math.sqrt(6 * n7 * D / 120)}
    for key, answer in right.items():
        assert ex[key].check(answer), key
        assert not states_answer(ex[key].hint, answer), key
    data = scaling.scaling_data(50_000, n_val_docs=10)
    from labkit.objectives import unigram_entropy
    stream = data.train_blocks.tensors[0].reshape(-1)
    assert refuses(ex["8.1.1"], math.log(data.vocab_size), unigram_entropy(stream), h["nats per story"],
                   h["nats per story"] / (h["tokens per story"] - 1), 0.0)           # ln V, H1, per story, no [SEP]
    assert refuses(ex["8.1.2"], 6 * 70e9 * D, 2 * n70 * D, *(6 * p * D for p in ARTICLE_PARAMS),
                   6 * n70 * 1.4e12)                                                  # rounded N; 2ND; article; 20N
    assert refuses(ex["8.1.3"], math.ceil(2 * n70 / 80e9), math.ceil(12 * n70 / 80e9), math.floor(16 * n70 / 80e9),
                   0, 1)                                                              # weights only; no master; a CPU
    assert refuses(ex["8.1.4"], n7, math.sqrt(6 * n7 * D / 6), 20 * n7, D / 20)       # as trained; no 20; D=20N
