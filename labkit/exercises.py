"""Exercises that check a learner's answer and give a hint when it is wrong.

    ex = Exercise("2.1", "How many parameters does the head train?",
                  expected=lambda: count_trainable(head), hint="weights + biases: d·k + k")
    ex.check(answer)     # prints ✅ or ❌ with the hint; returns True/False

``expected`` may be a value or a function computed in the notebook, so answers
are checked against what the code measured, never against a number typed in.
When the answer is code (a function or a model), ``check_fn`` runs it: a
function that still raises ``NotImplementedError`` is "not implemented yet", and
any other error in the learner's code is printed and counts as "not yet", so a
lab always runs to its end.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

__all__ = ["Exercise", "numbers_close", "summary"]


def numbers_close(answer: Any, expected: Any, rel: float = 1e-6, abs_: float = 0.0) -> bool:
    """Whether ``answer`` is a number within ``rel``/``abs_`` of ``expected``. ``True``/``False`` are not numbers
    here (Python would read them as 1 and 0, so ``True`` would pass for an expected 1.0)."""
    if _is_bool(answer):
        return False
    try:
        a, e = float(answer), float(expected)
    except (TypeError, ValueError):
        return False
    return math.isclose(a, e, rel_tol=rel, abs_tol=abs_)


@dataclass
class Exercise:
    """One question: a checker, a hint for a wrong answer, and an explanation for a right one."""

    key: str
    question: str
    expected: Any = None
    check_fn: Callable[[Any], bool] | None = None
    hint: str = ""
    explain: str = ""
    rel: float = 1e-6
    abs_tol: float = 0.0
    attempts: list = field(default_factory=list)

    def _expected(self) -> Any:
        return self.expected() if callable(self.expected) else self.expected

    def is_correct(self, answer: Any) -> bool:
        if self.check_fn is not None:
            return bool(self.check_fn(answer))
        expected = self._expected()
        if isinstance(expected, str):
            return isinstance(answer, str) and answer.strip().lower() == expected.strip().lower()
        if isinstance(expected, bool) or expected is None:
            return answer is expected
        if isinstance(expected, (int, float)):
            return numbers_close(answer, expected, self.rel, self.abs_tol)
        return answer == expected

    def check(self, answer: Any) -> bool:
        """Print whether ``answer`` is right (with a hint if not) and return True/False."""
        if answer is None or answer is ...:
            print(f"Exercise {self.key}: not answered yet. {self.question}")
            return False
        hint = f" Hint: {self.hint}" if self.hint else ""
        said = False  # whether an error in the learner's code was already reported
        try:
            ok = self.is_correct(answer)
        except Exception as e:
            if self.check_fn is None:  # no learner code ran: a failure here is labkit's own, show it
                raise
            if isinstance(e, NotImplementedError):
                print(f"Exercise {self.key}: not implemented yet. Fill in the function and run this cell again.")
            else:
                print(f"❌ Exercise {self.key}: your code raised {type(e).__name__}: {e}.{hint}")
            ok, said = False, True
        self.attempts.append((answer, ok))
        if ok:
            print(f"✅ Exercise {self.key}: correct." + (f" {self.explain}" if self.explain else ""))
        elif not said:
            print(f"❌ Exercise {self.key}: not yet ({_shown(answer)}).{hint}")
        return ok


def _is_bool(value: Any) -> bool:
    return isinstance(value, (bool, np.bool_))   # Python's bool and NumPy's


def _shown(answer: Any) -> str:
    """A short name for an answer: a function, class or model by its name, a value by its repr."""
    if callable(answer):
        return getattr(answer, "__name__", type(answer).__name__)
    return repr(answer)


def summary(exercises: dict[str, Exercise]) -> dict[str, bool]:
    """Whether the latest answer to each exercise passed (False when not tried yet); prints one line each."""
    results = {key: bool(ex.attempts) and ex.attempts[-1][1] for key, ex in exercises.items()}
    for key, ok in results.items():
        print(f"{key}: {'✅ passed' if ok else 'not passed yet'}")
    return results
