"""Chapter 3.5 (fine-tuning strategies): the sentences that word what the chapter measured, and its exercises.

Every verdict is worded from the numbers it is given (``tests/test_ch03_5.py`` feeds it numbers that go both
ways); every expected answer is computed from the chapter's objects, never typed in.
"""
from __future__ import annotations

from torch import nn

from ..exercises import Exercise
from ..finetune import GradualUnfreezing, encoder_layers
from ..strategies import StrategyResult

__all__ = ["teacher_verdict", "kd_verdict", "forgetting_verdict", "blocks_training", "exercises"]


def teacher_verdict(stats: dict, certain: float = 0.95) -> str:
    """``stats`` from :func:`labkit.finetune.soft_targets`: is the teacher nearly certain on the transfer set (its
    mean top-class probability at the distillation temperature at least ``certain``)?"""
    p, p1, T = stats["top-class probability at T"], stats["top-class probability at T=1"], stats["T"]
    head = (f"Verdict: on the transfer set the teacher agrees with the labels on {100 * stats['agrees with labels']:.0f}% "
            f"of the reviews and gives its top class a mean probability of {p1:.3f} at T=1, {p:.3f} at T={T:g} "
            f"(entropy {100 * stats['entropy share at T']:.0f}% of the maximum): ")
    if p >= certain:
        return head + ("nearly certain, so its soft targets say little more than the hard labels "
                       + ("do." if stats["agrees with labels"] >= 0.99 else "(where it disagrees, they say otherwise)."))
    return head + "not certain, so its soft targets carry how sure it is about each review, beyond the hard labels."


def kd_verdict(kd_acc: float, hard_acc: float, margin: float = 0.01) -> str:
    """The distilled student against the same student trained on hard labels alone (test accuracy)."""
    d = 100 * (kd_acc - hard_acc)
    if abs(d) < 100 * margin:
        how = f"the two students are level (within {100 * margin:.0f} point)"
    else:
        how = f"the KD student is {'ahead' if d > 0 else 'behind'} by {abs(d):.1f} points"
    return (f"Verdict: test accuracy {kd_acc:.3f} with the teacher's soft targets, {hard_acc:.3f} with the hard "
            f"labels alone: {how} on this budget (one seed).")


def forgetting_verdict(before: float, after: float, margin: float = 0.02) -> str:
    """Task A accuracy before and after the same model was fine-tuned on task B."""
    drop = 100 * (before - after)
    if drop > 100 * margin:
        return (f"Verdict: task A accuracy fell by {drop:.1f} points ({before:.3f} -> {after:.3f}) when the same "
                "model was fine-tuned on task B: catastrophic forgetting.")
    return (f"Verdict: task A accuracy moved by {-drop:+.1f} points ({before:.3f} -> {after:.3f}), less than "
            f"{100 * margin:.0f} points down: no forgetting measurable at this budget.")


def blocks_training(encoder: nn.Module, epochs: int) -> int:
    """How many transformer blocks gradual unfreezing lets train in the last of ``epochs`` epochs: the callback
    itself, run over the epochs on ``encoder`` (a copy you do not need afterwards)."""
    cb = GradualUnfreezing(encoder)
    cb.on_fit_start(None)
    for _ in range(epochs - 1):
        cb.on_epoch_end(None)
    return sum(all(p.requires_grad for p in layer.parameters()) for layer in encoder_layers(encoder))


def exercises(adapted: nn.Module, lora: StrategyResult, a_before: float, a_after: float, new_encoder,
              epochs: int) -> dict[str, Exercise]:
    """Four questions on the chapter's objects: ``adapted`` (the encoder with LoRA injected), ``lora`` (the LoRA
    run of the race), task A's accuracy before and after task B, ``new_encoder()`` (a fresh pretrained copy) and
    the race's number of epochs."""
    width = adapted.config.hidden_size
    blocks = len(encoder_layers(adapted))
    state_mb = lora.memory["grads MB"] + lora.memory["AdamW state MB"]
    return {
        "3.5.1": Exercise(
            "3.5.1", f"all-MiniLM-L6-v2 has {blocks} blocks of width {width}. How many parameters does LoRA with r=8 "
            "on the query and value projections add? (Count A and B of every adapted layer; not the head.)",
            expected=lambda: sum(p.numel() for n, p in adapted.named_parameters() if "lora_" in n),
            hint=f"each adapted layer adds A (r x {width}) and B ({width} x r); how many layers are adapted?",
            explain="A full update of the same layers would train width² numbers each."),
        "3.5.2": Exercise(
            "3.5.2", "The LoRA run of the race: how many MiB (2**20 bytes) do its gradients and AdamW's two moments "
            "take, together? (to 1%)",
            expected=state_mb, rel=0.01,
            hint="one float32 gradient and two float32 moments for every TRAINABLE parameter (read the race's "
                 "trainable count of the LoRA row; the head trains too)",
            explain="The frozen weights need no gradient and no optimizer state; this is what PEFT saves."),
        "3.5.3": Exercise(
            "3.5.3", "Catastrophic forgetting: by how many accuracy points did task A (sentiment) fall when the "
            "same model was fine-tuned on task B? (positive = it fell)",
            expected=100 * (a_before - a_after), abs_tol=0.15,
            hint="task A's accuracy before task B minus after it, on task A's test split, in points "
                 "(1 point = 0.01 accuracy)",
            explain="A fresh copy per task loses nothing: its task-A model is never touched."),
        "3.5.4": Exercise(
            "3.5.4", f"Gradual unfreezing with {epochs} epoch{'s' if epochs != 1 else ''}: how many transformer blocks "
            "train during the last epoch?",
            expected=lambda: blocks_training(new_encoder(), epochs),
            hint="epoch 1 trains only the head; each epoch end thaws one more block, top-down",
            explain=(f"Of the {blocks} blocks, " + ("all were unfrozen by the last epoch." if epochs > blocks else
                     f"the lowest {blocks - min(epochs - 1, blocks)} never train: with a short budget, gradual "
                     "unfreezing never reaches them."))),
    }
