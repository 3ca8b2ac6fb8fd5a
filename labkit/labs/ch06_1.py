"""Chapter 6.1 exercises: label alignment, entity F1 and SQuAD F1 (6.1a); the causal mask, BLEU's brevity
penalty and recall@k (6.1b).

Every expected value is computed by labkit (whose metrics are tested against seqeval, sacrebleu, the SQuAD
script's port in torchmetrics and scikit-learn), never typed in. Code answers are *run* on cases chosen so that
the usual wrong versions give a different result.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from ..exercises import Exercise
from ..ner import align_labels, entity_scores
from ..nn.attention import causal_mask
from ..qa import token_f1
from ..retrieval import recall_at_k

# Two tagged sentences for exercise 6.1.2: a boundary error ("New" without "Delhi"), a type error, and an
# I- tag after O that the conlleval rule reads as the start of an entity.
F1_WORDS = [["Maria", "Lopez", "moved", "to", "New", "Delhi", "in", "May", "2003", "."],
            ["Siemens", "hired", "Kenji", "Sato", "."]]
F1_GOLD = [["B-PER", "I-PER", "O", "O", "B-LOC", "I-LOC", "O", "B-DATE", "I-DATE", "O"],
           ["B-ORG", "O", "B-PER", "I-PER", "O"]]
F1_PRED = [["B-PER", "I-PER", "O", "O", "B-LOC", "O", "O", "I-DATE", "I-DATE", "O"],
           ["B-LOC", "O", "B-PER", "I-PER", "O"]]
SQUAD_CASES = [("the Deutsche Bank office", "Deutsche Bank"), ("Rio de Janeiro.", "rio de janeiro"),
               ("cat cat", "the cat"), ("An engineer", "engineer"), ("1984", "in 1984"), ("Oslo", "Lima"),
               ("a nurse at Siemens", "nurse")]
BP_LENGTHS = (8, 10)            # the output has 8 tokens, the reference 10


def token_accuracy(gold, pred) -> float:
    """The per-word accuracy (a wrong answer to 6.1.2)."""
    pairs = [(g, p) for gs, ps in zip(gold, pred) for g, p in zip(gs, ps)]
    return sum(g == p for g, p in pairs) / len(pairs)


def tagging_qa_exercises(tokenizer) -> dict[str, Exercise]:
    """The three exercises of notebook 6.1a; ``tokenizer`` is all-MiniLM-L6-v2's (a fast WordPiece tokenizer)."""
    sentences = [["Tomasz", "Kowalczyk", "joined", "Ericsson", "."], ["Hiroshi", "visited", "Kuala", "Lumpur"],
                 ["In", "1987", ",", "Zainab", "Adeyemi", "spoke", "at", "UNICEF", "."]]
    cases = []
    for words in sentences:
        labels = [3 + i for i in range(len(words))]                # one distinct label per word
        cases.append((tokenizer(words, is_split_into_words=True).word_ids(), labels))

    def check_align(align) -> bool:
        for word_ids, labels in cases:
            got = list(align(word_ids, labels))
            if got != align_labels(word_ids, labels):
                print(f"   for word_ids {word_ids} and word labels {labels}: got {got}")
                return False
        return True

    def check_f1(f1) -> bool:
        for pred, gold in SQUAD_CASES:
            got = float(f1(pred, gold))
            if not math.isclose(got, token_f1(pred, gold), abs_tol=1e-9):
                print(f"   squad_f1({pred!r}, {gold!r}) = {got:.4f}: not SQuAD's value")
                return False
        return True

    return {
        "6.1.1": Exercise(
            "6.1.1", "Write align(word_ids, word_labels) -> one label per token: the word's label at its first "
            "word piece, -100 at the other pieces and at the special tokens (word id None).", check_fn=check_align,
            hint="walk the tokens keeping the word id of the previous token: a token whose word id is None, or "
                 "equal to the previous one, is not the first piece of a word",
            explain="One prediction per word, read at its first piece; the loss skips the rest."),
        "6.1.2": Exercise(
            "6.1.2", "Entity-level F1 of F1_PRED against F1_GOLD (two sentences, I- after O repaired by the "
            "conlleval rule)?", expected=lambda: entity_scores(F1_GOLD, F1_PRED, invalid="repair").f1,
            hint="list the gold entities as (type, first word, last word) and the predicted ones the same way; "
                 "a prediction counts only if all three match; F1 = 2PR / (P + R)",
            explain="A wrong boundary or a wrong type is a miss AND a false alarm; per-word accuracy hides both."),
        "6.1.3": Exercise(
            "6.1.3", "Write squad_f1(prediction, gold) -> the SQuAD word-overlap F1 (a number from 0 to 1).",
            check_fn=check_f1,
            hint="normalise both strings first (case, punctuation, the articles a/an/the, spaces); count common "
                 "words with multiplicity (collections.Counter), not as sets",
            explain="'the Deutsche Bank office' still earns partial credit for 'Deutsche Bank'."),
    }


def generation_search_exercises() -> dict[str, Exercise]:
    """The three exercises of notebook 6.1b."""
    rng = np.random.default_rng(0)
    rankings = [np.stack([rng.permutation(12) for _ in range(30)]) for _ in range(3)]
    relevant = [rng.integers(0, 12, size=30) for _ in range(3)]

    def check_mask(mask) -> bool:
        for T in (1, 2, 5, 7):
            got = torch.as_tensor(mask(T)).bool()
            if got.shape != (T, T) or not torch.equal(got, causal_mask(T)):
                print(f"   mask({T}) is not the causal mask of a {T}-token sequence")
                return False
        return True

    def check_recall(fn) -> bool:
        for ranked, rel in zip(rankings, relevant):
            for k in (1, 3, 5, 12):
                got, want = float(fn(ranked, rel, k)), recall_at_k(ranked, rel, k)
                if not math.isclose(got, want, abs_tol=1e-9):
                    print(f"   recall_at_k(..., k={k}) = {got:.4f} on a test ranking; expected another value")
                    return False
        return True

    hyp, ref = BP_LENGTHS
    return {
        "6.1.4": Exercise(
            "6.1.4", "Write mask(T) -> a (T, T) boolean tensor, True where query position i may read key "
            "position j in a decoder (a model that generates left to right).", check_fn=check_mask,
            hint="row i may read position i itself and the positions before it, never after; torch.tril",
            explain="Without it (all True) the model reads the answer one position to the right, as the encoder-"
                    "only model above did."),
        "6.1.5": Exercise(
            "6.1.5", f"A system's outputs have {hyp} tokens in all, the references {ref}. What is BLEU's brevity "
            "penalty?", expected=lambda: math.exp(1 - ref / hyp), rel=1e-3,
            hint="it is 1 when the output is at least as long as the references, otherwise exp(1 - r / c) with "
                 "c the output length and r the reference length",
            explain="A short output could otherwise score high precision by saying only what it is sure of."),
        "6.1.6": Exercise(
            "6.1.6", "Write recall_at_k(ranked, relevant, k): ranked (Q, D) document indices best first, "
            "relevant (Q,) the one relevant document per query -> the fraction of queries whose relevant "
            "document is among the first k.", check_fn=check_recall,
            hint="for each query, look only at ranked[q, :k]; count the queries where relevant[q] is there, "
                 "then divide by the number of queries (not by k)",
            explain="With one relevant document per query, precision@k would be recall@k / k."),
    }
