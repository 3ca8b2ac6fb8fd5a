"""labkit.check: each guard passes good values through and refuses bad ones with the name and the range."""
import math

import numpy as np
import pytest

from labkit.check import number, one_of, positive, probability, whole_number


def test_whole_number_returns_the_value_and_accepts_numpy_integers():
    assert whole_number("n", 3) == 3
    assert whole_number("k", 0, minimum=0, maximum=6) == 0
    assert whole_number("k", 6, minimum=0, maximum=6) == 6
    assert whole_number("n", np.int64(5)) == 5 and type(whole_number("n", np.int64(5))) is int
    assert whole_number("max_len", None, allow_none=True) is None
    assert whole_number("shift", -4, minimum=None) == -4


@pytest.mark.parametrize("v", [0, -1, 2.0, 1.5, "3", None, True, False, float("nan")])
def test_whole_number_refuses_with_name_and_range(v):
    with pytest.raises(ValueError, match=r"^batch_size must be a whole number >= 1; got "):
        whole_number("batch_size", v)


def test_whole_number_messages_state_both_bounds_and_none():
    with pytest.raises(ValueError, match=r"^k must be a whole number from 0 to 6; got 7$"):
        whole_number("k", 7, minimum=0, maximum=6)
    with pytest.raises(ValueError, match=r"^k must be a whole number <= 6; got 7$"):
        whole_number("k", 7, minimum=None, maximum=6)
    with pytest.raises(ValueError, match=r"^n must be a whole number; got 'a'$"):
        whole_number("n", "a", minimum=None)
    with pytest.raises(ValueError, match=r"^max_len must be a whole number >= 1 or None; got 0$"):
        whole_number("max_len", 0, allow_none=True)
    with pytest.raises(ValueError, match="None"):
        whole_number("max_len", None)  # None only where allowed


def test_number_bounds_open_and_closed():
    assert number("x", 0.0, minimum=0) == 0.0
    assert number("x", 1, maximum=1) == 1
    assert number("lr", 3e-4, minimum=0, open_low=True) == 3e-4
    with pytest.raises(ValueError, match=r"^x must be a finite number > 0; got 0$"):
        number("x", 0, minimum=0, open_low=True)
    with pytest.raises(ValueError, match=r"^x must be a finite number >= 0 and < 1; got 1$"):
        number("x", 1, minimum=0, maximum=1, open_high=True)
    with pytest.raises(ValueError, match=r"^x must be a finite number from 0 to 1; got 1.5$"):
        number("x", 1.5, minimum=0, maximum=1)
    for bad in (float("nan"), math.inf, -math.inf, True, "1", None, [1.0]):
        with pytest.raises(ValueError, match="^x must be a finite number"):
            number("x", bad)


def test_positive_and_probability():
    assert positive("alpha", 16) == 16 and positive("T", 0.5) == 0.5
    for bad in (0, -1e-9, math.inf, False):
        with pytest.raises(ValueError, match=r"^alpha must be a finite number > 0"):
            positive("alpha", bad)
    assert probability("p", 0) == 0 and probability("p", 1) == 1
    assert probability("dropout", 0.5, open_high=True) == 0.5
    with pytest.raises(ValueError, match=r"^dropout must be a finite number >= 0 and < 1; got 1$"):
        probability("dropout", 1, open_high=True)
    with pytest.raises(ValueError, match=r"^p must be a finite number from 0 to 1; got -0.1$"):
        probability("p", -0.1)


def test_one_of_lists_the_choices():
    assert one_of("norm", "rms", ("layer", "rms")) == "rms"
    with pytest.raises(ValueError, match=r"^norm must be one of 'layer', 'rms'; got 'batch'$"):
        one_of("norm", "batch", iter(["layer", "rms"]))  # any iterable, consumed once


def test_bounds_print_as_written():
    with pytest.raises(ValueError, match=r">= 1000000; got 5$"):
        whole_number("n", 5, minimum=1_000_000)
    with pytest.raises(ValueError, match=r"> 0.001; got 0.0001$"):
        number("lr", 1e-4, minimum=1e-3, open_low=True)
