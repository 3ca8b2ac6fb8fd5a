"""Chapter 3.6 (the end-to-end pipeline): the sentences that word what the chapter measured, and its exercises.

Every verdict is worded from the numbers it is given (``tests/test_ch03_6.py`` feeds it numbers that go both
ways); every expected answer is computed from the chapter's objects, never typed in.
"""
from __future__ import annotations

from ..exercises import Exercise
from ..metrics import f1_score

__all__ = ["reload_verdict", "reader_verdict", "exercises"]


def reload_verdict(n: int, same_label: int, bitwise: int, max_dp: float, tol: float = 1e-5) -> str:
    """The reloaded model (in a fresh process) against the model in memory, on the same ``n`` texts."""
    if same_label == n and max_dp <= tol:
        return (f"Verdict: the reloaded model gives the same label for all {n} texts; the largest probability "
                f"difference from the trained model is {max_dp:.2g} ({bitwise} of {n} bitwise identical): the saved "
                "folder is the trained model.")
    return (f"Verdict: the reloaded model differs: same label for {same_label} of {n} texts, largest probability "
            f"difference {max_dp:.3g} (tolerance {tol:g}): something was not saved or not loaded as trained.")


def reader_verdict(rows: list[tuple[str, float, str]], labels=("negative", "positive"), confident: float = 0.9) -> str:
    """``rows``: (model's label, its probability, a reader's label) per review. Where the reader's label is one of
    ``labels``, count the model's disagreements and how sure it was of them; other reader labels ("mixed") are
    reported as outside what the model can answer."""
    clear = [r for r in rows if r[2] in labels]
    wrong = [r for r in clear if r[0] != r[2]]
    text = (f"Verdict: the model agrees with the reader on {len(clear) - len(wrong)} of the {len(clear)} reviews with "
            "a clear label")
    if len(wrong) == 1:
        p = wrong[0][1]
        text += (f"; its wrong label came with probability {p:.3f}"
                 + (f", {confident} or more: the calibration lesson again." if p >= confident else
                    f", below {confident}."))
    elif wrong:
        sure = [r for r in wrong if r[1] >= confident]
        text += (f"; its {len(wrong)} wrong labels came with probabilities {', '.join(f'{r[1]:.3f}' for r in wrong)}"
                 + (f": {len(sure)} of them with a probability of {confident} or more, the calibration lesson again."
                    if sure else f", none as high as {confident}."))
    else:
        text += "."
    other = [r for r in rows if r[2] not in labels]
    if other:
        text += " " + "; ".join(f"a {r[2]} review got {r[0]} with probability {r[1]:.3f}" for r in other) + \
                f" (the model can only answer {' or '.join(labels)})."
        text = text.replace(". a ", ". A ").replace("; a ", "; a ")
    return text


def exercises(batch, y_true, y_pred, weights_mb: float, first_lr: float) -> dict[str, Exercise]:
    """Four questions on the chapter's objects: ``batch`` (the tokenized pair of texts), the test labels and
    predictions, the size of the saved ``model.safetensors`` in MB (10**6 bytes) and the learning rate of the
    first fine-tuning step."""
    mask = batch["attention_mask"]
    return {
        "3.6.1": Exercise(
            "3.6.1", "In the padded pair of texts of Step 2, how many positions of the batch are padding "
            "(attention_mask = 0)?",
            expected=lambda: int((mask == 0).sum()),
            hint="both rows are padded to the longer one; count every token of each row, [CLS] and [SEP] included, "
                 "and remember that word pieces (##...) are tokens too",
            explain="Padding costs compute but, masked, changes no output."),
        "3.6.2": Exercise(
            "3.6.2", "From the confusion matrix of Step 5: what is the F1 score of the positive class? (to 0.001)",
            expected=lambda: f1_score(y_true, y_pred), abs_tol=1e-3,
            hint="precision = true positives / predicted positives, recall = true positives / actual positives, "
                 "F1 = their harmonic mean; positive is the second row and column",
            explain="Unlike accuracy, F1 ignores the true negatives."),
        "3.6.3": Exercise(
            "3.6.3", "Without opening the folder: how many MB (10**6 bytes) should model.safetensors take? Use the "
            "model's parameter count. (to 1%)",
            expected=weights_mb, rel=0.01,
            hint="every parameter is one float32 number, stored once; the JSON header is tiny",
            explain="A bf16 copy would take half; an optimizer checkpoint (weights + two AdamW moments) three times."),
        "3.6.4": Exercise(
            "3.6.4", "Step 4 fine-tuned with lr=1e-4 and warmup_cosine(max(1, total // 10), total). What learning "
            "rate did the very first step use?",
            expected=first_lr, rel=1e-6,
            hint="during the warmup the factor is (step + 1) / warmup_steps, counting steps from 0; "
                 "compute total and the warmup length from the run's sizes",
            explain="Warmup starts small so that the new head's first, large gradients cannot wreck the encoder."),
    }
