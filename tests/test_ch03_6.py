"""Chapter 3.6's verdicts follow their numbers both ways; its exercises accept the right answers and refuse the
usual wrong ones; no hint states its answer."""
import pytest
import torch

from labkit.labs import ch03_6
from test_labs import refuses, states_answer


def test_reload_verdict():
    ok = ch03_6.reload_verdict(20, 20, 20, 0.0)
    assert "same label for all 20 texts" in ok and "the saved folder is the trained model" in ok
    bad = ch03_6.reload_verdict(20, 17, 0, 0.4)
    assert "differs: same label for 17 of 20" in bad and "not saved or not loaded" in bad
    assert "differs" in ch03_6.reload_verdict(20, 20, 0, 1e-3)      # same labels, probabilities too far apart


def test_reader_verdict():
    rows = [("negative", 0.99, "negative"), ("negative", 0.97, "positive"), ("positive", 0.6, "negative"),
            ("positive", 0.8, "mixed")]
    v = ch03_6.reader_verdict(rows)
    assert "agrees with the reader on 1 of the 3 reviews" in v and "wrong labels came with probabilities 0.970, 0.600" in v
    assert "1 of them with a probability of 0.9 or more" in v and "A mixed review got positive" in v
    calm = ch03_6.reader_verdict([("positive", 0.6, "negative"), ("positive", 0.9, "positive")])
    assert "its wrong label came with probability 0.600, below 0.9." in calm
    sure = ch03_6.reader_verdict([("positive", 0.98, "negative"), ("positive", 0.9, "positive")])
    assert "its wrong label came with probability 0.980, 0.9 or more: the calibration lesson again." in sure
    none = ch03_6.reader_verdict([("positive", 0.6, "negative"), ("negative", 0.7, "positive")])
    assert "probabilities 0.600, 0.700, none as high as 0.9" in none
    assert ch03_6.reader_verdict([("positive", 0.9, "positive")]).endswith("on 1 of the 1 reviews with a clear label.")


def test_exercises_accept_the_right_answers_and_refuse_the_wrong_ones():
    mask = torch.tensor([[1, 1, 1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 0, 0, 0]])
    batch = {"input_ids": torch.arange(16).view(2, 8), "attention_mask": mask}
    y_true = [1, 1, 1, 1, 0, 0, 0, 0, 0, 0]
    y_pred = torch.tensor([1, 1, 1, 0, 1, 1, 0, 0, 0, 0])     # tp 3, fp 2, fn 1: P 0.6, R 0.75, F1 2/3
    n_params = 22_713_986
    mb = (4 * n_params + 18_000) / 1e6                          # the header adds a few kilobytes
    ex = ch03_6.exercises(batch, y_true, y_pred, mb, 5e-5)
    right = {"3.6.1": 3, "3.6.2": 2 / 3, "3.6.3": 4 * n_params / 1e6, "3.6.4": 5e-5}
    assert set(ex) == set(right)
    for key, answer in right.items():
        assert ex[key].check(answer), key
        assert not states_answer(ex[key].hint, answer), key
    assert ex["3.6.2"].check(0.667)                             # to 0.001
    # 3.6.1: no padding, the longer row's length, the real tokens of the shorter row
    assert refuses(ex["3.6.1"], 0, 8, 5)
    # 3.6.2: accuracy, precision, recall, the negative class's F1
    assert refuses(ex["3.6.2"], 0.7, 0.6, 0.75, 2 * 4 / (2 * 4 + 1 + 2))
    # 3.6.3: bf16 (2 bytes), 8 bytes, the parameter count in millions, MiB instead of MB
    assert refuses(ex["3.6.3"], 2 * n_params / 1e6, 8 * n_params / 1e6, n_params / 1e6, 4 * n_params / 2 ** 20)
    # 3.6.4: the base rate (no warmup), zero (warmup from 0), base / total steps
    assert refuses(ex["3.6.4"], 1e-4, 0.0, 1e-4 / 24)


def test_exercises_follow_their_arguments():
    batch = {"attention_mask": torch.tensor([[1, 1, 1], [1, 0, 0]])}
    ex = ch03_6.exercises(batch, [1, 0], torch.tensor([1, 0]), 10.0, 1e-4)
    assert ex["3.6.1"].check(2) and ex["3.6.2"].check(1.0) and ex["3.6.3"].check(10.0) and ex["3.6.4"].check(1e-4)
    assert not ex["3.6.1"].check(3)
