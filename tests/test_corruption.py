"""T5's span corruption and BART's denoising, checked on the book's corpus and on long seeded samples."""
import math
from collections import Counter

import pytest
import torch

from labkit.data.corpus import make_corpus
from labkit.data.corruption import (bart_noise, infilling_span_lengths, random_spans_mask, restore_spans,
                                    sentence_permutation, sentinel_ids, seq2seq_dataset, span_corruption,
                                    split_sentences, text_infilling)
from labkit.data.pretraining import IGNORE
from labkit.data.tokenizer import get_tokenizer

CORPUS = make_corpus(200, 10, seed=0)
TOK = get_tokenizer("word", CORPUS.texts())
DOCS = [TOK.encode(t) for t in CORPUS.texts()]
N_SENTINELS = 20
VOCAB = TOK.vocab_size + N_SENTINELS
SENTINELS = sentinel_ids(VOCAB, N_SENTINELS)
DOT = TOK.stoi["."]


def _g(seed):
    return torch.Generator().manual_seed(seed)


def _spans(mask):
    """Lengths of the runs of True in a boolean list."""
    runs, n = [], 0
    for m in mask + [False]:
        if m:
            n += 1
        elif n:
            runs.append(n)
            n = 0
    return runs


# ---------------------------------------------------------------- T5
def test_sentinels_are_the_top_ids_counting_down():
    assert sentinel_ids(32100, 3) == [32099, 32098, 32097]  # T5: <extra_id_0> is the last id
    assert SENTINELS[0] == VOCAB - 1 and min(SENTINELS) == TOK.vocab_size
    with pytest.raises(ValueError, match="n"):
        sentinel_ids(10, 0)


def test_input_and_target_interleave_back_to_the_original():
    for seed, ids in enumerate(DOCS):
        for eos in (None, TOK.sep_id):
            inputs, targets = span_corruption(ids, SENTINELS, eos_id=eos, generator=_g(seed))
            assert restore_spans(inputs, targets, SENTINELS, eos_id=eos) == ids
            assert inputs != ids and len(inputs) < len(ids) + 1 + (eos is not None)


def test_sentinels_are_distinct_and_in_order():
    for seed, ids in enumerate(DOCS[:100]):
        inputs, targets = span_corruption(ids, SENTINELS, eos_id=TOK.sep_id, generator=_g(seed))
        in_s = [t for t in inputs if t in SENTINELS]
        out_s = [t for t in targets if t in SENTINELS]
        n = len(in_s)
        assert n >= 1 and in_s == SENTINELS[:n]                  # <extra_id_0>, <extra_id_1>, ... once each
        assert out_s == SENTINELS[:n + 1]                        # the same, then one final sentinel
        assert targets[0] == SENTINELS[0] and targets[-2:] == [SENTINELS[n], TOK.sep_id]
        assert inputs[-1] == TOK.sep_id
        # every sentinel of the input hides at least one token, and no two sentinels touch in the input
        positions = [targets.index(s) for s in out_s]
        assert all(b - a >= 2 for a, b in zip(positions, positions[1:]))
        assert all(not (a in SENTINELS and b in SENTINELS) for a, b in zip(inputs, inputs[1:]))


def test_noise_density_is_15_percent_on_the_corpus():
    noise = total = 0
    for seed, ids in enumerate(DOCS):
        mask = random_spans_mask(len(ids), generator=_g(seed))
        noise, total = noise + sum(mask), total + len(mask)
        assert 0.1 < sum(mask) / len(mask) < 0.2                   # each document, up to rounding
    assert abs(noise / total - 0.15) < 0.01, noise / total


def test_mean_span_length_is_3():
    g = _g(0)
    lengths = []
    for _ in range(300):
        n = int(torch.randint(100, 400, (1,), generator=g))
        mask = random_spans_mask(n, generator=g)
        assert abs(sum(mask) / n - 0.15) < 0.01
        lengths += _spans(mask)
    mean = sum(lengths) / len(lengths)
    assert abs(mean - 3.0) < 0.1, mean
    assert len(set(lengths)) >= 4, "span lengths must vary (a random partition), not all be 3"
    mask = random_spans_mask(200, noise_density=0.5, mean_span=10, generator=g)
    assert sum(mask) == 100 and len(_spans(mask)) == 10


def test_span_corruption_is_seeded_and_checks_its_arguments():
    ids = DOCS[0]
    assert span_corruption(ids, SENTINELS, generator=_g(1)) == span_corruption(ids, SENTINELS, generator=_g(1))
    assert span_corruption(ids, SENTINELS, generator=_g(1)) != span_corruption(ids, SENTINELS, generator=_g(2))
    with pytest.raises(ValueError, match="sentinel"):
        span_corruption(ids + [SENTINELS[3]], SENTINELS)
    with pytest.raises(ValueError, match="sentinels: 2 are too few"):
        span_corruption(list(range(5, 105)), SENTINELS[:2])
    with pytest.raises(ValueError, match="noise_density"):
        random_spans_mask(50, noise_density=1.5)
    with pytest.raises(ValueError, match="mean_span"):
        random_spans_mask(50, mean_span=0.5)


