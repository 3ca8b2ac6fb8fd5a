"""Lab 5 exercises: fix the article's project, one defect at a time.

Most answers are code: the learner writes a function or a model, and the check
*runs* it on review texts and measures what the article got wrong (padding read
as a word, a KeyError on an unseen word, one output per token, a sigmoid fed to
the wrong loss). A check never raises: :class:`~labkit.exercises.Exercise` prints
an exception in the learner's code and counts it as "not yet".
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..data.reviews import Reviews
from ..data.vocab import tokenize
from ..exercises import Exercise

ARTICLE_WORDS = ["hello", "world", "this", "is", "a", "test"]


def article_parameter_count(vocab_size: int = 7, embed_dim: int = 16, units: int = 32) -> int:
    """Parameters of the article's Keras model: Embedding + Bidirectional(LSTM) + Dense(1).

    A Keras LSTM has one bias per gate (4·units); PyTorch's ``nn.LSTM`` has two
    (``bias_ih`` and ``bias_hh``), so the same layer counts 2·4·units more there.
    """
    embedding = vocab_size * embed_dim
    lstm_one_direction = 4 * (units * (embed_dim + units) + units)
    dense = 2 * units + 1
    return embedding + 2 * lstm_one_direction + dense


def exercises(data: Reviews) -> dict[str, Exercise]:
    train_texts, test_texts = data.texts("train")[:40], data.texts("test")[:8]
    train_words = {w for t in train_texts for w in tokenize(t)}
    unseen = sorted({w for t in test_texts for w in tokenize(t)} - train_words)

    def check_vocab(build_vocab) -> bool:
        vocab = build_vocab(train_texts)
        if not isinstance(vocab, dict):
            print(f"   build_vocab must return a dict word -> id; got {type(vocab).__name__}")
            return False
        ok = vocab.get("<pad>") == 0 and vocab.get("<unk>") == 1
        ok &= train_words <= set(vocab) and len(set(vocab.values())) == len(vocab)
        ok &= all(vocab[w] >= 2 for w in train_words)
        return ok

    def check_ids(to_ids) -> bool:
        vocab = {"<pad>": 0, "<unk>": 1, **{w: i + 2 for i, w in enumerate(sorted(train_words))}}
        text = test_texts[0]
        got = list(to_ids(vocab, text))
        want = [vocab.get(w, 1) for w in tokenize(text)]
        return got == want and any(w in unseen for w in tokenize(text))

    def check_xy(make_xy) -> bool:
        examples = data.train[:10]
        x, lengths, y = make_xy(examples)
        ok = x.ndim == 2 and x.dtype == torch.long and x.shape[0] == lengths.shape[0] == y.shape[0] == len(examples)
        ok &= y.ndim == 1 and y.is_floating_point() and y.tolist() == [float(lab) for _, lab in examples]
        ok &= lengths.tolist() == [len(tokenize(t)) for t, _ in examples]
        ok &= bool((x[torch.arange(x.shape[1])[None, :] >= lengths[:, None]] == 0).all())  # pad with 0
        return ok

    def _batch():
        ids = torch.tensor([[2, 3, 4, 5, 6, 7], [8, 9, 10, 0, 0, 0]])
        return ids, torch.tensor([6, 3])

    def reads_its_input(out) -> bool:  # a constant output is not a model of the review
        if out[0].item() == out[1].item():
            print("   the two reviews got the same logit: the model must read the ids")
            return False
        return True

    def check_shape(make_model) -> bool:
        torch.manual_seed(0)
        model = make_model(20).eval()
        with torch.no_grad():
            out = model(*_batch())
        if out.shape != (2,):
            print(f"   one logit per review means shape (2,) for 2 reviews; got {tuple(out.shape)}")
            return False
        return reads_its_input(out)

    def check_padding(make_model) -> bool:
        torch.manual_seed(0)
        model = make_model(20).eval()
        with torch.no_grad():
            alone = model(torch.tensor([[8, 9, 10]]), torch.tensor([3]))
            padded = model(*_batch())
        gap = (alone.reshape(-1)[0] - padded.reshape(-1)[1]).abs().item()
        print(f"   logit alone vs in a padded batch: |difference| = {gap:.2e}")
        return gap <= 1e-5 and reads_its_input(padded.reshape(-1))

    def check_loss(loss_fn) -> bool:
        logits = torch.tensor([2.5, -1.0, 0.3, -4.0])   # raw scores, not probabilities
        target = torch.tensor([1.0, 0.0, 0.0, 1.0])
        got = float(loss_fn(logits, target))
        want = float(F.binary_cross_entropy_with_logits(logits, target))
        return abs(got - want) <= 1e-6

    def article_padding_word() -> str:
        word_index = {w: i for i, w in enumerate(ARTICLE_WORDS)}
        return {i: w for w, i in word_index.items()}[0]

    return {
        "5.1": Exercise("5.1", "Write build_vocab(texts) -> dict word -> id with '<pad>' = 0, '<unk>' = 1 and "
                        "every training word at 2 or more.", check_fn=check_vocab,
                        hint="reserve the two special ids before any word gets one, then number each new word with the next "
                             "free id",
                        explain="0 is what padding fills with, so no real word may have it."),
        "5.2": Exercise("5.2", "Write to_ids(vocab, text) -> list of ids, an unseen word giving '<unk>' (1) "
                        "instead of a KeyError.", check_fn=check_ids,
                        hint="look each word up in a way that falls back to a default instead of raising KeyError",
                        explain="The article's word_index[word] raises KeyError on the first new word."),
        "5.3": Exercise("5.3", "Write make_xy(examples) -> (x, lengths, y): x (N, T) long padded with 0 on the "
                        "right, lengths (N,), y (N,) float labels.", check_fn=check_xy,
                        hint="one row per review (not one row for the whole vocabulary), as long as the longest review; "
                             "the loss wants float targets",
                        explain="The article had x of shape (1, 6) against 6 labels."),
        "5.4": Exercise("5.4", "Write make_model(vocab_size) -> a model whose forward(ids, lengths) returns one "
                        "logit per review: shape (B,).", check_fn=check_shape,
                        hint="read the LSTM's final hidden state of each direction, not its output at every token; one "
                             "linear unit on top gives one number per review",
                        explain="The article's Dense(1) on return_sequences=True gave (B, 6, 1), one per token."),
        "5.5": Exercise("5.5", "Make the model's logit for a review the same alone and inside a padded batch.",
                        check_fn=check_padding,
                        hint="the LSTM must stop at each review's true length: give it a packed sequence built from "
                             "`lengths` (torch.nn.utils.rnn)",
                        explain="Packing stops each direction at the review's true length."),
        "5.6": Exercise("5.6", "Which loss takes the model's raw logits (B,) and float targets (B,)? Give the "
                        "function or module.", check_fn=check_loss,
                        hint="the model has no sigmoid, and nn.BCELoss expects probabilities: which loss applies the "
                             "sigmoid itself?",
                        explain="BCEWithLogitsLoss = sigmoid + binary cross-entropy, computed stably."),
        "5.7": Exercise("5.7", "How many parameters does the article's Keras model have (vocab_size 7, "
                        "embedding 16, LSTM 32 units each way, Dense(1))?", expected=article_parameter_count,
                        hint="count layer by layer: the embedding table; in each LSTM direction 4 gates, each with input "
                             "weights, recurrent weights and (in Keras) one bias per unit; the dense unit reads both "
                             "directions",
                        explain="A few thousand random weights: nothing in the article is pretrained."),
        "5.8": Exercise("5.8", "pad_sequences fills with 0. In the article's word_index, which word has id 0, "
                        "i.e. what does the model read the padding as?", expected=article_padding_word,
                        hint="where does enumerate start counting?",
                        explain="So the test input [0, 0, 0, 1, 3, 2] reads 'hello hello hello world is this'."),
    }
