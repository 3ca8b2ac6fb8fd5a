"""The from-scratch attention and Transformer match PyTorch and Hugging Face to float precision."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from labkit.nn import (GPT, BertEncoder, BertForPretraining, MultiHeadAttention, TransformerConfig,
                       attention_loop, scaled_dot_product_attention, sinusoidal_positions)
from labkit.nn.attention import attention_weights, causal_mask


@pytest.fixture
def qkv():
    g = torch.Generator().manual_seed(0)
    return [torch.randn(2, 3, 7, 8, generator=g) for _ in range(3)]


@pytest.fixture
def pad():  # batch 0: all 7 tokens; batch 1: the last 2 are padding
    m = torch.ones(2, 7, dtype=torch.bool)
    m[1, 5:] = False
    return m[:, None, None, :]


def test_sdpa_matches_torch_plain_padding_causal(qkv, pad):
    q, k, v = qkv
    for mask, causal in [(None, False), (pad, False), (None, True), (pad, True)]:
        ours = scaled_dot_product_attention(q, k, v, mask=mask, causal=causal)
        ref_mask = mask if not causal else (causal_mask(7) if mask is None else mask & causal_mask(7))
        ref = F.scaled_dot_product_attention(q, k, v, attn_mask=ref_mask)
        assert torch.allclose(ours, ref, atol=1e-6), (mask is not None, causal)


def test_loop_equals_vectorised(qkv, pad):
    q, k, v = qkv
    for mask, causal in [(None, False), (pad, True)]:
        assert torch.allclose(attention_loop(q, k, v, mask, causal),
                              scaled_dot_product_attention(q, k, v, mask, causal), atol=1e-6)


def test_weights_rows_sum_to_one_and_respect_masks(qkv, pad):
    q, k, _ = qkv
    w = attention_weights(q, k, pad, causal=True)
    assert torch.allclose(w.sum(-1), torch.ones(2, 3, 7), atol=1e-6)
    assert (w[1, :, :, 5:] == 0).all()                      # nobody attends to padding
    assert (w.triu(diagonal=1) == 0).all()                   # nobody attends to the future


def test_multihead_matches_nn_multiheadattention(pad):
    torch.manual_seed(0)
    ref = nn.MultiheadAttention(16, 4, batch_first=True).eval()
    ours = MultiHeadAttention(16, 4).eval()
    ours.qkv.weight.data.copy_(ref.in_proj_weight)
    ours.qkv.bias.data.copy_(ref.in_proj_bias)
    ours.proj.load_state_dict(ref.out_proj.state_dict())
    x = torch.randn(2, 7, 16)
    keep = pad[:, 0, 0, :]
    for causal in (False, True):
        attn_mask = ~causal_mask(7) if causal else None              # nn.MHA: True = NOT allowed
        y_ref, w_ref = ref(x, x, x, key_padding_mask=~keep, attn_mask=attn_mask, average_attn_weights=False)
        y, w = ours(x, pad, causal=causal, need_weights=True)
        assert torch.allclose(y, y_ref, atol=1e-5) and torch.allclose(w, w_ref, atol=1e-6)
        assert torch.allclose(ours(x, pad, causal=causal), y_ref, atol=1e-5)   # the fused fast path too


def test_sinusoidal_positions():
    pe = sinusoidal_positions(50, 16)
    assert pe.shape == (50, 16)
    assert torch.allclose(pe[0, 0::2], torch.zeros(8)) and torch.allclose(pe[0, 1::2], torch.ones(8))
    assert torch.isclose(pe[3, 2], torch.sin(torch.tensor(3 / 10000 ** (2 / 16))))


def test_bert_encoder_reproduces_real_minilm():
    from labkit import zoo
    pre = zoo.load("all-MiniLM-L6-v2")
    assert pre.real_weights
    hf = pre.model.eval()
    ours = BertEncoder.from_hf(hf).eval()
    batch = pre.tokenizer(["Attention is all you need.", "A cat sat.",
                           "Pretraining then fine-tuning is the standard recipe for language models."],
                          padding=True, return_tensors="pt")
    assert (batch["attention_mask"] == 0).any()              # the batch really has padding
    with torch.no_grad():
        ref = hf(**batch).last_hidden_state
        got = ours(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
    assert (got - ref).abs().max().item() <= 1e-4


def test_gpt_reproduces_gpt2_logits():
    from transformers import GPT2Config, GPT2LMHeadModel
    torch.manual_seed(0)
    hf = GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=64, n_head=4, vocab_size=1000, n_positions=64)).eval()
    ours = GPT.from_hf(hf).eval()
    idx = torch.randint(0, 1000, (3, 64))
    with torch.no_grad():
        assert (ours(idx) - hf(idx).logits).abs().max().item() <= 1e-4
    assert ours.lm_head.weight is ours.emb.tok.weight        # tied, as in GPT-2


def test_generation_is_seeded_and_greedy_is_argmax():
    torch.manual_seed(0)
    model = GPT(TransformerConfig(vocab_size=50, max_len=16, d_model=32, n_heads=4, n_layers=2)).eval()
    start = torch.tensor([[1, 2, 3]])
    a = model.generate(start, 20, top_k=10, top_p=0.9, generator=torch.Generator().manual_seed(7))
    b = model.generate(start, 20, top_k=10, top_p=0.9, generator=torch.Generator().manual_seed(7))
    assert torch.equal(a, b) and a.shape == (1, 23)          # longer than max_len: the context is cropped
    greedy = model.generate(start, 5, greedy=True)
    idx = start
    for _ in range(5):                                        # argmax decoding by hand
        idx = torch.cat([idx, model(idx)[:, -1].argmax(-1, keepdim=True)], 1)
    assert torch.equal(greedy, idx)
    assert torch.equal(model.generate(start, 5, top_k=1, generator=torch.Generator().manual_seed(1)), greedy)


def test_bert_for_pretraining_shapes_and_tying():
    model = BertForPretraining(TransformerConfig(vocab_size=100, max_len=16))
    mlm, pair = model(torch.randint(0, 100, (2, 9)), torch.ones(2, 9, dtype=torch.long))
    assert mlm.shape == (2, 9, 100) and pair.shape == (2, 2)
    assert model.mlm_decoder.weight is model.encoder.emb.tok.weight


def test_bad_input_names_the_parameter():
    with pytest.raises(ValueError, match="n_heads"):
        TransformerConfig(vocab_size=10, d_model=30, n_heads=4)
    with pytest.raises(ValueError, match="n_heads"):
        MultiHeadAttention(30, 4)
    gpt = GPT(TransformerConfig(vocab_size=10, max_len=8))
    with pytest.raises(ValueError, match="max_len"):
        gpt(torch.zeros(1, 9, dtype=torch.long))
    bert = BertEncoder(TransformerConfig(vocab_size=10, max_len=8))
    with pytest.raises(ValueError, match="max_len"):
        bert(torch.zeros(1, 9, dtype=torch.long))
    with pytest.raises(ValueError, match="temperature"):
        gpt.generate(torch.zeros(1, 2, dtype=torch.long), 1, temperature=0)


def test_bench_gpt_runs_on_a_tiny_config():
    from scripts.bench_gpt import bench
    r = bench(n_layer=1, n_embd=32, n_head=2, seq=16, batch=2, vocab=64, warmup=1, steps=2)
    assert r["labkit GPT"] > 0 and r["HF GPT2LMHeadModel"] > 0
    assert r["ratio"] == pytest.approx(r["labkit GPT"] / r["HF GPT2LMHeadModel"])


# ---------------------------------------------------------------- from_hf refuses what it does not implement
def _classified(options, config_cls):
    """Fields of the reference config class that the options table has no decision for."""
    from transformers import GenerationConfig
    return sorted(set(config_cls().to_dict()) - options.known() - set(GenerationConfig().to_dict()))


def test_every_gpt2_and_bert_config_field_has_a_decision():
    from transformers import BertConfig, GPT2Config

    from labkit.nn.transformer import BERT_OPTIONS, GPT2_OPTIONS
    assert _classified(GPT2_OPTIONS, GPT2Config) == []
    assert _classified(BERT_OPTIONS, BertConfig) == []


@pytest.mark.parametrize("option, value", [
    ("scale_attn_weights", False), ("scale_attn_by_inverse_layer_idx", True), ("add_cross_attention", True),
    ("activation_function", "silu"), ("activation_function", "quick_gelu"), ("activation_function", "gelu_10"),
    ("pruned_heads", {0: [1]}),
])
def test_gpt_from_hf_refuses_gpt2_options_it_does_not_implement(option, value):
    from transformers import GPT2Config

    from labkit.nn.transformer import gpt_config_from_hf
    with pytest.raises(ValueError, match=rf"GPT.from_hf does not implement {option}={value!r}".replace("{", r"\{")
                       .replace("}", r"\}").replace("[", r"\[").replace("]", r"\]")):
        gpt_config_from_hf(GPT2Config(n_layer=2, n_embd=64, n_head=4, vocab_size=100, n_positions=32,
                                      **{option: value}))


@pytest.mark.parametrize("option, value", [("scale_attn_weights", False), ("scale_attn_by_inverse_layer_idx", True),
                                           ("activation_function", "silu")])
def test_the_refused_gpt2_options_change_the_reference_logits(option, value):
    """Why they are refused: the same weights give other logits in Hugging Face's own GPT-2."""
    from transformers import GPT2Config, GPT2LMHeadModel

    from labkit.nn.transformer import gpt_config_from_hf
    size = dict(n_layer=2, n_embd=64, n_head=4, vocab_size=100, n_positions=32)
    torch.manual_seed(0)
    ref = GPT2LMHeadModel(GPT2Config(**size)).eval()
    changed = GPT2LMHeadModel(GPT2Config(**size, **{option: value})).eval()
    changed.load_state_dict(ref.state_dict())
    idx = torch.randint(0, 100, (2, 32), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert (changed(idx).logits - ref(idx).logits).abs().max().item() > 1e-3
    with pytest.raises(ValueError, match=option):
        GPT.from_hf(changed)
    gpt_config_from_hf(ref.config)                      # the defaults load


def test_gpt_from_hf_implements_untied_heads_and_upcast_attention():
    """tie_word_embeddings=False is implemented (a separate LM head); reorder_and_upcast_attn is harmless in float32."""
    from transformers import GPT2Config, GPT2LMHeadModel
    size = dict(n_layer=2, n_embd=64, n_head=4, vocab_size=100, n_positions=32)
    idx = torch.randint(0, 100, (2, 32), generator=torch.Generator().manual_seed(1))
    torch.manual_seed(0)
    untied = GPT2LMHeadModel(GPT2Config(**size, tie_word_embeddings=False)).eval()
    upcast = GPT2LMHeadModel(GPT2Config(**size, reorder_and_upcast_attn=True)).eval()
    plain = GPT2LMHeadModel(GPT2Config(**size)).eval()
    upcast.load_state_dict(plain.state_dict())
    with torch.no_grad():
        assert (upcast(idx).logits - plain(idx).logits).abs().max().item() <= 1e-6      # the decision, measured
        for hf in (untied, upcast):
            ours = GPT.from_hf(hf).eval()
            assert (ours(idx) - hf(idx).logits).abs().max().item() <= 1e-4
    assert GPT.from_hf(untied).lm_head.weight is not GPT.from_hf(untied).emb.tok.weight
    untied.config.tie_word_embeddings = True            # a config that no longer fits its weights
    with pytest.raises(ValueError, match="tie_word_embeddings=True but lm_head.weight differs"):
        GPT.from_hf(untied)


@pytest.mark.parametrize("option, value", [
    ("is_decoder", True), ("add_cross_attention", True), ("position_embedding_type", "relative_key"),
    ("position_embedding_type", "relative_key_query"), ("hidden_act", "silu"), ("pruned_heads", {0: [1]}),
])
def test_bert_from_hf_refuses_bert_options_it_does_not_implement(option, value):
    from transformers import BertConfig, BertModel

    from labkit.nn.transformer import bert_config_from_hf
    cfg = BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=32)
    setattr(cfg, option, value)                         # position_embedding_type: a transformers 4.x field
    with pytest.raises(ValueError, match=rf"BertEncoder.from_hf does not implement {option}="):
        bert_config_from_hf(cfg)
    if option in ("is_decoder", "hidden_act"):          # through a real model too
        with pytest.raises(ValueError, match=rf"does not implement {option}="):
            BertEncoder.from_hf(BertModel(cfg))


def test_from_hf_refuses_another_family_and_unknown_options():
    import dataclasses

    from transformers import BertConfig, GPT2Config

    from labkit.nn.transformer import GPT2_OPTIONS, bert_config_from_hf, gpt_config_from_hf
    with pytest.raises(ValueError, match="model_type 'gpt2'; got model_type='bert'"):
        gpt_config_from_hf(BertConfig())
    with pytest.raises(ValueError, match="model_type 'bert'; got model_type='gpt2'"):
        bert_config_from_hf(GPT2Config())
    # a field with no decision (as a newer transformers may add) is refused when it is not at its default
    forgetful = dataclasses.replace(GPT2_OPTIONS, implemented=GPT2_OPTIONS.implemented - {"n_inner"})
    forgetful.check(GPT2Config())
    with pytest.raises(ValueError, match=r"n_inner=128 \(an option it does not know; the default is None\)"):
        forgetful.check(GPT2Config(n_inner=128))
