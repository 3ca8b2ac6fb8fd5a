"""Integrated Gradients from scratch against captum (plain inputs and token embeddings) to 1e-4, completeness,
attention read beside it, the linear probe the chapter explains, and the verdict wording."""
import pytest
import torch
from captum.attr import IntegratedGradients, LayerIntegratedGradients
from captum.attr._utils.approximation_methods import approximation_parameters
from torch import nn

from labkit import attribution as A
from labkit.nn import BertEncoder, SequenceClassifier, TransformerConfig
from labkit.probe import fit_probe, probe_accuracy
from labkit.transfer import BookEncoder


class WordTokenizer:
    """A tiny callable tokenizer with the Hugging Face interface the probe and the attention maps use."""
    vocab = ["[PAD]", "[CLS]", "[SEP]", "good", "bad", "film", "the", "was", "very"]
    pad_token_id = 0

    def __call__(self, texts, padding=True, truncation=True, max_length=32, return_tensors="pt"):
        single = isinstance(texts, str)
        rows = [[1] + [self.vocab.index(w) for w in t.split()] + [2] for t in ([texts] if single else texts)]
        width = max(map(len, rows))
        ids = torch.tensor([r + [0] * (width - len(r)) for r in rows])
        return {"input_ids": ids, "attention_mask": (ids != 0).long()}

    def convert_ids_to_tokens(self, ids):
        return [self.vocab[int(i)] for i in ids]


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    cfg = TransformerConfig(vocab_size=9, max_len=16, d_model=16, n_heads=2, n_layers=2, dropout=0.0)
    model = SequenceClassifier(BookEncoder(BertEncoder(cfg)), n_classes=2, dropout=0.0).eval()
    return model, WordTokenizer()


@pytest.mark.parametrize("method", A.METHODS)
def test_path_rule_is_captums(method):
    alphas, weights = A.path_rule(20, method)
    steps, alpha_fn = approximation_parameters(method)
    torch.testing.assert_close(alphas, torch.tensor(alpha_fn(20), dtype=torch.float32))
    torch.testing.assert_close(weights, torch.tensor(steps(20), dtype=torch.float32))
    assert float(weights.sum()) == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("method", A.METHODS)
def test_integrated_gradients_match_captum_on_an_mlp(method):
    torch.manual_seed(1)
    net = nn.Sequential(nn.Linear(6, 10), nn.Tanh(), nn.Linear(10, 3))
    x, base = torch.randn(6), torch.zeros(6)
    mine = A.integrated_gradients(lambda b: net(b)[:, 2], x, base, n_steps=40, method=method)
    ref = IntegratedGradients(net).attribute(x[None], baselines=base[None], target=2, n_steps=40, method=method)[0]
    assert float((mine - ref).abs().max()) <= 1e-4
    gap = A.completeness_gap(mine, net(x[None])[0, 2].item(), net(base[None])[0, 2].item())
    assert abs(gap) < 1e-3


def test_integrated_gradients_of_a_linear_function_are_exact():
    w = torch.tensor([1.0, -2.0, 0.5])
    x, base = torch.tensor([2.0, 1.0, 4.0]), torch.tensor([1.0, 0.0, 0.0])
    torch.testing.assert_close(A.integrated_gradients(lambda b: b @ w, x, base, n_steps=2), (x - base) * w)
    with pytest.raises(ValueError, match="baseline must have the shape"):
        A.integrated_gradients(lambda b: b @ w, x, base[:2])
    with pytest.raises(ValueError, match="one number per input"):
        A.integrated_gradients(lambda b: b, x, base, n_steps=4)


