"""A second task on the same kind of reviews: which product category is the review about?

Data card
---------
* **What**: short product reviews, like those of :mod:`labkit.data.reviews`, each
  naming its product; label = the product's category: 0 electronics, 1 home,
  2 outdoor & clothing (see :data:`CATEGORIES`), balanced in every split.
* **How it was made**: by :func:`make_category_reviews` from the products, aspects
  and sentiment words of :mod:`labkit.data.reviews` and the templates below; the
  sentiment (positive or negative, seen words only) is drawn at random, so it
  carries no category information. Nothing is downloaded.
* **What it is for**: "task B" in the catastrophic-forgetting experiment of
  chapter 3.5: fine-tune on sentiment (task A), then on category (task B), and
  see what is left of task A.
* **Limits**: templated, English only; a product word gives the answer away, so
  the task is easy on purpose.
"""
from __future__ import annotations

import random

from ..check import whole_number
from .reviews import ASPECTS, SEEN_WORDS, Reviews

__all__ = ["CATEGORIES", "make_category_reviews"]

CATEGORIES = {
    0: ["phone", "laptop", "camera", "watch", "speaker", "router", "printer"],       # electronics
    1: ["blender", "kettle", "toaster", "vacuum", "lamp", "mattress"],              # home
    2: ["backpack", "jacket", "tent", "bike"],                                      # outdoor & clothing
}
TEMPLATES = [
    "the {aspect} of this {product} is {adj}.",
    "what a {adj} {product}!",
    "{adj} {product}, {phrase}.",
    "this {product} has a {adj} {aspect}.",
    "my new {product} is {adj}.",
    "{phrase}, the {product} is {adj}.",
]


def make_category_reviews(seed: int = 0, n_train: int = 300, n_val: int = 60, n_test: int = 150) -> Reviews:
    """Train/val/test splits of (text, category); each size must be a multiple of 3 (balanced labels)."""
    k = len(CATEGORIES)
    for name, n in (("n_train", n_train), ("n_val", n_val), ("n_test", n_test)):
        if whole_number(name, n, minimum=k) % k:
            raise ValueError(f"{name} must be a positive multiple of {k} (balanced labels); got {n!r}")
    rng = random.Random(seed)
    taken: set[str] = set()

    def split(n: int) -> list[tuple[str, int]]:
        out = []
        for label, products in CATEGORIES.items():
            made = 0
            while made < n // k:
                words = SEEN_WORDS[rng.choice((0, 1))]
                text = rng.choice(TEMPLATES).format(product=rng.choice(products), aspect=rng.choice(ASPECTS),
                                                    adj=rng.choice(words["adj"]), phrase=rng.choice(words["phrase"]))
                text = text[0].upper() + text[1:]
                if text not in taken:
                    taken.add(text)
                    out.append((text, label))
                    made += 1
        rng.shuffle(out)
        return out

    return Reviews(split(n_train), split(n_val), split(n_test))
