"""Lab 5 exercises: fix the article's project, one defect at a time.

Most answers are code: the learner writes a function or a model, and the check
*runs* it on review texts and measures what the article got wrong (padding read
as a word, a KeyError on an unseen word, one output per token, a sigmoid fed to
the wrong loss). A check never raises: :class:`~labkit.exercises.Exercise` prints
an exception in the learner's code and counts it as "not yet".

What each check refuses (``tests/test_bilstm.py`` tries every one):

* 5.1 a vocabulary that gives a word id 0 or 1, that leaves a training word out,
  or that holds words the texts do not have (built from other data: a leak);
* 5.2 a ``KeyError`` on an unseen word, an unknown word mapped to the padding id,
  an answer that ignores the vocabulary or the text;
* 5.3 one row for the whole vocabulary, padding on the left (Keras' default),
  integer labels, ids that do not follow the words;
* 5.4 / 5.5 one output per token, a model without a bidirectional ``nn.LSTM``
  (a mean of embeddings; a one-way LSTM), a logit that ignores one direction,
  the review or the vocabulary size; 5.5 also a logit that padding changes;
* 5.6 ``BCELoss`` on ``sigmoid(z)`` and the textbook formula: both match on
  moderate logits, and both fail at |z| of 30 to 200, where ``sigmoid`` rounds
  to exactly 0 or 1 (``BCELoss`` clamps the log at -100, so its loss stops at
  100 and its gradient is 0 instead of (sigmoid(z) - y) / n; the unclamped
  formula gives inf and nan);
* 5.7 / 5.8 the usual miscounts and misreadings.
"""
from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import nn

from ..data.reviews import Reviews
from ..data.vocab import tokenize
from ..exercises import Exercise

__all__ = ["ARTICLE_WORDS", "article_parameter_count", "extreme_logits", "bidirectional_lstms", "exercises"]

ARTICLE_WORDS = ["hello", "world", "this", "is", "a", "test"]
CHECK_VOCAB_SIZE = 37   # the vocabulary size 5.4 and 5.5 build the model with (the ids below reach 36)


def article_parameter_count(vocab_size: int = 7, embed_dim: int = 16, units: int = 32) -> int:
    """Parameters of the article's Keras model: Embedding + Bidirectional(LSTM) + Dense(1).

    A Keras LSTM has one bias per gate (4·units); PyTorch's ``nn.LSTM`` has two
    (``bias_ih`` and ``bias_hh``), so the same layer counts 2·4·units more there.
    """
    embedding = vocab_size * embed_dim
    lstm_one_direction = 4 * (units * (embed_dim + units) + units)
    dense = 2 * units + 1
    return embedding + 2 * lstm_one_direction + dense


def extreme_logits() -> tuple[torch.Tensor, torch.Tensor]:
    """Logits where ``sigmoid`` saturates in float32: it returns exactly 1.0 for z >= 17 and exactly 0.0 for
    z <= -104. Each is paired with the *wrong* label, so the true loss is |z| and the gradient (sigmoid(z) - y)/n."""
    return torch.tensor([100.0, -200.0, 30.0, -150.0]), torch.tensor([0.0, 1.0, 0.0, 1.0])


def bidirectional_lstms(model: nn.Module) -> list[nn.LSTM]:
    """The ``nn.LSTM`` modules of ``model`` that read in both directions."""
    return [m for m in model.modules() if isinstance(m, nn.LSTM) and m.bidirectional]


def _has_recurrent_encoder(model: nn.Module, ids: torch.Tensor, lengths: torch.Tensor) -> bool:
    """Whether ``model`` has a bidirectional ``nn.LSTM`` that its forward pass calls; prints why not."""
    lstms = [m for m in model.modules() if isinstance(m, nn.LSTM)]
    if not lstms:
        print("   your model has no nn.LSTM: the exercise asks for a bidirectional LSTM encoder "
              "(an average of word vectors, for one, ignores the order of the words)")
        return False
    both = bidirectional_lstms(model)
    if not both:
        print("   your nn.LSTM reads in one direction only: the exercise asks for a bidirectional one")
        return False
    called = []
    hooks = [m.register_forward_hook(lambda *_: called.append(True)) for m in both]
    try:
        with torch.no_grad():
            model(ids, lengths)
    finally:
        for h in hooks:
            h.remove()
    if not called:
        print("   your bidirectional nn.LSTM is never called in forward: the logit must come from it")
        return False
    return True


def _uses_both_directions(model: nn.Module, ids: torch.Tensor, lengths: torch.Tensor) -> bool:
    """Silence one direction of every bidirectional LSTM (all its weights 0, so its state stays 0):
    the logits must change each time, else the model ignores that direction. Prints which."""
    with torch.no_grad():
        base = model(ids, lengths).reshape(-1)
        for direction, suffix in (("forward", ""), ("backward", "_reverse")):
            silenced = copy.deepcopy(model)
            for lstm in bidirectional_lstms(silenced):
                for name, p in lstm.named_parameters():
                    if name.endswith(suffix) and (suffix or not name.endswith("_reverse")):
                        p.zero_()
            if torch.allclose(silenced(ids, lengths).reshape(-1), base, atol=1e-7, rtol=0):
                print(f"   the logits do not change when the LSTM's {direction} direction is silenced: "
                      "use the final state of each direction")
                return False
    return True


