"""Argument checks shared by labkit: each names the parameter and the allowed range.

They keep input guards out of the code a reader is shown::

    whole_number("r (the LoRA rank)", r, minimum=1)
    positive("alpha", alpha)

Each returns the value it checked, so a check can sit inside an assignment.
A ``bool`` is refused where a number is expected (``True`` is an ``int`` in Python).
"""
from __future__ import annotations

import math
import numbers
from typing import Any, Iterable

__all__ = ["whole_number", "number", "positive", "probability", "one_of"]


def _is_int(v: Any) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _is_real(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def whole_number(name: str, v: Any, *, minimum: int | None = 1, maximum: int | None = None,
                 allow_none: bool = False) -> Any:
    """``v`` is an int in [minimum, maximum] (either bound may be None), else ValueError naming ``name``."""
    if v is None and allow_none:
        return v
    low_ok = minimum is None or (_is_int(v) and v >= minimum)
    high_ok = maximum is None or (_is_int(v) and v <= maximum)
    if not _is_int(v) or not low_ok or not high_ok:
        if minimum is not None and maximum is not None:
            rng = f"from {minimum} to {maximum}"
        elif minimum is not None:
            rng = f">= {minimum}"
        elif maximum is not None:
            rng = f"<= {maximum}"
        else:
            rng = ""
        also = " or None" if allow_none else ""
        raise ValueError(f"{name} must be a whole number {rng}{also}; got {v!r}".replace("  ", " "))
    return int(v)


def number(name: str, v: Any, *, minimum: float | None = None, maximum: float | None = None,
           open_low: bool = False, open_high: bool = False) -> float:
    """``v`` is a finite real number within the bounds (open or closed), else ValueError naming ``name``."""
    ok = _is_real(v) and math.isfinite(v)
    if ok and minimum is not None:
        ok = v > minimum if open_low else v >= minimum
    if ok and maximum is not None:
        ok = v < maximum if open_high else v <= maximum
    if not ok:
        parts = []
        if minimum is not None:
            parts.append(f"{'>' if open_low else '>='} {minimum:g}")
        if maximum is not None:
            parts.append(f"{'<' if open_high else '<='} {maximum:g}")
        rng = (" " + " and ".join(parts)) if parts else ""
        raise ValueError(f"{name} must be a finite number{rng}; got {v!r}")
    return v


def positive(name: str, v: Any) -> float:
    """``v`` is a finite number > 0."""
    return number(name, v, minimum=0, open_low=True)


def probability(name: str, v: Any, *, open_high: bool = False) -> float:
    """``v`` is in [0, 1] (or [0, 1) with ``open_high``)."""
    return number(name, v, minimum=0, maximum=1, open_high=open_high)


def one_of(name: str, v: Any, choices: Iterable[Any]) -> Any:
    """``v`` is one of ``choices``; the error lists them."""
    choices = list(choices)
    if v not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}; got {v!r}")
    return v
