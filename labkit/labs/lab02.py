"""Lab 2 exercises: what pretraining buys. Every expected answer is computed from the data or the model."""
from __future__ import annotations

from ..data.reviews import HELD_OUT_WORDS, Reviews
from ..exercises import Exercise
from ..finetune import count_parameters, freeze
from ..nn import SequenceClassifier


def _words(texts) -> set[str]:
    return {w.strip(".,!?:;") for t in texts for w in t.lower().split()}


def exercises(encoders, data: Reviews) -> dict[str, Exercise]:
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

    width = encoders.loaded.model.config.hidden_size
    return {
        "2.1": Exercise("2.1", "With the encoder frozen, how many parameters does the classifier train?",
                        expected=head_only, explain="Only the linear head trains: weights + biases.",
                        hint=f"the head maps a {width}-dim sentence vector to 2 logits: count weights and biases"),
        "2.2": Exercise("2.2", "Unfrozen, how many parameters does full fine-tuning update?",
                        expected=full, hint="encoder parameters (print the encoder's count) plus the head's"),
        "2.3": Exercise("2.3", "How many of the test split's held-out sentiment adjectives occur anywhere in the "
                        "training split?", expected=unseen_cues,
                        hint="build the set of training words and test each held-out adjective against it",
                        explain="None: a model that learns only from these labels has never seen them."),
        "2.4": Exercise("2.4", "What test accuracy does always predicting the most common label get?",
                        expected=chance, hint="count the labels of the test split: the split is balanced",
                        explain="Anything near this number has learned nothing that transfers."),
    }
