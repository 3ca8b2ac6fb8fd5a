"""What differs between the model families, from scratch, against Hugging Face with the same weights.

Tiny random configs (no download): a Llama-style decoder (RoPE, RMSNorm, SwiGLU, GQA, KV cache) against
LlamaForCausalLM and Qwen2ForCausalLM, a BART-style encoder-decoder against BartForConditionalGeneration
and BartModel, a ViT against ViTModel. Max |difference| <= 1e-4 everywhere.
"""
import pytest
import torch
from transformers import (BartConfig, BartForConditionalGeneration, BartModel, LlamaForCausalLM,
                          Qwen2Config, Qwen2ForCausalLM)
from transformers import LlamaConfig as HFLlamaConfig
from transformers import ViTConfig as HFViTConfig
from transformers import ViTModel

from labkit import sizing
from labkit.nn.llama import KVCache, Llama, LlamaConfig, apply_rope, llama_config_from_hf, rope_angles
from labkit.nn.seq2seq import Seq2Seq, Seq2SeqConfig
from labkit.nn.transformer import RMSNorm
from labkit.nn.vit import ViT, ViTConfig

TOL = 1e-4


def tiny_hf_llama(n_kv_heads=2, tie=False, cls=LlamaForCausalLM, config=HFLlamaConfig, **kw):
    torch.manual_seed(0)
    cfg = config(vocab_size=101, hidden_size=64, intermediate_size=176, num_hidden_layers=2, num_attention_heads=8,
                 num_key_value_heads=n_kv_heads, max_position_embeddings=64, tie_word_embeddings=tie, **kw)
    return cls(cfg).eval()


def max_diff(a, b) -> float:
    return (a - b).abs().max().item()


@pytest.fixture(scope="module")
def llama_pair():
    hf = tiny_hf_llama()
    return hf, Llama.from_hf(hf).eval()


@pytest.fixture
def ids():
    return torch.randint(3, 101, (3, 40), generator=torch.Generator().manual_seed(1))


# ---------------------------------------------------------------- the modern decoder
@pytest.mark.parametrize("n_kv_heads,tie", [(8, False), (2, False), (1, True)])   # MHA, GQA, MQA (+ tied head)
def test_llama_logits_match_hf(n_kv_heads, tie, ids):
    hf = tiny_hf_llama(n_kv_heads, tie)
    ours = Llama.from_hf(hf).eval()
    assert ours.cfg.n_kv_heads == n_kv_heads and ours.blocks[0].attn.k.out_features == n_kv_heads * 8
    with torch.no_grad():
        ref = hf(ids).logits
        assert ref.std() > 0.1                                    # not a degenerate comparison
        assert max_diff(ours(ids), ref) <= TOL
    assert (ours.lm_head.weight is ours.tok.weight) == tie


def test_qwen2_is_llama_plus_qkv_biases(ids):
    hf = tiny_hf_llama(cls=Qwen2ForCausalLM, config=Qwen2Config)
    with torch.no_grad():                                         # biases start at 0: make them matter
        for name, p in hf.named_parameters():
            if name.endswith("bias"):
                p.normal_(0.0, 0.5)
    ours = Llama.from_hf(hf).eval()
    assert ours.cfg.qkv_bias and ours.blocks[0].attn.q.bias is not None and ours.blocks[0].attn.o.bias is None
    with torch.no_grad():
        ref = hf(ids).logits
        assert max_diff(ours(ids), ref) <= TOL
        for block in ours.blocks:                                 # without the flag's biases: a different model
            for lin in (block.attn.q, block.attn.k, block.attn.v):
                lin.bias.zero_()
        assert max_diff(ours(ids), ref) > 1e-2


def test_rmsnorm_matches_llama_rmsnorm():
    from transformers.models.llama.modeling_llama import LlamaRMSNorm
    ref, ours = LlamaRMSNorm(16, eps=1e-6), RMSNorm(16, eps=1e-6)
    with torch.no_grad():
        ref.weight.normal_()
        ours.weight.copy_(ref.weight)
    x = torch.randn(2, 5, 16) * 3 + 1
    assert max_diff(ours(x), ref(x)) <= 1e-6
    assert max_diff(ours(x), torch.nn.LayerNorm(16)(x)) > 1e-2   # no mean subtraction: not a LayerNorm


