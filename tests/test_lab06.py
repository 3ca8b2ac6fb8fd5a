"""Lab 6: every check passes the right answer (worked out by hand) and refuses the naive answer, the article's belief,
a constant and an answer that ignores an argument; hints never state the answer; the rule that picks a strategy
and the verdict wording follow the numbers both ways; a run trains what it was asked for, and a run that cannot
apply is refused with a message naming what was expected.
"""
import pandas as pd
import pytest
import torch

from labkit.data.digits import load_digit_splits
from labkit.data.nlp_tasks import make_ner
from labkit.data.reviews import make_reviews
from labkit.labs import lab06
from labkit.nn import count_parameters
from labkit.transfer import Encoders
from test_labs import refuses, states_answer


@pytest.fixture(scope="module")
def encoders():
    return Encoders("all-MiniLM-L6-v2", quiet=True)


@pytest.fixture(scope="module")
def lab(encoders):
    tasks = {"sentiment": lab06.SentimentTask(encoders, make_reviews(seed=0, n_train=40, n_val=2, n_test=8)),
             "entities": lab06.EntitiesTask(encoders, make_ner(seed=0, n_train=24, n_val=4, n_test=6)),
             "digits": lab06.DigitsTask(load_digit_splits(seed=0).shrink(3), size=32)}
    return lab06.ToolLab(tasks, batch_size=4)


def _row(task, strategy, labels, score, trainable, metric="test accuracy"):
    return {"task": task, "network": "n", "strategy": strategy, "labels": labels, "seed": 0, "steps": 10, "lr": 1e-3,
            "metric": metric, "train score": 1.0, "test score": score, "trainable params": trainable,
            "trainable %": 1.0, "seconds": 1.0}


def _table(rows):
    return pd.DataFrame([dict(r, run=i + 1) for i, r in enumerate(rows)]).set_index("run")


# Entities at 20 labels: best = full fine-tuning; within 2 points: full and LoRA; cheapest overall: the probe.
GRID = [_row("entities", "linear probe", 20, 0.50, 3_000, "entity F1"),
        _row("entities", "LoRA", 20, 0.79, 80_000, "entity F1"),
        _row("entities", "full fine-tuning", 20, 0.80, 22_000_000, "entity F1"),
        _row("entities", "from scratch", 20, 0.10, 22_000_000, "entity F1"),
        _row("sentiment", "full fine-tuning", 20, 0.84, 22_000_000),
        _row("sentiment", "from scratch", 20, 0.52, 22_000_000),
        _row("sentiment", "full fine-tuning", 200, 0.95, 22_000_000),
        _row("sentiment", "from scratch", 200, 0.80, 22_000_000)]


# ----------------------------------------------------------------------------- the rule and the verdicts
def test_pick_is_the_cheapest_strategy_within_the_tolerance():
    table = _table(GRID)
    p = lab06.pick(table, "entities", 20)
    assert (p["best"], p["choice"], p["choice trainable"]) == ("full fine-tuning", "LoRA", 80_000)
    assert lab06.pick(table, "entities", 20, tolerance=0.0)["choice"] == "full fine-tuning"
    assert lab06.pick(table, "entities", 20, tolerance=0.5)["choice"] == "linear probe"
    # several seeds of one strategy: their mean decides (LoRA 0.79 and 0.75 -> 0.77, more than 2 points below 0.80)
    assert lab06.pick(_table(GRID + [_row("entities", "LoRA", 20, 0.75, 80_000)]), "entities", 20)["choice"] == \
        "full fine-tuning"
    with pytest.raises(ValueError, match="no run of entities with 50 labels"):
        lab06.pick(table, "entities", 50)


def test_score_gap_and_compare_follow_the_numbers_both_ways():
    table = _table(GRID)
    assert lab06.score_gap(table, "sentiment", 20, "full fine-tuning") == pytest.approx(32.0)
    assert lab06.score_gap(table, "sentiment", 20, "from scratch", "full fine-tuning") == pytest.approx(-32.0)
    with pytest.raises(ValueError, match="no run of LoRA on sentiment"):
        lab06.score_gap(table, "sentiment", 20, "LoRA")
    assert lab06.compare(32.0).startswith("ahead by 32.0")
    assert lab06.compare(-4.0).startswith("behind by 4.0")
    assert lab06.compare(2.9).startswith("level (+2.9 points")
    assert lab06.compare(-2.9, level=0.02).startswith("behind by 2.9")


