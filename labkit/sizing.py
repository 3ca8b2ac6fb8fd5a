"""Choosing a model: parameters, FLOPs and memory computed from a config, before anything is built.

Every formula reads a Hugging Face config (``zoo.card(name).config()``, or one from the hub) and returns
exact counts; ``tests/test_sizing.py`` checks them against the instantiated models of every zoo entry,
at the tiny config and at the real one (built on the ``meta`` device: shapes, no memory).

The estimates and their assumptions:

* **forward FLOPs per token** ≈ 2 · (parameters a token is multiplied by) + attention, where attention
  adds 2 · 2 · n_layers · seq_len · d_attn (scores QK^T and the weighted sum of V over a context of
  ``seq_len`` tokens; ``labkit.scale`` of chapter 3.4). Embedding lookups cost no multiply; a mixture of
  experts counts only the experts a token is routed to. For an encoder-decoder, "a token" is one source
  token through the encoder plus one target token through the decoder.
* **training FLOPs per token** ≈ 3 × forward (backward ≈ 2 × forward), i.e. 6 · N for a dense model:
  the C ≈ 6ND rule.
* **memory** counts weights, gradients and optimizer state only (no activations, no KV cache: they grow
  with batch and sequence length; :func:`kv_cache_bytes` gives the cache). Bytes per parameter:

  ============================  =======  =======  ========================================================
  what                          fp32     bf16     int8
  ============================  =======  =======  ========================================================
  inference (weights)           4        2        1
  full fine-tuning, AdamW       16       16       not possible: int8 weights take no gradient steps
  LoRA (frozen base + adapters) 4 + 16·r 2 + 16·r 1 + 16·r
  ============================  =======  =======  ========================================================

  Full fine-tuning with AdamW in fp32 keeps weights (4), gradients (4) and two moments (8). In bf16 it
  is mixed precision: bf16 weights (2) and gradients (2), fp32 moments (8) and an fp32 master copy of
  the weights (4), also 16 bytes. LoRA freezes the base at the chosen precision and trains only its
  adapters (fraction r of the parameters), in fp32 with AdamW: 16 bytes each. The adapters here are rank
  8 on the query and value projections of every attention layer (peft's defaults; the fused QKV
  projection where a model has one).
"""
from __future__ import annotations

import math
from typing import Any

from . import scale
from .check import one_of, whole_number
from .nn.transformer import TransformerConfig

__all__ = ["PRECISIONS", "LORA_TARGETS", "param_count", "param_breakdown", "active_param_count",
           "lora_param_count", "flops_per_token", "image_flops", "memory", "kv_cache_bytes", "architecture",
           "side_by_side", "explorer_grid", "explorer_figure", "ExplorerPanel", "CHOOSING", "choosing_table"]

PRECISIONS = {"fp32": 4, "bf16": 2, "int8": 1}   # bytes per stored weight
ADAMW_FULL = 16   # bytes per trained parameter: fp32 (4 + 4 + 8) or mixed bf16 (2 + 2 + 8 + 4 master)
LORA_RANK = 8


# ------------------------------------------------------------------ building blocks
def linear(n_in: int, n_out: int, bias: bool = True) -> int:
    """A linear layer: an n_out x n_in matrix and (optionally) n_out biases."""
    return n_in * n_out + n_out * bool(bias)


def norm(d: int, bias: bool = True) -> int:
    """LayerNorm: a scale and a shift per feature; RMSNorm (or a bias-free LayerNorm): a scale only."""
    return d * (1 + bool(bias))


def standard_block(d: int, f: int) -> int:
    """The BERT / GPT-2 block (attention with biases, feed-forward, two LayerNorms): chapter 3.4's formula."""
    return scale.block_params(TransformerConfig(vocab_size=1, d_model=d, n_heads=1, d_ff=f))


def attention(d: int, heads: int, kv_heads: int, head_dim: int, *, qkv_bias: bool, out_bias: bool,
              k_bias: bool | None = None) -> int:
    """Q (heads), K and V (kv_heads each, shared by groups of query heads) and the output projection."""
    k_bias = qkv_bias if k_bias is None else k_bias
    return (linear(d, heads * head_dim, qkv_bias) + linear(d, kv_heads * head_dim, k_bias)
            + linear(d, kv_heads * head_dim, qkv_bias) + linear(heads * head_dim, d, out_bias))


def gated_mlp(d: int, f: int, bias: bool = False) -> int:
    """SwiGLU / GeGLU: two d -> f projections (gate and up), one f -> d (down)."""
    return 2 * linear(d, f, bias) + linear(f, d, bias)


# ------------------------------------------------------------------ parameter formulas, one per architecture
def _bert_like(c) -> dict:
    """BERT, RoBERTa, ELECTRA: learned positions and segments, post-LN blocks (+ BERT's pooler)."""
    e = getattr(c, "embedding_size", c.hidden_size)
    parts = {"embeddings": (c.vocab_size + c.max_position_embeddings + c.type_vocab_size) * e + norm(e)}
    if e != c.hidden_size:                                   # ELECTRA-small projects its embeddings up
        parts["embedding projection"] = linear(e, c.hidden_size)
    parts["blocks"] = c.num_hidden_layers * standard_block(c.hidden_size, c.intermediate_size)
    if _architecture(c) in ("BertModel", "RobertaModel"):
        parts["pooler"] = linear(c.hidden_size, c.hidden_size)
    return parts


def _distilbert(c) -> dict:
    return {"embeddings": (c.vocab_size + c.max_position_embeddings) * c.dim + norm(c.dim),
            "blocks": c.n_layers * standard_block(c.dim, c.hidden_dim)}


