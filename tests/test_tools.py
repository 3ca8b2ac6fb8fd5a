"""labkit.fit, Hugging Face Trainer and an accelerate loop given one Recipe train the same model (same order,
schedule, clipping; dropout off); peft's LoRA and the book's train the same given the same initial matrices.
A tiny random BERT keeps the test fast: the tools do not depend on the encoder."""
import pytest
import torch
from torch.utils.data import TensorDataset
from transformers import BertConfig, BertModel

from labkit import tools
from labkit.nn import SequenceClassifier
from labkit.train import Batches, fit


def data(n=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, 60, (n, 10), generator=g)
    mask = torch.ones_like(ids)
    mask[: n // 2, 7:] = 0
    return TensorDataset(ids, mask, (ids[:, 0] > 32).long())


def new_model():
    torch.manual_seed(0)
    enc = BertModel(BertConfig(vocab_size=64, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                               intermediate_size=64, max_position_embeddings=16))
    return SequenceClassifier(enc, n_classes=2)


RECIPE = tools.Recipe(lr=1e-3, epochs=2, batch_size=8)


@pytest.fixture(scope="module")
def runs():
    train, test = data(), data(24, seed=1)
    splits = {"train": train, "test": test}
    return [fn(new_model, train, RECIPE, splits) for fn in
            (tools.train_with_labkit, tools.train_with_trainer, tools.train_with_accelerate)]


def test_the_three_tools_train_the_same_model(runs):
    table = tools.results_table(runs)
    assert list(table.index) == list(tools.TOOLS)
    assert (table["steps"] == RECIPE.steps(40)).all()
    assert table["max |weight - labkit.fit's|"].max() <= 1e-5
    assert table["max |loss - labkit.fit's|"].max() <= 1e-5
    assert table["test accuracy"].nunique() == 1
    assert "the same result" in tools.agreement_verdict(runs)
    start = new_model().state_dict()
    moved = max(float((runs[0].model.state_dict()[k] - start[k]).abs().max()) for k in start)
    assert moved > 1e-3                         # they agree because they trained alike, not because nothing moved


def test_agreement_verdict_follows_the_numbers(runs):
    a, b = runs[0], runs[1]
    off = tools.ToolRun("other", a.model, a.losses, 1.0, {"test": a.accuracy["test"] - 0.05})
    v = tools.agreement_verdict([a, off])
    assert "5.0 points apart" in v and "NOT" in v
    close = tools.ToolRun("other", a.model, a.losses, 1.0, {"test": a.accuracy["test"] - 0.004})
    assert "within 0.4 points" in tools.agreement_verdict([a, close])
    with pytest.raises(ValueError, match="points"):
        tools.agreement_verdict([a, b], points=0)


def test_same_order_is_labkits_order():
    s = tools.SameOrder(40, seed=3)
    b = Batches(data(), 8, seed=3)
    assert list(s) == b.order(0).tolist() and list(s) == b.order(1).tolist()   # each pass: the next epoch
    s.set_epoch(5)
    assert list(s) == b.order(5).tolist() and len(s) == 40


def test_dropout_off_and_recipe_bad_input():
    m = tools.no_dropout(new_model())
    assert all(d.p == 0 for d in m.modules() if isinstance(d, torch.nn.Dropout))
    with pytest.raises(ValueError, match="lr"):
        tools.Recipe(lr=0)
    with pytest.raises(ValueError, match="warmup_fraction"):
        tools.Recipe(warmup_fraction=1.5)


def test_peft_lora_and_the_books_lora_train_the_same():
    theirs = tools.peft_lora(tools.no_dropout(new_model()), r=4, alpha=8)
    ours = tools.labkit_lora(tools.no_dropout(new_model()), r=4, alpha=8)
    assert tools.copy_lora_init(ours, theirs) == 2 * 2          # query and value in 2 layers
    assert tools.trainable(ours) == tools.trainable(theirs)
    kw = dict(epochs=2, batch_size=8, lr=1e-2, seed=1, progress=False)
    h_theirs, h_ours = fit(theirs, data(), **kw), fit(ours, data(), **kw)
    losses = [(a["loss"], b["loss"]) for a, b in zip(h_theirs.steps, h_ours.steps)]
    assert max(abs(a - b) for a, b in losses) <= 1e-5
    from labkit.lora import LoRALinear
    base = theirs.encoder.base_model.model
    for name, m in ours.encoder.named_modules():   # B started at 0: it moved, the same way in both
        if isinstance(m, LoRALinear):
            b_theirs = base.get_submodule(name).lora_B["default"].weight
            assert float(m.lora_B.abs().max()) > 1e-3
            assert float((m.lora_B - b_theirs).abs().max()) <= 1e-5