def test_verdict_lines_and_trend_are_worded_from_the_table():
    table = _table(GRID)
    lines = lab06.verdict_lines(table)
    assert len(lines) == 3
    assert lines[0].startswith("entities, 20 labels (entity F1): best full fine-tuning 0.800; the pick")
    assert "LoRA 0.790 with 80,000 trainable" in lines[0]
    assert "full fine-tuning against from scratch: ahead by 70.0 points" in lines[0]
    assert lab06.trend_line(table, "sentiment") == ("sentiment: the best pretrained strategy's lead over from scratch "
                                                    "shrinks, from +32.0 points at 20 labels to +15.0 at 200")
    grows = _table(GRID[4:6] + [_row("sentiment", "full fine-tuning", 200, 0.99, 1), _row("sentiment", "from scratch", 200, 0.50, 1)])
    assert "grows, from +32.0" in lab06.trend_line(grows, "sentiment")
    same = _table(GRID[4:6] + [_row("sentiment", "full fine-tuning", 200, 0.83, 1), _row("sentiment", "from scratch", 200, 0.50, 1)])
    assert "stays about the same" in lab06.trend_line(same, "sentiment")
    assert "no trend" in lab06.trend_line(table, "entities")
    assert lab06.fit_line(table) == "8 of 8 runs score at least 0.95 on their own labelled examples: every run fits its training data"
    short = _table(GRID[:1] + [dict(GRID[1], **{"train score": 0.68})])
    assert lab06.fit_line(short) == ("1 of 2 runs score at least 0.95 on their own labelled examples; these do not fit "
                                     "them: entities LoRA at 20 labels (0.680)")
    assert lab06.fit_line(short, threshold=0.6).endswith("every run fits its training data")


# ----------------------------------------------------------------------------- runs
def test_a_run_trains_what_it_was_asked_for(lab, encoders):
    weight = lambda: encoders.loaded.model.encoder.layer[0].output.dense.weight  # noqa: E731
    before = weight().clone()
    row = lab.run("sentiment", "linear probe", 10, steps=2, plot=_Quiet())
    width = encoders.loaded.model.config.hidden_size
    assert (row["task"], row["strategy"], row["labels"], row["steps"]) == ("sentiment", "linear probe", 10, 2)
    assert row["trainable params"] == 2 * width + 2 and row["lr"] == lab06.SUGGESTED_LR["text"]["linear probe"]
    assert 0 <= row["test score"] <= 1 and row["metric"] == "test accuracy"
    row = lab.run("entities", "LoRA", 10, steps=1, lr_factor=2.0, plot=_Quiet())
    n_tags = len(lab.tasks["entities"].tags)
    assert row["trainable params"] == 12 * 2 * 8 * width + width * n_tags + n_tags
    assert row["lr"] == pytest.approx(2 * lab06.SUGGESTED_LR["text"]["LoRA"]) and row["metric"] == "entity F1"
    row = lab.run("digits", "linear probe", 20, steps=2, plot=_Quiet())
    assert row["trainable params"] == 1280 * 10 + 10 and row["labels"] == 20
    features = lab.tasks["digits"].features.train[0]                 # standardised with the training split's statistics
    assert features.shape[1] == 1280 and features.mean(0).abs().max() < 1e-4
    spread = features.std(0)
    assert spread.max() < 1.001 and ((spread - 1).abs() < 5e-3).sum() == (spread > 0.5).sum() > 0   # 1, or 0: constant
    row = lab.run("digits", "from scratch", "all", steps=1, plot=_Quiet())
    assert row["labels"] == len(lab.tasks["digits"].splits.train) and row["trainable %"] == 100.0
    row = lab.run("sentiment", "full fine-tuning", 10, steps=1, plot=_Quiet())
    assert row["trainable params"] == count_parameters(encoders.loaded.model) + 2 * width + 2
    assert list(lab.table().index) == [1, 2, 3, 4, 5]
    assert torch.equal(before, weight())   # every run trained a fresh copy: the loaded weights did not move


def test_runs_that_cannot_apply_are_refused_with_what_was_expected(lab, capsys):
    n = len(lab.rows)
    with pytest.raises(ValueError, match="LoRA.*EfficientNet-Lite0 is a convolutional network.*linear probe, full"):
        lab.run("digits", "LoRA", 10, steps=1)
    with pytest.raises(ValueError, match="labels must be at most 24 for entities"):
        lab.run("entities", "full fine-tuning", 50, steps=1)
    with pytest.raises(ValueError, match="labels must be at most 30 for digits"):
        lab.run("digits", "full fine-tuning", 50, steps=1)
    with pytest.raises(ValueError, match="labels must be one of"):
        lab.run("digits", "full fine-tuning", 15, steps=1)
    assert len(lab.rows) == n                       # nothing was added
    p = lab06.panel(lab, steps=5)
    assert p.run(task="digits", strategy="LoRA") is None
    assert "Refused: strategy 'LoRA' does not apply to digits" in capsys.readouterr().out
    assert p.run(lr_factor=100.0) is None
    assert "lr_factor must be" in capsys.readouterr().out
    assert len(lab.rows) == n


class _Quiet:
    """A stand-in for LiveLossPlot: the callbacks it hands out draw nothing."""

    def track(self, name):
        from labkit.train import Callback
        return Callback()


