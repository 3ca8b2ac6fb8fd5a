"""Chapter 5's exercises, three per section: the environment (5.1), the article's code (5.2), the project done
right (5.3) and the cautions (5.4).

Every expected answer is computed from the objects the notebook built (its Keras model, its vocabularies, its
runs) or from the facts stated beside them (the wheels TensorFlow 2.9.0 publishes), never typed in;
``tests/test_ch05.py`` checks that each exercise refuses the usual wrong answers and that no hint states the
answer.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from ..data.reviews import Reviews
from ..data.vocab import Vocab, tokenize
from ..exercises import Exercise
from ..nn import count_parameters
from ..project import majority_accuracy, oov_rate
from ..transfer import RunResult

__all__ = ["TF_2_9_PYTHONS", "ARTICLE_PYTHONS", "exercises_5_1", "exercises_5_2", "exercises_5_3", "exercises_5_4",
           "torch_article_model", "same_shape"]

# The CPython versions that tensorflow 2.9.0 publishes wheels for on PyPI (tags cp37, cp38, cp39, cp310).
TF_2_9_PYTHONS = ((3, 7), (3, 8), (3, 9), (3, 10))
# "Python 3.6 and above", up to the newest release when the book was written.
ARTICLE_PYTHONS = tuple((3, minor) for minor in range(6, 13))


def same_shape(expected: Sequence[int]):
    """A check that accepts a shape given as a tuple, a list or a ``torch.Size`` of whole numbers."""
    def check(answer: Any) -> bool:
        try:
            got = tuple(answer)
        except TypeError:
            return False
        return all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in got) \
            and got == tuple(expected)
    return check


# ----------------------------------------------------------------------------- 5.1 the environment
def exercises_5_1(n: int, n_gpu: int) -> dict[str, Exercise]:
    """``n``: the matrix size this run timed; ``n_gpu``: the size of the ``gpu`` profile."""
    float32_bytes = torch.empty(0, dtype=torch.float32).element_size()
    return {
        "5.1.1": Exercise(
            "5.1.1", f"How many floating-point operations does one product of two {n} x {n} matrices cost (the "
            "figure the cell divides by the time to get FLOP/s)?",
            expected=lambda: 2 * n ** 3,
            hint="each of the n x n entries of the result is a dot product of two rows of length n; count its "
                 "multiplications and its additions",
            explain="Multiply-adds dominate training, which is why FLOP/s says how fast a device trains."),
        "5.1.2": Exercise(
            "5.1.2", "The article says Python '3.6 and above'. Of the versions 3.6 to 3.12, how many can "
            "`pip install tensorflow==2.9.0` at all?",
            expected=lambda: len(set(ARTICLE_PYTHONS) & set(TF_2_9_PYTHONS)),
            hint="pip installs a package only for a Python its wheels are tagged for; compare the article's range "
                 "with the tags the cell printed",
            explain="A version range is a claim to check against the wheels a package actually publishes."),
        "5.1.3": Exercise(
            "5.1.3", f"At the gpu profile, the timed product uses n = {n_gpu}. How many MiB (2**20 bytes) do its "
            "three float32 matrices (a, b and the result c) take together?",
            expected=lambda: 3 * n_gpu ** 2 * float32_bytes / 2 ** 20,
            hint="one float32 number takes 4 bytes; count the numbers in one matrix, then the matrices",
            explain="Memory grows with n squared and compute with n cubed: larger products use a device better."),
    }


# ----------------------------------------------------------------------------- 5.2 the article's code
def torch_article_model(vocab_size: int, embed_dim: int, units: int) -> nn.Module:
    """The article's layers in PyTorch: Embedding, bidirectional LSTM, Linear(2·units, 1)."""
    return nn.ModuleDict({"embedding": nn.Embedding(vocab_size, embed_dim),
                          "lstm": nn.LSTM(embed_dim, units, batch_first=True, bidirectional=True),
                          "dense": nn.Linear(2 * units, 1)})


