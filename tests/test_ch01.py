"""Chapter 1's exercises: the right answers pass; the naive answer, a constant and an ignored argument are refused;
the expected values follow the code they come from; no hint states the answer."""
import os

import pytest

from labkit import sizing, zoo
from labkit.labs import ch01
from exercise_checks import refuses


def test_profile_in_simulates_the_environment_and_restores_it():
    before = os.environ.get("LABKIT_PROFILE")
    assert ch01.profile_in(None, "smoke", True) == "smoke"
    assert ch01.profile_in("cpu", "smoke", True) == "cpu"
    assert ch01.profile_in(None, None, True) == "gpu"
    assert ch01.profile_in(None, None, False) == "cpu"
    assert os.environ.get("LABKIT_PROFILE") == before
    with pytest.raises(ValueError, match="LABKIT_PROFILE must be one of"):
        ch01.profile_in(None, "laptop", False)


def test_chapter1_right_answers_pass_and_wrong_ones_fail():
    ex = ch01.exercises()
    params = sizing.param_count(zoo.card("all-MiniLM-L6-v2").config("real"))
    right = {"1.1": ["smoke", "cpu", "gpu", "cpu"], "1.2": 2000 * 0.15 * 0.8, "1.3": params * 4 / 1e6}
    assert set(ex) == set(right)
    for key, answer in right.items():
        assert ex[key].check(answer), key
    assert ex["1.1"].check(("Smoke", "CPU", "gpu", "cpu"))                        # a tuple, any case
    assert ex["1.3"].check(params * 4 / 2 ** 20)                                 # MiB is close enough
    assert refuses(ex["1.1"], ["smoke", "smoke", "gpu", "cpu"],                 # the variable beats the parameter
                   ["smoke", "cpu", "cpu", "cpu"],                              # CUDA ignored
                   ["cpu"] * 4, ["smoke", "cpu", "gpu"], "smoke cpu gpu cpu")   # constant; too short; a string
    assert refuses(ex["1.2"], 2000 * 0.15, 2000 * 0.8, 2000 * 0.15 * 0.1, 2000, 0)
    assert refuses(ex["1.3"], params / 1e6, params * 2 / 1e6, params * 4, params * 4 / 1e9)


def test_chapter1_exercises_follow_their_arguments():
    assert ch01.exercises(n_tokens=1000)["1.2"].check(120) and not ch01.exercises(n_tokens=1000)["1.2"].check(240)
    bert = sizing.param_count(zoo.card("bert-base-uncased").config("real")) * 4 / 1e6
    assert ch01.exercises(model="bert-base-uncased")["1.3"].check(bert)
    assert not ch01.exercises(model="bert-base-uncased")["1.3"].check(ch01.weights_mb())
    with pytest.raises(ValueError, match="n_tokens"):
        ch01.expected_masks(0)


def test_chapter1_hints_do_not_state_the_answers():
    ex = ch01.exercises()
    for text in (ex["1.2"].hint, ex["1.3"].hint):
        assert not any(v in text for v in ("240", "0.12", "90.8", "91", "22.7", "0.15", "0.8", "15%", "80%"))
    assert not any(p in ex["1.1"].hint for p in ("smoke", "cpu", "gpu"))
