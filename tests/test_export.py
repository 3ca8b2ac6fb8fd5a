"""Export: the ONNX graph run by onnxruntime gives PyTorch's logits (both exporters, any batch and length);
dynamic int8 quantises exactly the encoder's Linear layers, so its size follows from the parameter counts;
the verdicts follow the numbers."""
import pytest
import torch

from labkit import export
from labkit.data.reviews import make_reviews
from labkit.nn import SequenceClassifier
from labkit.pipeline import TextClassifier
from labkit.transfer import Encoders

LABELS = ["negative", "positive"]


@pytest.fixture(scope="module")
def encoders():
    return Encoders("all-MiniLM-L6-v2", quiet=True)


@pytest.fixture(scope="module")
def model(encoders):
    torch.manual_seed(0)
    return SequenceClassifier(encoders.encoder("pretrained"), n_classes=2).eval()


@pytest.fixture(scope="module")
def texts():
    return make_reviews(seed=0, n_test=24).texts("test")


@pytest.mark.parametrize("exporter", export.EXPORTERS)
def test_onnx_gives_pytorchs_logits(tmp_path, encoders, model, texts, exporter):
    path = export.to_onnx(model, encoders.tokenizer, tmp_path / "clf.onnx", example_texts=texts[:3],
                          exporter=exporter)
    assert [p.name for p in tmp_path.iterdir()] == ["clf.onnx"]          # weights inside: one file
    onnx_clf = export.OnnxTextClassifier(path, encoders.tokenizer, LABELS, 48, batch_size=7)
    torch_clf = TextClassifier(model, encoders.tokenizer, LABELS, 48, batch_size=7)
    mixed = texts + ["ok", "a much longer review than any the exporter saw, " * 3]   # other batch sizes, lengths
    a, b = torch_clf.predict_logits(mixed), onnx_clf.predict_logits(mixed)
    assert a.shape == b.shape == (len(mixed), 2)
    assert float((a - b).abs().max()) <= 1e-4
    assert model.training is False


def test_onnx_bad_input(tmp_path, encoders, model):
    with pytest.raises(ValueError, match="example_texts"):
        export.to_onnx(model, encoders.tokenizer, tmp_path / "x.onnx", example_texts=["one text"])
    with pytest.raises(ValueError, match="exporter"):
        export.to_onnx(model, encoders.tokenizer, tmp_path / "x.onnx", example_texts=["a", "b"], exporter="tf")
    with pytest.raises(FileNotFoundError, match="to_onnx"):
        export.OnnxTextClassifier(tmp_path / "missing.onnx", encoders.tokenizer, LABELS, 48)


def test_int8_quantises_the_encoders_linear_layers(encoders, model, texts):
    q = export.quantize_int8(model)
    dyn = torch.ao.nn.quantized.dynamic.Linear
    enc_linears = [m for m in model.encoder.modules() if isinstance(m, torch.nn.Linear)]
    assert sum(isinstance(m, dyn) for m in q.encoder.modules()) == len(enc_linears) > 0
    assert type(q.head) is torch.nn.Linear and not any(isinstance(m, torch.nn.Linear) and not isinstance(m, dyn)
                                                       for m in q.encoder.modules())
    assert all(type(m) is torch.nn.Linear for m in model.encoder.modules() if isinstance(m, torch.nn.Linear))
    kinds = export.float_layers(q)
    assert kinds["Linear"] == model.head.weight.numel() + model.head.bias.numel()
    assert set(kinds) == {"Embedding", "LayerNorm", "Linear"}
    # the size follows from the counts: int8 weights (1 byte), everything else float32 (4 bytes)
    weights_int8 = sum(m.weight.numel() for m in enc_linears)
    total = sum(p.numel() for p in model.parameters())
    predicted = 4 * (total - weights_int8) + weights_int8
    assert export.serialized_size(q) == pytest.approx(predicted, rel=0.03)
    assert export.serialized_size(model) == pytest.approx(4 * total, rel=0.03)
    # close to the float model, not identical
    a = TextClassifier(model, encoders.tokenizer, LABELS, 48).predict_logits(texts)
    b = TextClassifier(q, encoders.tokenizer, LABELS, 48).predict_logits(texts)
    assert 0 < float((a - b).abs().max()) < 0.5
    enc = encoders.tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():                     # the sentence vectors the head reads: int8 keeps their direction
        fa = model.features(enc["input_ids"], enc["attention_mask"])
        fb = q.features(enc["input_ids"], enc["attention_mask"])
    assert float(torch.nn.functional.cosine_similarity(fa, fb).min()) > 0.95
    with pytest.raises(TypeError, match="encoder"):
        export.quantize_int8(torch.nn.Linear(2, 2))


def test_timing_and_ratios():
    seconds = {"slow": [2.0, 4.0, 3.0], "fast": [1.0, 1.0, 2.0]}
    assert export.ratio_range(seconds, "slow", "fast") == (1.5, 2.0, 4.0)
    calls = []
    out = export.time_interleaved({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, repeats=2)
    assert calls == ["a", "b"] * 3 and all(len(v) == 2 and min(v) >= 0 for v in out.values())
    with pytest.raises(ValueError, match="repeats"):
        export.time_interleaved({"a": lambda: None}, repeats=0)


def test_verdicts_follow_the_numbers():
    v = export.onnx_verdict(3e-7, (1.1, 1.2, 1.3))
    assert "match" in v and "faster in every round (1.20x" in v
    v = export.onnx_verdict(2e-3, (0.7, 0.8, 0.9))
    assert "DIFFER" in v and "slower in every round" in v
    assert "neither clearly faster nor slower" in export.onnx_verdict(0.0, (0.9, 1.0, 1.2))
    assert "faster in every round (1.11x" in export.onnx_verdict(0.0, (1.03, 1.11, 1.19))
    v = export.int8_verdict(1.55, (2.0, 2.3, 2.5), 0.4)
    assert "1.55x smaller (target >= 1.5x: met)" in v and "0.4 accuracy points lost (target <= 1 lost: met)" in v
    v = export.int8_verdict(1.2, (2.0, 2.3, 2.5), 3.0)
    assert "NOT met" in v.split(";")[0] and "NOT met" in v.split(";")[1]
    assert "gained" in export.int8_verdict(1.6, (1, 1, 1), -0.8)
    with pytest.raises(ValueError, match="size_ratio"):
        export.int8_verdict(0, (1, 1, 1), 0)
