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
# Every check: the right answer passes; the naive answer, the article's version, a constant output and an
# ignored argument are refused (test_labs.py holds a few more refusals and the hint tests).
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402
from torch.nn.utils.rnn import pack_padded_sequence  # noqa: E402

from labkit.labs import lab05  # noqa: E402


class _Fixed(nn.Module):
    """The solution to 5.4/5.5: packed BiLSTM, one logit per review (pack=False: reads the padding)."""

    def __init__(self, vocab_size, pack=True):
        super().__init__()
        self.model, self.pack = BiLSTMClassifier(BiLSTMEncoder(vocab_size, 8, 6)), pack

    def forward(self, ids, lengths):
        return self.model(ids, lengths if self.pack else torch.full_like(lengths, ids.shape[1]))


class _Learner(nn.Module):
    """A learner's own packed BiLSTM; ``use`` picks what the head reads (the right one: both final states)."""

    def __init__(self, vocab_size, use="both", bidirectional=True, pack=True):
        super().__init__()
        self.use, self.pack = use, pack
        self.emb = nn.Embedding(vocab_size, 8, padding_idx=0)
        self.lstm = nn.LSTM(8, 6, batch_first=True, bidirectional=bidirectional)
        self.head = nn.Linear(12 if bidirectional and use in ("both", "last output") else 6, 1)

    def forward(self, ids, lengths):
        x = self.emb(ids)
        if self.pack:
            x = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, (h_n, _) = self.lstm(x)
        if self.use == "last output":                # the output at the last position, padding or not
            return self.head(out[:, -1]).squeeze(-1)
        h = {"both": lambda: torch.cat([h_n[-2], h_n[-1]], -1), "backward": lambda: h_n[-1],
             "forward": lambda: h_n[-2], "one-way": lambda: h_n[-1]}[self.use]()
        return self.head(h).squeeze(-1)


class _MeanPool(nn.Module):
    """Embedding -> masked mean over the words -> linear: one logit per review, padding-proof, and no LSTM."""

    def __init__(self, vocab_size):
        super().__init__()
        self.emb, self.head = nn.Embedding(vocab_size, 8, padding_idx=0), nn.Linear(8, 1)

    def forward(self, ids, lengths):
        mask = (torch.arange(ids.shape[1])[None] < lengths[:, None]).float()
        return self.head((self.emb(ids) * mask[..., None]).sum(1) / lengths[:, None]).squeeze(-1)


class _UnusedLSTM(_MeanPool):
    """Has a bidirectional LSTM, never calls it."""

    def __init__(self, vocab_size):
        super().__init__(vocab_size)
        self.lstm = nn.LSTM(8, 6, batch_first=True, bidirectional=True)


class _PerToken(nn.Module):
    """The article's model: return_sequences=True -> Dense(1) -> sigmoid, one value per token."""

    def __init__(self, vocab_size):
        super().__init__()
        self.emb = nn.Embedding(vocab_size, 8)
        self.lstm = nn.LSTM(8, 6, batch_first=True, bidirectional=True)
        self.dense = nn.Linear(12, 1)

    def forward(self, ids, lengths):
        return torch.sigmoid(self.dense(self.lstm(self.emb(ids))[0]))


class _Constant(_Fixed):
    """A bidirectional LSTM whose output is thrown away: the same logit for every review."""

    def forward(self, ids, lengths):
        return 0 * super().forward(ids, lengths) + 0.3


def _build_vocab(texts):
    vocab = {"<pad>": 0, "<unk>": 1}
    for t in texts:
        for w in tokenize(t):
            vocab.setdefault(w, len(vocab))
    return vocab


def _to_ids(vocab, text):
    return [vocab.get(w, 1) for w in tokenize(text)]


def _make_xy(examples, left=False, float_labels=True):
    vocab = _build_vocab([t for t, _ in examples])
    rows = [_to_ids(vocab, t) for t, _ in examples]
    lengths = torch.tensor([len(r) for r in rows])
    x = torch.zeros(len(rows), int(lengths.max()), dtype=torch.long)
    for i, r in enumerate(rows):
        if left:
            x[i, x.shape[1] - len(r):] = torch.tensor(r)     # Keras' pad_sequences default, padding="pre"
        else:
            x[i, :len(r)] = torch.tensor(r)
    y = torch.tensor([lab for _, lab in examples], dtype=torch.float if float_labels else torch.long)
    return x, lengths, y


