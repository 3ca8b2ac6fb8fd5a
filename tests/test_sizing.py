"""labkit.sizing: the formulas equal what the instantiated models hold, for every zoo entry, tiny and real."""
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from labkit import scaling, sizing, zoo

NAMES = list(zoo.REGISTRY)


def counted(model):
    return sum(p.numel() for p in model.parameters())      # tied weights once


@pytest.mark.parametrize("size", ["tiny", "real"])
@pytest.mark.parametrize("name", NAMES)
def test_parameter_formula_equals_the_instantiated_model(name, size):
    cfg = zoo.card(name).config(size)
    model = zoo.build(name, size, device="meta" if size == "real" else None)   # real size: shapes only
    assert sizing.param_count(cfg) == counted(model)
    assert sum(sizing.param_breakdown(cfg).values()) == sizing.param_count(cfg)


def test_published_sizes():
    n = {name: sizing.param_count(zoo.card(name).config()) for name in NAMES}
    assert n["bert-base-uncased"] == 109_482_240 and n["gpt2"] == 124_439_808
    assert n["all-MiniLM-L6-v2"] == 22_713_216 and round(n["TinyLlama-1.1B"] / 1e9, 1) == 1.1
    assert round(n["Mixtral-8x7B"] / 1e9, 1) == 46.7
    assert round(sizing.active_param_count(zoo.card("Mixtral-8x7B").config()) / 1e9, 1) == 12.9
    assert sizing.active_param_count(zoo.card("gpt2").config()) == n["gpt2"]     # dense: every parameter


def test_llama2_7b_and_70b_from_their_configs():
    from transformers import LlamaForCausalLM
    seven, seventy = scaling.llama2_config("7B"), scaling.llama2_config("70B")     # the published configs
    for cfg in (seven, seventy):
        with torch.device("meta"):
            assert sizing.param_count(cfg) == counted(LlamaForCausalLM(cfg))
    assert sizing.param_count(seven) == 6_738_415_616
    m = sizing.memory(seven, "bf16")
    assert m["inference"] == 2 * 6_738_415_616 and m["full fine-tuning"] == 16 * 6_738_415_616
    assert sizing.memory(seven, "int8")["inference"] == 6_738_415_616


@pytest.mark.parametrize("name", [n for n in NAMES if zoo.card(n).family not in ("vision", "multimodal")
                                  or n.startswith("vit")])
def test_lora_count_equals_peft(name):
    from peft import LoraConfig, get_peft_model
    cfg = zoo.card(name).config("tiny")
    model = get_peft_model(zoo.build(name), LoraConfig(r=4, target_modules=sizing.LORA_TARGETS[cfg.model_type]))
    assert sizing.lora_param_count(cfg, r=4) == sum(p.numel() for k, p in model.named_parameters() if "lora_" in k)


def test_lora_on_clip_and_none_on_convolutional_networks():
    from peft import LoraConfig, get_peft_model
    cfg = zoo.card("clip-vit-base-patch32").config("tiny")
    model = get_peft_model(zoo.build("clip-vit-base-patch32"), LoraConfig(r=8, target_modules=["q_proj", "v_proj"]))
    assert sizing.lora_param_count(cfg) == sum(p.numel() for k, p in model.named_parameters() if "lora_" in k)
    assert sizing.lora_param_count(zoo.card("resnet-50").config()) == 0
    assert sizing.memory(zoo.card("resnet-50").config())["LoRA"] is None
    with pytest.raises(ValueError, match="r \\(the LoRA rank\\) must be a whole number >= 1"):
        sizing.lora_param_count(cfg, r=0)


