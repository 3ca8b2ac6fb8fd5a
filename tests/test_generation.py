"""labkit.generation: BLEU equal to sacrebleu's, greedy = beam search of width 1, a wide beam = exhaustive search,
sequence scores, the encoder-only / decoder-only experiment, the translation data, and the 6.1b exercises 6.1.4-5."""
import itertools
import math
import random

import pytest
import torch
import torch.nn.functional as F

from labkit.data.nlp_tasks import NOUNS, PLURALS, VERBS, make_translation
from labkit.generation import (BOS, EOS, SEP, PrefixLM, WordByWord, beam_search, build_vocab, corpus_bleu,
                               encode_pairs, encode_prefix_lm, future_influence, greedy_decode,
                               loss_seeing_only_the_past, prefix_lm_forward, prefix_lm_generate, seq2seq_forward,
                               sequence_logprobs, sequence_loss, tokenize_13a, translate)
from labkit.labs import ch06_1
from labkit.nn import Seq2Seq, Seq2SeqConfig, TransformerConfig
from labkit.nn.attention import causal_mask


# ----------------------------------------------------------------------------- BLEU = sacrebleu
def _corpus(rng, n):
    words = "the a cat dog sat on mat . , 3.5 1,000 - ( ) hello world's don't x-ray 12-3 &amp; &quot; <skipped>".split()
    line = lambda lo: " ".join(rng.choice(words) for _ in range(rng.randint(lo, 12)))  # noqa: E731
    return [line(0) for _ in range(n)], [line(1) for _ in range(n)], [line(1) for _ in range(n)]


def test_tokenize_13a_equals_sacrebleu():
    sacrebleu = pytest.importorskip("sacrebleu")
    from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a
    theirs = Tokenizer13a()
    rng = random.Random(0)
    for line in sum(_corpus(rng, 50), []):
        assert tokenize_13a(line) == theirs(line).split()


def test_corpus_bleu_equals_sacrebleu():
    sacrebleu = pytest.importorskip("sacrebleu")
    rng = random.Random(1)
    for _ in range(200):
        hyps, refs, refs2 = _corpus(rng, rng.randint(1, 8))
        one = sacrebleu.corpus_bleu(hyps, [refs])
        ours = corpus_bleu(hyps, refs)
        assert ours.score == pytest.approx(one.score, abs=1e-9)
        assert ours.brevity_penalty == pytest.approx(one.bp, abs=1e-12)
        assert (ours.hyp_len, ours.ref_len) == (one.sys_len, one.ref_len)
        assert ours.precisions == pytest.approx(one.precisions, abs=1e-9)
        two = sacrebleu.corpus_bleu(hyps, [refs, refs2])           # several references per sentence
        assert corpus_bleu(hyps, [[a, b] for a, b in zip(refs, refs2)]).score == pytest.approx(two.score, abs=1e-9)


def test_corpus_bleu_by_hand():
    ref = "the cat sat on the mat ."
    assert corpus_bleu([ref], [ref]).score == pytest.approx(100)
    short = corpus_bleu(["the cat sat on"], [ref])                   # 4 tokens for 7: brevity penalty
    assert short.brevity_penalty == pytest.approx(math.exp(1 - 7 / 4))
    assert corpus_bleu(["dog"], [ref]).score == 0.0
    with pytest.raises(ValueError, match="one reference entry per hypothesis"):
        corpus_bleu(["a", "b"], ["a"])


# ----------------------------------------------------------------------------- decoding
@pytest.fixture(scope="module")
def tiny():
    pairs = [("a b", "x y"), ("b a", "y x"), ("a a", "x x")]
    vocab = build_vocab(pairs)
    torch.manual_seed(0)
    model = Seq2Seq(Seq2SeqConfig(vocab_size=len(vocab), max_len=16, d_model=16, n_heads=2, n_layers=1, d_ff=32))
    for p in model.parameters():            # larger weights: peaked, varied distributions to search over
        p.data.mul_(40)
    return model.eval(), vocab


def test_encode_pairs_shifts_the_target(tiny):
    _, vocab = tiny
    src, dec_in, labels = encode_pairs(vocab, [("a b", "x y")]).tensors
    assert src[0].tolist() == vocab.ids("a b") + [vocab.lookup(EOS)]
    assert dec_in[0].tolist() == [vocab.lookup(BOS)] + vocab.ids("x y")
    assert labels[0].tolist() == vocab.ids("x y") + [vocab.lookup(EOS)]
    assert [vocab.words[i] for i in range(5)] == ["<pad>", "<unk>", BOS, EOS, SEP]


