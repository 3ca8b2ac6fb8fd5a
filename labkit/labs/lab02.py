"""Lab 2: what pretraining buys. The same classifier from scratch and from a pretrained encoder, side by side.

:class:`TwoArms` trains both arms per call (one live plot, one table of every run);
:func:`panel` puts the labelled-set size, learning rate, epochs, batch size and
freezing on controls; :func:`verdict` words what one run measured. Every expected
answer of :func:`exercises` is computed from the data or the model.
"""
from __future__ import annotations

from ..data.reviews import HELD_OUT_WORDS, Reviews
from ..exercises import Exercise
from ..finetune import count_parameters, freeze
from ..nn import SequenceClassifier
from ..plots import LiveLossPlot
from ..transfer import ARMS, FRAME, RunResult, closer_to_own_sentiment, train_classifier
from ..widgets import Int, LogFloat, Panel, Toggle

__all__ = ["TwoArms", "batch_fits", "panel", "verdict", "own_sentiment_count", "exercises"]


class TwoArms:
    """Trains the scratch and the pretrained arm with the same settings; keeps a row per arm and run."""

    def __init__(self, encoders, data: Reviews, seed: int = 0):
        self.encoders, self.data, self.seed = encoders, data, seed
        self.rows: list[dict] = []

    def run(self, n_labels: int, lr: float, epochs: int, batch_size: int, freeze_encoder: bool) -> dict[str, RunResult]:
        """Train both arms into one live plot, test them, show the table of every run so far."""
        from IPython.display import display
        plot = LiveLossPlot(title=f"{n_labels} labels · lr {lr:.0e} · {epochs} epochs"
                            + (" · encoder frozen" if freeze_encoder else ""), every=2, smooth=3)
        out = {}
        for arm in ARMS:
            r = train_classifier(self.encoders, arm, self.data, n_labels, lr=lr, epochs=epochs, batch_size=batch_size,
                                 freeze_encoder=freeze_encoder, seed=self.seed, callbacks=[plot.track(arm)],
                                 with_val=True)
            out[arm] = r
            self.rows.append({"labels": n_labels, "lr": lr, "epochs": epochs, "frozen": freeze_encoder, "arm": arm,
                              "trainable params": r.trainable, "train accuracy": round(r.accuracy["train"], 3),
                              "val accuracy": round(r.accuracy["val"], 3), "test accuracy": round(r.test_acc, 3),
                              "seconds": round(r.seconds, 1)})
        display(self.table())
        return out

    def table(self):
        import pandas as pd
        return pd.DataFrame(self.rows)


def batch_fits(values: dict) -> str | None:
    """The panel's check across parameters: a batch cannot be larger than the labelled set."""
    if values["batch_size"] > values["n_labels"]:
        return f"batch_size must be at most n_labels={values['n_labels']}; got {values['batch_size']}"
    return None


def panel(lab: TwoArms, n_labels: int, epochs: int) -> Panel:
    """Labelled-set size, learning rate, epochs, batch size and freezing over :meth:`TwoArms.run`."""
    return Panel(lab.run, title="Lab 2 · scratch vs pretrained", validate=batch_fits,
                 n_labels=Int(16, 512, n_labels, step=16), lr=LogFloat(1e-5, 1e-2, 1e-4),
                 epochs=Int(1, 30, epochs), batch_size=Int(4, 64, 16, step=4), freeze_encoder=Toggle(False))