def test_rope_makes_scores_depend_on_distance_only():
    cos, sin = rope_angles(64, 16)
    q, k = torch.randn(16), torch.randn(16)

    def score(m, n):   # q at position m, k at position n
        return (apply_rope(q, cos[m], sin[m]) * apply_rope(k, cos[n], sin[n])).sum()

    assert torch.isclose(score(5, 2), score(45, 42), atol=1e-4)
    assert not torch.isclose(score(5, 2), score(5, 4), atol=1e-3)
    assert torch.allclose(apply_rope(q, cos[0], sin[0]), q)       # position 0: no rotation
    assert torch.isclose(apply_rope(q, cos[9], sin[9]).norm(), q.norm())   # a rotation keeps lengths


def test_cached_forward_equals_full_forward(llama_pair, ids):
    _, ours = llama_pair
    with torch.no_grad():
        full = ours(ids)
        cache = KVCache(ours.cfg, batch=3)
        parts = [ours(ids[:, :10], cache), ours(ids[:, 10:17], cache)]          # prompt, then a chunk
        parts += [ours(ids[:, t:t + 1], cache) for t in range(17, 40)]          # then one token at a time
    assert cache.length == 40
    assert max_diff(torch.cat(parts, dim=1), full) <= 1e-5


def test_generation_cache_equals_no_cache_equals_hf_greedy(llama_pair):
    hf, ours = llama_pair
    prompt = torch.tensor([[5, 17, 42, 8, 99]])
    cached = ours.generate(prompt, 30, greedy=True)
    uncached = ours.generate(prompt, 30, greedy=True, use_cache=False)
    with torch.no_grad():   # an explicit mask: HF would otherwise read every pad_token_id in a prompt as padding
        ref = hf.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=30, do_sample=False,
                          eos_token_id=None, pad_token_id=0)
    assert cached.shape == (1, 35)
    assert torch.equal(cached, uncached) and torch.equal(cached, ref)
    assert len(set(cached[0, 5:].tolist())) > 1                  # a real sequence, not one token repeated


def test_sampling_is_seeded_and_the_cache_does_not_change_it(llama_pair):
    _, ours = llama_pair
    prompt = torch.tensor([[5, 17, 42], [3, 4, 6]])

    def sample(seed, use_cache=True):
        return ours.generate(prompt, 20, use_cache=use_cache, temperature=1.5, top_k=20,
                             generator=torch.Generator().manual_seed(seed))

    assert torch.equal(sample(7), sample(7)) and torch.equal(sample(7), sample(7, use_cache=False))
    assert not torch.equal(sample(7), sample(8))
    assert not torch.equal(sample(7), ours.generate(prompt, 20, greedy=True))


def test_the_kv_cache_allocates_what_the_sizing_formula_says_and_gqa_divides_it():
    def hf_config(kv_heads):
        return HFLlamaConfig(vocab_size=10, hidden_size=64, intermediate_size=176, num_hidden_layers=2,
                             num_attention_heads=8, num_key_value_heads=kv_heads, max_position_embeddings=32)

    for kv_heads in (8, 2, 1):
        cache = KVCache(llama_config_from_hf(hf_config(kv_heads)), batch=3)
        assert cache.k.shape == (2, 3, kv_heads, 32, 8)
        assert cache.nbytes == sizing.kv_cache_bytes(hf_config(kv_heads), seq_len=32, batch=3, precision="fp32")
    assert sizing.kv_cache_bytes(hf_config(8), 100) == 4 * sizing.kv_cache_bytes(hf_config(2), 100)


# ---------------------------------------------------------------- the encoder-decoder
@pytest.fixture(scope="module")
def bart_pair():
    torch.manual_seed(0)
    cfg = BartConfig(vocab_size=120, d_model=64, encoder_layers=2, decoder_layers=3, encoder_attention_heads=4,
                     decoder_attention_heads=4, encoder_ffn_dim=128, decoder_ffn_dim=128, max_position_embeddings=32)
    hf = BartForConditionalGeneration(cfg).eval()
    with torch.no_grad():
        hf.final_logits_bias.normal_()
    return hf, Seq2Seq.from_hf(hf).eval()


@pytest.fixture
def source_target():
    g = torch.Generator().manual_seed(2)
    src, tgt = torch.randint(3, 120, (3, 20), generator=g), torch.randint(3, 120, (3, 12), generator=g)
    mask = torch.ones(3, 20, dtype=torch.long)
    mask[1, 15:], mask[2, 9:] = 0, 0                          # two padded sources
    return src, tgt, mask


def test_seq2seq_matches_bart_for_conditional_generation(bart_pair, source_target):
    hf, ours = bart_pair
    src, tgt, mask = source_target
    with torch.no_grad():
        ref = hf(input_ids=src, attention_mask=mask, decoder_input_ids=tgt)
        assert max_diff(ours.encode(src, mask), ref.encoder_last_hidden_state) <= TOL
        assert max_diff(ours(src, tgt, mask), ref.logits) <= TOL


