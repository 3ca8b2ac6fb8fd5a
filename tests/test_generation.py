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
                               next_token_losses, prefix_lm_generate, seq2seq_forward,
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
    losses = next_token_losses(model, data)
    with torch.no_grad():
        assert losses["whole sequence in view"] == pytest.approx(float(sequence_loss(model(data.tensors[0]),
                                                                                     data.tensors[1])))
    same = losses["only the past in view"] == pytest.approx(losses["whole sequence in view"], abs=1e-5)
    assert same == causal