# ---------------------------------------------------------------- BART
def _uncorrupt(out, spans, ids):
    """Replace the k-th mask of ``out`` by the tokens of the k-th span: must give ``ids`` back."""
    it, restored = iter(spans), []
    for t in out:
        if t == TOK.mask_id:
            start, n = next(it)
            restored += ids[start:start + n]
        else:
            restored.append(t)
    assert next(it, None) is None, "more spans than masks"
    return restored


def test_text_infilling_one_mask_per_span_and_30_percent_removed():
    zero_length = 0
    for seed, ids in enumerate(DOCS):
        out, spans = text_infilling(ids, TOK.mask_id, generator=_g(seed))
        removed = sum(n for _, n in spans)
        assert removed == round(0.3 * len(ids))
        assert out.count(TOK.mask_id) == len(spans)                  # exactly one mask per span
        assert len(out) == len(ids) - removed + len(spans)
        assert _uncorrupt(out, spans, ids) == ids                     # the spans are where the masks are
        starts = [s for s, _ in spans]
        assert starts == sorted(starts)
        assert all(a + n <= b for (a, n), (b, _) in zip(spans, spans[1:]))   # no overlap
        kept = [t for t in out if t != TOK.mask_id]
        hidden = {i for s, n in spans for i in range(s, s + n)}
        assert kept == [t for i, t in enumerate(ids) if i not in hidden]     # the rest, in order
        zero_length += sum(n == 0 for _, n in spans)
    assert zero_length > 0, "spans of length 0 (a mask inserted, nothing removed) must occur"


def test_a_zero_length_span_inserts_a_mask():
    for seed in range(400):
        ids = DOCS[seed % len(DOCS)]
        out, spans = text_infilling(ids, TOK.mask_id, generator=_g(seed))
        zero = [k for k, (_, n) in enumerate(spans) if n == 0]
        if zero:
            break
    assert zero, "no span of length 0 in 400 draws"
    k = zero[0]
    where = [i for i, t in enumerate(out) if t == TOK.mask_id][k]
    # that mask hides nothing: drop it, fill the other masks with their spans, and the original comes back
    others = [s for j, s in enumerate(spans) if j != k]
    assert _uncorrupt(out[:where] + out[where + 1:], others, ids) == ids


def test_span_lengths_follow_poisson_3():
    lengths = []
    for seed in range(200):
        lengths += infilling_span_lengths(1000, generator=_g(seed))[:-1]   # the last one is cut to fit
    mean = sum(lengths) / len(lengths)
    var = sum((x - mean) ** 2 for x in lengths) / len(lengths)
    zeros = lengths.count(0) / len(lengths)
    assert abs(mean - 3) < 0.1 and abs(var - 3) < 0.3, (mean, var)
    assert abs(zeros - math.exp(-3)) < 0.01, zeros                        # P(0) = e^-3 ≈ 0.050
    assert sum(infilling_span_lengths(1000, generator=_g(7))) == 300


def test_sentence_permutation_shuffles_whole_sentences_uniformly():
    ids = DOCS[0]
    firsts = Counter()
    for seed in range(1000):
        out = sentence_permutation(ids, DOT, generator=_g(seed))
        assert sorted(split_sentences(out, DOT)) == sorted(split_sentences(ids, DOT))   # the same sentences, whole
        firsts[tuple(split_sentences(out, DOT)[0])] += 1
    assert len(firsts) == 5 and all(abs(c / 1000 - 0.2) < 0.05 for c in firsts.values()), firsts
    assert split_sentences([100, DOT, 101, 102], DOT) == [[100, DOT], [101, 102]]   # a last part without a stop counts


def test_bart_noise_targets_the_original():
    for seed, ids in enumerate(DOCS[:50]):
        source, target = bart_noise(ids, mask_id=TOK.mask_id, sentence_end_id=DOT, generator=_g(seed))
        assert target == ids and source != ids
        assert Counter(t for t in source if t != TOK.mask_id) <= Counter(ids)
        source, _ = bart_noise(ids, mask_id=TOK.mask_id, sentence_end_id=DOT, mask_ratio=0.0, generator=_g(seed))
        assert sorted(source) == sorted(ids)                               # permutation only
    with pytest.raises(ValueError, match="mask_id"):
        text_infilling(DOCS[0] + [TOK.mask_id], TOK.mask_id)
    with pytest.raises(ValueError, match="mask_ratio"):
        text_infilling(DOCS[0], TOK.mask_id, mask_ratio=1.5)
    with pytest.raises(ValueError, match="poisson_lambda"):
        text_infilling(DOCS[0], TOK.mask_id, poisson_lambda=0)


def test_seq2seq_dataset_pads_labels_with_ignore():
    pairs = [([5, 6, 7], [8]), ([5], [9, 10, 11])]
    ids, mask, labels = seq2seq_dataset(pairs, pad_id=TOK.pad_id).tensors
    assert ids.tolist() == [[5, 6, 7], [5, 0, 0]] and mask.tolist() == [[1, 1, 1], [1, 0, 0]]
    assert labels.tolist() == [[8, IGNORE, IGNORE], [9, 10, 11]]
    with pytest.raises(ValueError, match="max_input"):
        seq2seq_dataset(pairs, pad_id=0, max_input=2)
