"""Damaged and mistaken model folders and inputs, as a user meets them, through ``labkit-classify``.

One table: each case copies a real saved pipeline (a tiny random BERT with the packaged MiniLM tokenizer),
damages one thing, and runs the command-line tool on it. Every case must end with exit status 2, ONE line
on stderr that names the file or field at fault, and nothing on stdout (no prediction from a model that
failed a check). The model cases also go through the API, which must raise ``ModelFolderError``.
Most cases run ``classify.main`` in this process; a few run as real subprocesses.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest
import torch
from safetensors.torch import load_file, save_file

from labkit import classify, zoo
from labkit.nn import SequenceClassifier
from labkit.pipeline import FORMAT, ModelFolderError, load_pipeline, save_pipeline

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
LABELS = ["negative", "positive"]
FILES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json")


def tiny_pipeline(folder: Path, hidden: int, layers: int, seed: int) -> Path:
    from transformers import AutoModel, AutoTokenizer, BertConfig
    tok = AutoTokenizer.from_pretrained(str(zoo.packaged_path(zoo.REGISTRY["all-MiniLM-L6-v2"])))
    torch.manual_seed(seed)
    encoder = AutoModel.from_config(BertConfig(vocab_size=tok.vocab_size, hidden_size=hidden, num_hidden_layers=layers,
                                               num_attention_heads=2, intermediate_size=2 * hidden,
                                               max_position_embeddings=64))
    return save_pipeline(SequenceClassifier(encoder, n_classes=2), tok, folder, labels=LABELS, max_length=32)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    root = tmp_path_factory.mktemp("pristine")
    return tiny_pipeline(root / "model", 32, 2, 0), tiny_pipeline(root / "other", 16, 1, 1)


# ---------------------------------------------------------------- how a case damages its copy
class Folder:
    """A case's model folder: links to the pristine files; a damaged file is replaced, never written through."""

    def __init__(self, path: Path, pristine: Path, other: Path):
        self.path, self.pristine, self.other = path, pristine, other
        path.mkdir()
        for name in FILES:
            (path / name).symlink_to(pristine / name)

    def write(self, name: str, data: bytes | str) -> None:
        target = self.path / name
        if target.is_symlink() or target.is_file():
            target.unlink()
        (target.write_bytes if isinstance(data, bytes) else target.write_text)(data)

    def read(self, name: str) -> bytes:
        return (self.pristine / name).read_bytes()

    def remove(self, name: str) -> None:
        (self.path / name).unlink()

    def config(self, change: Callable[[dict], None]) -> None:
        config = json.loads(self.read("config.json"))
        change(config)
        self.write("config.json", json.dumps(config))

    def tensors(self, change: Callable[[dict], None], metadata: dict | None = None) -> None:
        state = load_file(str(self.pristine / "model.safetensors"))
        change(state)
        tmp = self.path / "tmp.safetensors"
        save_file(state, str(tmp), metadata=metadata or {"format": FORMAT, "aliases": "{}"})
        self.write("model.safetensors", tmp.read_bytes())
        tmp.unlink()


def _set(key, value):
    def change(config):
        config[key] = value
    return change


def _set_in(part, key, value):
    def change(config):
        config[part][key] = value
    return change


def _drop(part, key=None):
    def change(config):
        if key is None:
            del config[part]
        else:
            del config[part][key]
    return change


def _fill(name, value):
    def change(state):
        state[name][0, :3] = value
    return change


@dataclass
class Case:
    id: str
    damage: Callable[[Folder], None] | None = None      # what is wrong with the model folder
    inputs: Callable[[Path], list[str]] | None = None   # the input arguments (default: one good file)
    names: tuple[str, ...] = ()                         # what stderr must name (file, field)
    stdin: bytes | None = None
    api: bool = True                                    # load_pipeline must raise ModelFolderError too
    model_dir: Callable[[Folder], str] | None = field(default=None)


def good_file(tmp: Path) -> list[str]:
    (tmp / "good.txt").write_text("the zipper broke on day two\nlovely kettle, works well\n", encoding="utf-8")
    return [str(tmp / "good.txt")]


def input_file(data: bytes, name: str = "in.txt"):
    def make(tmp: Path) -> list[str]:
        (tmp / name).write_bytes(data)
        return [str(tmp / name)]
    return make


W, C, TJ, TC = "model.safetensors", "config.json", "tokenizer.json", "tokenizer_config.json"