def _solutions():
    return {"5.1": _build_vocab, "5.2": _to_ids, "5.3": _make_xy, "5.4": _Fixed, "5.5": _Fixed,
            "5.6": nn.BCEWithLogitsLoss(), "5.7": 12_721, "5.8": "hello"}


def _article_answers():
    words = lab05.ARTICLE_WORDS

    def make_xy(examples):  # one "sentence" for all the labels, as in the article
        x = torch.tensor([[i for i, _ in enumerate(words)]])
        return x, torch.tensor([6]), torch.tensor([y for _, y in examples], dtype=torch.float)

    return {"5.1": lambda texts: {w: i for i, w in enumerate(words)},
            "5.2": lambda vocab, text: [vocab[w] for w in tokenize(text)],   # KeyError on unseen words
            "5.3": make_xy, "5.4": _PerToken, "5.5": _PerToken,
            "5.6": lambda z, y: F.binary_cross_entropy(torch.sigmoid(z), y),    # Dense(sigmoid) + binary_crossentropy
            "5.7": 12_977, "5.8": "<pad>"}


@pytest.fixture(scope="module")
def lab5():
    from labkit.data.reviews import make_reviews
    data = make_reviews(seed=0, n_test=20)
    return data, lab05.exercises(data)


def test_lab05_solutions_pass_stubs_and_the_articles_answers_fail(lab5, capsys):
    _, ex = lab5
    solutions, article = _solutions(), _article_answers()
    assert set(ex) == set(solutions) == set(article)
    for key, e in ex.items():
        assert e.check(solutions[key]), key
        assert not e.check(None), key
        assert not e.check(article[key]), key
    assert "not answered yet" in capsys.readouterr().out
    assert lab05.article_parameter_count() == 12_721  # what Keras' count_params() reports (checked in ch05-2)


def test_lab05_vocab_and_ids_refuse_naive_answers(lab5, capsys):
    data, ex = lab5
    test_texts = data.texts("test")
    assert not ex["5.1"].check(lambda texts: {"<pad>": 0, "<unk>": 1})                      # ignores the texts
    assert not ex["5.1"].check(lambda texts: {**{w: i for i, w in enumerate(                 # specials last
        sorted({w for t in texts for w in tokenize(t)}))}, "<pad>": 0, "<unk>": 1})
    assert not ex["5.1"].check(lambda texts: _build_vocab(list(texts) + test_texts))         # the test split leaks in
    assert "leaks" in capsys.readouterr().out
    assert not ex["5.2"].check(lambda vocab, text: [vocab.get(w, 0) for w in tokenize(text)])  # unknown -> padding id
    assert not ex["5.2"].check(lambda vocab, text: [1] * len(tokenize(text)))                # ignores the vocabulary
    assert not ex["5.2"].check(lambda vocab, text: _to_ids(vocab, test_texts[0]))           # ignores the text
    assert not ex["5.2"].check(lambda vocab, text: [vocab.get(w, 1) for w in text.split()])  # no tokenize: "word."


def test_lab05_make_xy_refuses_left_padding_int_labels_and_ids_that_ignore_the_words(lab5):
    _, ex = lab5
    assert ex["5.3"].check(_make_xy)
    assert not ex["5.3"].check(lambda e: _make_xy(e, left=True))                 # Keras' default padding="pre"
    assert not ex["5.3"].check(lambda e: _make_xy(e, float_labels=False))        # integer labels
    assert not ex["5.3"].check(lambda e: (lambda x, n, y: (x, n, y[:, None]))(*_make_xy(e)))   # y of shape (N, 1)

    def ones(examples):   # the right shapes and padding, but every word has id 2
        x, lengths, y = _make_xy(examples)
        return (x > 0).long() * 2, lengths, y

    assert not ex["5.3"].check(ones)
    assert not ex["5.3"].check(lambda e: (torch.zeros(10, 5, dtype=torch.long), torch.full((10,), 5),
                                          torch.zeros(10)))                     # a constant batch


