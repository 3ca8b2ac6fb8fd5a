"""The four generated NLP sets of chapter 6.1: named entities, extractive QA, a toy translation, help-centre search.

Each maker takes a ``seed`` and the split sizes, draws everything from ``random.Random`` seeded by them, and
returns a dataclass whose ``card()`` is its data card (what, how it was made, sizes, splits, seeds, limits).
Nothing is downloaded: every name, template and word below was written for this project (MIT, like the code).

* :func:`make_ner` -- sentences with BIO tags for PER / LOC / ORG / DATE. The names are real-world-like but
  **split**: a person, place or organisation in the test split never occurs in train or validation, so the
  test measures whether a tagger generalises to new names, not whether it memorised a list.
* :func:`make_qa` -- short biographies of two or three people and questions whose answer is a span of the
  context (SQuAD style, with the character offset). People, places, organisations and jobs are split like the
  NER names; every test question is asked twice, in a training wording and in a wording training never used.
* :func:`make_translation` -- English sentences from a small grammar and their translation into a made-up
  verb-final language (adjectives after nouns, a plural word, case markers, negation before the verb).
* :func:`make_help_center` -- help articles (service x task) and three queries per article: the article's own
  keywords, a paraphrase of the task with the service's name, and a paraphrase of both that shares **no
  content word** with the article (checked when generated).
"""
from __future__ import annotations

import random
import re
from dataclasses import dataclass, field

from ..check import whole_number

__all__ = ["ENTITY_TYPES", "TaggedSentence", "NERData", "make_ner", "QAExample", "QAData", "make_qa",
           "TranslationData", "make_translation", "HelpCenter", "make_help_center", "content_words"]

# ----------------------------------------------------------------------------- shared name pools
FIRST_NAMES = """Maria James Aisha Wei Olga Pedro Yuki Fatima Lars Priya Kwame Elena Hiroshi Sofia Ahmed Ingrid
Carlos Mei Tomasz Amara Johan Leila Rahul Chloe Mateo Nadia Ivan Grace Kenji Zainab Oliver Ana Dmitri Lucia Samuel
Hana Omar Freya Diego Asha Henrik Chiara Tariq Emma Felipe Noor Stefan Julia Kofi Sara Marco Ines Arjun Clara Yusuf
Lena Pablo Mira Erik Rosa""".split()
LAST_NAMES = """Garcia Smith Okafor Chen Petrova Silva Tanaka Haddad Nilsson Sharma Mensah Rossi Sato Costa Hassan
Larsen Mendoza Wang Nowak Diallo Berg Karimi Gupta Dubois Ruiz Novak Ivanov Murphy Yamamoto Bello Brown Santos Volkov
Moretti Adeyemi Kim Farouk Jensen Herrera Patel Lindqvist Ricci Aziz Wilson Pereira Rahman Fischer Schmidt Owusu Lopez
Bianchi Ferreira Iyer Martin Demir Keller Navarro Ahmadi Holm Romero""".split()
CITIES = ["Paris", "Lagos", "Tokyo", "Berlin", "Lima", "Oslo", "Cairo", "Mumbai", "Toronto", "Madrid", "Nairobi",
          "Seoul", "Vienna", "Santiago", "Istanbul", "Dublin", "Hanoi", "Prague", "Accra", "Lisbon", "Manila",
          "Warsaw", "Quito", "Helsinki", "Dhaka", "Athens", "Boston", "Kyoto", "Munich", "Zurich", "New Delhi",
          "Buenos Aires", "Cape Town", "Hong Kong", "San Francisco", "Rio de Janeiro", "Kuala Lumpur", "Mexico City",
          "Tel Aviv", "Los Angeles"]
COUNTRIES = ["New Zealand", "South Korea", "Sri Lanka", "Brazil", "Kenya", "Norway", "Canada", "Vietnam", "Egypt",
             "Poland", "Portugal", "Chile", "Ghana", "Finland", "Peru", "Sweden", "India", "Japan", "Morocco",
             "Ireland"]