CASES = [
    # ------------------------------------------------------------ the weights file
    Case("weights-truncated", lambda f: f.write(W, f.read(W)[: len(f.read(W)) // 2]), names=(W, "cut short")),
    Case("weights-cut-in-header", lambda f: f.write(W, f.read(W)[:100]), names=(W, "cut short")),
    Case("weights-garbage-bytes", lambda f: f.write(W, bytes(range(256)) * 64), names=(W,)),
    Case("weights-empty-file", lambda f: f.write(W, b""), names=(W, "0 bytes")),
    Case("weights-header-not-json",
         lambda f: f.write(W, (20).to_bytes(8, "little") + b"{not json at all!!!}" + b"\0" * 64), names=(W, "header")),
    Case("weights-trailing-bytes", lambda f: f.write(W, f.read(W) + b"\0" * 100), names=(W, "100 bytes")),
    Case("weights-wrong-shape", lambda f: f.tensors(lambda s: s.update({"head.weight": torch.zeros(3, 32)})),
         names=(W, "'head.weight'", "[3, 32]", "[2, 32]")),
    Case("weights-missing-tensor", lambda f: f.tensors(lambda s: s.pop("head.bias")), names=(W, "'head.bias'")),
    Case("weights-extra-tensor", lambda f: f.tensors(lambda s: s.update({"extra.weight": torch.zeros(2)})),
         names=(W, "'extra.weight'")),
    Case("weights-of-another-model", lambda f: f.write(W, (f.other / W).read_bytes()), names=(W, "another model")),
    Case("weights-not-from-save_pipeline", lambda f: f.tensors(lambda s: None, metadata={"format": "pt"}),
         names=(W, "'format'", "'pt'")),
    Case("weights-integer-tensor",
         lambda f: f.tensors(lambda s: s.update({"head.bias": torch.zeros(2, dtype=torch.int32)})),
         names=(W, "'head.bias'", "I32")),
    Case("weights-nan", lambda f: f.tensors(_fill("head.weight", float("nan"))), names=(W, "NaN", "'head.weight'")),
    Case("weights-inf", lambda f: f.tensors(_fill("encoder.embeddings.word_embeddings.weight", float("inf"))),
         names=(W, "infinite", "word_embeddings")),
    Case("weights-overflow-logits", lambda f: f.tensors(lambda s: s["head.weight"].fill_(3e38)),
         names=("NaN or infinite logits",), api=False),
    Case("weights-missing", lambda f: f.remove(W), names=(W, "lacks")),
    Case("weights-is-a-directory", lambda f: (f.remove(W), (f.path / W).mkdir()), names=(W, "lacks")),
    # ------------------------------------------------------------ config.json
    Case("config-missing", lambda f: f.remove(C), names=(C, "lacks")),
    Case("config-not-json", lambda f: f.write(C, f.read(C)[:200]), names=(C, "not valid JSON")),
    Case("config-not-utf8", lambda f: f.write(C, b'{"format": "\xff\xfe"}'), names=(C, "UTF-8")),
    Case("config-not-an-object", lambda f: f.write(C, "[1, 2, 3]"), names=(C, "JSON object", "list")),
    Case("config-plain-hugging-face", lambda f: f.write(C, json.dumps({"model_type": "bert", "hidden_size": 32})),
         names=(C, "not written by labkit")),
    Case("format_version-unknown-newer", lambda f: f.config(_set("format_version", 2)),
         names=(C, "'format_version'", "upgrade")),
    Case("format_version-zero", lambda f: f.config(_set("format_version", 0)), names=(C, "'format_version'")),
    Case("format_version-string", lambda f: f.config(_set("format_version", "1")), names=(C, "'format_version'")),
    Case("format_version-missing", lambda f: f.config(_drop("format_version")), names=(C, "'format_version'")),
    Case("labels-missing", lambda f: f.config(_drop("labels")), names=(C, "'labels'")),
    Case("labels-a-string", lambda f: f.config(_set("labels", "negative,positive")), names=(C, "'labels'", "str")),
    Case("labels-a-dict", lambda f: f.config(_set("labels", {"0": "negative", "1": "positive"})),
         names=(C, "'labels'", "dict")),
    Case("labels-numbers", lambda f: f.config(_set("labels", [0, 1])), names=(C, "'labels[0]'")),
    Case("labels-empty-name", lambda f: f.config(_set("labels", ["negative", " "])), names=(C, "'labels[1]'")),
    Case("labels-duplicates", lambda f: f.config(_set("labels", ["positive", "positive"])),
         names=(C, "'labels'", "'positive'")),
    Case("labels-one", lambda f: f.config(lambda c: c.update(labels=["positive"], n_classes=1)), names=(C, "'labels'")),
    Case("labels-count-vs-n_classes", lambda f: f.config(_set("labels", ["neg", "neutral", "pos"])),
         names=(C, "'n_classes'", "3 names")),
    Case("labels-count-vs-head", lambda f: f.config(lambda c: c.update(labels=["neg", "neutral", "pos"], n_classes=3)),
         names=(C, "'head.out_features'")),
    Case("max_length-zero", lambda f: f.config(_set("max_length", 0)), names=(C, "'max_length'", ">= 1")),
    Case("max_length-abc", lambda f: f.config(_set("max_length", "abc")), names=(C, "'max_length'", "'abc'")),
    Case("max_length-negative", lambda f: f.config(_set("max_length", -5)), names=(C, "'max_length'")),
    Case("max_length-bool", lambda f: f.config(_set("max_length", True)), names=(C, "'max_length'", "True")),
    Case("max_length-float", lambda f: f.config(_set("max_length", 32.5)), names=(C, "'max_length'")),
    Case("max_length-beyond-positions", lambda f: f.config(_set("max_length", 1000)),
         names=(C, "'max_length'", "max_position_embeddings=64")),
    Case("model_type-missing", lambda f: f.config(_drop("encoder", "model_type")), names=(C, "'encoder.model_type'")),
    Case("model_type-unknown", lambda f: f.config(_set_in("encoder", "model_type", "bertt")),
         names=(C, "'encoder.model_type'", "'bert'")),
    Case("encoder-not-an-object", lambda f: f.config(_set("encoder", "bert")), names=(C, "'encoder'")),
    Case("encoder-hidden_size-abc", lambda f: f.config(_set_in("encoder", "hidden_size", "abc")),
         names=(C, "'encoder'", "hidden_size")),
    Case("encoder-wider-than-head", lambda f: f.config(lambda c: c["encoder"].update(hidden_size=64)),
         names=(C, "'head.in_features'")),
    Case("encoder-fewer-layers", lambda f: f.config(_set_in("encoder", "num_hidden_layers", 1)),
         names=(W, "does not match", C)),
    Case("out_features-missing", lambda f: f.config(_drop("head", "out_features")), names=(C, "'out_features'")),
    Case("out_features-string", lambda f: f.config(_set_in("head", "out_features", "2")),
         names=(C, "'head.out_features'")),
    Case("head-dropout-out-of-range", lambda f: f.config(_set_in("head", "dropout", 1.5)), names=(C, "'head.dropout'")),
    Case("head-pooling-unknown", lambda f: f.config(_set_in("head", "pooling", "cls token")),
         names=(C, "'head.pooling'")),
    Case("n_classes-bool", lambda f: f.config(_set("n_classes", True)), names=(C, "'n_classes'")),
    # ------------------------------------------------------------ the tokenizer files and the folder
    Case("tokenizer-files-missing", lambda f: (f.remove(TJ), f.remove(TC)), names=(TC, "tokenizer")),
    Case("tokenizer-json-corrupt", lambda f: f.write(TJ, f.read(TJ)[:5000]), names=(TJ, "not valid JSON")),
    Case("tokenizer-config-corrupt", lambda f: f.write(TC, b"\x00\x01garbage"), names=(TC,)),
    Case("tokenizer-json-wrong-structure", lambda f: f.write(TJ, json.dumps({"model": {"type": "Nonsense"}})),
         names=("tokenizer",)),
    Case("tokenizer-of-a-bigger-vocabulary", lambda f: f.write(TJ, json.dumps(
        {**json.loads(f.read(TJ)), "added_tokens": json.loads(f.read(TJ))["added_tokens"] + [
            {"id": 40000, "content": "[NEW]", "single_word": False, "lstrip": False, "rstrip": False,
             "normalized": False, "special": True}]})), names=(TJ, "40000", "vocab_size")),
    Case("model-dir-missing", model_dir=lambda f: str(f.path / "nowhere"), names=("nowhere", "does not exist")),
    Case("model-dir-is-a-file", model_dir=lambda f: str(f.path / C), names=(C, "not a folder")),
    # ------------------------------------------------------------ the input texts
    Case("input-missing", inputs=lambda tmp: [str(tmp / "missing.txt")], names=("missing.txt", "does not exist"),
         api=False),
    Case("input-empty-file", inputs=input_file(b""), names=("input is empty",), api=False),
    Case("input-empty-line", inputs=input_file(b"good\n\nbad\n"), names=("in.txt, line 2", "empty line"), api=False),
    Case("input-nul-bytes", inputs=input_file(b"fine text\n\x00\x00\x00\x00\n"), names=("in.txt, line 2", "U+0000"),
         api=False),
    Case("input-control-bytes", inputs=input_file(b"fine\nab\x01\x02\x03\x04\x05\x06\n"),
         names=("in.txt, line 2", "control characters"), api=False),
    Case("input-one-nul-in-text", inputs=input_file(b"a perfectly long review\x00 with one NUL\n"),
         names=("in.txt, line 1", "U+0000"), api=False),
    Case("input-utf16-without-bom", inputs=input_file("great lamp\n".encode("utf-16-le")),
         names=("in.txt, line 1",), api=False),
    Case("input-not-utf8", inputs=input_file(b"caf\xe9 au lait\n"), names=("in.txt", "UTF-8"), api=False),
    Case("input-utf16-with-bom", inputs=input_file("great lamp\n".encode("utf-16")), names=("in.txt", "UTF-8"),
         api=False),
    Case("input-is-a-directory", inputs=lambda tmp: [str(tmp)], names=("a directory",), api=False),
    Case("input-stdin-empty", inputs=lambda tmp: ["-"], stdin=b"", names=("input is empty",), api=False),
    Case("input-stdin-binary", inputs=lambda tmp: ["-"], stdin=b"\x00\x01\x02\x03\x04\n", names=("<stdin>, line 1",),
         api=False),
    Case("input-text-empty", inputs=lambda tmp: ["--text", "   "], names=("--text",), api=False),
    Case("input-text-control", inputs=lambda tmp: ["--text", "\x1b[2J\x07\x07\x07"], names=("--text",), api=False),
]
BY_ID = {c.id: c for c in CASES}
assert len(BY_ID) == len(CASES) >= 30


def prepare(case: Case, pristine, tmp: Path) -> tuple[list[str], Folder]:
    folder = Folder(tmp / "model", *pristine)
    if case.damage is not None:
        case.damage(folder)
    model_dir = case.model_dir(folder) if case.model_dir else str(folder.path)
    return [model_dir, *(case.inputs or good_file)(tmp)], folder


class _Stdin:
    def __init__(self, data: bytes):
        import io
        self.buffer = io.BytesIO(data)


def run_in_process(argv, stdin: bytes | None, capsys, monkeypatch) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "stdin", _Stdin(stdin if stdin is not None else b""))
    code = classify.main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def check_refusal(case: Case, code: int, out: str, err: str) -> None:
    assert code == 2, (case.id, code, out, err)
    assert out == "", f"{case.id}: printed a prediction: {out!r}"
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("labkit-classify: error: "), (case.id, err)
    assert "Traceback" not in err
    for name in case.names:
        assert name in lines[0], f"{case.id}: {name!r} not named in {lines[0]!r}"


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_cli_refuses_with_one_line_and_no_prediction(case, pristine, tmp_path, capsys, monkeypatch):
    argv, _ = prepare(case, pristine, tmp_path)
    check_refusal(case, *run_in_process(argv, case.stdin, capsys, monkeypatch))
    if case.api:                        # the API: the same folder raises the one labkit exception type
        with pytest.raises(ModelFolderError) as info:
            load_pipeline(argv[0])
        assert "\n" not in str(info.value) and any(name in str(info.value) for name in case.names)


def test_the_pristine_copy_predicts(pristine, tmp_path, capsys, monkeypatch):
    """The harness itself: an undamaged copy (symlinks to the saved files) classifies, exit 0."""
    argv, _ = prepare(Case("pristine"), pristine, tmp_path)
    code, out, err = run_in_process(argv, None, capsys, monkeypatch)
    assert code == 0 and err == "" and len(out.splitlines()) == 2
    assert {line.split("\t")[0] for line in out.splitlines()} <= set(LABELS)


@pytest.mark.parametrize("case_id", ["weights-truncated", "weights-nan", "weights-overflow-logits", "labels-a-string",
                                     "input-stdin-binary"])
def test_cli_refuses_in_a_real_subprocess(case_id, pristine, tmp_path):
    """The same, as a user runs it: a fresh interpreter, nothing on stdout, one line on stderr, exit 2."""
    case = BY_ID[case_id]
    argv, _ = prepare(case, pristine, tmp_path)
    r = subprocess.run([sys.executable, "-m", "labkit.classify", *argv], input=case.stdin or b"",
                       capture_output=True, env=ENV, timeout=300)
    check_refusal(case, r.returncode, r.stdout.decode(), r.stderr.decode())