def exercises_5_2(model, test_sequence: np.ndarray, word_index: dict[str, int], *, vocab_size: int,
                  embed_dim: int, units: int) -> dict[str, Exercise]:
    """``model``: the article's Keras model; ``test_sequence``: its padded test input."""
    length = int(test_sequence.shape[-1])

    def batch_shape() -> tuple[int, ...]:
        return tuple(int(v) for v in model.predict(np.zeros((3, length), dtype="int32"), verbose=0).shape)

    hello = word_index["hello"]
    return {
        "5.2.1": Exercise(
            "5.2.1", f"What shape does the article's model.predict return for a batch of 3 padded sentences "
            f"(3 x {length} ids)? Give a tuple.",
            check_fn=lambda a: same_shape(batch_shape())(a),
            hint="return_sequences=True keeps one LSTM output per time step, and Dense acts on the last axis only",
            explain="One probability per token: no single answer per sentence."),
        "5.2.2": Exercise(
            "5.2.2", f"The padded test input is {test_sequence.tolist()[0]}. At how many of its {length} positions "
            "does the model read the word 'hello'?",
            expected=lambda: int((np.asarray(test_sequence) == hello).sum()),
            hint="the padding value and the id of 'hello' are the same number; count every position that holds it",
            explain="The padding is indistinguishable from a real word."),
        "5.2.3": Exercise(
            "5.2.3", f"The same layers in PyTorch (nn.Embedding({vocab_size}, {embed_dim}), a bidirectional "
            f"nn.LSTM({embed_dim}, {units}), nn.Linear({2 * units}, 1)): how many parameters?",
            expected=lambda: count_parameters(torch_article_model(vocab_size, embed_dim, units)),
            hint="start from the Keras count the page printed; PyTorch's LSTM keeps two bias vectors per direction "
                 "where Keras keeps one",
            explain="Frameworks count the same layer differently: compare sizes across libraries with care."),
    }


# ----------------------------------------------------------------------------- 5.3 the project done right
def exercises_5_3(vocab_train: Vocab, data: Reviews, results: list[RunResult], *,
                  arm: str = "bilstm-pretrained", baseline: str = "bilstm-scratch") -> dict[str, Exercise]:
    """``vocab_train``: built from the training split; ``results``: :func:`labkit.project.compare`'s runs."""
    by_arm = {r.arm: r for r in results}
    missing = [a for a in (arm, baseline, "bilstm-pretrained-frozen") if a not in by_arm]
    if missing:
        raise ValueError(f"results has no run of {missing}; runs: {sorted(by_arm)}")

    def unknown_types() -> int:
        return len({w for t in data.texts("test") for w in tokenize(t)} - set(vocab_train.words))

    return {
        "5.3.1": Exercise(
            "5.3.1", "How many different words (types) of the test split does vocab_train map to <unk>?",
            expected=unknown_types,
            hint="tokenize every test review, keep each word once, and count those the vocabulary does not contain",
            explain="Each of them reaches the model as the same <unk> id: their meaning is gone before the first layer."),
        "5.3.2": Exercise(
            "5.3.2", "How many parameters does the bilstm-pretrained-frozen arm train?",
            expected=lambda: by_arm["bilstm-pretrained-frozen"].trainable,
            hint="only the new head trains: one linear unit reading the final state of each LSTM direction, "
                 "weights and bias",
            explain="A linear probe: the pretrained encoder's features are used as they are."),
        "5.3.3": Exercise(
            "5.3.3", f"By how many accuracy points does {arm} beat {baseline} on the test split in the comparison "
            "(negative if it is behind)?",
            expected=lambda: 100 * (by_arm[arm].test_acc - by_arm[baseline].test_acc), abs_tol=0.15,
            hint="read both arms' test accuracies in the table, subtract the baseline's, and give the difference "
                 "in points (1 point = 0.01 accuracy)",
            explain="Same encoder, same labels, same steps: the difference is what the unlabelled text taught."),
    }


# ----------------------------------------------------------------------------- 5.4 the cautions
def exercises_5_4(vocab_train: Vocab, data: Reviews, seed_val_acc: list[float],
                  imbalanced_val: list[tuple[str, int]]) -> dict[str, Exercise]:
    """``seed_val_acc``: the validation accuracy of each seed's run; ``imbalanced_val``: the imbalanced split."""
    if len(seed_val_acc) < 2:
        raise ValueError(f"seed_val_acc needs at least two runs; got {len(seed_val_acc)}")
    return {
        "5.4.1": Exercise(
            "5.4.1", "What fraction of the test split's tokens (every occurrence, not each word once) does the "
            "training-only vocabulary map to <unk>? Give a fraction between 0 and 1.",
            expected=lambda: oov_rate(vocab_train, data.texts("test")), rel=1e-4,
            hint="tokenize every test review, look every token up in the vocabulary built from the training split, "
                 "and divide the unknown ones by all of them",
            explain="This is the rate new text will have; a vocabulary built on all the data would hide it."),
        "5.4.2": Exercise(
            "5.4.2", "Across the seed runs, by how many points does the validation accuracy differ between the best "
            "and the worst seed?",
            expected=lambda: 100 * (max(seed_val_acc) - min(seed_val_acc)), abs_tol=0.15,
            hint="take the largest and the smallest validation accuracy of the seed runs and give their difference "
                 "in points (1 point = 0.01 accuracy)",
            explain="Two single runs closer than this cannot be told apart."),
        "5.4.3": Exercise(
            "5.4.3", "On the imbalanced validation split, what accuracy does a model get that always predicts the "
            "most common label?",
            expected=lambda: majority_accuracy(imbalanced_val), rel=1e-6,
            hint="count the reviews of each label in that split and divide the larger count by all of them",
            explain="Any accuracy on an imbalanced split must be read against this baseline."),
    }