@pytest.mark.parametrize("method", A.METHODS)
def test_token_attributions_match_captums_layer_integrated_gradients(tiny, method):
    model, tok = tiny
    enc = tok("the film was very good")
    ids, mask = enc["input_ids"], enc["attention_mask"]
    base = ids.clone()
    base[0, 1:-1] = tok.pad_token_id
    emb = model.encoder.bert.emb.tok
    mine = A.token_attributions(model, emb, ids, mask, 1, base, n_steps=30, method=method)
    lig = LayerIntegratedGradients(lambda i, m: model(i, m), emb)
    ref = lig.attribute(ids, baselines=base, additional_forward_args=(mask,), target=1, n_steps=30, method=method)
    assert float((mine["full"] - ref[0]).abs().max()) <= 1e-4
    torch.testing.assert_close(mine["tokens"], mine["full"].sum(-1))
    assert mine["tokens"][0] == 0 and mine["tokens"][-1] == 0          # [CLS] and [SEP] equal their baseline
    with torch.no_grad():
        assert mine["f_x"] == pytest.approx(float(model(ids, mask)[0, 1]), abs=1e-5)
        assert mine["f_baseline"] == pytest.approx(float(model(base, mask)[0, 1]), abs=1e-5)
    assert abs(mine["gap"]) < 0.05 * abs(mine["f_x"] - mine["f_baseline"]) + 1e-4
    with pytest.raises(ValueError, match=r"\(1, T\)"):
        A.token_attributions(model, emb, ids.repeat(2, 1), mask.repeat(2, 1), 1, base.repeat(2, 1))


def test_attention_received_sums_to_one_and_agreement_reads_rankings(tiny):
    model, tok = tiny
    tokens, att = A.attention_received(model.encoder.bert, tok, "the film was good")
    assert tokens == ["[CLS]", "the", "film", "was", "good", "[SEP]"]
    assert float(att.sum()) == pytest.approx(1.0, abs=1e-5)
    same = A.agreement(torch.tensor([0.5, 0.1, 0.2, 0.3, 0.4, 0.9]), torch.tensor([0.0, -1.0, 2.0, 3.0, 4.0, 0.0]),
                       tokens)
    assert same["kendall tau"] == pytest.approx(1.0) and not same["top tokens differ"] and same["top by IG"] == "good"
    flipped = A.agreement(torch.tensor([0.5, 0.4, 0.3, 0.2, 0.1, 0.9]), torch.tensor([0.0, 1.0, 2.0, -3.0, 4.0, 0.0]),
                          tokens)
    assert flipped["kendall tau"] == pytest.approx(-1.0) and flipped["top tokens differ"]
    assert flipped["top by attention"] == "the"
    with pytest.raises(ValueError, match="one entry per token"):
        A.agreement(att[:3], att, tokens)


def test_merge_subwords_sums_the_pieces_of_a_word():
    words, v = A.merge_subwords(["[CLS]", "fl", "##im", "##sy", "zip", "[SEP]"], torch.tensor([1.0, 2, 3, 4, 5, 6]))
    assert words == ["[CLS]", "flimsy", "zip", "[SEP]"] and v.tolist() == [1.0, 9.0, 5.0, 6.0]
    with pytest.raises(ValueError, match="same length"):
        A.merge_subwords(["a"], torch.ones(2))


def test_the_probe_fits_its_head_and_leaves_the_encoder_alone(tiny):
    model, tok = tiny
    examples = [("the film was good", 1), ("the film was bad", 0), ("very good", 1), ("very bad", 0)] * 3
    before = {k: v.clone() for k, v in model.encoder.state_dict().items()}
    clf, train_acc = fit_probe(model.encoder, tok, examples, steps=200, lr=0.05)
    assert train_acc == 1.0 and probe_accuracy(clf, tok, examples) == 1.0
    assert all(torch.equal(before[k], v) for k, v in model.encoder.state_dict().items())
    assert not any(p.requires_grad for p in clf.encoder.parameters())
    with pytest.raises(ValueError, match="examples is empty"):
        fit_probe(model.encoder, tok, [])


def test_verdicts_follow_the_numbers():
    assert "account for the output" in A.completeness_verdict(0.001, 2.0, -1.0)
    assert "MORE than 5% off" in A.completeness_verdict(0.5, 2.0, -1.0)
    assert "the same attributions" in A.parity_verdict(3e-7)
    assert "DIFFER" in A.parity_verdict(2e-3)
    rows = [{"kendall tau": 0.1, "top tokens differ": True}, {"kendall tau": -0.2, "top tokens differ": True},
            {"kendall tau": 0.2, "top tokens differ": False}]
    weak = A.agreement_verdict(rows)
    assert "median Kendall τ between attention and |IG| +0.10 (weak" in weak and "differs in 2 of 3" in weak
    assert "not a stand-in" in weak
    strong = A.agreement_verdict([{"kendall tau": 0.8, "top tokens differ": False}] * 3)
    assert "strong agreement" in strong and "mostly points at the tokens IG credits" in strong
