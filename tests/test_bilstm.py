"""Chapter 5's project: the vocabulary, the packed BiLSTM, its pretraining, and Lab 5's checks."""
import pytest
import torch

from labkit.data.vocab import Vocab, tokenize
from labkit.nn import BiLSTMClassifier, BiLSTMEncoder, BiLSTMLanguageModel
from labkit.objectives import IGNORE, bilm_forward, bilm_loss, bilm_targets
from labkit.project import load_encoder, save_encoder
from labkit.train import fit

TEXTS = ["the battery is great .", "the screen is bad .", "great phone , i love it", "bad phone , i hate it"]


# ----------------------------------------------------------------------------- vocab
def test_vocab_reserves_pad_and_unk_and_maps_unseen_words_to_unk():
    vocab = Vocab.build(TEXTS)
    assert vocab.words[:2] == ["<pad>", "<unk>"] and vocab.pad_id == 0 and vocab.unk_id == 1
    assert vocab.lookup("superb") == 1 and "superb" not in vocab
    assert all(vocab.lookup(w) >= 2 for w in ("the", "great", "bad", "."))
    ids, lengths = vocab.encode(["the battery is superb .", "great phone"])
    assert ids.shape == (2, 5) and lengths.tolist() == [5, 2]
    assert ids[0, 3] == 1 and ids[1, 2:].eq(0).all()  # unseen -> unk; padding -> 0, on the right
    assert vocab.decode(ids[1]) == ["great", "phone"]


def test_vocab_orders_by_count_and_respects_min_count():
    vocab = Vocab.build(TEXTS, min_count=2)
    assert "battery" not in vocab and "great" in vocab  # battery occurs once
    assert vocab.words[2] in ("the", "is", "phone", "i", ".", ",", "great", "bad", "it")
    assert Vocab.build(TEXTS).words == Vocab.build(list(TEXTS)).words  # deterministic


def test_tokenize_splits_punctuation_and_lowercases():
    assert tokenize("Superb phone, I LOVE it!") == ["superb", "phone", ",", "i", "love", "it", "!"]


@pytest.mark.parametrize("kwargs, match", [({"texts": "one string"}, "texts"), ({"texts": []}, "texts"),
                                            ({"texts": ["ok", ""]}, r"texts\[1\]"),
                                            ({"texts": ["ok"], "min_count": 0}, "min_count")])
def test_vocab_build_refuses_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Vocab.build(**kwargs)


def test_vocab_encode_refuses_bad_input():
    vocab = Vocab.build(TEXTS)
    with pytest.raises(ValueError, match="texts"):
        vocab.encode("the battery")
    with pytest.raises(ValueError, match="max_len"):
        vocab.encode(["the battery"], max_len=0)
    with pytest.raises(ValueError, match="words"):
        Vocab(["hello", "world"])


# ----------------------------------------------------------------------------- the packed BiLSTM
def _model(seed=0, vocab_size=12):
    torch.manual_seed(seed)
    return BiLSTMClassifier(BiLSTMEncoder(vocab_size, embed_dim=8, hidden=6)).eval()


def test_classifier_gives_one_logit_per_sequence():
    ids = torch.tensor([[2, 3, 4, 0], [5, 6, 0, 0], [7, 8, 9, 10]])
    logits = _model()(ids, torch.tensor([3, 2, 4]))
    assert logits.shape == (3,)


def test_padding_does_not_change_a_sequences_logit():
    model = _model()
    alone = model(torch.tensor([[2, 3, 4]]), torch.tensor([3]))
    batch = torch.tensor([[5, 6, 7, 8, 9, 10, 11], [2, 3, 4, 0, 0, 0, 0]])
    padded = model(batch, torch.tensor([7, 3]))
    assert (alone[0] - padded[1]).abs().item() <= 1e-6
    # without packing (lengths = the padded length) the padding would change it
    unpacked = model(batch, torch.tensor([7, 7]))
    assert (alone[0] - unpacked[1]).abs().item() > 1e-4


def test_padding_embedding_gets_no_gradient():
    model = _model().train()
    logits = model(torch.tensor([[2, 3, 0, 0], [4, 5, 6, 0]]), torch.tensor([2, 3]))
    torch.nn.functional.binary_cross_entropy_with_logits(logits, torch.tensor([1.0, 0.0])).backward()
    grad = model.encoder.embedding.weight.grad
    assert grad[0].abs().sum() == 0 and grad[2].abs().sum() > 0
    assert model.encoder.embedding.weight[0].abs().sum() == 0  # padding_idx row starts at zero


def test_encoder_refuses_bad_lengths():
    enc = BiLSTMEncoder(12, embed_dim=4, hidden=3)
    with pytest.raises(ValueError, match="lengths"):
        enc(torch.tensor([[2, 3]]), torch.tensor([3]))
    with pytest.raises(ValueError, match="vocab_size"):
        BiLSTMEncoder(1)


# ----------------------------------------------------------------------------- pretraining
def test_bilm_targets_are_next_and_previous_words():
    ids = torch.tensor([[2, 3, 4], [5, 6, 0]])
    t = bilm_targets(ids, torch.tensor([3, 2]))
    assert t[0, 0].tolist() == [3, 4, IGNORE] and t[0, 1].tolist() == [IGNORE, 2, 3]
    assert t[1, 0].tolist() == [6, IGNORE, IGNORE] and t[1, 1].tolist() == [IGNORE, 5, IGNORE]


