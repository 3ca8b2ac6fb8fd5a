"""labkit.exercises: a number check refuses booleans (Python reads True as 1)."""
import numpy as np

from labkit.exercises import Exercise, numbers_close


def test_numbers_close_refuses_booleans_and_accepts_numbers():
    assert numbers_close(1, 1.0) and numbers_close(np.float64(0.5), 0.5) and numbers_close(np.int64(3), 3)
    assert not numbers_close(True, 1.0) and not numbers_close(False, 0) and not numbers_close(np.bool_(True), 1)
    assert not numbers_close(None, 0.0) and not numbers_close("one", 1.0)


def test_a_numeric_exercise_refuses_true_for_one_and_a_bool_exercise_keeps_bools():
    one = Exercise("x", "a ratio", expected=lambda: 1.0)
    assert one.check(1.0) and not one.check(True)
    yes = Exercise("y", "true or false?", expected=True)
    assert yes.check(True) and not yes.check(1)