def verdict(results: dict[str, RunResult], chance: float = 0.5, near: float = 0.10) -> str:
    """What one run of :meth:`TwoArms.run` measured, worded from its numbers (one seed: a single run)."""
    pre, scratch = results["pretrained"], results["scratch"]
    gap = 100 * (pre.test_acc - scratch.test_acc)
    lead = ("the pretrained arm is ahead" if gap >= 2 else "the scratch arm is ahead" if gap <= -2
            else "the two arms are level")
    lines = [f"{arm}: train {r.accuracy['train']:.3f}, validation (seen words) {r.accuracy['val']:.3f}, "
             f"test (held-out words) {r.test_acc:.3f}" for arm, r in results.items()]
    lines.append(f"On the held-out-word test {lead} ({gap:+.1f} points, one seed).")
    for arm, r in results.items():
        where = (f"within {100 * near:.0f} points of chance" if abs(r.test_acc - chance) <= near else
                 f"more than {100 * near:.0f} points {'above' if r.test_acc > chance else 'below'} chance")
        fits = r.accuracy["train"] >= 0.95
        lines.append(f"{arm} {'fits' if fits else 'does not fit'} its {r.n_labels} labels (train accuracy "
                     f"{r.accuracy['train']:.3f} {'>=' if fits else '<'} 0.95) and is {where} on the test.")
    return "\n".join(lines)


def own_sentiment_count(encoder, tokenizer) -> int:
    """How many held-out adjectives ``encoder`` puts closer to the seen adjectives of their own sentiment."""
    return sum(row["own sentiment closer"] for row in closer_to_own_sentiment(encoder, tokenizer))


def _words(texts) -> set[str]:
    return {w.strip(".,!?:;") for t in texts for w in t.lower().split()}


def exercises(encoders, data: Reviews) -> dict[str, Exercise]:
    """Questions 2.1-2.5: parameter counts, the data, chance, and what the encoder knew before any label."""
    def head_only() -> int:
        model = SequenceClassifier(encoders.encoder("pretrained"), n_classes=2)
        freeze(model.encoder)
        return count_parameters(model, trainable_only=True)

    def full() -> int:
        return count_parameters(SequenceClassifier(encoders.encoder("pretrained"), n_classes=2))

    def unseen_cues() -> int:
        train = _words(data.texts("train"))
        return sum(w in train for lab in HELD_OUT_WORDS.values() for w in lab["adj"])

    def chance() -> float:
        labels = data.labels("test")
        return max(labels.count(0), labels.count(1)) / len(labels)

    def head_start() -> int:
        return (own_sentiment_count(encoders.encoder("pretrained"), encoders.tokenizer)
                - own_sentiment_count(encoders.encoder("scratch"), encoders.tokenizer))

    return {
        "2.1": Exercise("2.1", "With the encoder frozen, how many parameters does the classifier train?",
                        expected=head_only, explain="Only the linear head trains: weights + biases.",
                        hint="only the new head trains: what is the shape of its weight matrix (the sentence vector's "
                             "size is the encoder's hidden_size), and how many biases does it have?"),
        "2.2": Exercise("2.2", "Unfrozen, how many parameters does full fine-tuning update?",
                        expected=full, hint="everything trains: count the encoder's parameters "
                                            "(sum of p.numel()), then add what 2.1 counted"),
        "2.3": Exercise("2.3", "How many of the test split's held-out sentiment adjectives occur anywhere in the "
                        "training split?", expected=unseen_cues,
                        hint="build the set of training words and test each held-out adjective against it",
                        explain="Every held-out adjective the training split lacks is, for a model that learns only "
                                "from these labels, a word it has never seen."),
        "2.4": Exercise("2.4", "What test accuracy does always predicting the most common label get?",
                        expected=chance, hint="count how often each label occurs in the test split",
                        explain="Anything near this number has learned nothing that transfers."),
        "2.5": Exercise(
            "2.5", "Before any label: labkit.transfer.closer_to_own_sentiment(encoder, tokenizer) says, for each of "
            f"the 20 held-out adjectives, whether the encoder's sentence vector of {FRAME.format('___')!r} is closer "
            "to the seen adjectives of its own sentiment. How many more held-out adjectives does the pretrained "
            "encoder place on their own sentiment's side than the randomly initialised one (the scratch arm's "
            "start)?", expected=head_start,
            hint="run it on encoders.encoder('pretrained') and on encoders.encoder('scratch') with "
                 "encoders.tokenizer, count the rows where 'own sentiment closer' is True for each, and subtract",
            explain="A head trained on the seen words can carry over to a held-out word only the direction the "
                    "encoder already gives it; compare each count with 10 of 20, what a coin would give."),
    }