@pytest.mark.parametrize("length_penalty", [0.0, 1.0])
def test_beam_of_width_one_is_greedy(tiny, length_penalty):
    model, vocab = tiny
    bos, eos = vocab.lookup(BOS), vocab.lookup(EOS)
    for text in ("a b", "b a", "a a b", "b"):
        src = torch.tensor([vocab.ids(text) + [eos]])
        greedy = greedy_decode(model, src, bos, eos, max_len=6)[0]
        assert beam_search(model, src, bos, eos, beam_size=1, max_len=6, length_penalty=length_penalty).tokens == greedy


def test_a_wide_beam_finds_the_most_likely_output(tiny):
    model, vocab = tiny
    bos, eos, V, L = vocab.lookup(BOS), vocab.lookup(EOS), len(vocab), 3
    src = torch.tensor([vocab.ids("a b") + [eos]])
    # every output: up to L-1 tokens then <eos>, or L tokens cut at max_len
    candidates = [list(t) + [eos] for n in range(L) for t in itertools.product([v for v in range(V) if v != eos],
                                                                                repeat=n)]
    candidates += [list(t) for t in itertools.product([v for v in range(V) if v != eos], repeat=L)]
    with torch.no_grad():
        memory = model.encode(src, torch.ones_like(src))

    def score(seq):
        ys = torch.tensor([[bos] + seq[:-1]])
        logp = F.log_softmax(model.lm_head(model.decode(ys, memory, torch.ones_like(src))) + model.final_logits_bias, -1)
        return float(logp[0, torch.arange(len(seq)), torch.tensor(seq)].sum())

    with torch.no_grad():
        best = max(candidates, key=score)
        found = beam_search(model, src, bos, eos, beam_size=V ** L, max_len=L, length_penalty=0.0)
        best_score = score(best)
    assert found.tokens == [t for t in best if t != eos]
    assert found.logprob == pytest.approx(best_score, abs=1e-4)


def test_sequence_logprobs_is_the_summed_token_logprob(tiny):
    model, vocab = tiny
    data = encode_pairs(vocab, [("a b", "x y"), ("a", "x")])
    with torch.no_grad():
        logits, labels = seq2seq_forward(model, data.tensors)
    manual = [-float(F.cross_entropy(logits[i][labels[i] != 0], labels[i][labels[i] != 0], reduction="sum"))
              for i in range(2)]
    assert sequence_logprobs(model, vocab, ["a b", "a"], ["x y", "x"]) == pytest.approx(manual, rel=1e-6)
    assert float(sequence_loss(logits, labels)) == pytest.approx(-sum(manual) / 5, rel=1e-6)   # 3 + 2 tokens


def test_decoding_refuses_bad_arguments(tiny):
    model, vocab = tiny
    src = torch.tensor([[5, 3], [6, 3]])
    with pytest.raises(ValueError, match="one source"):
        beam_search(model, src, 2, 3)
    with pytest.raises(ValueError, match="beam_size"):
        beam_search(model, src[:1], 2, 3, beam_size=0)
    with pytest.raises(ValueError, match="length_penalty"):
        beam_search(model, src[:1], 2, 3, length_penalty=-1)
    assert translate(model, vocab, ["a b", "b"], beam_size=1, max_len=4) == \
        translate(model, vocab, ["a b", "b"], beam_size=1, max_len=4, batch_size=1)   # batching changes nothing


# ----------------------------------------------------------------------------- encoder-only vs decoder-only
def test_future_influence_separates_causal_from_bidirectional():
    cfg = TransformerConfig(vocab_size=20, max_len=16, d_model=16, n_heads=2, n_layers=2)
    ids = torch.tensor([[5, 6, 7, 8, 9, 10]])
    for causal in (True, False):
        torch.manual_seed(0)
        model = PrefixLM(cfg, causal=causal).eval()
        change = future_influence(lambda x: model.encoder(x, causal=causal), ids, position=4, replacement=11)
        before = float(change[:4].max())
        assert (before == 0.0) if causal else (before > 1e-3)
        assert float(change[4]) > 1e-3                                   # the changed position itself moves
    with pytest.raises(ValueError, match="position"):
        future_influence(lambda x: x[..., None].float(), ids, position=6, replacement=1)


