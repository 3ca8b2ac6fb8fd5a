"""Grading a quick check: the verdict a learner saw, as a result an autograder can record.

Each exercise of a lab or a chapter is graded by an otter-grader test (``course/<lab>.ipynb``, the
``# BEGIN TESTS`` block of its question) that calls :func:`outcome` in the learner's kernel, after the
learner's notebook ran:

    def test_4b_1(ex, sigmoid_backward):
        from labkit.grading import outcome
        passed, message = outcome(ex, "4b.1", sigmoid_backward)
        assert passed, message

So the grade is the same check the learner ran in the notebook (``ex["4b.1"].check(...)``), and the
message in the score table is the line the check printed: ✅, ❌ with the hint, or "not answered yet".
"""
from __future__ import annotations

import contextlib
import io
from typing import Any

__all__ = ["outcome"]


def outcome(ex: Any, key: str, answer: Any) -> tuple[bool, str]:
    """Run exercise ``key`` of ``ex`` on ``answer`` quietly: (passed, what the check printed).

    ``ex`` is the notebook's dict of exercises; ``None`` (the cell that builds it never ran, or raised)
    and a missing key give a failed outcome that says so, never an error of the grader.
    """
    if ex is None:
        return False, "the exercises were never set up: the cell that builds `ex` did not run or raised"
    try:
        exercise = ex[key]
    except (KeyError, TypeError, IndexError):
        return False, f"exercise {key} is not in this notebook's `ex`"
    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed):
            passed = bool(exercise.check(answer))
    except Exception as e:   # the check itself raised (labkit's own failure): a grade of 0 with the reason
        return False, f"the check raised {type(e).__name__}: {e}"
    return passed, " ".join(printed.getvalue().split()) or ("passed" if passed else "not passed")
