"""Chapter 8.3 (continual learning, personalisation, multimodal): the sentences that word what the chapter
measured, and its exercises.

Every verdict is worded from the numbers it is given (``tests/test_ch08_3.py`` feeds it numbers that go both
ways); every expected answer is computed from the chapter's objects, never typed in.
"""
from __future__ import annotations

import torch

from ..check import number, whole_number
from ..exercises import Exercise

__all__ = ["ewc_numbers", "per_task_numbers", "swap_verdict", "zero_shot_verdict", "exercises"]


def ewc_numbers(fisher: dict[str, torch.Tensor]) -> int:
    """Numbers EWC keeps after task A beside the model: the Fisher diagonal and the task-A weights θ*."""
    return 2 * sum(f.numel() for f in fisher.values())


def per_task_numbers(adapters: dict[str, torch.Tensor], head: torch.nn.Module, projections: float = 1.0) -> int:
    """Numbers to store for one more task on a frozen base: its LoRA matrices (``projections`` times as many, for
    adapters on more projections of the same shape) and its head."""
    return round(projections * sum(v.numel() for v in adapters.values())) + sum(p.numel() for p in head.parameters())


def swap_verdict(a_lora: float, a_after_swap: float, stored: int, full: int) -> str:
    """Per-task LoRA on a frozen base: is task A's accuracy back exactly after swapping its adapters in?"""
    same = a_after_swap == a_lora
    return (f"Verdict: task A with its own adapters {a_lora:.3f}; after training task B's adapters and swapping A's "
            f"back in, {a_after_swap:.3f}: " + ("exactly the same, nothing was forgotten" if same else
                                                 f"{100 * (a_after_swap - a_lora):+.1f} points: NOT the same")
            + f". One more task stores {stored:,} numbers, {100 * stored / full:.2f}% of a full copy ({full:,}).")


def zero_shot_verdict(accuracy: float, n_classes: int, margin: float = 0.1) -> str:
    """Zero-shot accuracy against chance (1 / n_classes)."""
    number("accuracy", accuracy, minimum=0, maximum=1)
    whole_number("n_classes", n_classes, minimum=2)
    chance = 1 / n_classes
    above = 100 * (accuracy - chance)
    return (f"Verdict: zero-shot accuracy {accuracy:.3f} on held-out digits against chance {chance:.3f} "
            f"({above:+.1f} points): " + ("the caption texts alone pick the class far better than a guess."
                                          if accuracy - chance > margin else "not clearly above chance."))


def exercises(fisher: dict[str, torch.Tensor], n_b: int, n_a: int, fraction: float,
              adapters: dict[str, torch.Tensor], head: torch.nn.Module, zero_shot: float,
              n_classes: int) -> dict[str, Exercise]:
    """Four questions on the chapter's objects: the EWC state, the replay set, the per-task LoRA, the CLIP."""
    return {
        "8.3.1": Exercise(
            "8.3.1", "After task A, how many numbers does EWC keep beside the model, for the penalty of task B?",
            expected=lambda: ewc_numbers(fisher),
            hint="the penalty needs, for every encoder weight, how much it matters to task A and where it was "
                 "after task A",
            explain="EWC's memory grows with the model (and with every new task's Fisher, unless they are merged); "
                    "replay's memory grows with the examples kept."),
        "8.3.2": Exercise(
            "8.3.2", f"How many examples does the replay arm train on in each epoch of task B (memory: {fraction:.0%} "
            f"of task A's {n_a} examples)?",
            expected=lambda: n_b + round(fraction * n_a),
            hint="the memory is a fraction of task A's training examples, mixed into task B's training set",
            explain="Replay pays in compute (a larger epoch) and in keeping old data, which privacy rules may "
                    "forbid."),
        "8.3.3": Exercise(
            "8.3.3", "The per-user adapters sit on the query and value projections (rank 8). How many numbers would "
            "one more user store if they sat on the key projections too, same rank, head included?",
            expected=lambda: per_task_numbers(adapters, head, projections=1.5),
            hint="a key projection has the shape of a query projection, so it adds as many LoRA numbers as one of "
                 "the two kinds there are now; the head does not change",
            explain="Personalisation by adapters: one base, a few hundred kilobytes per user; it says nothing about "
                    "privacy."),
        "8.3.4": Exercise(
            "8.3.4", "By how many accuracy points does the tiny CLIP's zero-shot classification beat a random guess "
            "among the digit classes?",
            expected=lambda: 100 * (zero_shot - 1 / n_classes), abs_tol=0.05,
            hint="a random guess is right once per number of classes; give the difference in points "
                 "(1 point = 0.01 accuracy)",
            explain="Zero-shot means no classifier was trained on these labels: the classes are only caption texts."),
    }
