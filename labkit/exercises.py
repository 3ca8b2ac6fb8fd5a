"""Exercises that check a learner's answer and give a hint when it is wrong.

    ex = Exercise("2.1", "How many parameters does the head train?",
                  expected=lambda: count_trainable(head), hint="weights + biases: d·k + k")
    ex.check(answer)     # prints ✅ or ❌ with the hint; returns True/False

``expected`` may be a value or a function computed in the notebook, so answers
are checked against what the code measured, never against a number typed in.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

__all__ = ["Exercise", "numbers_close"]


def numbers_close(answer: Any, expected: Any, rel: float = 1e-6, abs_: float = 0.0) -> bool:
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
        ok = self.is_correct(answer)
        self.attempts.append((answer, ok))
        if ok:
            print(f"✅ Exercise {self.key}: correct." + (f" {self.explain}" if self.explain else ""))
        else:
            print(f"❌ Exercise {self.key}: not yet ({answer!r})." + (f" Hint: {self.hint}" if self.hint else ""))
        return ok