def exercises(data: Reviews) -> dict[str, Exercise]:
    train_texts = data.texts("train")[:40]
    train_words = {w for t in train_texts for w in tokenize(t)}
    with_unseen = [t for t in data.texts("test") if set(tokenize(t)) - train_words][:2]
    if len(with_unseen) < 2:
        raise ValueError("the test split needs at least 2 reviews with words the training texts lack")

    def check_vocab(build_vocab) -> bool:
        vocab = build_vocab(train_texts)
        if not isinstance(vocab, dict):
            print(f"   build_vocab must return a dict word -> id; got {type(vocab).__name__}")
            return False
        if vocab.get("<pad>") != 0 or vocab.get("<unk>") != 1:
            print(f"   '<pad>' must be 0 and '<unk>' 1; got {vocab.get('<pad>')!r} and {vocab.get('<unk>')!r}")
            return False
        missing = train_words - set(vocab)
        if missing:
            print(f"   {len(missing)} training words have no id, e.g. {sorted(missing)[:3]}")
            return False
        extra = set(vocab) - train_words - {"<pad>", "<unk>"}
        if extra:
            print(f"   {len(extra)} entries are not words of the texts, e.g. {sorted(extra)[:3]}: build it from the "
                  "texts you are given (a vocabulary from the test split leaks it into training)")
            return False
        if len(set(vocab.values())) != len(vocab) or not all(vocab[w] >= 2 for w in train_words):
            print("   every word needs its own id of 2 or more")
            return False
        return True

    def check_ids(to_ids) -> bool:
        vocab = {"<pad>": 0, "<unk>": 1, **{w: i + 2 for i, w in enumerate(sorted(train_words))}}
        for text in with_unseen + train_texts[:1]:
            got = list(to_ids(vocab, text))
            want = [vocab.get(w, 1) for w in tokenize(text)]
            if got != want:
                print(f"   for {text!r}: expected {len(want)} ids with 1 for each unseen word; got {got[:8]}"
                      f"{' ...' if len(got) > 8 else ''}")
                return False
        return True

    def check_xy(make_xy) -> bool:
        examples = data.train[:10]
        x, lengths, y = make_xy(examples)
        words = [tokenize(t) for t, _ in examples]
        if not (isinstance(x, torch.Tensor) and x.ndim == 2 and x.dtype == torch.long and x.shape[0] == len(examples)):
            print(f"   x must be a torch.long tensor of shape ({len(examples)}, T), one row per review")
            return False
        if not (isinstance(y, torch.Tensor) and y.ndim == 1 and y.is_floating_point()
                and y.tolist() == [float(lab) for _, lab in examples]):
            print(f"   y must be the {len(examples)} labels as a float tensor of shape ({len(examples)},)")
            return False
        if torch.as_tensor(lengths).tolist() != [len(w) for w in words] or x.shape[1] != max(len(w) for w in words):
            print("   lengths must hold each review's number of words, and T must be the longest length")
            return False
        ids_of: dict[str, int] = {}
        for row, ws in zip(x.tolist(), words):
            if any(i != 0 for i in row[len(ws):]):
                print("   the padding (0) must come after each review's words, on the right")
                return False
            for w, i in zip(ws, row):
                if ids_of.setdefault(w, i) != i or i < 2:
                    print("   x must hold each word's id (2 or more), the same id wherever the word occurs")
                    return False
        if len(set(ids_of.values())) != len(ids_of):
            print("   two different words got the same id")
            return False
        return True

    def _batch():
        """Three reviews padded to 8 ids; the second and third are 3 and 5 words long."""
        ids = torch.tensor([[2, 3, 4, 5, 6, 7, 30, 31], [8, 9, 36, 0, 0, 0, 0, 0], [12, 13, 14, 15, 16, 0, 0, 0]])
        return ids, torch.tensor([8, 3, 5])

    def reads_its_input(out) -> bool:  # a constant output is not a model of the review
        if len({round(v, 6) for v in out.tolist()}) < len(out):
            print("   two reviews got the same logit: the model must read the ids")
            return False
        return True

    def _model(make_model):
        torch.manual_seed(0)
        return make_model(CHECK_VOCAB_SIZE).eval()

    def check_shape(make_model) -> bool:
        model = _model(make_model)
        ids, lengths = _batch()
        with torch.no_grad():
            out = model(ids, lengths)
        if not isinstance(out, torch.Tensor) or out.shape != (3,):
            print(f"   one logit per review means shape (3,) for 3 reviews; got "
                  f"{tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__}")
            return False
        return (reads_its_input(out) and _has_recurrent_encoder(model, ids, lengths)
                and _uses_both_directions(model, ids, lengths))

    def check_padding(make_model) -> bool:
        model = _model(make_model)
        ids, lengths = _batch()
        if not _has_recurrent_encoder(model, ids, lengths):
            return False
        with torch.no_grad():
            padded = model(ids, lengths).reshape(-1)
            alone = [model(ids[i:i + 1, :n], lengths[i:i + 1]).reshape(-1)[0] for i, n in ((1, 3), (2, 5))]
        gap = max((alone[0] - padded[1]).abs().item(), (alone[1] - padded[2]).abs().item())
        print(f"   logit alone vs in a padded batch: largest |difference| = {gap:.2e}")
        return gap <= 1e-5 and reads_its_input(padded)

    def check_loss(loss_fn) -> bool:
        for what, (logits, target) in (
                ("moderate logits", (torch.tensor([2.5, -1.0, 0.3, -4.0]), torch.tensor([1.0, 0.0, 0.0, 1.0]))),
                ("logits from 30 to 200 in size, where sigmoid rounds to exactly 0 or 1", extreme_logits())):
            z = logits.clone().requires_grad_(True)
            loss = loss_fn(z, target)
            want_z = logits.clone().requires_grad_(True)
            want = F.binary_cross_entropy_with_logits(want_z, target)
            want.backward()
            if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
                print("   the loss must return one number (a 0-d tensor): the mean over the batch")
                return False
            got = loss.detach().item()
            if not math.isclose(got, want.item(), rel_tol=1e-5, abs_tol=1e-6):
                print(f"   on {what}: loss {got:.6g}, but the binary cross-entropy of these logits is "
                      f"{want.item():.6g}")
                return False
            if not loss.requires_grad:
                print("   the loss carries no gradient back to the logits")
                return False
            loss.backward()
            if z.grad is None or not torch.allclose(z.grad, want_z.grad, atol=1e-6, rtol=1e-4):
                shown = None if z.grad is None else [round(g, 4) for g in z.grad.tolist()]
                print(f"   on {what}: the loss is right but its gradient is {shown}; it should be (sigmoid(z) - y) / n "
                      f"= {[round(g, 4) for g in want_z.grad.tolist()]}")
                return False
        return True

    def article_padding_word() -> str:
        word_index = {w: i for i, w in enumerate(ARTICLE_WORDS)}
        return {i: w for w, i in word_index.items()}[0]

    return {
        "5.1": Exercise("5.1", "Write build_vocab(texts) -> dict word -> id with '<pad>' = 0, '<unk>' = 1 and "
                        "every word of the texts at 2 or more.", check_fn=check_vocab,
                        hint="reserve the two special ids before any word gets one, then number each new word with the next "
                             "free id; use only the texts the function is given",
                        explain="0 is what padding fills with, so no real word may have it."),
        "5.2": Exercise("5.2", "Write to_ids(vocab, text) -> list of ids, an unseen word giving '<unk>' (1) "
                        "instead of a KeyError.", check_fn=check_ids,
                        hint="look each word up in a way that falls back to a default instead of raising KeyError; the "
                             "default is the unknown-word id, not the padding id",
                        explain="The article's word_index[word] raises KeyError on the first new word."),
        "5.3": Exercise("5.3", "Write make_xy(examples) -> (x, lengths, y): x (N, T) long padded with 0 on the "
                        "right, lengths (N,), y (N,) float labels.", check_fn=check_xy,
                        hint="one row per review (not one row for the whole vocabulary), as long as the longest review, "
                             "the words first and the padding after them; the loss wants float targets",
                        explain="The article had x of shape (1, 6) against 6 labels."),
        "5.4": Exercise("5.4", "Write make_model(vocab_size) -> a model (embedding, bidirectional nn.LSTM, linear) "
                        "whose forward(ids, lengths) returns one logit per review: shape (B,).", check_fn=check_shape,
                        hint="read the LSTM's final hidden state of each direction, not its output at every token; one "
                             "linear unit on top of both gives one number per review",
                        explain="The article's Dense(1) on return_sequences=True gave (B, 6, 1), one per token."),
        "5.5": Exercise("5.5", "Make the model's logit for a review the same alone and inside a padded batch.",
                        check_fn=check_padding,
                        hint="the LSTM must stop at each review's true length: give it a packed sequence built from "
                             "`lengths` (torch.nn.utils.rnn)",
                        explain="Packing stops each direction at the review's true length."),
        "5.6": Exercise("5.6", "Which loss takes the model's raw logits (B,) and float targets (B,)? Give the "
                        "function or module.", check_fn=check_loss,
                        hint="the model has no sigmoid; a loss that applies one itself and then takes a log loses "
                             "everything once sigmoid rounds to exactly 0 or 1: which loss computes both in one step?",
                        explain="BCEWithLogitsLoss = sigmoid + binary cross-entropy, computed from the logit (log-sum-exp), "
                                "so its value and gradient stay right for any logit."),
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
