"""An encoder-decoder Transformer (BART layout) from scratch: what an encoder and a decoder need to talk.

The encoder is chapter 3.2's post-LN ``Block`` stack, reading the source with bidirectional attention.
The decoder adds two things to it, one class each:

* a **causal** self-attention: target position t sees targets 0..t only (it is trained to predict t+1);
* a **cross-attention** between the two: queries from the decoder, keys and values from the encoder's
  output (the "memory"), so every target position can read the whole source.

Positions are learned vectors, as in BERT and GPT-2, with BART's quirk: the table starts at row 2.
``Seq2Seq.from_hf`` copies a Hugging Face ``BartModel`` / ``BartForConditionalGeneration`` into these
modules and reproduces its outputs to float precision.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from .attention import MultiHeadAttention, padding_mask, scaled_dot_product_attention
from .transformer import (_NO_PRUNING, HF_ACTIVATIONS, Block, FeedForward, HFOptions, TransformerConfig,
                          make_norm)


@dataclass
class Seq2SeqConfig(TransformerConfig):
    """TransformerConfig (n_layers = encoder layers) plus what an encoder-decoder adds. Defaults follow BART."""
    n_decoder_layers: int | None = None   # None -> n_layers
    scale_embedding: bool = False         # multiply token embeddings by sqrt(d_model) (mBART, BART-large-cnn: no)

    def __post_init__(self):
        super().__post_init__()
        if self.n_decoder_layers is None:
            self.n_decoder_layers = self.n_layers
        if int(self.n_decoder_layers) < 1:
            raise ValueError(f"n_decoder_layers must be >= 1; got {self.n_decoder_layers!r}")


def _false(v, c) -> bool:
    return v is False


BART_OPTIONS = HFOptions(
    "Seq2Seq.from_hf", ("bart",),
    implemented=frozenset({"vocab_size", "d_model", "encoder_layers", "decoder_layers", "encoder_attention_heads",
                           "encoder_ffn_dim", "max_position_embeddings", "scale_embedding"}),
    # LayerDrop skips layers only in training; is_decoder is read by BartForCausalLM alone; classifier and
    # generation settings act after the model
    harmless=frozenset({"dropout", "attention_dropout", "activation_dropout", "classifier_dropout", "init_std",
                        "encoder_layerdrop", "decoder_layerdrop", "forced_eos_token_id", "forced_bos_token_id",
                        "is_decoder"}),
    refused={"activation_function": ("one of " + ", ".join(HF_ACTIVATIONS), lambda v, c: v in HF_ACTIVATIONS),
             "decoder_attention_heads": ("as many decoder as encoder attention heads",
                                         lambda v, c: v == c.encoder_attention_heads),
             "decoder_ffn_dim": ("decoder_ffn_dim = encoder_ffn_dim", lambda v, c: v == c.encoder_ffn_dim),
             "tie_word_embeddings": ("tie_word_embeddings=True: one token embedding for encoder, decoder and "
                                     "LM head", lambda v, c: v is True),
             # fields of BART configs written by transformers 3.x (mBART-style layouts), ignored by 4.x and 5.x
             "normalize_before": ("normalize_before=False (post-LN)", _false),
             "add_final_layer_norm": ("add_final_layer_norm=False", _false),
             "normalize_embedding": ("normalize_embedding=True", lambda v, c: v is True),
             "static_position_embeddings": ("static_position_embeddings=False (learned positions)", _false),
             "add_bias_logits": ("add_bias_logits=False", _false),
             **_NO_PRUNING})


def bart_config_from_hf(c) -> Seq2SeqConfig:
    """The Seq2SeqConfig of a Hugging Face ``BartConfig`` (refusing the options this file does not implement)."""
    BART_OPTIONS.check(c)
    return Seq2SeqConfig(vocab_size=c.vocab_size, max_len=c.max_position_embeddings, d_model=c.d_model,
                         n_heads=c.encoder_attention_heads, n_layers=c.encoder_layers, d_ff=c.encoder_ffn_dim,
                         n_decoder_layers=c.decoder_layers, norm_position="post",
                         activation=HF_ACTIVATIONS[c.activation_function], scale_embedding=bool(c.scale_embedding))


class LearnedPositions(nn.Embedding):
    """One learned vector per position, BART-style: position p is row p + 2 (rows 0 and 1 are a fairseq legacy)."""
    OFFSET = 2

    def __init__(self, max_len: int, d_model: int):
        super().__init__(max_len + self.OFFSET, d_model)
        self.max_len = max_len

    def forward(self, seq_len: int) -> torch.Tensor:        # -> (seq_len, d_model)
        if seq_len > self.max_len:
            raise ValueError(f"sequence length {seq_len} exceeds max_len={self.max_len} (the context length)")
        return self.weight[self.OFFSET:self.OFFSET + seq_len]


class CrossAttention(nn.Module):
    """Multi-head attention whose queries come from the decoder and keys/values from the encoder output.

    x (B, T, d) asks; memory (B, S, d) answers. The weights form a (T, S) map: which source positions
    each target position reads. There is no causal mask here: the whole source is known.
    """

    def __init__(self, d_model: int, n_heads: int, bias: bool = True):
        super().__init__()
        self.n_heads, self.d_head = n_heads, d_model // n_heads
        self.q = nn.Linear(d_model, d_model, bias=bias)
        self.kv = nn.Linear(d_model, 2 * d_model, bias=bias)     # W_K and W_V stacked
        self.proj = nn.Linear(d_model, d_model, bias=bias)

    def forward(self, x, memory, memory_mask=None):
        """memory_mask: boolean (B, 1, 1, S), True at real source tokens (padding_mask of the source)."""
        B, T, C = x.shape
        S = memory.size(1)
        q = self.q(x).view(B, T, self.n_heads, self.d_head).transpose(1, 2)            # (B, H, T, d_head)
        k, v = (t.view(B, S, self.n_heads, self.d_head).transpose(1, 2)                 # (B, H, S, d_head)
                for t in self.kv(memory).split(C, dim=-1))
        y = scaled_dot_product_attention(q, k, v, mask=memory_mask)                    # (B, H, T, d_head)
        return self.proj(y.transpose(1, 2).reshape(B, T, C))


class DecoderBlock(nn.Module):
    """One decoder layer, post-LN as in BART:

    x = LN(x + CausalSelfAttn(x));  x = LN(x + CrossAttn(x, memory));  x = LN(x + FFN(x))
    """

    def __init__(self, cfg: Seq2SeqConfig):
        super().__init__()
        self.self_attn = MultiHeadAttention(cfg.d_model, cfg.n_heads, cfg.dropout, cfg.bias)
        self.ln1 = make_norm(cfg)
        self.cross_attn = CrossAttention(cfg.d_model, cfg.n_heads, cfg.bias)
        self.ln2 = make_norm(cfg)
        self.mlp = FeedForward(cfg)
        self.ln3 = make_norm(cfg)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x, memory, memory_mask=None):
        x = self.ln1(x + self.drop(self.self_attn(x, causal=True)))
        x = self.ln2(x + self.drop(self.cross_attn(x, memory, memory_mask)))
        return self.ln3(x + self.mlp(x))


# One layer's Hugging Face BART tensors under labkit's names (ours: theirs); a tuple is stacked into one matrix.
_BART_ENCODER_LAYER = {
    "attn.qkv": ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"), "attn.proj": "self_attn.out_proj",
    "ln1": "self_attn_layer_norm", "mlp.fc": "fc1", "mlp.proj": "fc2", "ln2": "final_layer_norm"}
_BART_DECODER_LAYER = {
    "self_attn.qkv": ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"),
    "self_attn.proj": "self_attn.out_proj", "ln1": "self_attn_layer_norm",
    "cross_attn.q": "encoder_attn.q_proj", "cross_attn.kv": ("encoder_attn.k_proj", "encoder_attn.v_proj"),
    "cross_attn.proj": "encoder_attn.out_proj", "ln2": "encoder_attn_layer_norm",
    "mlp.fc": "fc1", "mlp.proj": "fc2", "ln3": "final_layer_norm"}


def rename_layer(sd: dict, theirs: str, ours: str, names: dict) -> dict:
    """The weights and biases of one layer, taken from ``sd`` under prefix ``theirs``, renamed under ``ours``."""
    out = {}
    for mine, their in names.items():
        for t in ("weight", "bias"):
            parts = [their] if isinstance(their, str) else their
            out[f"{ours}{mine}.{t}"] = torch.cat([sd[f"{theirs}{n}.{t}"] for n in parts])
    return out


class Seq2Seq(nn.Module):
    """Encoder-decoder Transformer (BART layout), one token embedding shared by encoder, decoder and LM head.

    encode(source) -> memory (B, S, d);  decode(target so far, memory) -> (B, T, d);  forward -> logits.
    """

    def __init__(self, cfg: Seq2SeqConfig):
        super().__init__()
        self.cfg = cfg
        self.tok = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.enc_pos = LearnedPositions(cfg.max_len, cfg.d_model)
        self.dec_pos = LearnedPositions(cfg.max_len, cfg.d_model)
        self.enc_emb_norm, self.dec_emb_norm = make_norm(cfg), make_norm(cfg)
        self.encoder = nn.ModuleList(Block(cfg, "post") for _ in range(cfg.n_layers))
        self.decoder = nn.ModuleList(DecoderBlock(cfg) for _ in range(cfg.n_decoder_layers))
        self.drop = nn.Dropout(cfg.dropout)
        self.lm_head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        self.register_buffer("final_logits_bias", torch.zeros(cfg.vocab_size))
        for name, p in self.named_parameters():
            if p.dim() >= 2:
                nn.init.normal_(p, 0.0, 0.02)
            elif name.endswith("bias"):
                nn.init.zeros_(p)
        self.lm_head.weight = self.tok.weight                 # tied, as in BART
        self.embed_scale = math.sqrt(cfg.d_model) if cfg.scale_embedding else 1.0

    def _embed(self, ids, pos: LearnedPositions, norm: nn.Module):
        if ids.dim() != 2:
            raise ValueError(f"input ids must have shape (batch, seq_len); got {tuple(ids.shape)}")
        return self.drop(norm(self.tok(ids) * self.embed_scale + pos(ids.size(1))))

    def encode(self, input_ids, attention_mask=None):
        """Source ids (B, S) -> memory (B, S, d_model); attention_mask (B, S): 1 = token, 0 = padding."""
        x = self._embed(input_ids, self.enc_pos, self.enc_emb_norm)
        mask = None if attention_mask is None else padding_mask(attention_mask)
        for block in self.encoder:
            x = block(x, mask)                                  # bidirectional
        return x

    def decode(self, decoder_input_ids, memory, attention_mask=None):
        """Target ids so far (B, T) and the memory -> decoder states (B, T, d_model)."""
        x = self._embed(decoder_input_ids, self.dec_pos, self.dec_emb_norm)
        mask = None if attention_mask is None else padding_mask(attention_mask)
        for block in self.decoder:
            x = block(x, memory, mask)
        return x

    def forward(self, input_ids, decoder_input_ids, attention_mask=None):
        """-> logits (B, T, vocab_size): at target position t, the scores of target token t + 1."""
        memory = self.encode(input_ids, attention_mask)
        return self.lm_head(self.decode(decoder_input_ids, memory, attention_mask)) + self.final_logits_bias

    @classmethod
    def from_hf(cls, hf_model) -> "Seq2Seq":
        """Copy a Hugging Face ``BartForConditionalGeneration`` (or ``BartModel``) into a Seq2Seq."""
        cfg = bart_config_from_hf(hf_model.config)
        model = cls(cfg)
        sd = hf_model.state_dict()
        p = "model." if "model.shared.weight" in sd else ""
        new = {"tok.weight": sd[p + "shared.weight"], "lm_head.weight": sd[p + "shared.weight"],
               "final_logits_bias": sd["final_logits_bias"][0] if "final_logits_bias" in sd
               else torch.zeros(cfg.vocab_size),
               "enc_pos.weight": sd[p + "encoder.embed_positions.weight"],
               "dec_pos.weight": sd[p + "decoder.embed_positions.weight"]}
        for t in ("weight", "bias"):
            new["enc_emb_norm." + t] = sd[p + "encoder.layernorm_embedding." + t]
            new["dec_emb_norm." + t] = sd[p + "decoder.layernorm_embedding." + t]
        for i in range(cfg.n_layers):
            new.update(rename_layer(sd, f"{p}encoder.layers.{i}.", f"encoder.{i}.", _BART_ENCODER_LAYER))
        for i in range(cfg.n_decoder_layers):
            new.update(rename_layer(sd, f"{p}decoder.layers.{i}.", f"decoder.{i}.", _BART_DECODER_LAYER))
        model.load_state_dict(new, strict=True)
        return model
