"""Short product reviews, generated for this book, labelled positive (1) or negative (0).

Data card
---------
* **What**: about 1,000 one- or two-clause English product reviews such as
  "the battery of this phone is excellent." Label 1 = positive, 0 = negative,
  balanced in every split.
* **How it was made**: by :func:`make_reviews`, from the templates, products,
  aspects and sentiment words below, all written for this project (MIT, like
  the code). The same seed gives the same sentences; nothing is downloaded.
* **Splits**: ``train`` (600), ``val`` (150), ``test`` (250). ``train`` and
  ``val`` express sentiment only with the *seen* words; ``test`` only with
  *held-out* words (``superb``, ``dreadful``, "fell apart", ...) that never occur
  in ``train`` or ``val``. Templates, products and aspects are shared across
  labels and splits, so they carry no label information.
* **What it tests**: whether a classifier can generalise from a handful of
  labels to sentiment words it never saw with a label. A model trained from
  scratch cannot know what "superb" means; a pretrained encoder has met it in
  its pretraining text. That gap is what pretraining buys.
* **Limits**: templated, short, English only, no negation, no sarcasm, no
  mixed reviews. It is a teaching set, not a benchmark.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

from ..check import whole_number

__all__ = ["make_reviews", "Reviews", "SEEN_WORDS", "HELD_OUT_WORDS", "balanced_subset"]

PRODUCTS = ["phone", "laptop", "blender", "backpack", "kettle", "camera", "jacket", "lamp", "tent",
            "novel", "printer", "vacuum", "watch", "bike", "mattress", "toaster", "speaker", "router"]
ASPECTS = ["battery", "screen", "design", "build quality", "price", "delivery", "sound", "handle",
           "zipper", "manual", "packaging", "customer service", "color", "fabric", "motor", "display"]
FILLERS = ["", "", "", " I bought it last month.", " It arrived on a tuesday.", " My sister has the same one.",
           " I use it every day.", " It came in a blue box.", " I got it as a gift.", " We have had it for a year."]

# Sentiment cues: the label lives only in these words.
SEEN_WORDS = {
    1: {"adj": ["great", "excellent", "good", "wonderful", "fantastic", "lovely", "perfect", "amazing",
                "nice", "brilliant"],
        "phrase": ["i love it", "highly recommended", "it works perfectly", "very happy with it",
                   "best purchase this year"]},
    0: {"adj": ["bad", "terrible", "awful", "poor", "horrible", "useless", "disappointing", "annoying",
                "ugly", "weak"],
        "phrase": ["i hate it", "a waste of money", "it stopped working", "very unhappy with it",
                   "worst purchase this year"]},
}
HELD_OUT_WORDS = {
    1: {"adj": ["superb", "marvelous", "splendid", "terrific", "outstanding", "exceptional", "delightful",
                "flawless", "stellar", "magnificent"],
        "phrase": ["i adore it", "worth every penny", "it exceeded my expectations", "absolutely thrilled",
                   "a real bargain"]},
    0: {"adj": ["dreadful", "abysmal", "atrocious", "lousy", "shoddy", "defective", "dismal", "appalling",
                "pathetic", "flimsy"],
        "phrase": ["i regret buying it", "it fell apart", "i returned it immediately", "utterly furious",
                   "a total rip-off"]},
}
TEMPLATES = [
    "the {aspect} of this {product} is {adj}.",
    "what a {adj} {product}!",
    "{adj} {product}, {phrase}.",
    "this {product} has a {adj} {aspect}.",
    "honestly the {aspect} is {adj} and {phrase}.",
    "the {product} itself? {phrase}.",
    "{phrase}: the {aspect} is {adj}.",
    "my new {product} is {adj}.",
    "i found the {aspect} {adj}.",
    "{phrase}, the {product} is {adj}.",
]


@dataclass
class Reviews:
    """The three splits as lists of (text, label)."""
    train: list[tuple[str, int]]
    val: list[tuple[str, int]]
    test: list[tuple[str, int]]

    def texts(self, split: str) -> list[str]:
        return [t for t, _ in getattr(self, split)]

    def labels(self, split: str) -> list[int]:
        return [y for _, y in getattr(self, split)]


def _sentences(words: dict, n_per_label: int, rng: random.Random, taken: set) -> list[tuple[str, int]]:
    out: list[tuple[str, int]] = []
    for label in (0, 1):
        made, tries = 0, 0
        while made < n_per_label:
            tries += 1
            if tries > 200 * n_per_label:
                raise RuntimeError("could not generate enough distinct reviews")
            text = rng.choice(TEMPLATES).format(
                product=rng.choice(PRODUCTS), aspect=rng.choice(ASPECTS),
                adj=rng.choice(words[label]["adj"]), phrase=rng.choice(words[label]["phrase"]))
            text = text[0].upper() + text[1:] + rng.choice(FILLERS)
            if text in taken:
                continue
            taken.add(text)
            out.append((text, label))
            made += 1
    rng.shuffle(out)
    return out


def make_reviews(seed: int = 0, n_train: int = 600, n_val: int = 150, n_test: int = 250) -> Reviews:
    """Generate the three splits (sizes must be even: the labels are balanced)."""
    for name, n in (("n_train", n_train), ("n_val", n_val), ("n_test", n_test)):
        if whole_number(name, n, minimum=2) % 2:
            raise ValueError(f"{name} must be an even number >= 2 (balanced labels); got {n!r}")
    rng = random.Random(seed)
    taken: set[str] = set()
    train = _sentences(SEEN_WORDS, n_train // 2, rng, taken)
    val = _sentences(SEEN_WORDS, n_val // 2, rng, taken)
    test = _sentences(HELD_OUT_WORDS, n_test // 2, rng, taken)
    return Reviews(train, val, test)


def balanced_subset(examples: list[tuple[str, int]], n: int, seed: int = 0) -> list[tuple[str, int]]:
    """``n`` examples, half of each label, chosen with ``seed``; nested: a smaller n is a prefix of a larger one."""
    whole_number("n_labels", n, minimum=2)  # one example of each label at least
    by_label = {0: [e for e in examples if e[1] == 0], 1: [e for e in examples if e[1] == 1]}
    if n // 2 > min(len(v) for v in by_label.values()) or n % 2:
        raise ValueError(f"n_labels must be even and at most {2 * min(len(v) for v in by_label.values())}; got {n}")
    rng = random.Random(seed)
    for v in by_label.values():
        rng.shuffle(v)
    out = [e for pair in zip(by_label[0][: n // 2], by_label[1][: n // 2]) for e in pair]
    return out