def test_seq2seq_matches_bart_model(source_target):
    torch.manual_seed(3)
    hf = BartModel(BartConfig(vocab_size=120, d_model=32, encoder_layers=1, decoder_layers=2, encoder_attention_heads=2,
                              decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64,
                              max_position_embeddings=32, scale_embedding=True)).eval()
    ours = Seq2Seq.from_hf(hf).eval()
    src, tgt, mask = source_target
    with torch.no_grad():
        ref = hf(input_ids=src, attention_mask=mask, decoder_input_ids=tgt).last_hidden_state
        assert max_diff(ours.decode(tgt, ours.encode(src, mask), mask), ref) <= TOL


def test_decoder_is_causal_and_reads_the_source_through_cross_attention(bart_pair, source_target):
    _, ours = bart_pair
    src, tgt, mask = source_target
    with torch.no_grad():
        base = ours(src, tgt, mask)
        future = tgt.clone()
        future[:, 6:] = 7                                       # change targets 6.. : positions 0..5 unchanged
        changed = ours(src, future, mask)
        assert max_diff(changed[:, :6], base[:, :6]) <= 1e-6 and max_diff(changed[:, 6:], base[:, 6:]) > 1e-3
        other = src.clone()
        other[:, 3] = (other[:, 3] + 1) % 120                   # change one source token: every target moves
        assert (ours(other, tgt, mask) - base).abs().amax(dim=(0, 2)).min() > 1e-4
        padded = src.clone()
        padded[2, 9:] = 5                                       # change only what the mask hides
        assert max_diff(ours(padded, tgt, mask)[2], base[2]) <= 1e-6


# ---------------------------------------------------------------- ViT
def test_vit_matches_hf_vitmodel():
    torch.manual_seed(0)
    hf = ViTModel(HFViTConfig(image_size=32, patch_size=8, num_channels=3, hidden_size=64, num_hidden_layers=2,
                              num_attention_heads=4, intermediate_size=128)).eval()
    ours = ViT.from_hf(hf).eval()
    images = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        ref = hf(pixel_values=images)
        hidden, pooled = ours(images)
    assert hidden.shape == (2, 1 + 16, 64) and ref.last_hidden_state.std() > 0.1
    assert max_diff(hidden, ref.last_hidden_state) <= TOL and max_diff(pooled, ref.pooler_output) <= TOL


def test_patch_embedding_is_a_linear_map_of_each_flattened_patch():
    vit = ViT(ViTConfig(image_size=16, patch_size=4, channels=3, d_model=32, n_heads=4, n_layers=1))
    images = torch.randn(2, 3, 16, 16)
    patches = images.unfold(2, 4, 4).unfold(3, 4, 4)                       # (B, C, 4, 4, P, P)
    flat = patches.permute(0, 2, 3, 1, 4, 5).reshape(2, 16, 3 * 4 * 4)     # (B, n_patches, C*P*P), reading order
    conv = vit.patches.proj
    expected = flat @ conv.weight.reshape(32, -1).T + conv.bias
    assert max_diff(vit.patches(images), expected) <= 1e-5


# ---------------------------------------------------------------- bad input names the limit
def test_head_counts_must_divide():
    with pytest.raises(ValueError, match=r"n_heads must divide d_model=64 \(one of \[1, 2, 4, 8, 16, 32, 64\]\); got 3"):
        LlamaConfig(vocab_size=10, d_model=64, n_heads=3)
    with pytest.raises(ValueError, match=r"n_kv_heads must divide n_heads=8 \(one of \[1, 2, 4, 8\]\); got 3"):
        LlamaConfig(vocab_size=10, d_model=64, n_heads=8, n_kv_heads=3)
    with pytest.raises(ValueError, match="n_kv_heads must be a whole number from 1 to 8"):
        LlamaConfig(vocab_size=10, d_model=64, n_heads=8, n_kv_heads=16)
    with pytest.raises(ValueError, match=r"n_heads \(3\) must divide d_model \(64\)"):
        Seq2SeqConfig(vocab_size=10, d_model=64, n_heads=3)
    with pytest.raises(ValueError, match=r"n_heads \(3\) must divide d_model \(64\)"):
        ViTConfig(d_model=64, n_heads=3)
    with pytest.raises(ValueError, match="patch_size must divide image_size=32"):
        ViTConfig(image_size=32, patch_size=5)


