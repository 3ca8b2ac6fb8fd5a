"""Chapter 1's exercises: which profile runs, BERT's masking arithmetic, and what a model's weights weigh.

Every expected answer is computed by the code the chapter describes (``labkit.runtime.get_profile``,
``labkit.data.pretraining.mask_tokens``, ``labkit.sizing``), never typed in; ``tests/test_labs.py``
checks that each refuses the usual wrong answers.
"""
from __future__ import annotations

import inspect
import os
from unittest import mock

import torch

from .. import sizing, zoo
from ..check import whole_number
from ..data.pretraining import mask_tokens
from ..exercises import Exercise
from ..runtime import get_profile

__all__ = ["SITUATIONS", "profile_in", "expected_masks", "weights_mb", "exercises"]

# (the notebook's profile parameter, $LABKIT_PROFILE or None when unset, whether CUDA is available)
SITUATIONS = [(None, "smoke", True), ("cpu", "smoke", True), (None, None, True), (None, None, False)]


def profile_in(profile: str | None, env: str | None, cuda: bool) -> str:
    """The profile :func:`labkit.runtime.get_profile` picks in one situation (environment and CUDA simulated)."""
    environ = {k: v for k, v in os.environ.items() if k != "LABKIT_PROFILE"}
    if env is not None:
        environ["LABKIT_PROFILE"] = env
    with mock.patch.dict(os.environ, environ, clear=True), mock.patch.object(torch.cuda, "is_available",
                                                                            return_value=cuda):
        return get_profile(profile)


def expected_masks(n_tokens: int) -> float:
    """How many of ``n_tokens`` non-special tokens mask_tokens is expected to turn into [MASK], by its defaults."""
    defaults = inspect.signature(mask_tokens).parameters
    return whole_number("n_tokens", n_tokens) * defaults["mlm_prob"].default * defaults["mask_frac"].default


def weights_mb(name: str = "all-MiniLM-L6-v2", bytes_per_parameter: int = 4) -> float:
    """Megabytes (10^6 bytes) of a zoo model's weights at its real size, from its configuration."""
    return sizing.param_count(zoo.card(name).config("real")) * bytes_per_parameter / 1e6


def _same_profiles(answer) -> bool:
    expected = [profile_in(*s) for s in SITUATIONS]
    return (isinstance(answer, (list, tuple)) and len(answer) == len(expected)
            and [str(a).strip().lower() for a in answer] == expected)


def exercises(n_tokens: int = 2000, model: str = "all-MiniLM-L6-v2") -> dict[str, Exercise]:
    situations = "; ".join(f"({chr(97 + i)}) profile={p!r}, LABKIT_PROFILE={'unset' if e is None else repr(e)}, "
                           f"CUDA {'available' if c else 'absent'}" for i, (p, e, c) in enumerate(SITUATIONS))
    return {
        "1.1": Exercise(
            "1.1", f"Which profile runs in each situation? {situations}. Answer with a list of "
            f"{len(SITUATIONS)} profile names.", check_fn=_same_profiles,
            hint="section 1.3 lists three sources for the profile in an order; for each situation take the first "
                 "source that is set, and fall back to detection only when none is",
            explain="The notebook's parameter wins over the environment variable, which wins over detection."),
        "1.2": Exercise(
            "1.2", f"A batch holds {n_tokens:,} non-special tokens. With BERT's recipe (as "
            "labkit.data.pretraining.mask_tokens implements it), how many of them do you expect to become "
            "[MASK]?", expected=lambda: expected_masks(n_tokens), rel=1e-3,
            hint="two fractions apply one after the other: the share of tokens that are chosen, then the share "
                 "of the chosen tokens that are replaced by the [MASK] token",
            explain="The other chosen tokens become a random token or stay unchanged; the loss is computed at "
                    "every chosen position."),
        "1.3": Exercise(
            "1.3", f"How many megabytes (1 MB = 10^6 bytes) do {model}'s weights take in float32? "
            f"labkit.sizing.param_count(labkit.zoo.card({model!r}).config('real')) counts its parameters.",
            expected=lambda: weights_mb(model), rel=0.06,
            hint="a float32 number takes a fixed number of bytes: multiply, then convert bytes to megabytes",
            explain="Within a few percent of this is right (MiB or MB). Half precision halves it; optimizer "
                    "state and activations come on top during training."),
    }
