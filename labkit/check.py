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


def _fmt(x) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)


def _bounds(minimum, maximum, open_low: bool = False, open_high: bool = False) -> str:
    """" >= 1", " from 0 to 6", " > 0 and < 1", or "" when there is no bound."""
    if minimum is not None and maximum is not None and not open_low and not open_high:
        return f" from {_fmt(minimum)} to {_fmt(maximum)}"
    parts = []
    if minimum is not None:
        parts.append(f"{'>' if open_low else '>='} {_fmt(minimum)}")
    if maximum is not None:
        parts.append(f"{'<' if open_high else '<='} {_fmt(maximum)}")
    return (" " + " and ".join(parts)) if parts else ""


def whole_number(name: str, v: Any, *, minimum: int | None = 1, maximum: int | None = None,
                 allow_none: bool = False) -> Any:
    """``v`` is an int in [minimum, maximum] (either bound may be None), else ValueError naming ``name``."""
    if v is None and allow_none:
        return v
    ok = _is_int(v) and (minimum is None or v >= minimum) and (maximum is None or v <= maximum)
    if not ok:
        also = " or None" if allow_none else ""
        raise ValueError(f"{name} must be a whole number{_bounds(minimum, maximum)}{also}; got {v!r}")
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
        raise ValueError(f"{name} must be a finite number{_bounds(minimum, maximum, open_low, open_high)}; got {v!r}")
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
