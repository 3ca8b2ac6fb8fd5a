"""Chapter 8.3's exercises (right answers pass; the naive, the article's, a constant and an ignored argument fail;
hints never state the answer) and its verdict wording (numbers that go both ways)."""
import pytest
import torch
from torch import nn

from labkit.labs import ch08_3
from test_labs import refuses, states_answer


@pytest.fixture
def objects():
    fisher = {"encoder.a": torch.rand(30, 20), "encoder.b": torch.rand(20)}
    adapters = {"q.lora_A": torch.zeros(8, 384), "q.lora_B": torch.zeros(384, 8)}
    head = nn.Linear(384, 3)
    return fisher, adapters, head


def test_right_answers_pass_and_wrong_ones_fail(objects):
    fisher, adapters, head = objects
    ex = ch08_3.exercises(fisher, 63, 64, 0.5, adapters, head, 0.74, 10)
    right = {"8.3.1": 2 * 620, "8.3.2": 63 + 32, "8.3.3": 3 * 8 * 384 + 384 * 3 + 3, "8.3.4": 64.0}
    assert set(ex) == set(right)
    for key, answer in right.items():
        assert ex[key].check(answer), key
        assert not states_answer(ex[key].hint, answer), key
    assert refuses(ex["8.3.1"], 620, 0, 1240 + 384 * 3)                 # the Fisher alone; nothing; plus a head
    assert refuses(ex["8.3.2"], 63, 64 + 63, 63 + 32 // 2, 32)          # no memory; all of A; the memory alone
    # as it is now; the head scaled too; adapters alone; head alone; a full copy
    assert refuses(ex["8.3.3"], 2 * 8 * 384 + 384 * 3 + 3, 1.5 * (2 * 8 * 384 + 384 * 3 + 3), 3 * 8 * 384,
                   384 * 3 + 3, 22_700_000)
    assert refuses(ex["8.3.4"], 74.0, 24.0, 0.64, 0.0)                  # forgot chance; binary chance; not points


def test_expected_answers_follow_the_arguments(objects):
    fisher, adapters, head = objects
    other = ch08_3.exercises({"x": torch.ones(5)}, 10, 40, 0.25, {"l.lora_A": torch.ones(2, 3)}, nn.Linear(3, 2),
                             0.5, 4)
    assert other["8.3.1"].check(10) and other["8.3.2"].check(20) and other["8.3.3"].check(9 + 8)
    assert other["8.3.4"].check(25.0) and not other["8.3.4"].check(40.0)


def test_verdicts_follow_the_numbers():
    same = ch08_3.swap_verdict(0.9, 0.9, 12_000, 22_700_000)
    assert "exactly the same, nothing was forgotten" in same and "12,000 numbers, 0.05% of a full copy" in same
    assert "NOT the same" in ch08_3.swap_verdict(0.9, 0.85, 10, 100)
    assert "far better than a guess" in ch08_3.zero_shot_verdict(0.7, 10)
    assert "(+60.0 points)" in ch08_3.zero_shot_verdict(0.7, 10)
    assert "not clearly above chance" in ch08_3.zero_shot_verdict(0.15, 10)
    with pytest.raises(ValueError, match="n_classes"):
        ch08_3.zero_shot_verdict(0.5, 1)
