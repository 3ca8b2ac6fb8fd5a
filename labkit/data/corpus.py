"""A small English-like corpus of short stories, generated for this book (no download).

Data card
---------
* **What**: short "documents" (stories) of 5 sentences each, such as
  ``once there was a small brown fox in the woods . first the fox finds the
  berries . then the fox sees a grey owl near the cave . later the fox walks to
  the den . finally the fox sleeps in the valley .``
  Every document has a **topic** (``farm``, ``sea``, ``forest``, ``city``) and a
  main character, an animal of that topic.
* **How it was made**: by :func:`make_corpus`, from the word classes and
  templates below, written for this project (MIT, like the code). The same seed
  gives the same corpus.
* **Word classes**: animals, foods and places (each split by topic), colours,
  sizes, verbs. A slot of a template holds exactly one word of one class, and
  two slots of the same class are never next to each other. So words of one
  class share their *contexts* ("the ___ eats", "in the ___") but are (almost)
  never *adjacent* to one another: the corpus separates the two ideas that
  erratum 3.1.1 confuses.
* **Order**: the sentences of a document open with ``once``, ``first``,
  ``then``, ``later``, ``finally``, in that order, so sentence order can be
  learned (sentence-order prediction, SOP). A sentence taken from *another*
  document usually has another topic, so next-sentence prediction (NSP) can be
  solved from the topic alone (the ALBERT paper's criticism of NSP).
* **Splits**: :func:`make_corpus` returns ``train`` and ``val`` documents drawn
  independently with different seeds.
* **Limits**: a tiny vocabulary (about 120 words), fixed templates, no
  punctuation other than ``.``. A teaching set, not a benchmark: it is made so
  that effects are visible in minutes on a CPU.

The online alternative, WikiText-2 (:func:`load_wikitext2`), needs the
``datasets`` package (``pip install labkit[data]``) and a network connection.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field

from ..check import whole_number

__all__ = ["TOPICS", "ANIMALS", "FOODS", "PLACES", "COLOURS", "SIZES", "EAT_VERBS", "MOVE_VERBS",
           "MARKERS", "Document", "Corpus", "make_corpus", "word_classes", "load_wikitext2"]

TOPICS = ("farm", "sea", "forest", "city")
ANIMALS = {
    "farm": ["cow", "pig", "hen", "goat", "sheep", "horse", "duck", "donkey"],
    "sea": ["whale", "shark", "crab", "seal", "dolphin", "octopus", "turtle", "lobster"],
    "forest": ["fox", "bear", "deer", "wolf", "owl", "rabbit", "badger", "squirrel"],
    "city": ["pigeon", "rat", "cat", "dog", "sparrow", "mouse", "crow", "hamster"],
}
FOODS = {
    "farm": ["hay", "corn", "grain", "oats", "straw", "barley"],
    "sea": ["shrimp", "krill", "plankton", "seaweed", "clams", "sardines"],
    "forest": ["berries", "nuts", "mushrooms", "acorns", "roots", "honey"],
    "city": ["bread", "cheese", "crumbs", "pizza", "noodles", "biscuits"],
}
PLACES = {
    "farm": ["barn", "field", "meadow", "stable", "yard", "orchard"],
    "sea": ["reef", "bay", "ocean", "lagoon", "harbour", "cove"],
    "forest": ["woods", "cave", "den", "clearing", "valley", "thicket"],
    "city": ["street", "park", "alley", "market", "station", "garden"],
}
COLOURS = ["red", "brown", "grey", "black", "white", "golden", "blue", "green"]
SIZES = ["small", "big", "little", "young", "tiny", "huge"]
EAT_VERBS = ["eats", "finds", "likes", "hides", "carries", "wants"]
MOVE_VERBS = ["walks", "runs", "goes", "hurries", "wanders", "returns"]
MARKERS = ("once", "first", "then", "later", "finally")


@dataclass
class Document:
    """One story: its topic and its sentences (each a string of space-separated words)."""
    topic: str
    sentences: list[str]

    @property
    def text(self) -> str:
        return " ".join(self.sentences)


@dataclass
class Corpus:
    """Train and validation documents, and the word classes they were made from."""
    train: list[Document]
    val: list[Document]
    classes: dict[str, str] = field(default_factory=dict)

    def sentences(self, split: str = "train") -> list[str]:
        return [s for d in self._split(split) for s in d.sentences]

    def texts(self, split: str = "train") -> list[str]:
        return [d.text for d in self._split(split)]

    def _split(self, split: str) -> list[Document]:
        if split not in ("train", "val"):
            raise ValueError(f"split must be 'train' or 'val'; got {split!r}")
        return self.train if split == "train" else self.val


def word_classes() -> dict[str, str]:
    """word -> its class (``animal``, ``food``, ``place``, ``colour``, ``size``, ``verb``, ``marker``)."""
    out: dict[str, str] = {}
    for topic in TOPICS:
        out.update({w: "animal" for w in ANIMALS[topic]})
        out.update({w: "food" for w in FOODS[topic]})
        out.update({w: "place" for w in PLACES[topic]})
    out.update({w: "colour" for w in COLOURS})
    out.update({w: "size" for w in SIZES})
    out.update({w: "verb" for w in EAT_VERBS + MOVE_VERBS + ["sleeps", "sees"]})
    out.update({w: "marker" for w in MARKERS})
    return out


def word_topics() -> dict[str, str]:
    """word -> topic, for the topic-specific words (animals, foods, places)."""
    return {w: t for t in TOPICS for group in (ANIMALS, FOODS, PLACES) for w in group[t]}


def _middle(rng: random.Random, topic: str, hero: str) -> str:
    kind = rng.randrange(3)
    if kind == 0:
        return f"the {hero} {rng.choice(EAT_VERBS)} the {rng.choice(FOODS[topic])} ."
    if kind == 1:
        return f"the {hero} {rng.choice(MOVE_VERBS)} to the {rng.choice(PLACES[topic])} ."
    other = rng.choice([a for a in ANIMALS[topic] if a != hero])
    return f"the {hero} sees a {rng.choice(COLOURS)} {other} near the {rng.choice(PLACES[topic])} ."


def make_document(rng: random.Random, topic: str | None = None) -> Document:
    """One 5-sentence story about one animal, in a fixed order of markers."""
    topic = topic or rng.choice(TOPICS)
    if topic not in TOPICS:
        raise ValueError(f"topic must be one of {', '.join(TOPICS)}; got {topic!r}")
    hero = rng.choice(ANIMALS[topic])
    sentences = [f"once there was a {rng.choice(SIZES)} {rng.choice(COLOURS)} {hero} "
                 f"in the {rng.choice(PLACES[topic])} ."]
    for marker in MARKERS[1:-1]:
        sentences.append(f"{marker} {_middle(rng, topic, hero)}")
    sentences.append(f"finally the {hero} sleeps in the {rng.choice(PLACES[topic])} .")
    return Document(topic, sentences)


def make_corpus(n_train: int = 2000, n_val: int = 200, seed: int = 0) -> Corpus:
    """``n_train`` + ``n_val`` generated documents (topics balanced at random), reproducible from ``seed``."""
    whole_number("n_train", n_train)
    whole_number("n_val", n_val)
    train_rng, val_rng = random.Random(seed), random.Random(seed + 10_007)
    train = [make_document(train_rng) for _ in range(n_train)]
    val = [make_document(val_rng) for _ in range(n_val)]
    return Corpus(train, val, word_classes())


def load_wikitext2(split: str = "train", max_docs: int | None = None) -> list[list[str]]:
    """WikiText-2 (raw) as documents (lists of non-empty lines). Needs ``datasets`` and the network.

    Merity et al., "Pointer Sentinel Mixture Models", arXiv:1609.07843 (CC BY-SA 3.0).
    """
    try:
        from datasets import load_dataset
    except ImportError as e:  # offline code never gets here
        raise ImportError("load_wikitext2 needs the `datasets` package: pip install 'labkit[data]'") from e
    rows = load_dataset("wikitext", "wikitext-2-raw-v1", split=split)["text"]
    docs: list[list[str]] = []
    for line in rows:
        line = line.strip()
        if line.startswith("= ") and not line.startswith("= = "):  # a new article title
            docs.append([])
        elif line and docs:
            docs[-1].append(line)
        if max_docs is not None and len(docs) > max_docs:
            return docs[:max_docs]
    return docs
