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
* **Variants** (off by default; the default corpus never changes):
  ``make_corpus(..., classmates_adjacent=p)`` fills each size, colour, food and
  place slot, with probability ``p``, with a word *and its partner*, a fixed
  second word of its class and topic (``a small young grey white fox``, ``the
  berries nuts``, ``near the barn yard``; ``PARTNER_PAIRS``). Partners stand side
  by side; two classmates that are not partners never do, though they fill the
  same slots. ``make_corpus(..., markers=False)``
  drops the order markers (``there was a small brown fox in the woods .``,
  ``the fox finds the berries .``). With the same seed, a variant holds the same
  stories as the default corpus, changed only where the option says.
* **Limits**: a tiny vocabulary (about 120 words), fixed templates, no
  punctuation other than ``.``. A teaching set, not a benchmark: it is made so
  that effects are visible in minutes on a CPU.

The online alternative, WikiText-2 (:func:`load_wikitext2`), needs the
``datasets`` package (``pip install labkit[data]``) and a network connection.
"""
from __future__ import annotations

import random
import re
from dataclasses import dataclass, field

from ..check import probability, whole_number

__all__ = ["TOPICS", "ANIMALS", "FOODS", "PLACES", "COLOURS", "SIZES", "EAT_VERBS", "MOVE_VERBS",
           "MARKERS", "PARTNER_PAIRS", "PARTNERS", "Document", "Corpus", "make_corpus", "make_document",
           "word_classes", "word_topics", "sentence_role", "PAIR_KINDS", "pair_kind", "follows_templates",
           "load_wikitext2"]

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
# Each size, colour, food and place has one *partner* of its class (and topic): in the corpus variant with
# adjacent classmates, a doubled slot holds a word and its partner, so partners stand side by side and every
# other pair of classmates never does. They fill the same slots: among classmates, adjacency is what differs.
PARTNER_PAIRS = (("small", "young"), ("big", "huge"), ("little", "tiny"),
                 ("red", "brown"), ("grey", "white"), ("black", "golden"), ("blue", "green"),
                 ("hay", "straw"), ("corn", "grain"), ("oats", "barley"),
                 ("shrimp", "krill"), ("plankton", "seaweed"), ("clams", "sardines"),
                 ("berries", "nuts"), ("mushrooms", "roots"), ("acorns", "honey"),
                 ("bread", "cheese"), ("crumbs", "biscuits"), ("pizza", "noodles"),
                 ("barn", "yard"), ("field", "meadow"), ("stable", "orchard"),
                 ("reef", "lagoon"), ("bay", "harbour"), ("ocean", "cove"),
                 ("woods", "clearing"), ("cave", "den"), ("valley", "thicket"),
                 ("street", "market"), ("park", "garden"), ("alley", "station"))
PARTNERS = {a: b for pair in PARTNER_PAIRS for a, b in (pair, pair[::-1])}


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


class _Slots:
    """Fills a template slot with one word of a class, or (with probability ``doubled``) the word and its partner.

    The word is what ``rng.choice`` draws; whether to add its partner comes from ``extra``, so the story
    (everything ``rng`` draws) is the same with and without doubling.
    """

    def __init__(self, rng: random.Random, doubled: float, extra: random.Random | None = None):
        self.rng, self.doubled, self.extra = rng, doubled, extra or rng

    def __call__(self, words: list[str]) -> str:
        word = self.rng.choice(words)
        if self.doubled and self.extra.random() < self.doubled:
            word += " " + PARTNERS[word]
        return word


def _middle(rng: random.Random, topic: str, hero: str, slot: _Slots) -> str:
    kind = rng.randrange(3)
    if kind == 0:
        return f"the {hero} {rng.choice(EAT_VERBS)} the {slot(FOODS[topic])} ."
    if kind == 1:
        return f"the {hero} {rng.choice(MOVE_VERBS)} to the {slot(PLACES[topic])} ."
    other = rng.choice([a for a in ANIMALS[topic] if a != hero])
    return f"the {hero} sees a {slot(COLOURS)} {other} near the {slot(PLACES[topic])} ."


def make_document(rng: random.Random, topic: str | None = None, *, markers: bool = True,
                  classmates_adjacent: float = 0.0, doubling_rng: random.Random | None = None) -> Document:
    """One 5-sentence story about one animal, in a fixed order of markers (see :func:`make_corpus` for the options;
    ``doubling_rng`` draws the second words of doubled slots, ``rng`` when it is None)."""
    topic = topic or rng.choice(TOPICS)
    if topic not in TOPICS:
        raise ValueError(f"topic must be one of {', '.join(TOPICS)}; got {topic!r}")
    slot = _Slots(rng, classmates_adjacent, doubling_rng)
    hero = rng.choice(ANIMALS[topic])
    sentences = [f"there was a {slot(SIZES)} {slot(COLOURS)} {hero} in the {slot(PLACES[topic])} ."]
    for _ in MARKERS[1:-1]:
        sentences.append(_middle(rng, topic, hero, slot))
    sentences.append(f"the {hero} sleeps in the {slot(PLACES[topic])} .")
    if markers:
        sentences = [f"{marker} {s}" for marker, s in zip(MARKERS, sentences)]
    return Document(topic, sentences)


def make_corpus(n_train: int = 2000, n_val: int = 200, seed: int = 0, *, markers: bool = True,
                classmates_adjacent: float = 0.0) -> Corpus:
    """``n_train`` + ``n_val`` generated documents (topics balanced at random), reproducible from ``seed``.

    ``markers=False``: the sentences do not open with ``once``/``first``/``then``/``later``/``finally``.
    ``classmates_adjacent``: the probability that a size, colour, food or place slot holds its word and that
    word's partner (``PARTNERS``) side by side (0, the default: never, so words of one class are never
    adjacent). With the same seed the variants tell the same stories.
    """
    whole_number("n_train", n_train)
    whole_number("n_val", n_val)
    probability("classmates_adjacent", classmates_adjacent)
    if not isinstance(markers, bool):
        raise ValueError(f"markers must be True or False; got {markers!r}")
    train_rng, val_rng = random.Random(seed), random.Random(seed + 10_007)
    options = dict(markers=markers, classmates_adjacent=classmates_adjacent)
    extra_train, extra_val = random.Random(f"doubling {seed} train"), random.Random(f"doubling {seed} val")
    train = [make_document(train_rng, doubling_rng=extra_train, **options) for _ in range(n_train)]
    val = [make_document(val_rng, doubling_rng=extra_val, **options) for _ in range(n_val)]
    return Corpus(train, val, word_classes())


def sentence_role(sentence: str) -> str:
    """Where a generated sentence stands in its story: ``"opening"`` (there was a ...), ``"closing"`` (... sleeps
    ...) or ``"middle"`` (any of the three between, whose order nothing but a marker gives away)."""
    words = sentence.split()
    if "there" in words[:2]:
        return "opening"
    if "sleeps" in words:
        return "closing"
    return "middle"


PAIR_KINDS = ("with the opening or closing sentence", "two middle sentences")


def pair_kind(a: str, b: str) -> str:
    """Which kind of sentence pair (A, B) is (``PAIR_KINDS``): one that holds the opening or the closing sentence
    of a story, or two middle sentences, whose order only the markers give away."""
    return PAIR_KINDS[1] if sentence_role(a) == sentence_role(b) == "middle" else PAIR_KINDS[0]


def _alternatives(words) -> str:
    return "(?:" + "|".join(sorted(words, key=len, reverse=True)) + ")"


def _template_patterns() -> list[re.Pattern]:
    animal = _alternatives(w for t in TOPICS for w in ANIMALS[t])
    food = _alternatives(w for t in TOPICS for w in FOODS[t])
    place = _alternatives(w for t in TOPICS for w in PLACES[t])
    colour, size = _alternatives(COLOURS), _alternatives(SIZES)
    twice = lambda cls: f"{cls}(?: {cls})?"  # noqa: E731 (a slot may hold two words of its class)
    marker = lambda m: f"(?:{m} )?"          # noqa: E731 (with or without its order marker)
    middle = _alternatives(MARKERS[1:-1])
    return [re.compile(p) for p in (
        f"{marker('once')}there was a {twice(size)} {twice(colour)} {animal} in the {twice(place)} \\.",
        f"{marker(middle)}the {animal} {_alternatives(EAT_VERBS)} the {twice(food)} \\.",
        f"{marker(middle)}the {animal} {_alternatives(MOVE_VERBS)} to the {twice(place)} \\.",
        f"{marker(middle)}the {animal} sees a {twice(colour)} {animal} near the {twice(place)} \\.",
        f"{marker('finally')}the {animal} sleeps in the {twice(place)} \\.")]


_PATTERNS: list[re.Pattern] = []


def follows_templates(sentence: str) -> bool:
    """Whether ``sentence`` (words separated by spaces, ending with ``.``) fits one of the corpus's templates.

    It checks the grammar only: which word classes fill which slots, not whether the story stays on one
    animal or one topic.
    """
    if not _PATTERNS:
        _PATTERNS.extend(_template_patterns())
    text = " ".join(sentence.split())
    return any(p.fullmatch(text) for p in _PATTERNS)


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