def _albert(c) -> dict:
    """ALBERT: small factorised embeddings, and *one* block shared by every layer (per group)."""
    e = c.embedding_size
    return {"embeddings": (c.vocab_size + c.max_position_embeddings + c.type_vocab_size) * e + norm(e),
            "embedding projection": linear(e, c.hidden_size),
            "blocks (shared)": c.num_hidden_groups * c.inner_group_num
            * standard_block(c.hidden_size, c.intermediate_size),
            "pooler": linear(c.hidden_size, c.hidden_size)}


def _deberta_v2(c) -> dict:
    """DeBERTa-v2/v3: no absolute positions in the input; one table of relative-position embeddings."""
    d = c.hidden_size
    rows = c.vocab_size + c.max_position_embeddings * bool(c.position_biased_input) + c.type_vocab_size
    parts = {"embeddings": rows * d + norm(d), "blocks": c.num_hidden_layers * standard_block(d, c.intermediate_size)}
    if c.relative_attention:
        buckets = c.position_buckets if c.position_buckets > 0 else (
            c.max_relative_positions if c.max_relative_positions > 0 else c.max_position_embeddings)
        parts["relative positions"] = 2 * buckets * d + norm(d) * ("layer_norm" in c.norm_rel_ebd)
        if not c.share_att_key:
            types = c.pos_att_type if isinstance(c.pos_att_type, list) else c.pos_att_type.split("|")
            parts["blocks"] += c.num_hidden_layers * linear(d, d) * (("c2p" in types) + ("p2c" in types))
    return parts


def _modernbert(c) -> dict:
    """ModernBERT: fused QKV, GeGLU, bias-free pre-LayerNorm (layer 0 has no attention norm: the embedding norm)."""
    d, f = c.hidden_size, c.intermediate_size
    layer = (norm(d, c.norm_bias) + linear(d, 3 * d, c.attention_bias) + linear(d, d, c.attention_bias)
             + norm(d, c.norm_bias) + linear(d, 2 * f, c.mlp_bias) + linear(f, d, c.mlp_bias))
    return {"embeddings": c.vocab_size * d + norm(d, c.norm_bias),
            "blocks": c.num_hidden_layers * layer - norm(d, c.norm_bias), "final norm": norm(d, c.norm_bias)}


def _gpt2(c) -> dict:
    """GPT-2: chapter 3.4's count, through labkit's TransformerConfig."""
    from .nn.transformer import gpt_config_from_hf
    return {"all (chapter 3.4's scale.param_count)": scale.param_count(gpt_config_from_hf(c), "gpt")}


def _head_dim(c) -> int:
    return getattr(c, "head_dim", None) or c.hidden_size // c.num_attention_heads


def _llama_like(c) -> dict:
    """Llama, Qwen2, Mixtral: RoPE (no position table), RMSNorm, grouped-query attention, SwiGLU or experts."""
    d, hd = c.hidden_size, _head_dim(c)
    qkv_bias = c.model_type == "qwen2" or bool(getattr(c, "attention_bias", False))
    out_bias = c.model_type != "qwen2" and bool(getattr(c, "attention_bias", False))
    attn = attention(d, c.num_attention_heads, c.num_key_value_heads, hd, qkv_bias=qkv_bias, out_bias=out_bias)
    if c.model_type == "mixtral":
        ffn = linear(d, c.num_local_experts, bias=False) + c.num_local_experts * gated_mlp(d, c.intermediate_size)
    else:
        ffn = gated_mlp(d, c.intermediate_size, bias=bool(getattr(c, "mlp_bias", False)))
    parts = {"embeddings": c.vocab_size * d, "blocks": c.num_hidden_layers * (attn + ffn + 2 * norm(d, False)),
             "final norm": norm(d, False)}
    if not c.tie_word_embeddings:
        parts["LM head"] = c.vocab_size * d
    return parts


def _t5(c) -> dict:
    """T5: no biases, RMS-style LayerNorm, a relative-position bias table in the first block of each stack."""
    d, inner = c.d_model, c.num_heads * c.d_kv
    attn = 4 * d * inner
    ffn = (3 if c.is_gated_act else 2) * d * c.d_ff
    rel = c.relative_attention_num_buckets * c.num_heads
    parts = {"shared embedding": c.vocab_size * d,
             "encoder": c.num_layers * (attn + ffn + 2 * norm(d, False)) + rel + norm(d, False),
             "decoder": c.num_decoder_layers * (2 * attn + ffn + 3 * norm(d, False)) + rel + norm(d, False)}
    if not c.tie_word_embeddings:
        parts["LM head"] = c.vocab_size * d
    return parts


def _bart_like(c) -> dict:
    """BART (learned positions, offset 2, embedding LayerNorm) and Marian (sinusoidal positions, kept as a table)."""
    d = c.d_model
    offset = 2 if c.model_type == "bart" else 0
    emb_norm = norm(d) if c.model_type == "bart" else 0
    positions = (c.max_position_embeddings + offset) * d
    cross = 4 * linear(d, d) + norm(d)
    return {"shared embedding": c.vocab_size * d,
            "encoder": positions + emb_norm + c.encoder_layers * standard_block(d, c.encoder_ffn_dim),
            "decoder": positions + emb_norm + c.decoder_layers * (standard_block(d, c.decoder_ffn_dim) + cross)}