ORGANISATIONS = ["Siemens", "Toyota", "Google", "Nokia", "Samsung", "Unilever", "Airbus", "Microsoft", "Boeing",
                 "Oxfam", "UNICEF", "Amazon", "Spotify", "IKEA", "Intel", "Adidas", "Pfizer", "Volvo", "Reuters",
                 "Netflix", "Ericsson", "Heineken", "Philips", "Barclays", "World Bank", "Red Cross", "Deutsche Bank",
                 "General Electric", "Harvard University", "Oxford University", "Tata Motors", "Greenpeace", "NASA",
                 "BBC", "Sony", "Honda", "Lufthansa", "Bayer", "Danone", "Renault", "Nintendo", "Infosys", "Alibaba",
                 "Cisco", "Stanford University", "Amnesty International", "European Commission",
                 "World Health Organization", "Roche", "Novartis", "Maersk", "Mitsubishi"]
JOBS = ["nurse", "software engineer", "teacher", "pilot", "architect", "journalist", "chef", "lawyer", "farmer",
        "dentist", "data analyst", "police officer", "civil engineer", "pharmacist", "bus driver",
        "graphic designer", "accountant", "electrician", "photographer", "librarian", "translator", "veterinarian",
        "plumber", "economist"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]
YEARS = {"train": range(1950, 1990), "val": range(1990, 2000), "test": range(2000, 2025)}
SPLITS = ("train", "val", "test")


def _split_pool(items: list[str], seed: int, fractions=(0.5, 0.2, 0.3)) -> dict[str, list[str]]:
    """Shuffle ``items`` with ``seed`` and cut them into disjoint train / val / test pools."""
    items = sorted(items)
    random.Random(seed).shuffle(items)
    a = round(fractions[0] * len(items))
    b = a + round(fractions[1] * len(items))
    return {"train": items[:a], "val": items[a:b], "test": items[b:]}


def _name_pools(seed: int) -> dict[str, dict[str, list[str]]]:
    """The disjoint pools of every kind of name, one split of each kind per seed."""
    kinds = {"first": FIRST_NAMES, "last": LAST_NAMES, "city": CITIES, "country": COUNTRIES,
             "org": ORGANISATIONS, "job": JOBS}
    return {kind: _split_pool(items, seed * 1009 + i) for i, (kind, items) in enumerate(kinds.items())}


def _check_sizes(**sizes: int) -> None:
    for name, n in sizes.items():
        whole_number(name, n, minimum=1, maximum=20_000)


# ----------------------------------------------------------------------------- named entities
ENTITY_TYPES = ("PER", "LOC", "ORG", "DATE")
# <A|B> is a slot filled with an entity of type A or B (drawn at random): from the words around it alone the
# type cannot be told, only from the name. <DATE> reads "in ...", <DAY> reads "on ..." (both are DATE entities).
NER_TEMPLATES = [
    "<PER> moved to <LOC> in <DATE> .",
    "<PER> joined <ORG> in <DATE> .",
    "<ORG> opened a new office in <LOC> .",
    "In <DATE> , <PER> gave a talk at <ORG> .",
    "<PER|ORG> announced the results on <DAY> .",
    "We wrote to <PER|ORG> about the contract .",
    "The report mentions <PER|ORG|LOC> twice .",
    "Flights from <LOC> to <LOC> were cancelled on <DAY> .",
    "<PER> and <PER> met in <LOC> .",
    "According to <PER|ORG> , prices will rise in <LOC> .",
    "Yesterday <PER> visited the <ORG> offices .",
    "The meeting with <PER|ORG> is planned for <DAY> .",
    "Many people from <LOC> work for <ORG> .",
    "She met <PER> at a conference in <LOC> .",
    "Our team thanked <PER|ORG> for the support .",
    "Since <DATE> the museum in <LOC> has been closed .",
    "<LOC|ORG> signed the agreement on <DAY> .",
    "The new book by <PER> came out in <DATE> .",
    "Nobody expected <PER|ORG|LOC> to win .",
    "Prices in <LOC> fell after <ORG> left .",
]
_SLOT = re.compile(r"<([A-Z|]+)>")