def test_prefix_lm_labels_are_the_next_target_token():
    pairs = [("the dog sees", "hundo vidi .")]
    vocab = build_vocab(pairs)
    ids, labels = encode_prefix_lm(vocab, pairs).tensors
    sep = ids[0].tolist().index(vocab.lookup(SEP))
    assert labels[0, :sep].eq(0).all()                                   # the source is not learned
    assert labels[0, sep:sep + 4].tolist() == ids[0, sep + 1:sep + 5].tolist()   # next token, <eos> included
    model = PrefixLM(TransformerConfig(vocab_size=len(vocab), max_len=16, d_model=16, n_heads=2), causal=True)
    out = prefix_lm_generate(model, vocab, ["the dog sees"], max_len=3)
    assert len(out) == 1 and len(out[0].split()) <= 3


@pytest.mark.parametrize("causal", [True, False])
def test_cutting_the_future_changes_only_the_bidirectional_loss(causal):
    pairs = [("the dog sees", "hundo vidi ."), ("the cat sees", "kato vidi .")]
    vocab = build_vocab(pairs)
    data = encode_prefix_lm(vocab, pairs)
    torch.manual_seed(0)
    model = PrefixLM(TransformerConfig(vocab_size=len(vocab), max_len=16, d_model=16, n_heads=2), causal=causal)
    model.eval()
    with torch.no_grad():
        full = float(sequence_loss(*prefix_lm_forward(model, data.tensors)))
    cut = loss_seeing_only_the_past(model, data)
    assert (cut == pytest.approx(full, abs=1e-5)) == causal


# ----------------------------------------------------------------------------- data and the dictionary baseline
def test_translation_data_grammar_and_splits():
    data = make_translation(seed=0, n_train=300, n_val=50, n_test=50)
    train = {s for s, _ in data.train}
    assert not ({s for s, _ in data.val} | {s for s, _ in data.test}) & train
    assert make_translation(seed=0, n_train=300, n_val=50, n_test=50).test == data.test
    forms = {**{n: n for n in NOUNS}, **{PLURALS.get(n, n + "s"): n for n in NOUNS}}
    for en, tg in data.train[:100]:
        words = tg.split()
        assert words[-2] in VERBS.values() and words[-1] == "."                 # verb-final
        assert ("not" in en.split()) == ("ne" in words)
        subject = next(forms[w] for w in en.split() if w in forms)
        assert words[0] == NOUNS[subject]                                       # the subject comes first
    assert set(data.card()) == {"what", "how", "sizes", "splits", "seeds", "shortcuts checked", "limits"}


def test_word_by_word_learns_the_lexicon_but_not_the_order():
    data = make_translation(seed=0, n_train=800, n_val=10, n_test=10)
    wbw = WordByWord().fit(data.train)
    assert wbw.table["dog"] == "hundo" and wbw.table["brave"] == "kuraga"
    assert "kuraga hundo" in wbw.translate("the brave dog sees the cat")   # source order: adjective first


# ----------------------------------------------------------------------------- exercises 6.1.4 and 6.1.5
def test_exercises_causal_mask_and_brevity_penalty():
    ex = ch06_1.generation_search_exercises()
    assert ex["6.1.4"].check(causal_mask) and ex["6.1.4"].check(lambda T: torch.ones(T, T).tril().bool())
    wrong = [lambda T: torch.ones(T, T, dtype=torch.bool),                 # the encoder's: everything visible
             lambda T: torch.ones(T, T).triu().bool(),                      # the future instead of the past
             lambda T: torch.ones(T, T).tril(-1).bool(),                    # not even itself
             lambda T: causal_mask(5)]                                      # ignores T
    assert not any(ex["6.1.4"].check(w) for w in wrong)
    hyp, ref = ch06_1.BP_LENGTHS
    right = math.exp(1 - ref / hyp)
    assert ex["6.1.5"].check(right)
    assert not any(ex["6.1.5"].check(w) for w in (hyp / ref, 1.0, math.exp(1 - hyp / ref), math.exp(-ref / hyp)))
    assert f"{right:.2f}" not in ex["6.1.5"].hint and f"{right:.3f}" not in ex["6.1.5"].hint