def _counted_flops(name, tokens):
    c = zoo.card(name)
    model = zoo.build(name)
    model.set_attn_implementation("eager")        # torch's FLOP counter does not see the CPU sdpa kernel
    p = zoo.Pretrained(name, None, model, "x", False)
    inputs = zoo.example_inputs(p, batch=1, length=tokens)
    if c.inputs == "seq2seq":
        inputs["decoder_input_ids"] = inputs["input_ids"].clone()      # one target token per source token
    if c.inputs == "log-mel":
        inputs["decoder_input_ids"] = torch.randint(5, 100, (1, model.config.max_source_positions))
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        out = model(**inputs)
    if c.inputs == "waveform":
        tokens = out.logits.shape[1]
    elif c.inputs == "log-mel":
        tokens = model.config.max_source_positions
    elif c.inputs == "image":
        tokens = (model.config.image_size // model.config.patch_size) ** 2 + 1
    return counter.get_total_flops(), tokens


@pytest.mark.parametrize("name", [n for n in NAMES if zoo.card(n).family in ("encoder", "decoder", "encoder-decoder",
                                                                            "audio") or n.startswith("vit")])
def test_flops_per_token_match_torch_flop_counter(name):
    """2 x multiplied parameters + attention vs every matmul and convolution actually run (tiny model, 32 tokens).

    The formula also counts biases and norm scales (2 FLOPs each), which the counter leaves out: within 3%.
    """
    total, tokens = _counted_flops(name, 32)
    formula = sizing.flops_per_token(zoo.card(name).config("tiny"), seq_len=tokens)
    assert formula["forward"] == pytest.approx(total / tokens, rel=0.03)
    assert formula["training"] == 3 * formula["forward"]


def test_mixture_of_experts_flops_count_only_the_routed_experts():
    cfg = zoo.card("Mixtral-8x7B").config()
    f = sizing.flops_per_token(cfg, seq_len=1)
    looked_up = cfg.vocab_size * cfg.hidden_size          # the input embedding is a lookup, not a matmul
    attention = 4 * cfg.num_hidden_layers * 1 * cfg.hidden_size
    assert f["forward"] == 2 * (sizing.active_param_count(cfg) - looked_up) + attention
    assert f["forward"] < 0.3 * 2 * sizing.param_count(cfg)


def test_image_flops_of_resnet50_and_efficientnet_lite0():
    assert 7.5e9 < sizing.flops_per_token(zoo.card("resnet-50").config())["forward"] < 8.5e9   # 4.1 G multiply-adds
    lite = sizing.flops_per_token(zoo.card("efficientnet-lite0").config())
    assert lite["unit"] == "image" and 0.6e9 < lite["forward"] < 0.9e9


def test_kv_cache_formula_equals_the_cache_a_forward_pass_keeps():
    model = zoo.build("TinyLlama-1.1B")
    ids = torch.randint(5, 1000, (2, 10))
    with torch.no_grad():
        cache = model(input_ids=ids, use_cache=True).past_key_values
    held = sum(t.numel() * t.element_size() for layer in cache.layers for t in (layer.keys, layer.values))
    assert sizing.kv_cache_bytes(model.config, seq_len=10, batch=2, precision="fp32") == held
    with pytest.raises(ValueError, match="for decoders"):
        sizing.kv_cache_bytes(zoo.card("bert-base-uncased").config(), 10)


def test_memory_bytes_per_parameter_and_bad_precision():
    cfg = zoo.card("gpt2").config()
    n, lora = sizing.param_count(cfg), sizing.lora_param_count(cfg)
    fp32, bf16, int8 = (sizing.memory(cfg, p) for p in ("fp32", "bf16", "int8"))
    assert (fp32["inference"], bf16["inference"], int8["inference"]) == (4 * n, 2 * n, n)
    assert fp32["full fine-tuning"] == bf16["full fine-tuning"] == 16 * n and int8["full fine-tuning"] is None
    assert bf16["LoRA"] == 2 * n + 16 * lora
    with pytest.raises(ValueError, match="precision must be one of 'fp32', 'bf16', 'int8'; got 'fp8'"):
        sizing.memory(cfg, "fp8")


def test_formulas_refuse_a_bad_config():
    cfg = zoo.card("gpt2").config("tiny")
    cfg.n_head = 6
    with pytest.raises(ValueError, match="n_head=6 does not divide the width 64"):
        sizing.param_count(cfg)
    other = zoo.card("bert-base-uncased").config()
    other.architectures = ["BertForMaskedLM"]
    with pytest.raises(ValueError, match="the formulas count BertModel"):
        sizing.param_count(other)
    with pytest.raises(ValueError, match="config.model_type must be one of"):
        sizing.param_count(type("C", (), {"model_type": "mamba"})())


def test_side_by_side_table_reads_the_configs():
    table = sizing.side_by_side()
    assert list(table.index) == NAMES
    assert table.loc["bert-base-uncased", "norm"] == "post-LN" and table.loc["gpt2", "norm"] == "pre-LN"
    assert table.loc["TinyLlama-1.1B", "attention"] == "GQA 32/4" and table.loc["Qwen2.5-0.5B", "attention"] == "GQA 14/2"
    assert table.loc["TinyLlama-1.1B", "positional encoding"] == "RoPE (θ=10000)"
    assert table.loc["t5-small", "positional encoding"].startswith("relative bias (32 buckets)")
    assert table.loc["resnet-50", "attention"] == "none (convolutions)"
    assert table.loc["Mixtral-8x7B", "active per token"] == sizing.active_param_count(zoo.card("Mixtral-8x7B").config())
    mqa = zoo.card("TinyLlama-1.1B").config()
    mqa.num_key_value_heads = 1
    assert sizing.architecture(mqa)["attention"] == "MQA 32/1"


def test_explorer_grid_figure_and_panel(capsys):
    names = ["gpt2", "resnet-50"]
    grid = sizing.explorer_grid(names)
    assert len(grid) == 2 * len(sizing.PRECISIONS)
    row = grid[(grid.model == "gpt2") & (grid.precision == "bf16")].iloc[0]
    assert row["inference GiB"] == pytest.approx(2 * 124_439_808 / 2**30)
    fig = sizing.explorer_figure(grid)
    menu = fig.layout.updatemenus[0]
    assert [b.label for b in menu.buttons] == list(sizing.PRECISIONS)
    assert sum(t.visible for t in fig.data) == 3           # bf16: inference, full fine-tuning, LoRA
    panel = sizing.ExplorerPanel(grid)
    assert panel.run()["model"] == "gpt2"
    assert "124,439,808 parameters" in capsys.readouterr().out
    assert panel.run(family="vision", model="gpt2") is None
    assert "is in the family 'decoder', not 'vision'" in capsys.readouterr().out


def test_choosing_table_names_zoo_checkpoints_of_the_right_family():
    table = sizing.choosing_table()
    assert len(table) >= 10 and set(table.family) == set(zoo.FAMILIES)
    for _, row in table.iterrows():
        assert zoo.card(row["starting checkpoint"]).family == row["family"]
        assert row["why"]