@dataclass
class TaggedSentence:
    words: list[str]
    tags: list[str]            # one BIO tag per word
    template: int = -1         # which template made it (for the shortcut checks)

    def __post_init__(self):
        if len(self.words) != len(self.tags):
            raise ValueError(f"words and tags must have the same length; got {len(self.words)} and {len(self.tags)}")

    @property
    def text(self) -> str:
        return " ".join(self.words)


@dataclass
class NERData:
    train: list[TaggedSentence]
    val: list[TaggedSentence]
    test: list[TaggedSentence]
    pools: dict[str, dict[str, list[str]]] = field(repr=False)
    seed: int = 0

    @property
    def tags(self) -> list[str]:
        """The tag set, read from the training split: "O" first, then B-/I- of each type."""
        return ["O"] + [f"{p}-{t}" for t in ENTITY_TYPES for p in ("B", "I")]

    def split(self, name: str) -> list[TaggedSentence]:
        if name not in SPLITS:
            raise ValueError(f"split must be one of {', '.join(SPLITS)}; got {name!r}")
        return getattr(self, name)

    def card(self) -> dict[str, str]:
        n = {s: len(self.split(s)) for s in SPLITS}
        return {
            "what": "English sentences, one BIO tag per word: PER (people), LOC (cities, countries), "
                    "ORG (companies, universities, agencies), DATE ('in March 1987', 'on 4 May 2003', '1999')",
            "how": f"labkit.data.nlp_tasks.make_ner: {len(NER_TEMPLATES)} templates with typed slots, filled from "
                   "name pools written for the book; some slots take one of several types (only the name tells)",
            "sizes": f"train {n['train']} · validation {n['val']} · test {n['test']} sentences",
            "splits": "names split into disjoint pools before any sentence is made: first names, surnames, "
                      "cities, countries and organisations 50% train / 20% validation / 30% test; years "
                      "1950-89 train, 1990-99 validation, 2000-24 test. Templates are shared by all splits",
            "seeds": f"seed={self.seed}: the name split uses seed*1009+i, each split's sentences seed*7+k",
            "shortcuts checked": "memorising training names (a gazetteer: no test name is in train); "
                                 "capitalisation alone (finds spans, not types; all-MiniLM-L6-v2 is uncased and "
                                 "cannot see it); the template slot's usual type (some slots take several types)",
            "limits": "templated English, one clause, no nested or overlapping entities, no lower-case names; "
                      "a teaching set, not a benchmark",
        }


def _date(rng: random.Random, split: str, on: bool) -> list[str]:
    year = str(rng.choice(YEARS[split]))
    if on:
        return [str(rng.randint(1, 28)), rng.choice(MONTHS), year]
    return rng.choice([[rng.choice(MONTHS), year], [year]])


def _entity(rng: random.Random, kind: str, split: str, pools) -> tuple[str, list[str]]:
    """(type, words) of one entity of ``kind`` (a slot name) drawn from the split's pools."""
    if kind == "PER":
        return "PER", [rng.choice(pools["first"][split]), rng.choice(pools["last"][split])]
    if kind == "LOC":
        return "LOC", rng.choice(pools["city"][split] + pools["country"][split]).split()
    if kind == "ORG":
        return "ORG", rng.choice(pools["org"][split]).split()
    return "DATE", _date(rng, split, on=kind == "DAY")


def _ner_sentence(rng: random.Random, split: str, pools) -> TaggedSentence:
    t = rng.randrange(len(NER_TEMPLATES))
    words, tags = [], []
    for piece in NER_TEMPLATES[t].split():
        slot = _SLOT.fullmatch(piece)
        if slot is None:
            words.append(piece)
            tags.append("O")
            continue
        etype, ewords = _entity(rng, rng.choice(slot.group(1).split("|")), split, pools)
        words += ewords
        tags += [f"B-{etype}"] + [f"I-{etype}"] * (len(ewords) - 1)
    return TaggedSentence(words, tags, t)


