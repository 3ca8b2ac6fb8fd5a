"""Chapter 2's exercises: what fine-tuning leaves behind, how many sentiment words a few labels show, and the gap
the sweep measured.

Every expected answer is computed from the chapter's data, models or runs, never typed in;
``tests/test_transfer.py`` checks that each refuses the usual wrong answers.
"""
from __future__ import annotations

from ..data.reviews import SEEN_WORDS, Reviews, balanced_subset
from ..exercises import Exercise
from ..nn import BertForPretraining, count_parameters
from ..transfer import RunResult

__all__ = ["cue_words", "left_behind", "gap_points", "exercises"]


def cue_words(examples: list[tuple[str, int]]) -> set[str]:
    """The seen sentiment adjectives that occur in ``examples`` (each counted once)."""
    adjectives = {w for label in SEEN_WORDS.values() for w in label["adj"]}
    return {w.strip(".,!?:;") for text, _ in examples for w in text.lower().split()} & adjectives


def left_behind(pretrained: BertForPretraining) -> int:
    """Parameters of the pretraining model that the classifier does not carry over (its heads; a weight the
    MLM decoder shares with the embeddings stays, since the embeddings are carried over)."""
    return count_parameters(pretrained) - count_parameters(pretrained.encoder)


def gap_points(results: list[RunResult], arm: str, baseline: str, split: str, n_labels: int) -> float:
    """100 x (accuracy of ``arm`` - accuracy of ``baseline``) on ``split`` at ``n_labels`` labels."""
    acc = {r.arm: r.accuracy[split] for r in results if r.n_labels == n_labels}
    missing = [a for a in (arm, baseline) if a not in acc]
    if missing:
        raise ValueError(f"no run of {missing} at n_labels={n_labels}; runs: {sorted({r.arm for r in results})}")
    return 100 * (acc[arm] - acc[baseline])


def exercises(data: Reviews, pretrained: BertForPretraining, results: list[RunResult], *, seed: int = 0,
              arm: str = "minilm", baseline: str = "scratch") -> dict[str, Exercise]:
    """Three questions on the chapter's objects: the MLM-pretrained tiny BERT, the labelled data, the sweep."""
    sizes = sorted({r.n_labels for r in results})
    small, large = sizes[0], sizes[-1]
    return {
        "2.1": Exercise(
            "2.1", "The classifier keeps the pretrained tiny BERT's encoder and puts a new head on it. How many "
            "parameters of the pretraining model (BertForPretraining) does it not carry over?",
            expected=lambda: left_behind(pretrained),
            hint="list the modules of the pretraining model that are not inside .encoder and count their "
                 "parameters; check whether any of their weights is the very same tensor as one in the encoder",
            explain="The pretraining heads (MLM transform and decoder bias, pooler, pair head) are dropped; the "
                    "decoder's weight matrix is the embedding matrix, which the classifier keeps."),
        "2.2": Exercise(
            "2.2", f"How many different sentiment adjectives occur in the smallest labelled set of the sweep "
            f"({small} examples, balanced_subset(data.train, {small}, seed={seed}))?",
            expected=lambda: len(cue_words(balanced_subset(data.train, small, seed=seed))),
            hint="draw the same subset, split each review into words, keep those that are sentiment adjectives "
                 "of the seen list, and count each word once",
            explain="A model trained from scratch can only learn the words its labels show it; the rest of the "
                    "seen words are, for it, as unknown as the held-out ones."),
        "2.3": Exercise(
            "2.3", f"From the sweep: by how many accuracy points does the {arm} arm beat the {baseline} arm on the "
            f"unseen-word test split at the largest labelled-set size ({large} labels)?",
            expected=lambda: gap_points(results, arm, baseline, "unseen", large), abs_tol=0.15,
            hint="read the two arms' accuracies on the right split and at the right size, subtract, and give "
                 "the difference in points (1 point = 0.01 accuracy)",
            explain="Compare it with the same gap on the seen-word split: which of the two shrinks as labels "
                    "grow?"),
    }
