"""labkit.metrics against scikit-learn and a hand example; labkit.pipeline save -> reload in a fresh process.

The model is a tiny randomly initialised BERT (width 32, 2 blocks) with the
packaged MiniLM tokenizer, trained for a few steps: enough to have non-trivial
weights, fast enough for a unit test.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import sklearn.metrics as skm
import torch

from labkit import classify, metrics, zoo
from labkit.data.reviews import balanced_subset, make_reviews
from labkit.data.text import encode
from labkit.nn import SequenceClassifier
from labkit.pipeline import TextClassifier, load_pipeline, save_pipeline
from labkit.train import fit

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "labkit" / "data" / "sample_reviews.txt"
LABELS = ["negative", "positive"]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONPATH": str(ROOT)}


# ----------------------------------------------------------------------------- metrics
def test_accuracy_f1_confusion_match_sklearn():
    rng = np.random.default_rng(0)
    for n_classes in (2, 3, 5):
        t, p = rng.integers(0, n_classes, 200), rng.integers(0, n_classes, 200)
        assert metrics.accuracy_score(t, p) == pytest.approx(skm.accuracy_score(t, p))
        np.testing.assert_array_equal(metrics.confusion_matrix(t, p), skm.confusion_matrix(t, p))
        assert metrics.f1_score(t, p, average="macro") == pytest.approx(skm.f1_score(t, p, average="macro"))
    t, p = rng.integers(0, 2, 100), rng.integers(0, 2, 100)
    assert metrics.f1_score(t, p) == pytest.approx(skm.f1_score(t, p))
    assert metrics.f1_score(t, p, pos_label=0) == pytest.approx(skm.f1_score(t, p, pos_label=0))
    # torch tensors are accepted too; a class never predicted nor present scores 0
    assert metrics.f1_score(torch.tensor([0, 0, 1]), torch.tensor([0, 1, 1]), n_classes=3, average="macro") == \
        pytest.approx(skm.f1_score([0, 0, 1], [0, 1, 1], labels=[0, 1, 2], average="macro", zero_division=0))


def test_ece_hand_example():
    probs = [[0.1, 0.9], [0.2, 0.8], [0.6, 0.4], [0.45, 0.55]]
    y = [1, 0, 0, 1]
    cal = metrics.calibration(probs, y, n_bins=5)
    # confidences 0.9, 0.8, 0.6, 0.55 -> bins (0.8,1.0]: {0.9}; (0.6,0.8]: {0.8}; (0.4,0.6]: {0.6, 0.55}
    assert cal.count == [0, 0, 2, 1, 1]
    assert cal.confidence[2] == pytest.approx(0.575) and cal.accuracy[2] == pytest.approx(1.0)
    expected = 2 / 4 * abs(1.0 - 0.575) + 1 / 4 * abs(0.0 - 0.8) + 1 / 4 * abs(1.0 - 0.9)
    assert cal.ece == pytest.approx(expected)
    # one bin: |overall accuracy (3 of 4 right) - mean confidence|
    assert metrics.calibration(probs, y, n_bins=1).ece == pytest.approx(abs(0.75 - (0.9 + 0.8 + 0.6 + 0.55) / 4))


def test_temperature_scaling_recovers_the_temperature_and_keeps_argmax():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(2000, 3, generator=g) * 2
    y = torch.multinomial(z.softmax(-1), 1, generator=g).squeeze(1)    # labels drawn from softmax(z): calibrated
    T = metrics.fit_temperature(3.0 * z, y)                            # logits 3x too confident
    assert T == pytest.approx(3.0, rel=0.1)
    before = metrics.calibration((3.0 * z).softmax(-1), y).ece
    after = metrics.calibration((3.0 * z / T).softmax(-1), y).ece
    assert after < before / 2
    assert torch.equal((3.0 * z / T).argmax(-1), z.argmax(-1))


@pytest.mark.parametrize("call, match", [
    (lambda: metrics.accuracy_score([], []), "y_true"),
    (lambda: metrics.accuracy_score([0, 1], [0]), "same length"),
    (lambda: metrics.f1_score([0, 1], [1, 1], average="micro"), "average"),
    (lambda: metrics.confusion_matrix([0, 3], [0, 1], n_classes=2), "n_classes"),
    (lambda: metrics.calibration([[0.5, 0.5]], [0], n_bins=0), "n_bins"),
    (lambda: metrics.calibration([[0.5, 0.5]], [0, 1]), "same length"),
    (lambda: metrics.calibration([[2.0, -1.0]], [0]), "probs"),
    (lambda: metrics.calibration(np.zeros((0, 2)), []), "probs"),
    (lambda: metrics.fit_temperature(torch.zeros(3, 2), [0, 1]), "same length"),
])
def test_metrics_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# ----------------------------------------------------------------------------- pipeline
@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from transformers import AutoModel, AutoTokenizer, BertConfig
    tok = AutoTokenizer.from_pretrained(str(zoo.packaged_path(zoo.REGISTRY["all-MiniLM-L6-v2"])))
    torch.manual_seed(0)
    encoder = AutoModel.from_config(BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=2,
                                               num_attention_heads=2, intermediate_size=64,
                                               max_position_embeddings=64))
    model = SequenceClassifier(encoder, n_classes=2)
    data = make_reviews(seed=0, n_test=40)
    fit(model, encode(tok, balanced_subset(data.train, 32), max_length=32), epochs=2, batch_size=16, lr=3e-3,
        progress=False)
    folder = save_pipeline(model, tok, tmp_path_factory.mktemp("pipe") / "model", labels=LABELS, max_length=32)
    return model, tok, folder, data.texts("test")


def test_saved_files_and_config(trained):
    _, _, folder, _ = trained
    assert {"model.safetensors", "config.json", "tokenizer.json"} <= {p.name for p in folder.iterdir()}
    config = json.loads((folder / "config.json").read_text())
    assert config["labels"] == LABELS and config["max_length"] == 32 and config["n_classes"] == 2
    assert config["encoder"]["model_type"] == "bert" and config["encoder"]["hidden_size"] == 32
    assert not list(folder.glob("*.bin")) and not list(folder.glob("*.pt")) and not list(folder.glob("*.pkl"))


def test_reload_in_a_fresh_process_gives_identical_predictions(trained, tmp_path):
    model, tok, folder, test_texts = trained
    texts = SAMPLE.read_text().splitlines() + test_texts
    extra = tmp_path / "test_texts.txt"
    extra.write_text("\n".join(test_texts) + "\n")
    r = subprocess.run([sys.executable, "-m", "labkit.classify", str(folder), str(SAMPLE), str(extra), "--json"],
                       capture_output=True, text=True, env=ENV, timeout=120)
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert [row["text"] for row in rows] == texts
    here = TextClassifier(model, tok, LABELS, 32).predict_logits(texts)
    there = torch.tensor([row["logits"] for row in rows], dtype=torch.float32)
    assert torch.equal(here.argmax(-1), there.argmax(-1))
    assert (here.softmax(-1) - torch.tensor([list(row["probs"].values()) for row in rows])).abs().max() <= 1e-6
    assert torch.equal(here, there)         # same weights, same ops, same machine: bitwise equal
    assert len({row["label"] for row in rows}) >= 1 and {row["label"] for row in rows} <= set(LABELS)


def test_cli_plain_output_on_the_sample_file(trained, capsys):
    _, _, folder, _ = trained
    assert classify.main([str(folder), str(SAMPLE)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(SAMPLE.read_text().splitlines())
    for line, text in zip(lines, SAMPLE.read_text().splitlines()):
        label, prob, echoed = line.split("\t")
        assert label in LABELS and 0.5 <= float(prob) <= 1.0 and echoed == text


def test_cli_empty_line_exits_non_zero_naming_the_line(trained):
    _, _, folder, _ = trained
    r = subprocess.run([sys.executable, "-m", "labkit.classify", str(folder), "-"], input="good phone\n\nbad lamp\n",
                       capture_output=True, text=True, env=ENV, timeout=120)
    assert r.returncode != 0 and r.stdout == ""
    assert "<stdin>, line 2: empty line" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_cli_bad_input_in_process(trained, tmp_path, capsys):
    _, _, folder, _ = trained
    bad = tmp_path / "bad.txt"
    bad.write_text("fine\nalso fine\n   \n")
    assert classify.main([str(folder), str(bad)]) == 2
    assert f"{bad}, line 3: empty line" in capsys.readouterr().err
    assert classify.main([str(tmp_path / "nowhere"), "--text", "hi"]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert classify.main([str(folder), "--text", "  "]) == 2
    assert "--text is empty" in capsys.readouterr().err
    assert classify.main([str(folder), str(tmp_path / "missing.txt")]) == 2
    assert "missing.txt" in capsys.readouterr().err
    assert classify.main([str(folder), "--text", "what a superb camera"]) == 0
    assert capsys.readouterr().out.split("\t")[0] in LABELS


def test_predict_api_and_bad_input(trained, tmp_path):
    model, tok, folder, _ = trained
    clf = load_pipeline(folder)
    assert not clf.model.training
    preds = clf.predict(["the zipper broke", "lovely kettle"])
    assert [p.label in LABELS for p in preds] == [True, True]
    assert all(p.probability == max(p.probs.values()) and sum(p.probs.values()) == pytest.approx(1) for p in preds)
    with pytest.raises(ValueError, match=r"texts\[1\] is empty"):
        clf.predict(["fine", "  "])
    with pytest.raises(ValueError, match="texts is empty"):
        clf.predict([])
    with pytest.raises(TypeError, match=r"texts\[0\] must be a string"):
        clf.predict([3])
    with pytest.raises(TypeError, match="not one string"):
        clf.predict("one text")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_pipeline(tmp_path / "nowhere")
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "config.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match="model.safetensors"):
        load_pipeline(tmp_path / "half")
    for name in ("model.safetensors", "tokenizer.json", "tokenizer_config.json"):
        (tmp_path / "half" / name).write_bytes((folder / name).read_bytes())
    (tmp_path / "half" / "config.json").write_text(json.dumps({"model_type": "bert", "hidden_size": 32}))
    with pytest.raises(ValueError, match="not written by labkit"):
        load_pipeline(tmp_path / "half")
    config = json.loads((folder / "config.json").read_text())
    config["encoder"]["num_hidden_layers"] = 1                   # a config that no longer fits the weights
    (tmp_path / "half" / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="does not match"):
        load_pipeline(tmp_path / "half")
    with pytest.raises(ValueError, match="labels"):
        save_pipeline(model, tok, tmp_path / "x", labels=["only one"], max_length=32)
    with pytest.raises(ValueError, match="max_length"):
        save_pipeline(model, tok, tmp_path / "x", labels=LABELS, max_length=0)
    with pytest.raises(ValueError, match=r"max_length must be a whole number from 1 to 64; got 65"):
        save_pipeline(model, tok, tmp_path / "x", labels=LABELS, max_length=65)    # the encoder has 64 positions


def test_shared_tensors_are_stored_once_and_reload(trained, tmp_path):
    import copy

    from safetensors.torch import load_file
    model, tok, _, _ = trained
    tied = copy.deepcopy(model)
    layers = tied.encoder.encoder.layer
    layers[1].attention.self.query.weight = layers[0].attention.self.query.weight   # ALBERT-style sharing
    folder = save_pipeline(tied, tok, tmp_path / "tied", labels=LABELS, max_length=32)
    names = load_file(str(folder / "model.safetensors")).keys()
    assert len(names) == len(tied.state_dict()) - 1
    texts = ["the zipper broke", "lovely kettle"]
    assert torch.equal(load_pipeline(folder).predict_logits(texts),
                       TextClassifier(tied, tok, LABELS, 32).predict_logits(texts))