def make_ner(seed: int = 0, n_train: int = 400, n_val: int = 100, n_test: int = 200) -> NERData:
    """Generated BIO-tagged sentences; test names (and years) never occur in train or validation."""
    _check_sizes(n_train=n_train, n_val=n_val, n_test=n_test)
    pools = _name_pools(seed)
    out = {}
    for k, (split, n) in enumerate(zip(SPLITS, (n_train, n_val, n_test))):
        rng = random.Random(seed * 7 + k)
        out[split] = [_ner_sentence(rng, split, pools) for _ in range(n)]
    return NERData(**out, pools=pools, seed=seed)


# ----------------------------------------------------------------------------- extractive QA
# One sentence per person, all four facts in it; the templates differ in the order of the facts.
BIO_SENTENCES = ["{name} was born in {city} in {year} and works as {a} {job} at {org} .",
                 "{name} , born in {year} in {city} , is {a} {job} for {org} .",
                 "Born in {city} in {year} , {name} now works for {org} as {a} {job} ."]
# The training wording, and a wording no training question uses (asked of the same test facts).
QUESTIONS = {
    "seen": {"city": ["Where was {name} born ?", "In which city was {name} born ?"],
             "year": ["When was {name} born ?", "In what year was {name} born ?"],
             "org": ["Which company does {name} work for ?", "Where does {name} work ?"],
             "job": ["What is {name} 's job ?", "What does {name} do for a living ?"]},
    "new": {"city": ["What is the birthplace of {name} ?", "{name} comes from which city ?"],
            "year": ["What is the birth year of {name} ?", "{name} was born in which year ?"],
            "org": ["Who employs {name} ?", "{name} is employed by which organisation ?"],
            "job": ["What is the occupation of {name} ?", "What profession does {name} have ?"]},
}
FIELDS = ("city", "year", "org", "job")
QA_YEARS = {"train": range(1940, 1970), "val": range(1970, 1978), "test": range(1978, 2000)}   # birth years


@dataclass
class QAExample:
    question: str
    context: str
    answer: str
    answer_start: int                    # character offset of the answer in the context
    distractors: list[str]               # the same fact about the other people in the context
    fact: str = ""                       # city | year | org | job

    def __post_init__(self):
        if self.context[self.answer_start:self.answer_start + len(self.answer)] != self.answer:
            raise ValueError(f"answer {self.answer!r} is not at character {self.answer_start} of the context")


@dataclass
class QAData:
    train: list[QAExample]
    val: list[QAExample]
    test: list[QAExample]                 # training wording
    test_new_wording: list[QAExample]     # the same questions, asked in a wording training never used
    seed: int = 0
    people: int = 2                       # people per context

    def card(self) -> dict[str, str]:
        return {
            "what": f"a context of {self.people} short biographies (birthplace, birth year, employer, job) and a "
                    "question whose answer is a span of the context, with its character offset (SQuAD style); "
                    "two questions per context",
            "how": "labkit.data.nlp_tasks.make_qa: people, cities, organisations and jobs drawn from split pools; "
                   f"one sentence per person from {len(BIO_SENTENCES)} templates that order the facts differently; "
                   "every context has the same kinds of facts about each person, so the question's name decides "
                   "which one is the answer",
            "sizes": f"train {len(self.train)} · validation {len(self.val)} · test {len(self.test)} questions "
                     f"(each test question also in a new wording: {len(self.test_new_wording)})",
            "splits": "people, cities, organisations and jobs are disjoint across train / validation / test "
                      "(50/20/30% of each pool); birth years 1940-69 / 1970-77 / 1978-99; question wordings: two per "
                      "field in train, validation and test, two other ones only in 'test, new wording'",
            "seeds": f"seed={self.seed}: the pools as in make_ner, each split's contexts seed*11+k",
            "shortcuts checked": "the answer's kind alone (the first value of the asked kind in the context); "
                                 "lexical overlap (a sliding-window baseline); the training wording (every test "
                                 "question is also asked in a new wording); within a context every value differs, "
                                 "so each answer occurs once",
            "limits": "templated English, one fact per question, the answer always in the context (no "
                      "unanswerable questions, unlike SQuAD 2.0); a teaching set, not a benchmark",
        }