@pytest.mark.parametrize("model, passes_5_4, passes_5_5", [
    (_Fixed, True, True),
    (_Learner, True, True),                                   # a learner's own packed BiLSTM
    (lambda v: _Fixed(v, pack=False), True, False),           # reads the padding
    (lambda v: _Learner(v, use="last output", pack=False), True, False),
    (_MeanPool, False, False),                                # padding-proof, one logit, but no LSTM
    (_UnusedLSTM, False, False),                              # an LSTM that forward never calls
    (lambda v: _Learner(v, use="one-way", bidirectional=False), False, False),   # a one-way LSTM
    (lambda v: _Learner(v, use="backward"), False, True),     # ignores the forward direction
    (lambda v: _Learner(v, use="forward"), False, True),      # ignores the backward direction
    (_PerToken, False, False),                                # the article's: one value per token
    (_Constant, False, False),                                # the same logit for every review
    (lambda v: _Fixed(20), False, False),                     # ignores vocab_size (IndexError on id 36)
], ids=["solution", "learner", "unpacked", "last-output", "mean-pool", "unused-lstm", "one-way", "backward-only",
        "forward-only", "per-token", "constant", "ignores-vocab-size"])
def test_lab05_model_checks_need_a_real_bidirectional_lstm(lab5, model, passes_5_4, passes_5_5):
    _, ex = lab5
    assert ex["5.4"].check(model) is passes_5_4
    assert ex["5.5"].check(model) is passes_5_5


def test_lab05_loss_check_tries_extreme_logits(lab5, capsys):
    _, ex = lab5
    for right in (nn.BCEWithLogitsLoss(), F.binary_cross_entropy_with_logits,
                  lambda z, y: (F.softplus(z) - z * y).mean()):                  # the stable formula by hand
        assert ex["5.6"].check(right)
    capsys.readouterr()
    # BCELoss on sigmoid(z): right on moderate logits, wrong gradient (0) once sigmoid rounds to 0 or 1
    z, y = torch.tensor([2.5, -1.0, 0.3, -4.0]), torch.tensor([1.0, 0.0, 0.0, 1.0])
    assert torch.isclose(F.binary_cross_entropy(torch.sigmoid(z), y), F.binary_cross_entropy_with_logits(z, y))
    assert not ex["5.6"].check(lambda z, y: F.binary_cross_entropy(torch.sigmoid(z), y))
    assert "rounds to exactly 0 or 1" in capsys.readouterr().out   # refused on the extreme logits, not before
    assert torch.sigmoid(lab05.extreme_logits()[0]).tolist() == [1.0, 0.0, 1.0, 0.0]   # exactly saturated
    assert not ex["5.6"].check(lambda z, y: nn.BCELoss()(torch.sigmoid(z), y))
    assert not ex["5.6"].check(nn.BCELoss())                                             # logits outside [0, 1]
    assert not ex["5.6"].check(lambda z, y: -(y * torch.log(torch.sigmoid(z))                 # the textbook formula
                                              + (1 - y) * torch.log(1 - torch.sigmoid(z))).mean())
    assert not ex["5.6"].check(lambda z, y: -(y * torch.log(torch.sigmoid(z))).mean())         # the article's 1-term CE
    assert not ex["5.6"].check(nn.BCEWithLogitsLoss(reduction="sum"))                          # not the mean
    assert not ex["5.6"].check(lambda z, y: torch.tensor(0.6931))                              # a constant
    assert not ex["5.6"].check(lambda z, y: F.binary_cross_entropy_with_logits(z, torch.ones_like(z)))  # ignores y
    assert not ex["5.6"].check(lambda z, y: F.binary_cross_entropy_with_logits(z.detach(), y))  # no gradient


def test_lab05_value_questions_refuse_the_usual_miscounts(lab5):
    _, ex = lab5
    count = lab05.article_parameter_count
    e, u = 16, 32
    assert ex["5.7"].check(count())
    assert not ex["5.7"].check(count() + 2 * 4 * u)                         # PyTorch's two biases
    assert not ex["5.7"].check(count() - 2 * 4 * u - 1)                     # no biases at all
    assert not ex["5.7"].check(7 * e + 4 * (u * (e + u) + u) + u + 1)       # one direction only
    assert not ex["5.7"].check(count() - u)                                 # the dense unit reads one direction
    assert not ex["5.7"].check(count(6, e, u))                              # the vocabulary without the "+1"
    assert not ex["5.7"].check(count(7, e, u) - 7 * e)                      # the embedding forgotten
    for wrong in ("<pad>", "test", "world", "0"):
        assert not ex["5.8"].check(wrong)