def _whisper(c) -> dict:
    """Whisper: two convolutions over the log-Mel frames, sinusoidal encoder positions; K projections have no bias."""
    d = c.d_model
    no_k_bias = -d                                           # standard_block counts a K bias Whisper lacks
    front = linear(3 * c.num_mel_bins, d) + linear(3 * d, d)  # conv1, conv2 (kernel 3)
    cross = 4 * linear(d, d) + no_k_bias + norm(d)
    return {"encoder": front + c.max_source_positions * d
            + c.encoder_layers * (standard_block(d, c.encoder_ffn_dim) + no_k_bias) + norm(d),
            "decoder": (c.vocab_size + c.max_target_positions) * d
            + c.decoder_layers * (standard_block(d, c.decoder_ffn_dim) + no_k_bias + cross) + norm(d)}


def _vit_tower(v, *, patch_bias: bool, qkv_bias: bool = True, extra_norms: int) -> int:
    """Class token, positions over the patch grid, the patch projection, pre-LN blocks and extra norms."""
    d, n = v.hidden_size, (v.image_size // v.patch_size) ** 2
    return (d + (n + 1) * d + linear(v.num_channels * v.patch_size ** 2, d, patch_bias)
            + v.num_hidden_layers * (standard_block(d, v.intermediate_size) - 3 * d * (not qkv_bias))
            + extra_norms * norm(d))


def _vit(c) -> dict:
    """ViT: class token, learned positions over the patch grid, pre-LN blocks, final LayerNorm, classifier."""
    return {"encoder": _vit_tower(c, patch_bias=True, qkv_bias=c.qkv_bias, extra_norms=1),
            "classifier": linear(c.hidden_size, c.num_labels)}


def _clip(c) -> dict:
    """CLIP: a text Transformer and a ViT, each projected (no bias) into one shared space; a learned temperature."""
    t, v = c.text_config, c.vision_config
    text = (t.vocab_size + t.max_position_embeddings) * t.hidden_size + t.num_hidden_layers * standard_block(
        t.hidden_size, t.intermediate_size) + norm(t.hidden_size)
    vision = _vit_tower(v, patch_bias=False, extra_norms=2)
    return {"text tower": text, "image tower": vision,
            "projections": c.projection_dim * (t.hidden_size + v.hidden_size), "temperature": 1}


def _wav2vec2(c) -> dict:
    """wav2vec 2.0: a convolutional feature encoder, a convolutional position embedding, a Transformer, a CTC head."""
    h, dims = c.hidden_size, list(c.conv_dim)
    feat = 0
    for i, (k, out) in enumerate(zip(c.conv_kernel, dims)):
        feat += linear(k * (dims[i - 1] if i else 1), out, c.conv_bias)
        if c.feat_extract_norm == "layer" or i == 0:       # "group": a GroupNorm on the first conv only
            feat += norm(out)
    k = c.num_conv_pos_embeddings
    pos_conv = k + h * (h // c.num_conv_pos_embedding_groups) * k + h   # weight norm: g and v, then a bias
    parts = {"feature encoder": feat, "feature projection": norm(dims[-1]) + linear(dims[-1], h),
             "position convolution": pos_conv,
             "blocks": c.num_hidden_layers * standard_block(h, c.intermediate_size) + norm(h),
             "CTC head": linear(h, c.vocab_size)}
    if c.mask_time_prob > 0 or c.mask_feature_prob > 0:
        parts["mask embedding"] = h
    return parts


def _resnet(c) -> dict:
    """ResNet: convolutions without bias, each followed by BatchNorm; a 1x1 shortcut where the shape changes."""
    conv_bn = lambda a, b, k: a * b * k * k + norm(b)      # noqa: E731
    parts = {"stem": conv_bn(c.num_channels, c.embedding_size, 7)}
    c_in = c.embedding_size
    for s, (out, depth) in enumerate(zip(c.hidden_sizes, c.depths)):
        stride = 2 if s > 0 or c.downsample_in_first_stage else 1
        n = 0
        for i in range(depth):
            a = c_in if i == 0 else out
            if c.layer_type == "bottleneck":
                r = out // 4
                n += conv_bn(a, r, 1) + conv_bn(r, r, 3) + conv_bn(r, out, 1)
            else:
                n += conv_bn(a, out, 3) + conv_bn(out, out, 3)
            if i == 0 and (a != out or stride != 1):
                n += conv_bn(a, out, 1)
        parts[f"stage {s + 1}"] = n
        c_in = out
    parts["classifier"] = linear(c.hidden_sizes[-1], c.num_labels)
    return parts


def _convnext(c) -> dict:
    """ConvNeXt: a 4x4 'patchify' stem; blocks of a 7x7 depthwise conv, LayerNorm, 4x MLP and a layer scale."""
    h = c.hidden_sizes
    parts = {"stem": linear(c.num_channels * c.patch_size ** 2, h[0]) + norm(h[0])}
    for s, (out, depth) in enumerate(zip(h, c.depths)):
        down = norm(h[s - 1]) + linear(h[s - 1] * 4, out) if s > 0 else 0      # LayerNorm + 2x2 conv
        block = out * 49 + out + norm(out) + linear(out, 4 * out) + linear(4 * out, out) \
            + out * (c.layer_scale_init_value > 0)
        parts[f"stage {s + 1}"] = down + depth * block
    parts["final norm + classifier"] = norm(h[-1]) + linear(h[-1], c.num_labels)
    return parts


def _efficientnet(c) -> dict:
    """EfficientNet-Lite0: the vision chapter's count from the block table (labkit.nn.efficientnet)."""
    from .nn.efficientnet import lite0_parameter_count
    return {"all (lite0_parameter_count)": lite0_parameter_count(c.stages, c.num_classes)}


_FORMULAS = {
    "bert": _bert_like, "roberta": _bert_like, "electra": _bert_like, "distilbert": _distilbert,
    "albert": _albert, "deberta-v2": _deberta_v2, "modernbert": _modernbert, "gpt2": _gpt2,
    "llama": _llama_like, "qwen2": _llama_like, "mixtral": _llama_like, "t5": _t5, "bart": _bart_like,
    "marian": _bart_like, "whisper": _whisper, "vit": _vit, "clip": _clip, "wav2vec2": _wav2vec2,
    "resnet": _resnet, "convnext": _convnext, "efficientnet-lite": _efficientnet,
}
# The class each formula counts (the zoo builds these): a different head changes the count.
_CLASSES = {
    "bert": "BertModel", "roberta": "RobertaModel", "electra": "ElectraModel", "distilbert": "DistilBertModel",
    "albert": "AlbertModel", "deberta-v2": "DebertaV2Model", "modernbert": "ModernBertModel",
    "gpt2": "GPT2LMHeadModel", "llama": "LlamaForCausalLM", "qwen2": "Qwen2ForCausalLM",
    "mixtral": "MixtralForCausalLM", "t5": "T5ForConditionalGeneration", "bart": "BartForConditionalGeneration",
    "marian": "MarianMTModel", "whisper": "WhisperForConditionalGeneration", "vit": "ViTForImageClassification",
    "clip": "CLIPModel", "wav2vec2": "Wav2Vec2ForCTC", "resnet": "ResNetForImageClassification",
    "convnext": "ConvNextForImageClassification", "efficientnet-lite": "labkit.nn.efficientnet:EfficientNetLite0",
}


def _architecture(c) -> str:
    """The model class a config describes (its ``architectures``; the zoo's class when it names none)."""
    return (getattr(c, "architectures", None) or [_CLASSES[c.model_type]])[0]


def _checked(config) -> Any:
    kind = getattr(config, "model_type", None)
    one_of("config.model_type", kind, _FORMULAS)
    arch = _architecture(config)
    if arch != _CLASSES[kind]:
        raise ValueError(f"the formulas count {_CLASSES[kind]} for a {kind!r} config; got architectures={arch!r}")
    if kind != "efficientnet-lite":
        from .zoo import check_config
        check_config(config)
    return config


def param_breakdown(config) -> dict[str, int]:
    """Parameters by part (embeddings, blocks, heads...) of the model a zoo config describes."""
    c = _checked(config)
    return _FORMULAS[c.model_type](c)


def param_count(config) -> int:
    """Every parameter of the model a zoo config describes (tied weights once), from the config alone."""
    return sum(param_breakdown(config).values())


def active_param_count(config) -> int:
    """Parameters one token uses: all of them, except a mixture of experts, which routes to top-k of its experts."""
    n = param_count(config)
    if config.model_type == "mixtral":
        unused = config.num_local_experts - config.num_experts_per_tok
        n -= config.num_hidden_layers * unused * gated_mlp(config.hidden_size, config.intermediate_size)
    return n


# ------------------------------------------------------------------ LoRA, FLOPs, memory
def _attention_stacks(c) -> list[tuple[int, int, int, int, bool]]:
    """(layers, width, query width, value width, fused QKV?) of each attention stack: LoRA's targets."""
    t = c.model_type
    if t in ("bert", "roberta", "electra", "deberta-v2", "vit", "wav2vec2"):
        return [(c.num_hidden_layers, c.hidden_size, c.hidden_size, c.hidden_size, False)]
    if t == "albert":   # one shared block: its adapters are shared too
        return [(c.num_hidden_groups * c.inner_group_num, c.hidden_size, c.hidden_size, c.hidden_size, False)]
    if t == "distilbert":
        return [(c.n_layers, c.dim, c.dim, c.dim, False)]
    if t == "modernbert":
        return [(c.num_hidden_layers, c.hidden_size, 3 * c.hidden_size, 0, True)]
    if t == "gpt2":
        return [(c.n_layer, c.n_embd, 3 * c.n_embd, 0, True)]
    if t in ("llama", "qwen2", "mixtral"):
        hd = _head_dim(c)
        return [(c.num_hidden_layers, c.hidden_size, c.num_attention_heads * hd, c.num_key_value_heads * hd, False)]
    if t == "t5":
        inner = c.num_heads * c.d_kv
        return [(c.num_layers + 2 * c.num_decoder_layers, c.d_model, inner, inner, False)]
    if t in ("bart", "marian", "whisper"):
        return [(c.encoder_layers + 2 * c.decoder_layers, c.d_model, c.d_model, c.d_model, False)]
    if t == "clip":
        return [(s.num_hidden_layers, s.hidden_size, s.hidden_size, s.hidden_size, False)
                for s in (c.text_config, c.vision_config)]
    return []   # convolutional networks: no attention


# The module names peft's ``target_modules`` needs for the same adapters (query and value, or fused QKV).
LORA_TARGETS = {
    "bert": ["query", "value"], "roberta": ["query", "value"], "electra": ["query", "value"],
    "albert": ["query", "value"], "distilbert": ["q_lin", "v_lin"], "deberta-v2": ["query_proj", "value_proj"],
    "modernbert": ["Wqkv"], "gpt2": ["c_attn"], "llama": ["q_proj", "v_proj"], "qwen2": ["q_proj", "v_proj"],
    "mixtral": ["q_proj", "v_proj"], "t5": ["q", "v"], "bart": ["q_proj", "v_proj"], "marian": ["q_proj", "v_proj"],
    "whisper": ["q_proj", "v_proj"], "vit": ["q_proj", "v_proj"], "clip": ["q_proj", "v_proj"],
    "wav2vec2": ["q_proj", "v_proj"],
}


def lora_param_count(config, r: int = LORA_RANK) -> int:
    """LoRA adapters of rank ``r`` on every query and value projection (the fused QKV one where fused).

    A d_in -> d_out projection gains A (r x d_in) and B (d_out x r): r (d_in + d_out) parameters.
    0 for a network without attention (LoRA is then not the usual choice).
    """
    whole_number("r (the LoRA rank)", r, minimum=1)
    return sum(layers * r * ((d + q) + (d + v if not fused else 0))
               for layers, d, q, v, fused in _attention_stacks(_checked(config)))


def _attention_width(c) -> list[tuple[int, int]]:
    """(layers, heads x head size) of the self-attention a token goes through (cross-attention counted too)."""
    if c.model_type == "albert":   # the shared block runs in every layer
        return [(c.num_hidden_layers, c.hidden_size)]
    return [(layers, q) for layers, _, q, _, fused in _attention_stacks(c) if not fused] or \
           [(layers, q // 3) for layers, _, q, _, fused in _attention_stacks(c) if fused]


def _lookup_tables(c) -> int:
    """Parameters a token looks up rather than multiplies: token tables (unless tied to the LM head, which
    multiplies), position and segment tables, class tokens, relative-position tables."""
    t = c.model_type
    if t in ("bert", "roberta", "electra", "albert"):
        return (c.vocab_size + c.max_position_embeddings + c.type_vocab_size) * getattr(c, "embedding_size",
                                                                                       c.hidden_size)
    if t == "distilbert":
        return (c.vocab_size + c.max_position_embeddings) * c.dim
    if t == "deberta-v2":
        return param_breakdown(c)["embeddings"] - norm(c.hidden_size) + param_breakdown(c).get(
            "relative positions", 0) - norm(c.hidden_size) * ("layer_norm" in c.norm_rel_ebd)
    if t == "modernbert":
        return c.vocab_size * c.hidden_size
    if t in ("llama", "qwen2", "mixtral"):
        return 0 if c.tie_word_embeddings else c.vocab_size * c.hidden_size
    if t == "gpt2":
        return c.n_positions * c.n_embd
    if t == "t5":
        return 2 * c.relative_attention_num_buckets * c.num_heads + (0 if c.tie_word_embeddings
                                                                     else c.vocab_size * c.d_model)
    if t in ("bart", "marian"):
        return 2 * (c.max_position_embeddings + (2 if t == "bart" else 0)) * c.d_model
    if t == "whisper":
        return (c.max_source_positions + c.max_target_positions) * c.d_model
    if t == "vit":
        return ((c.image_size // c.patch_size) ** 2 + 2) * c.hidden_size
    if t == "clip":
        tc, v = c.text_config, c.vision_config
        return (tc.vocab_size + tc.max_position_embeddings) * tc.hidden_size + (
            (v.image_size // v.patch_size) ** 2 + 2) * v.hidden_size + 1
    if t == "wav2vec2":
        return param_breakdown(c).get("mask embedding", 0)
    return 0


def _per_sequence(c) -> int:
    """Parameters of heads that run once per sequence or image, not once per token."""
    parts = param_breakdown(c)
    return parts.get("pooler", 0) + parts.get("classifier", 0) + parts.get("projections", 0)


def _reused(c) -> int:
    """ALBERT runs its one shared block in every layer: parameters saved, compute not."""
    if c.model_type == "albert":
        return (c.num_hidden_layers - 1) * param_breakdown(c)["blocks (shared)"]
    return 0


def _relative(c, seq_len: int) -> float:
    """DeBERTa's disentangled attention: content-to-position and position-to-content scores over the
    2k relative positions (per token), plus projecting the relative table through W_Q and W_K (per sequence)."""
    if c.model_type != "deberta-v2" or not c.relative_attention:
        return 0.0
    span, d = 2 * param_breakdown(c)["relative positions"] // (2 * c.hidden_size), c.hidden_size
    return c.num_hidden_layers * (2 * 2.0 * span * d + 2 * 2.0 * span * d * d / seq_len)


def _front_end(c) -> tuple[int, float]:
    """(parameters, forward FLOPs per token) of a convolutional front end that runs at a higher frame rate
    than the Transformer after it: its weights are applied several times per token, so 2 x params is wrong."""
    if c.model_type == "wav2vec2":   # per 20 ms frame, conv layer i runs at the product of the later strides
        dims, flops = [1] + list(c.conv_dim), 0.0
        for i, (k, stride) in enumerate(zip(c.conv_kernel, c.conv_stride)):
            flops += 2.0 * k * dims[i] * dims[i + 1] * math.prod(c.conv_stride[i + 1:])
        parts = param_breakdown(c)
        pos = parts["position convolution"]
        return parts["feature encoder"] + pos, flops + 2.0 * (pos - c.num_conv_pos_embeddings - c.hidden_size)
    if c.model_type == "whisper":    # conv1 runs on 2 Mel frames per encoder position, conv2 (stride 2) on 1
        d = c.d_model
        return linear(3 * c.num_mel_bins, d) + linear(3 * d, d), 2.0 * (2 * 3 * c.num_mel_bins * d + 3 * d * d)
    return 0, 0.0


def flops_per_token(config, seq_len: int | None = None) -> dict[str, float]:
    """Forward and training FLOPs per token: 2 · N_multiplied + attention, and 3x that (6N) for training.

    ``seq_len``: the context the attention term assumes (default: the model's context, at most 2,048).
    Encoder-decoders (and CLIP's two towers): per token of each stack. Convolutional networks have no
    tokens: for them the counts are per *image* (see :func:`image_flops`).
    """
    c = _checked(config)
    if c.model_type in ("resnet", "convnext", "efficientnet-lite"):
        f = image_flops(c)
        return {"unit": "image", "forward": f, "training": 3 * f, "attention": 0.0, "seq_len": None}
    seq_len = seq_len or min(_context_tokens(c) or 2048, 2048)
    whole_number("seq_len", seq_len, minimum=1)
    front_params, front_flops = _front_end(c)
    once = _per_sequence(c)                     # heads applied once per sequence (pooler, classifier)
    multiplied = active_param_count(c) - _lookup_tables(c) - front_params - once + _reused(c)
    attn = sum(scale.attention_flops_per_token(TransformerConfig(vocab_size=1, d_model=w, n_heads=1, n_layers=n),
                                               seq_len) for n, w in _attention_width(c)) + _relative(c, seq_len)
    forward = 2.0 * multiplied + front_flops + attn + 2.0 * once / seq_len
    return {"unit": "token", "forward": forward, "training": 3 * forward, "attention": attn, "seq_len": seq_len,
            "multiplied parameters": multiplied}


def image_flops(config) -> float:
    """Forward FLOPs of one image at the config's size, counted by torch's FLOP counter running the network
    built from the config on the meta device (shapes only: no memory, no arithmetic)."""
    import torch
    import transformers
    from torch.utils.flop_counter import FlopCounterMode

    from .zoo import _labkit_class
    arch, size = _architecture(config), getattr(config, "image_size", None) or 224
    with torch.device("meta"), FlopCounterMode(display=False) as counter:
        if ":" in arch:   # labkit's EfficientNet-Lite0: its config is its block table
            model = _labkit_class(arch)(num_classes=config.num_classes, stages=config.stages).eval()
            model(torch.empty(1, 3, size, size))
        else:
            getattr(transformers, arch)(config).eval()(pixel_values=torch.empty(1, 3, size, size))
    return float(counter.get_total_flops())


def _context_tokens(c) -> int | None:
    from .zoo import _context
    if c.model_type == "clip":
        return c.text_config.max_position_embeddings
    if c.model_type == "vit":
        return (c.image_size // c.patch_size) ** 2 + 1
    if c.model_type == "whisper":
        return c.max_source_positions
    if c.model_type == "wav2vec2":
        return None
    if c.model_type == "t5":       # relative positions: no hard limit; pretrained at 512
        return 512
    return _context(c)


def kv_cache_bytes(config, seq_len: int, batch: int = 1, precision: str = "bf16") -> int:
    """Bytes of a decoder's KV cache: 2 (K and V) x layers x KV heads x head size x tokens x batch x bytes."""
    one_of("precision", precision, PRECISIONS)
    c = _checked(config)
    if c.model_type not in ("llama", "qwen2", "mixtral", "gpt2"):
        raise ValueError(f"kv_cache_bytes is for decoders; got a {c.model_type!r} config")
    if c.model_type == "gpt2":
        layers, kv_width = c.n_layer, c.n_embd
    else:
        layers, kv_width = c.num_hidden_layers, c.num_key_value_heads * _head_dim(c)
    return 2 * layers * kv_width * seq_len * batch * PRECISIONS[precision]


def memory(config, precision: str = "bf16", r: int = LORA_RANK) -> dict[str, float | None]:
    """Bytes for inference, full fine-tuning (AdamW) and LoRA at one precision (assumptions: module docstring).

    Full fine-tuning at int8 is None: int8 weights are not trained by gradient steps.
    """
    one_of("precision", precision, PRECISIONS)
    n, b = param_count(config), PRECISIONS[precision]
    lora = lora_param_count(config, r)
    full = None
    if precision != "int8":
        full = scale.training_memory(n, weight_bytes=b, grad_bytes=b, master_copy=precision == "bf16")["total"]
    return {"parameters": n, "inference": n * b, "full fine-tuning": full,
            "LoRA": n * b + lora * ADAMW_FULL if lora else None, "LoRA parameters": lora}


# ------------------------------------------------------------------ the side-by-side table
def _act(c) -> str:
    for key in ("hidden_act", "hidden_activation", "activation_function", "activation", "dense_act_fn"):
        v = getattr(c, key, None)
        if isinstance(v, str):
            return v
    return "?"


def _rope_theta(c) -> float | None:
    theta = getattr(c, "rope_theta", None)
    params = getattr(c, "rope_parameters", None) or {}
    if theta is None and isinstance(params, dict):
        theta = params.get("rope_theta") or (params.get("full_attention") or {}).get("rope_theta")
    return theta


def _heads(c) -> tuple[int | None, int | None]:
    for key in ("num_attention_heads", "encoder_attention_heads", "n_head", "n_heads", "num_heads"):
        if getattr(c, key, None):
            return getattr(c, key), getattr(c, "num_key_value_heads", None) or getattr(c, key)
    if getattr(c, "text_config", None) is not None:
        return _heads(c.text_config)
    return None, None


def architecture(config) -> dict[str, Any]:
    """One row of the side-by-side table: what differs between architectures, read from the config."""
    c = _checked(config)
    t = c.model_type
    heads, kv = _heads(c)
    if heads is None:
        attn = "none (convolutions)"
    else:
        variant = "MHA" if kv == heads else ("MQA" if kv == 1 else "GQA")
        attn = f"{variant} {heads}/{kv}" if variant != "MHA" else f"MHA {heads}"
    theta = _rope_theta(c)
    positional = {
        "bert": "learned absolute", "roberta": "learned absolute", "electra": "learned absolute",
        "distilbert": "learned absolute", "albert": "learned absolute", "gpt2": "learned absolute",
        "bart": "learned absolute", "clip": "learned absolute", "vit": "learned (patch grid)",
        "deberta-v2": f"relative, disentangled ({getattr(c, 'position_buckets', 0)} buckets)",
        "modernbert": "RoPE (global / local θ)", "llama": f"RoPE (θ={theta:g})" if theta else "RoPE",
        "qwen2": f"RoPE (θ={theta:g})" if theta else "RoPE", "mixtral": f"RoPE (θ={theta:g})" if theta else "RoPE",
        "t5": f"relative bias ({getattr(c, 'relative_attention_num_buckets', '?')} buckets)",
        "marian": "sinusoidal", "whisper": "sinusoidal (encoder), learned (decoder)",
        "wav2vec2": f"convolutional (kernel {getattr(c, 'num_conv_pos_embeddings', '?')})",
    }.get(t, "none (convolutions)")
    norm_place = {
        "gpt2": "pre-LN", "vit": "pre-LN", "clip": "pre-LN", "whisper": "pre-LN",
        "t5": "pre, RMS (T5 LayerNorm)", "llama": "pre, RMSNorm", "qwen2": "pre, RMSNorm", "mixtral": "pre, RMSNorm",
        "modernbert": "pre-LN (no bias)", "resnet": "BatchNorm after each conv", "convnext": "LayerNorm in each block",
        "efficientnet-lite": "BatchNorm after each conv",
        "wav2vec2": "pre-LN" if getattr(c, "do_stable_layer_norm", False) else "post-LN",
    }.get(t, "post-LN")
    act = _act(c) if t != "efficientnet-lite" else "relu6"
    if t in ("llama", "qwen2", "mixtral"):
        act = f"SwiGLU ({act})"
    elif t == "modernbert":
        act = f"GeGLU ({act})"
    elif t == "t5" and getattr(c, "is_gated_act", False):
        act = f"gated {act}"
    vocab = getattr(c, "vocab_size", None) or getattr(getattr(c, "text_config", None), "vocab_size", None)
    if t in ("vit", "resnet", "convnext", "efficientnet-lite"):
        vocab = None
    ctx = _context_tokens(c)
    n, active = param_count(c), active_param_count(c)
    return {"positional encoding": positional, "norm": norm_place, "activation": act, "attention": attn,
            "vocabulary": vocab, "context": ctx, "parameters": n,
            "active per token": active if active != n else None}


def side_by_side(names: list[str] | None = None, size: str = "real"):
    """The side-by-side table of the zoo (a pandas DataFrame), one row per entry, computed from the configs."""
    import pandas as pd

    from . import zoo
    rows = []
    for name in names or list(zoo.REGISTRY):
        cd = zoo.card(name)
        rows.append({"model": name, "family": cd.family, **architecture(cd.config(size))})
    return pd.DataFrame(rows).set_index("model")


# ------------------------------------------------------------------ the explorer
def explorer_grid(names: list[str] | None = None, r: int = LORA_RANK):
    """Every (model, precision) of the zoo at its real size: parameters, FLOPs per token, memory in GiB."""
    import pandas as pd

    from . import zoo
    rows = []
    for name in names or list(zoo.REGISTRY):
        cd = zoo.card(name)
        cfg = cd.config("real")
        fl = flops_per_token(cfg)
        for precision in PRECISIONS:
            m = memory(cfg, precision, r)
            gib = lambda v: None if v is None else v / 2**30   # noqa: E731
            rows.append({"family": cd.family, "model": name, "precision": precision,
                         "parameters": m["parameters"], "active parameters": active_param_count(cfg),
                         "FLOPs per": fl["unit"], "forward GFLOPs": fl["forward"] / 1e9,
                         "training GFLOPs": fl["training"] / 1e9, "inference GiB": gib(m["inference"]),
                         "full fine-tuning GiB": gib(m["full fine-tuning"]), "LoRA GiB": gib(m["LoRA"]),
                         "LoRA parameters": m["LoRA parameters"]})
    return pd.DataFrame(rows)


def explorer_figure(grid):
    """A plotly bar chart of memory per model with a dropdown over precision: the explorer for the static book."""
    import plotly.graph_objects as go
    kinds = ["inference GiB", "full fine-tuning GiB", "LoRA GiB"]
    precisions = list(PRECISIONS)
    fig = go.Figure()
    for p in precisions:
        g = grid[grid.precision == p]
        for k in kinds:
            fig.add_trace(go.Bar(x=g.model, y=g[k], name=k.replace(" GiB", ""), visible=p == "bf16",
                                 customdata=g[["parameters", "forward GFLOPs", "FLOPs per"]].values,
                                 hovertemplate="%{x}<br>" + k + ": %{y:.3g} GiB<br>%{customdata[0]:,} parameters"
                                               "<br>forward %{customdata[1]:.3g} GFLOPs per %{customdata[2]}"
                                               "<extra></extra>"))
    buttons = [dict(label=p, method="update",
                    args=[{"visible": [q == p for q in precisions for _ in kinds]},
                          {"title": f"Memory at {p} (weights, gradients, AdamW state; no activations)"}])
               for p in precisions]
    fig.update_layout(barmode="group", yaxis_type="log", yaxis_title="GiB (log scale)", height=520,
                      title="Memory at bf16 (weights, gradients, AdamW state; no activations)",
                      updatemenus=[dict(buttons=buttons, direction="down", x=1.0, y=1.15, active=1)],
                      xaxis_tickangle=-45, xaxis_title="model")
    return fig


def _explorer_panel_class():
    from .widgets import Choice, Panel

    class ExplorerPanel(Panel):
        """Family, model and precision dropdowns; the model list follows the family."""

        def __init__(self, grid, show):
            from . import zoo
            families = [f for f in zoo.FAMILIES if f in set(grid.family)]
            first = grid[grid.family == families[0]].model.iloc[0]
            self.grid = grid
            super().__init__(show, title="Model explorer · 模型浏览器", validate=self._same_family,
                             family=Choice(families, families[0]), model=Choice(list(dict.fromkeys(grid.model)), first),
                             precision=Choice(list(PRECISIONS), "bf16"))

        def _same_family(self, values):
            fam = self.grid[self.grid.model == values["model"]].family.iloc[0]
            if fam != values["family"]:
                return f"model {values['model']!r} is in the family {fam!r}, not {values['family']!r}"
            return None

        def widget(self):
            box = super().widget()
            family, model = self._controls["family"], self._controls["model"]

            def follow(change):
                options = list(dict.fromkeys(self.grid[self.grid.family == change["new"]].model))
                model.options = options
                model.value = options[0]
            family.observe(follow, names="value")
            follow({"new": family.value})
            return box

    return ExplorerPanel


def ExplorerPanel(grid=None):
    """The explorer as a :class:`labkit.widgets.Panel`: choose family, model, precision; Run shows the figures.

    In a live kernel the model list follows the family; headless (the book), the panel describes its
    controls and ``panel.run()`` shows the default choice.
    """
    grid = explorer_grid() if grid is None else grid

    def show(family, model, precision):
        row = grid[(grid.model == model) & (grid.precision == precision)].iloc[0]
        fmt = lambda v: "—" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:,.2f} GiB"  # noqa
        print(f"{model} ({family}, {precision}): {row['parameters']:,} parameters"
              + (f" ({row['active parameters']:,} active per token)" if row["active parameters"] != row["parameters"]
                 else ""))
        print(f"  forward {row['forward GFLOPs']:,.2f} GFLOPs per {row['FLOPs per']}, "
              f"training {row['training GFLOPs']:,.2f}")
        print(f"  inference {fmt(row['inference GiB'])} · full fine-tuning {fmt(row['full fine-tuning GiB'])}"
              f" · LoRA r={LORA_RANK} {fmt(row['LoRA GiB'])} ({row['LoRA parameters']:,} adapter parameters)")
        return row

    return _explorer_panel_class()(grid, show)


# ------------------------------------------------------------------ choosing: task -> family -> checkpoint
CHOOSING = [
    ("sentence embeddings, semantic search, clustering", "encoder", "all-MiniLM-L6-v2",
     "trained contrastively for sentence similarity; 22.7M parameters run on a CPU"),
    ("text classification / NER with a few thousand labels", "encoder", "deberta-v3-base",
     "bidirectional context suits labelling; replaced-token detection pretraining fine-tunes strongly; "
     "start smaller (distilbert-base-uncased) when latency matters"),
    ("classification of long documents (thousands of tokens)", "encoder", "ModernBERT-base",
     "8,192-token context with RoPE and local/global attention"),
    ("open-ended generation, chat, few-shot prompting", "decoder", "Qwen2.5-0.5B",
     "causal LM; Apache-2.0; small enough to fine-tune with LoRA on one GPU; scale up in the same family"),
    ("a large generator served on big GPUs, where compute per token matters more than memory",
     "mixture-of-experts", "Mixtral-8x7B",
     "each token uses 2 of 8 experts (12.9B of 46.7B parameters), but all 46.7B must sit in memory"),
    ("summarisation, rewriting (input text -> output text)", "encoder-decoder", "bart-base",
     "denoising pretraining reconstructs text; the encoder reads the whole input, the decoder writes"),
    ("many text-to-text tasks behind one interface", "encoder-decoder", "t5-small",
     "every task is 'text in, text out' with a task prefix"),
    ("English -> Chinese translation", "encoder-decoder", "opus-mt-en-zh",
     "trained for exactly this language pair; 78M parameters"),
    ("image classification on a phone or CPU", "vision", "efficientnet-lite0",
     "4.7M parameters; designed for int8 on mobile (ReLU6, no squeeze-and-excitation)"),
    ("image classification / transfer with a GPU", "vision", "convnext-tiny-224",
     "a CNN modernised with Transformer-era design choices; its paper reports it competitive with Swin "
     "Transformers of similar size"),
    ("speech recognition (English)", "audio", "wav2vec2-base-960h",
     "fine-tuned with CTC on 960 h of LibriSpeech; outputs characters frame by frame"),
    ("speech recognition or translation, many languages", "audio", "whisper-tiny",
     "trained on 680,000 h of weakly labelled audio; scale up to larger Whisper sizes"),
    ("zero-shot image classification, image-text search", "multimodal", "clip-vit-base-patch32",
     "images and texts in one embedding space: classify by comparing with captions"),
]


def choosing_table():
    """The decision table "task -> family -> starting checkpoint", with the reasons (a DataFrame)."""
    import pandas as pd
    return pd.DataFrame(CHOOSING, columns=["task", "family", "starting checkpoint", "why"])