def _people(rng: random.Random, split: str, pools, n: int) -> list[dict]:
    """``n`` people whose names, cities, years, employers and jobs all differ (each answer is unique)."""
    draw = {"first": pools["first"][split], "last": pools["last"][split], "city": pools["city"][split],
            "year": [str(y) for y in QA_YEARS[split]], "org": pools["org"][split], "job": pools["job"][split]}
    values = {k: rng.sample(v, n) for k, v in draw.items()}
    return [{"name": f"{values['first'][i]} {values['last'][i]}", **{f: values[f][i] for f in FIELDS},
             "a": "an" if values["job"][i][0] in "aeiou" else "a"}
            for i in range(n)]


def _context(rng: random.Random, people: list[dict]) -> tuple[str, list[dict[str, int]]]:
    """The context text and, per person, the character offset of each field's value."""
    text, where = "", []
    for p in people:
        sentence = rng.choice(BIO_SENTENCES).format(**p)
        start = len(text) + (1 if text else 0)
        text = f"{text} {sentence}" if text else sentence
        # each value as a whole word: "in 1987 ," (no value contains another field's value)
        where.append({f: start + re.search(rf"(?<!\w){re.escape(p[f])}(?!\w)", sentence).start() for f in FIELDS})
    return text, where


def _qa_split(rng: random.Random, split: str, pools, n: int, people: int,
              wordings=("seen",)) -> list[list[QAExample]]:
    """``n`` questions (two per context), one list per wording, the same facts in each."""
    out = [[] for _ in wordings]
    while len(out[0]) < n:
        persons = _people(rng, split, pools, people)
        text, where = _context(rng, persons)
        for who, f in rng.sample([(i, f) for i in range(people) for f in FIELDS], 2):
            if len(out[0]) == n:
                break
            p = persons[who]
            others = [q[f] for i, q in enumerate(persons) if i != who]
            variant = rng.randrange(2)
            for bucket, wording in zip(out, wordings):
                question = QUESTIONS[wording][f][variant].format(name=p["name"])
                bucket.append(QAExample(question, text, p[f], where[who][f], others, f))
    return out


def make_qa(seed: int = 0, n_train: int = 400, n_val: int = 100, n_test: int = 150, people: int = 2) -> QAData:
    """Generated SQuAD-style questions on short biographies of ``people`` people, every kind of name split."""
    _check_sizes(n_train=n_train, n_val=n_val, n_test=n_test)
    whole_number("people (per context)", people, minimum=1, maximum=4)
    pools = _name_pools(seed)
    rngs = [random.Random(seed * 11 + k) for k in range(3)]
    train, = _qa_split(rngs[0], "train", pools, n_train, people)
    val, = _qa_split(rngs[1], "val", pools, n_val, people)
    test, test_new = _qa_split(rngs[2], "test", pools, n_test, people, wordings=("seen", "new"))
    return QAData(train, val, test, test_new, seed, people)


# ----------------------------------------------------------------------------- toy translation
# English word -> word of the made-up target language.
NOUNS = {"dog": "hundo", "cat": "kato", "bird": "birdo", "horse": "cevalo", "child": "info", "teacher": "docento",
         "farmer": "kampulo", "king": "rego", "doctor": "kuracisto", "fox": "vulpo", "baker": "bakisto",
         "sailor": "maristo", "wolf": "lupo", "student": "lernanto", "queen": "regino", "mouse": "muso"}
PLURALS = {"child": "children", "mouse": "mice", "wolf": "wolves", "fox": "foxes"}   # the rest add -s
ADJECTIVES = {"big": "granda", "small": "malgranda", "old": "maljuna", "young": "juna", "happy": "felica",
              "angry": "kolera", "brave": "kuraga", "tired": "laca", "clever": "sagxa", "lazy": "maldiligenta"}
VERBS = {"see": "vidi", "like": "sxati", "follow": "sekvi", "help": "helpi", "find": "trovi", "call": "voki",
         "watch": "rigardi", "visit": "viziti"}
PLACES = {"house": "domo", "river": "rivero", "forest": "arbaro", "market": "bazaro", "garden": "gxardeno",
          "school": "lernejo"}
# Grammar words of the target: plural, subject and object markers, negation, "near", "in".
PLURAL, SUBJECT, OBJECT, NOT, NEAR, IN = "ri", "ka", "mo", "ne", "apud", "en"