# ----------------------------------------------------------------------------- exercises
@pytest.fixture(scope="module")
def ex(lab):
    return lab06.exercises(lab, digits_labels=20, gap_at=20, pick_at=20)


def test_right_answers_pass_and_hints_do_not_state_them(lab, ex, encoders):
    digits, entities = lab.tasks["digits"], lab.tasks["entities"]
    lite0 = count_parameters(digits.arms.pretrained)
    width, tags = encoders.loaded.model.config.hidden_size, entities.tags
    s = entities.data.test[lab06.first_split_sentence(entities)]
    pieces = len(encoders.tokenizer(s.words, is_split_into_words=True)["input_ids"])   # with [CLS] and [SEP]
    assert pieces > len(s.words) + 2                                                   # a word cut into pieces
    words = [t for x in entities.data.test for t in x.tags]
    lab.rows[:] = [dict(r, run=i + 1) for i, r in enumerate(GRID)]
    right = {"6.1": (20, lite0 - (1280 * 1000 + 1000) + 1280 * 10 + 10),
             "6.2": 12 * 2 * 8 * width + width * len(tags) + len(tags),
             "6.3": (pieces, len(tags)),
             "6.4": words.count("O") / len(words),
             "6.5": 32.0,
             "6.6": "LoRA"}
    assert set(ex) == set(right)
    for key, answer in right.items():
        assert ex[key].check(answer), key
        assert not states_answer(ex[key].hint, answer if not isinstance(answer, tuple) else answer[1]), key
    assert ex["6.1"].check([20, right["6.1"][1]]) and ex["6.3"].check(list(right["6.3"]))   # a list is a tuple
    assert ex["6.4"].check(round(right["6.4"], 3)) and ex["6.5"].check(32)


def test_wrong_answers_are_refused(lab, ex, encoders):
    digits, entities = lab.tasks["digits"], lab.tasks["entities"]
    lite0, width = count_parameters(digits.arms.pretrained), encoders.loaded.model.config.hidden_size
    n_tags, vocab = len(entities.tags), encoders.tokenizer.vocab_size
    full = lite0 - (1280 * 1000 + 1000) + 1280 * 10 + 10
    s = entities.data.test[lab06.first_split_sentence(entities)]
    pieces = len(encoders.tokenizer(s.words, is_split_into_words=True)["input_ids"])
    lab.rows[:] = [dict(r, run=i + 1) for i, r in enumerate(GRID)]
    # 6.1: the article's "full = the whole data set"; per class; only the head; the ImageNet network as it is
    assert refuses(ex["6.1"], (len(digits.splits.train), full), (2, full), (20, 1280 * 10 + 10), (20, lite0), 20)
    # 6.2: the sentiment classifier's head (ignores the tags); the LoRA matrices alone; every parameter
    lora = 12 * 2 * 8 * width
    assert refuses(ex["6.2"], lora + 2 * width + 2, lora, lora + width * n_tags,
                   count_parameters(entities.model("full fine-tuning")), 0)
    # 6.3: the article's "BERT generates" (a score per vocabulary word); one row per word; one label per sentence
    assert refuses(ex["6.3"], (pieces, vocab), (len(s.words), n_tags), (len(s.words) + 2, n_tags), (n_tags,),
                   (pieces - 2, n_tags), (1, pieces, n_tags), "shape")
    # 6.4: its entity F1; every word right; the share of entity words
    words = [t for x in entities.data.test for t in x.tags]
    assert refuses(ex["6.4"], 0.0, 1.0, 1 - words.count("O") / len(words))
    # 6.5: the other order; the gap at 200 labels; no difference
    assert refuses(ex["6.5"], -32.0, 15.0, 0.0, 0.32)
    # 6.6: the best score alone (ignores the cost); the cheapest alone (ignores the tolerance); a constant
    assert refuses(ex["6.6"], "full fine-tuning", "linear probe", "from scratch")


def test_exercises_follow_their_arguments_and_the_table(lab, encoders):
    digits = lab.tasks["digits"]
    full = count_parameters(digits.arms.pretrained) - (1280 * 1000 + 1000) + 1280 * 10 + 10
    assert lab06.exercises(lab, digits_labels=10)["6.1"].check((10, full))
    lab.rows[:] = [dict(r, run=i + 1) for i, r in enumerate(GRID)]
    lab.rows[2]["test score"] = 0.70          # full fine-tuning now below LoRA: LoRA is best, and the pick
    ex = lab06.exercises(lab)
    assert ex["6.6"].check("LoRA")
    lab.rows[1]["test score"] = 0.51          # LoRA down too: full fine-tuning is best, and nothing else is close
    assert lab06.exercises(lab)["6.6"].check("full fine-tuning")
    lab.rows[:] = []
    with pytest.raises(ValueError, match="run it first"):
        lab06.exercises(lab)["6.5"].check(32.0)
