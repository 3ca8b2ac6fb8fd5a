"""Chapter 3.1's exercises: the pairs skip-gram trains on, the noise it draws negatives from, and how often two
partners stand side by side in the corpus with adjacent classmates.

Every expected answer is computed from the chapter's objects (its encoded sentences, tokenizer and window),
never typed in; ``tests/test_ch03_1.py`` checks that each refuses the usual wrong answers.
"""
from __future__ import annotations

from collections import Counter
from typing import Sequence

from ..embeddings import adjacency_counts, noise_distribution, skipgram_pairs
from ..exercises import Exercise

__all__ = ["pairs_of", "noise_probability", "times_adjacent", "exercises"]


def pairs_of(sentence: Sequence[int], window: int) -> int:
    """How many (centre, context) pairs skip-gram makes from one encoded sentence."""
    return len(skipgram_pairs([sentence], window=window)[0])


def noise_probability(sentences: Sequence[Sequence[int]], vocab_size: int, token: int, power: float = 0.75) -> float:
    """The probability that the noise distribution of ``sentences`` gives to ``token``."""
    counts = Counter(i for s in sentences for i in s)
    return float(noise_distribution([counts[i] for i in range(vocab_size)], power=power)[token])


def times_adjacent(sentences: Sequence[Sequence[int]], vocab_size: int, a: int, b: int) -> int:
    """How often tokens ``a`` and ``b`` stand side by side in ``sentences``, in either order."""
    return int(adjacency_counts(sentences, vocab_size)[a, b])


def exercises(sentences: Sequence[Sequence[int]], tokenizer, window: int, variant_sentences: Sequence[Sequence[int]],
              word: str = "cow", partners: tuple[str, str] = ("red", "brown")) -> dict[str, Exercise]:
    """Three questions on the chapter's corpus (``sentences``, encoded by ``tokenizer``), its skip-gram window
    and the corpus with adjacent classmates (``variant_sentences``, encoded by the same tokenizer)."""
    stoi, V = tokenizer.stoi, tokenizer.vocab_size
    for w in (word, *partners):
        if w not in stoi:
            raise ValueError(f"{w!r} is not in the tokenizer's vocabulary")
    first = list(sentences[0])
    a, b = partners
    return {
        "3.1.1": Exercise(
            "3.1.1", f"How many (centre, context) pairs does skip-gram make from the first training sentence, "
            f"{tokenizer.decode(first)!r} ({len(first)} tokens), with window={window}?",
            expected=lambda: pairs_of(first, window),
            hint="for each position, count the context words it can see on its left and on its right, no more "
                 "than the window on each side and never past either end of the sentence; then add up",
            explain="Words near the ends of a sentence see fewer contexts; a pair is counted once per centre word, "
                    "so (a, b) and (b, a) are two pairs."),
        "3.1.2": Exercise(
            "3.1.2", f"Skip-gram draws its negative words from the noise distribution. What probability does it "
            f"give to {word!r}?",
            expected=lambda: noise_probability(sentences, V, stoi[word]), rel=1e-3,
            hint="count every token of the training sentences, raise each count to the power used by word2vec "
                 "(section 'Skip-gram with negative sampling'), and divide by the sum over the whole vocabulary",
            explain="The 3/4 power moves probability from frequent words to rare ones, compared with their "
                    "share of the text."),
        "3.1.3": Exercise(
            "3.1.3", f"In the corpus with adjacent classmates, how many times do {a!r} and {b!r} stand side by "
            "side?",
            expected=lambda: times_adjacent(variant_sentences, V, stoi[a], stoi[b]),
            hint="use the encoded sentences of that corpus, not of the default one, and count both orders",
            explain="The default corpus has them side by side zero times; the variant makes partners adjacent, "
                    "and the test compares such pairs with classmates that never are."),
    }