@dataclass
class TranslationData:
    train: list[tuple[str, str]]          # (English, target language)
    val: list[tuple[str, str]]
    test: list[tuple[str, str]]
    seed: int = 0

    def card(self) -> dict[str, str]:
        return {
            "what": "English sentences ('the brave fox does not follow the old kings near the river .') and their "
                    "translation into a made-up language: subject, object, place, then the verb; adjectives after "
                    "their noun; a plural word 'ri'; case markers 'ka' (subject) and 'mo' (object); 'ne' before a "
                    "negated verb; 'apud' / 'en' after the place",
            "how": f"labkit.data.nlp_tasks.make_translation: a small grammar over {len(NOUNS)} nouns, "
                   f"{len(ADJECTIVES)} adjectives, {len(VERBS)} verbs and {len(PLACES)} places; the translation is "
                   "computed from the parse, so every pair is exactly right",
            "sizes": f"train {len(self.train)} · validation {len(self.val)} · test {len(self.test)} sentence pairs",
            "splits": "sentences drawn at random; a sentence in validation or test never occurs in train "
                      "(duplicates are re-drawn); the words are shared, the combinations are new",
            "seeds": f"seed={self.seed}: one random.Random(seed) draws all three splits in turn",
            "shortcuts checked": "test sentences in train (none, by construction); the share of test 4-grams "
                                 "already in the training translations; copying the source; a word-by-word "
                                 "dictionary (right words, wrong order)",
            "limits": "a toy: a closed vocabulary, one sentence pattern with options, no ambiguity; it measures "
                      "whether a model learns reordering and agreement, not real translation",
        }


def _noun_phrase(rng: random.Random) -> tuple[list[str], list[str], bool]:
    """(English words, target words, plural?) of 'the [adjective] noun[s]'."""
    noun = rng.choice(sorted(NOUNS))
    adjective = rng.choice(sorted(ADJECTIVES)) if rng.random() < 0.6 else None
    plural = rng.random() < 0.35
    english = ["the"] + ([adjective] if adjective else []) + [PLURALS.get(noun, noun + "s") if plural else noun]
    target = [NOUNS[noun]] + ([ADJECTIVES[adjective]] if adjective else []) + ([PLURAL] if plural else [])
    return english, target, plural


def _translation_pair(rng: random.Random) -> tuple[str, str]:
    subj_en, subj_tg, subj_plural = _noun_phrase(rng)
    obj_en, obj_tg, _ = _noun_phrase(rng)
    verb = rng.choice(sorted(VERBS))
    negated = rng.random() < 0.3
    if negated:
        verb_en = ["do" if subj_plural else "does", "not", verb]
    else:
        verb_en = [verb if subj_plural else verb + ("es" if verb.endswith("ch") else "s")]
    place_en, place_tg = [], []
    if rng.random() < 0.4:
        place = rng.choice(sorted(PLACES))
        prep = rng.choice(("near", "in"))
        place_en = [prep, "the", place]
        place_tg = [PLACES[place], NEAR if prep == "near" else IN]
    english = subj_en + verb_en + obj_en + place_en + ["."]
    target = subj_tg + [SUBJECT] + obj_tg + [OBJECT] + place_tg + ([NOT] if negated else []) + [VERBS[verb], "."]
    return " ".join(english), " ".join(target)


def make_translation(seed: int = 0, n_train: int = 3000, n_val: int = 200, n_test: int = 300) -> TranslationData:
    """English -> made-up language pairs; no validation or test sentence occurs in train."""
    _check_sizes(n_train=n_train, n_val=n_val, n_test=n_test)
    rng = random.Random(seed)
    seen: set[str] = set()
    splits = []
    for n in (n_train, n_val, n_test):
        pairs = []
        while len(pairs) < n:
            pair = _translation_pair(rng)
            if pair[0] not in seen:
                seen.add(pair[0])
                pairs.append(pair)
        splits.append(pairs)
    return TranslationData(*splits, seed=seed)