def test_sequences_longer_than_the_context_are_refused():
    llama = Llama(LlamaConfig(vocab_size=10, max_len=16))
    with pytest.raises(ValueError, match="sequence length 17 exceeds max_len=16"):
        llama(torch.zeros(1, 17, dtype=torch.long))
    with pytest.raises(ValueError, match=r"max_new_tokens \(after a 10-token prompt, with max_len=16\) must be a "
                                         "whole number from 0 to 6; got 7"):
        llama.generate(torch.zeros(1, 10, dtype=torch.long), 7)
    with pytest.raises(ValueError, match=r"length <= max_len=16 \(the context length\); got \(1, 17\)"):
        llama.generate(torch.zeros(1, 17, dtype=torch.long), 0)
    cache = KVCache(llama.cfg, batch=1, capacity=12)
    llama(torch.zeros(1, 10, dtype=torch.long), cache)
    with pytest.raises(ValueError, match="capacity=12"):
        llama(torch.zeros(1, 3, dtype=torch.long), cache)
    s2s = Seq2Seq(Seq2SeqConfig(vocab_size=10, max_len=8))
    with pytest.raises(ValueError, match="sequence length 9 exceeds max_len=8"):
        s2s(torch.zeros(1, 9, dtype=torch.long), torch.zeros(1, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="sequence length 9 exceeds max_len=8"):
        s2s(torch.zeros(1, 2, dtype=torch.long), torch.zeros(1, 9, dtype=torch.long))
    vit = ViT(ViTConfig(image_size=32, patch_size=8))
    with pytest.raises(ValueError, match="image_size=32"):
        vit(torch.zeros(1, 3, 40, 40))


def test_from_hf_refuses_what_it_does_not_implement():
    with pytest.raises(ValueError, match="attention_bias"):
        Llama.from_hf(tiny_hf_llama(attention_bias=True))
    with pytest.raises(ValueError, match="temperature"):
        Llama(LlamaConfig(vocab_size=10, max_len=8)).generate(torch.zeros(1, 2, dtype=torch.long), 1, temperature=0)


def test_bench_decoder_runs_on_a_tiny_config():
    from scripts.bench_decoder import bench
    r = bench(n_layers=1, d_model=32, n_heads=4, n_kv_heads=2, vocab=64, prompt=4, new_tokens=8, repeats=2)
    assert r["same tokens"]
    for key in ("cache / no cache", "labkit / HF generate"):
        lo, median, hi = r[key]
        assert 0 < lo <= median <= hi


# ---------------------------------------------------------------- each reference option: implemented, harmless, refused
def _undecided(options, config_cls):
    """Fields of the reference config class that the options table has no decision for."""
    from transformers import GenerationConfig
    return sorted(set(config_cls().to_dict()) - options.known() - set(GenerationConfig().to_dict()))


def test_every_llama_qwen2_bart_vit_config_field_has_a_decision():
    from labkit.nn.llama import LLAMA_OPTIONS
    from labkit.nn.seq2seq import BART_OPTIONS
    from labkit.nn.vit import VIT_OPTIONS
    for options, config_cls in [(LLAMA_OPTIONS, HFLlamaConfig), (LLAMA_OPTIONS, Qwen2Config),
                                (BART_OPTIONS, BartConfig), (VIT_OPTIONS, HFViTConfig)]:
        assert _undecided(options, config_cls) == [], config_cls.__name__


LLAMA_SIZE = dict(vocab_size=101, hidden_size=64, intermediate_size=176, num_hidden_layers=2, num_attention_heads=8,
                  num_key_value_heads=2, max_position_embeddings=64)


@pytest.mark.parametrize("config, option, value", [
    (HFLlamaConfig, "rope_parameters", {"rope_type": "linear", "factor": 2.0, "rope_theta": 10000.0}),
    (HFLlamaConfig, "rope_parameters", {"rope_type": "default", "rope_theta": 10000.0, "partial_rotary_factor": 0.5}),
    (HFLlamaConfig, "attention_bias", True), (HFLlamaConfig, "mlp_bias", True), (HFLlamaConfig, "hidden_act", "gelu"),
    (HFLlamaConfig, "head_dim", 16), (HFLlamaConfig, "pruned_heads", {0: [1]}),
    (Qwen2Config, "use_sliding_window", True), (Qwen2Config, "layer_types", ["full_attention", "sliding_attention"]),
])
def test_llama_from_hf_refuses_options_it_does_not_implement(config, option, value):
    cfg = config(**LLAMA_SIZE)
    setattr(cfg, option, value)
    with pytest.raises(ValueError, match=rf"Llama.from_hf does not implement {option}="):
        llama_config_from_hf(cfg)


def test_llama_from_hf_refuses_a_tied_config_with_an_untied_head_and_another_family():
    hf = tiny_hf_llama(tie=False)
    hf.config.tie_word_embeddings = True                 # the config no longer fits the weights
    with pytest.raises(ValueError, match="tie_word_embeddings=True but lm_head.weight differs"):
        Llama.from_hf(hf)
    with pytest.raises(ValueError, match="model_type 'llama' or 'qwen2'; got model_type='bart'"):
        llama_config_from_hf(BartConfig())
    with pytest.raises(ValueError, match="attention_bias=True"):          # through a real model too
        Llama.from_hf(tiny_hf_llama(attention_bias=True))


BART_SIZE = dict(vocab_size=120, d_model=32, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
                 decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64, max_position_embeddings=32)


@pytest.mark.parametrize("option, value", [
    ("activation_function", "silu"), ("decoder_attention_heads", 4), ("decoder_ffn_dim", 128),
    ("tie_word_embeddings", False), ("normalize_before", True), ("add_final_layer_norm", True),
    ("static_position_embeddings", True), ("pruned_heads", {0: [1]}),
])
def test_seq2seq_from_hf_refuses_bart_options_it_does_not_implement(option, value):
    from labkit.nn.seq2seq import bart_config_from_hf
    cfg = BartConfig(**BART_SIZE)
    setattr(cfg, option, value)                          # normalize_before...: fields of transformers 3.x configs
    with pytest.raises(ValueError, match=rf"Seq2Seq.from_hf does not implement {option}="):
        bart_config_from_hf(cfg)


def test_seq2seq_from_hf_refuses_an_untied_bart():
    """tie_word_embeddings=False gives BART three embedding matrices; labkit's Seq2Seq has one."""
    torch.manual_seed(0)
    hf = BartForConditionalGeneration(BartConfig(**BART_SIZE, tie_word_embeddings=False)).eval()
    assert hf.lm_head.weight is not hf.model.shared.weight
    with pytest.raises(ValueError, match="tie_word_embeddings=False"):
        Seq2Seq.from_hf(hf)


VIT_SIZE = dict(image_size=32, patch_size=8, num_channels=3, hidden_size=64, num_hidden_layers=1,
                num_attention_heads=4, intermediate_size=128)


@pytest.mark.parametrize("option, value", [
    ("hidden_act", "gelu_new"), ("hidden_act", "relu"), ("qkv_bias", False), ("pooler_act", "relu"),
    ("pooler_output_size", 32), ("pruned_heads", {0: [1]}),
])
def test_vit_from_hf_refuses_options_it_does_not_implement(option, value):
    from labkit.nn.vit import vit_config_from_hf
    cfg = HFViTConfig(**VIT_SIZE)
    setattr(cfg, option, value)
    with pytest.raises(ValueError, match=rf"ViT.from_hf does not implement {option}="):
        vit_config_from_hf(cfg)


def test_vit_from_hf_refuses_a_model_without_its_pooler():
    hf = ViTModel(HFViTConfig(**VIT_SIZE), add_pooling_layer=False).eval()
    with pytest.raises(ValueError, match="needs a ViTModel with its pooler"):
        ViT.from_hf(hf)


def test_efficientnet_refuses_a_damaged_weights_file(tmp_path, monkeypatch):
    from labkit.nn import efficientnet
    model = efficientnet.EfficientNetLite0()
    path = tmp_path / "lite0.pth"
    monkeypatch.setattr(efficientnet, "packaged_lite0_path", lambda: path)
    path.write_bytes(b"\x80\x02garbage, not a state dict")
    with pytest.raises(ValueError, match=r"lite0.pth is not a readable state dict"):
        efficientnet.load_packaged_lite0()
    state = model.state_dict()
    torch.save({k: v for k, v in state.items() if k != "_fc.bias"}, path)
    with pytest.raises(ValueError, match=r"lite0.pth does not hold EfficientNet-Lite0's tensors.*_fc.bias"):
        efficientnet.load_packaged_lite0()
    state["_fc.weight"][0, 0] = float("nan")
    torch.save(state, path)
    with pytest.raises(ValueError, match=r"1 of its \d+ tensors hold NaN or infinite values \(e.g. '_fc.weight'\)"):
        efficientnet.load_packaged_lite0()
    state["_fc.weight"][0, 0] = 0.0
    torch.save(state, path)
    assert not efficientnet.load_packaged_lite0().training       # the undamaged file loads