def test_lm_cannot_see_the_word_it_predicts():
    """Changing word t+1 must not change the forward logits at t (nor word t-1 the backward logits at t)."""
    torch.manual_seed(0)
    lm = BiLSTMLanguageModel(BiLSTMEncoder(12, embed_dim=8, hidden=6)).eval()
    a, b = torch.tensor([[2, 3, 4, 5]]), torch.tensor([[2, 3, 9, 5]])
    la, lb = lm(a, torch.tensor([4])), lm(b, torch.tensor([4]))
    assert torch.equal(la[0, 0, :2], lb[0, 0, :2])   # forward: positions before the change
    assert torch.equal(la[0, 1, 3:], lb[0, 1, 3:])   # backward: positions after it


def test_lm_pretraining_loss_decreases_and_the_encoder_reloads_exactly(tmp_path):
    vocab = Vocab.build(TEXTS * 2)
    ids, lengths = vocab.encode(TEXTS * 8)
    torch.manual_seed(0)
    lm = BiLSTMLanguageModel(BiLSTMEncoder(len(vocab), embed_dim=16, hidden=16))
    history = fit(lm, (ids, lengths), epochs=15, batch_size=8, lr=1e-2, loss_fn=bilm_loss, forward=bilm_forward,
                  metrics={}, seed=0, progress=False)
    first, last = history.steps[0]["loss"], history.steps[-1]["loss"]
    assert last < 0.5 * first, (first, last)

    path = tmp_path / "encoder.safetensors"
    save_encoder(lm.encoder, vocab, path)
    encoder, vocab2 = load_encoder(path)
    assert vocab2.words == vocab.words
    lm.encoder.eval(), encoder.eval()
    out1, h1 = lm.encoder(ids[:4], lengths[:4])
    out2, h2 = encoder(ids[:4], lengths[:4])
    assert torch.equal(out1, out2) and torch.equal(h1, h2)
    clf = BiLSTMClassifier(encoder)  # a fresh head on the pretrained encoder
    assert clf(ids[:4], lengths[:4]).shape == (4,)


def test_save_encoder_refuses_a_mismatched_vocab(tmp_path):
    with pytest.raises(ValueError, match="vocab"):
        save_encoder(BiLSTMEncoder(50, 4, 3), Vocab.build(TEXTS), tmp_path / "x.safetensors")


# ----------------------------------------------------------------------------- Lab 5's checks
class _Fixed(torch.nn.Module):
    """The solution to 5.4/5.5: packed BiLSTM, one logit per review."""

    def __init__(self, vocab_size, pack=True):
        super().__init__()
        self.model, self.pack = BiLSTMClassifier(BiLSTMEncoder(vocab_size, 8, 6)), pack

    def forward(self, ids, lengths):
        return self.model(ids, lengths if self.pack else torch.full_like(lengths, ids.shape[1]))


class _PerToken(torch.nn.Module):
    """The article's model: return_sequences=True -> Dense(1) -> sigmoid, one value per token."""

    def __init__(self, vocab_size):
        super().__init__()
        self.emb = torch.nn.Embedding(vocab_size, 8)
        self.lstm = torch.nn.LSTM(8, 6, batch_first=True, bidirectional=True)
        self.dense = torch.nn.Linear(12, 1)

    def forward(self, ids, lengths):
        return torch.sigmoid(self.dense(self.lstm(self.emb(ids))[0]))


def _solutions():
    def build_vocab(texts):
        vocab = {"<pad>": 0, "<unk>": 1}
        for t in texts:
            for w in tokenize(t):
                vocab.setdefault(w, len(vocab))
        return vocab

    def to_ids(vocab, text):
        return [vocab.get(w, 1) for w in tokenize(text)]

    def make_xy(examples):
        vocab = build_vocab([t for t, _ in examples])
        rows = [to_ids(vocab, t) for t, _ in examples]
        lengths = torch.tensor([len(r) for r in rows])
        x = torch.zeros(len(rows), int(lengths.max()), dtype=torch.long)
        for i, r in enumerate(rows):
            x[i, :len(r)] = torch.tensor(r)
        return x, lengths, torch.tensor([y for _, y in examples], dtype=torch.float)

    return {"5.1": build_vocab, "5.2": to_ids, "5.3": make_xy, "5.4": _Fixed, "5.5": _Fixed,
            "5.6": torch.nn.BCEWithLogitsLoss(), "5.7": 12_721, "5.8": "hello"}


def _article_answers():
    words = ["hello", "world", "this", "is", "a", "test"]

    def make_xy(examples):  # one "sentence" for all the labels, as in the article
        x = torch.tensor([[i for i, _ in enumerate(words)]])
        return x, torch.tensor([6]), torch.tensor([y for _, y in examples], dtype=torch.float)

    return {"5.1": lambda texts: {w: i for i, w in enumerate(words)},
            "5.2": lambda vocab, text: [vocab[w] for w in tokenize(text)],   # KeyError on unseen words
            "5.3": make_xy, "5.4": _PerToken, "5.5": lambda v: _Fixed(v, pack=False),
            "5.6": torch.nn.BCELoss(), "5.7": 12_977, "5.8": "<pad>"}


def test_lab05_solutions_pass_stubs_and_the_articles_answers_fail(capsys):
    from labkit.data.reviews import make_reviews
    from labkit.labs.lab05 import article_parameter_count, exercises

    ex = exercises(make_reviews(seed=0, n_test=20))
    solutions, article = _solutions(), _article_answers()
    assert set(ex) == set(solutions) == set(article)
    for key, e in ex.items():
        assert e.check(solutions[key]), key
        assert not e.check(None), key
        assert not e.check(article[key]), key
    assert "not answered yet" in capsys.readouterr().out
    assert article_parameter_count() == 12_721  # what Keras' count_params() reports (checked in ch05-2)