# ----------------------------------------------------------------------------- help-centre search
STOPWORDS = set("""a an the and or of to in on for from with by at as is are was were be been it its it's this that
these those i me my we our you your he she they them their what which who whom how where when why can could do does
did done i'd i'm i've not no so if then there here about into out up down over again just any some all each more
most other such only own same than too very will would should may might must one".""".split())
_WORDS = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def content_words(text: str) -> set[str]:
    """The lower-cased words of ``text`` that are not stop words (what a keyword match can use)."""
    return {w for w in _WORDS.findall(text.lower()) if w not in STOPWORDS}


# service: (its name in the articles, paraphrases a user might write instead)
SERVICES = {
    "music": ("the music streaming app", ["the program I listen to songs on", "my songs player"]),
    "phone": ("your mobile phone plan", ["my cell contract", "my carrier deal"]),
    "gym": ("your gym membership", ["my fitness club", "the place where I work out"]),
    "bank": ("your online bank account", ["the place that keeps my savings", "my savings website"]),
    "food": ("the food delivery app", ["the service that brings dinner to my door", "my takeaway orders"]),
    "cloud": ("your cloud storage", ["where I back up my files", "my online drive for documents"]),
    "train": ("your rail pass", ["my commuter ticket", "my season ticket for trains"]),
    "news": ("your newspaper subscription", ["the daily paper I read", "my news site"]),
    "games": ("the video game store", ["where I buy titles for my console", "my console shop"]),
    "energy": ("your electricity contract", ["my power supplier", "the company that supplies my energy"]),
    "library": ("your library card", ["borrowing books from the public lending service", "my book lending"]),
    "car": ("your car rental account", ["the firm I hire vehicles from", "renting autos"]),
}
# task: (article title, article body, keyword query, paraphrases sharing no content word with the article)
TASKS = {
    "password": ("How to reset your password", "On the sign-in page choose Forgot password, then follow the link "
                 "sent to your email.", "reset password",
                 ["I can't remember the secret phrase I log in with", "locked out, lost my passcode",
                  "forgot my login secret"]),
    "cancel": ("How to cancel your subscription", "Go to Billing, select Cancel subscription and confirm. You keep "
               "access until the end of the period.", "cancel subscription",
               ["I want to stop paying every month and quit", "how do I end it for good",
                "stop the recurring charges and leave"]),
    "refund": ("How to request a refund", "Open Orders, pick the purchase and press Request refund within 30 days.",
               "request refund", ["I want my money back", "can I get reimbursed for something I paid",
                                  "give back the cash I was billed"]),
    "address": ("How to change your postal address", "In Account details, edit the address field and save.",
                "change address", ["I moved house, where do I put my new home location",
                                   "I relocated to another street", "update where you mail letters"]),
    "card": ("How to update your payment card", "Under Billing, remove the old card and add the new one.",
             "update payment card", ["my bank sent me fresh plastic, how do I swap it",
                                     "the visa I use expired", "switch to a different debit method"]),
    "delete": ("How to delete your account", "Go to Privacy, choose Delete account and type your email to "
               "confirm. This cannot be undone.", "delete account",
               ["erase everything you store about me forever", "I want to permanently remove myself",
                "wipe my profile and data for good"]),
    "support": ("How to contact customer support", "Use the chat button in the Help menu or call our hotline.",
                "contact customer support", ["I need to talk to a real human about a problem",
                                             "is there someone I can speak with", "who can assist me by telephone"]),
    "upgrade": ("How to upgrade to a premium plan", "Open Plans, compare the tiers and select Upgrade.",
                "upgrade premium plan", ["I'd pay more to unlock extra features",
                                         "get the better version with more perks", "pay extra for a fancier level"]),
    "invoice": ("How to download an invoice", "In Billing history, click the PDF icon next to each payment.",
                "download invoice", ["I need a receipt for my tax return", "where is proof of what I was charged",
                                     "get a bill document for my expenses"]),
    "twofactor": ("How to turn on two-factor authentication", "In Security, enable 2FA and scan the code with an "
                  "authenticator app.", "two-factor authentication",
                  ["I want an extra check when logging in", "add a second step so nobody can break into my login",
                   "protect my sign in with a texted number"]),
    "language": ("How to change the display language", "In Preferences, pick a language from the list.",
                 "change display language", ["the menus are in French, I would like English",
                                             "show the words in Spanish instead", "switch the text to German"]),
    "notifications": ("How to turn off email notifications", "In Preferences, untick the boxes under "
                      "Notifications.", "turn off email notifications",
                      ["stop sending me so many messages", "too many alerts in my inbox, make them stop",
                       "I get spammed by your newsletters"]),
}


@dataclass
class HelpCenter:
    documents: list[str]
    doc_keys: list[tuple[str, str]]       # (service, task) of each document
    queries: list[str]
    relevant: list[int]                   # the one relevant document of each query
    kinds: list[str]                      # "keyword" | "mixed" | "paraphrase"
    seed: int = 0

    def card(self) -> dict[str, str]:
        n = {k: self.kinds.count(k) for k in ("keyword", "mixed", "paraphrase")}
        return {
            "what": "help-centre articles, one per (service, task), and user queries, each with its one "
                    "relevant article",
            "how": f"labkit.data.nlp_tasks.make_help_center: {len(self.documents) // len(TASKS)} services x "
                   f"{len(TASKS)} tasks; per "
                   "article three queries: 'keyword' (the task's keywords + the service's name), 'mixed' (a "
                   "paraphrase of the task + the service's name) and 'paraphrase' (a paraphrase of the task and "
                   "of the service); a paraphrase is chosen only if it shares no content word with its article",
            "sizes": f"{len(self.documents)} documents · {len(self.queries)} queries ({n['keyword']} keyword, "
                     f"{n['mixed']} mixed, {n['paraphrase']} paraphrase)",
            "splits": "none: nothing is trained on it; it tests retrievers trained elsewhere",
            "shortcuts checked": "content words a query shares with its article (none for paraphrases, checked "
                                 "when generated); the same encoder with random weights as a control (word "
                                 "overlap without meaning)",
            "seeds": f"seed={self.seed}: which paraphrase and which word order each query gets",
            "limits": "one relevant article per query; short, templated English; built so that a paraphrase "
                      "cannot be found by shared words: it measures paraphrase matching, not a realistic query "
                      f"mix. The articles of one service share its name, so the name alone narrows the search "
                      f"to {len(TASKS)} articles",
        }


def make_help_center(seed: int = 0, n_services: int | None = None) -> HelpCenter:
    """Every (service, task) article and its three queries: the task's keywords with the service's name
    ("keyword"), a paraphrase of the task with the service's name ("mixed"), and a paraphrase of both
    ("paraphrase"). A paraphrase never shares a content word with its article (checked here).
    ``n_services`` keeps the first services only (a smaller set for quick runs)."""
    whole_number("seed", seed, minimum=0)
    whole_number("n_services", n_services, minimum=1, maximum=len(SERVICES), allow_none=True)
    rng = random.Random(seed)
    documents, keys, queries, relevant, kinds = [], [], [], [], []
    for service, (service_name, service_paras) in list(SERVICES.items())[:n_services]:
        short_name = service_name.split(" ", 1)[1]                      # "your gym membership" -> "gym membership"
        for task, (title, body, keywords, task_paras) in TASKS.items():
            doc = f"{title} for {service_name}. {body}"
            words = content_words(doc)
            tasks_ok = [t for t in task_paras if not content_words(t) & words]
            options = [(t, s) for t in tasks_ok for s in service_paras if not content_words(s) & words]
            if not options:
                raise RuntimeError(f"no paraphrase of ({service!r}, {task!r}) avoids the article's words")
            t, s = rng.choice(options)
            d = len(documents)
            documents.append(doc)
            keys.append((service, task))
            for kind, q in (("keyword", f"{keywords} {short_name}"),
                            ("mixed", f"{rng.choice(tasks_ok)}, {short_name}"),
                            ("paraphrase", rng.choice((f"{t}, it is for {s}", f"{s}: {t}")))):
                queries.append(q)
                relevant.append(d)
                kinds.append(kind)
    return HelpCenter(documents, keys, queries, relevant, kinds, seed)
