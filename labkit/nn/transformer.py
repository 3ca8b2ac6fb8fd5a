"""A Transformer from scratch: one block, two stacks (GPT decoder, BERT encoder), weight loading.

Read top to bottom: config -> norms -> feed-forward -> Block -> embeddings -> GPT -> BertEncoder
-> BertForPretraining. ``from_hf`` copies published Hugging Face weights into these modules
and reproduces their outputs to float precision.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..check import number, one_of, positive, probability, whole_number
from .attention import MultiHeadAttention, padding_mask, sinusoidal_positions
from .sampling import next_token


@dataclass
class TransformerConfig:
    vocab_size: int
    max_len: int = 128              # context length (number of position embeddings)
    d_model: int = 64
    n_heads: int = 4
    n_layers: int = 2
    d_ff: int | None = None         # None -> 4 * d_model
    dropout: float = 0.0
    norm_position: str | None = None  # "pre" (GPT-2) | "post" (BERT); None -> the model's own default
    norm: str = "layer"             # "layer" | "rms" | "batch"
    activation: str = "gelu"        # "gelu" (exact, BERT) | "gelu_tanh" (GPT-2's "gelu_new") | "relu"
    layer_norm_eps: float = 1e-5
    positional: str = "learned"     # "learned" | "sinusoidal"
    type_vocab_size: int = 2        # BERT's segment (token type) embeddings
    bias: bool = True
    tie_weights: bool = True        # LM head shares the token-embedding matrix

    def __post_init__(self):
        for name in ("vocab_size", "max_len", "d_model", "n_heads", "n_layers"):
            whole_number(name, getattr(self, name))
        if self.d_model % self.n_heads:
            raise ValueError(f"n_heads ({self.n_heads}) must divide d_model ({self.d_model})")
        if self.d_ff is None:
            self.d_ff = 4 * self.d_model  # the width every GPT-2/BERT size uses
        probability("dropout", self.dropout, open_high=True)
        one_of("norm_position", self.norm_position, (None, "pre", "post"))
        one_of("norm", self.norm, ("layer", "rms", "batch"))
        one_of("activation", self.activation, ("gelu", "gelu_tanh", "relu"))
        one_of("positional", self.positional, ("learned", "sinusoidal"))
        if self.positional == "sinusoidal" and self.d_model % 2:
            raise ValueError(f"d_model must be even for positional='sinusoidal'; got {self.d_model}")


# ---------------------------------------------------------------- what from_hf implements of a reference config
# Hugging Face activation names -> labkit's, only where the function is the same to float precision
# ("gelu_10" clips at 10 and "quick_gelu" is x * sigmoid(1.702 x): different functions, refused).
HF_ACTIVATIONS = {"gelu": "gelu", "gelu_python": "gelu", "gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh",
                  "gelu_fast": "gelu_tanh", "gelu_accurate": "gelu_tanh", "gelu_python_tanh": "gelu_tanh",
                  "relu": "relu"}

# Fields of every Hugging Face config that do not change what an eval-mode model computes from the same
# weights: names, ids and bookkeeping, output switches, the attention kernel, generation settings (the
# GenerationConfig's fields are added at check time), and chunk_size_feed_forward (the same numbers, in chunks).
HF_HARMLESS = frozenset({
    "_name_or_path", "architectures", "transformers_version", "model_type", "dtype", "torch_dtype", "use_bfloat16",
    "torchscript", "tf_legacy_loss", "return_dict", "output_hidden_states", "output_attentions", "id2label",
    "label2id", "num_labels", "problem_type", "finetuning_task", "task_specific_params", "tokenizer_class", "prefix",
    "bos_token_id", "eos_token_id", "pad_token_id", "sep_token_id", "decoder_start_token_id", "use_cache",
    "initializer_range", "is_encoder_decoder", "tie_encoder_decoder", "cross_attention_hidden_size",
    "chunk_size_feed_forward", "gradient_checkpointing", "_attn_implementation", "_attn_implementation_autoset",
    "_commit_hash", "_experts_implementation"})
_NO_PRUNING = {"pruned_heads": ("no pruned heads", lambda v, c: not v)}


@dataclass(frozen=True)
class HFOptions:
    """What one from_hf path does with every field of one reference config class.

    ``implemented``: read into labkit's config. ``harmless``: no effect on the outputs of the eval-mode
    model (dropout, LayerDrop, heads that from_hf does not copy), on top of :data:`HF_HARMLESS`.
    ``refused``: field -> (the values implemented, in words; ``accepts(value, config)``). A field in none of
    these (one a newer transformers added) is refused when it differs from the config class's default.
    """
    who: str
    model_types: tuple[str, ...]
    implemented: frozenset[str]
    harmless: frozenset[str]
    refused: dict

    def known(self) -> frozenset[str]:
        return self.implemented | self.harmless | set(self.refused) | HF_HARMLESS

    def check(self, c) -> None:
        """ValueError naming every option of config ``c`` (with its value) that this from_hf does not implement."""
        if getattr(c, "model_type", None) not in self.model_types:
            raise ValueError(f"{self.who} takes a config with model_type {' or '.join(map(repr, self.model_types))}; "
                             f"got model_type={getattr(c, 'model_type', None)!r}")
        missing = object()
        bad = [f"{field}={getattr(c, field)!r} (it implements {expected})"
               for field, (expected, accepts) in self.refused.items()
               if getattr(c, field, missing) is not missing and not accepts(getattr(c, field), c)]
        from transformers import GenerationConfig
        known = self.known() | set(GenerationConfig().to_dict())
        try:
            defaults = type(c)().to_dict()
        except TypeError:           # a config class that needs arguments: only the table's decisions apply
            defaults = {}
        bad += [f"{field}={value!r} (an option it does not know; the default is {defaults[field]!r})"
                for field, value in c.to_dict().items()
                if field in defaults and field not in known and value != defaults[field]]
        if bad:
            raise ValueError(f"{self.who} does not implement {'; '.join(bad)}: its outputs would differ from "
                             f"the reference model's")


GPT2_OPTIONS = HFOptions(
    "GPT.from_hf", ("gpt2",),
    implemented=frozenset({"vocab_size", "n_positions", "n_embd", "n_head", "n_layer", "n_inner",
                           "layer_norm_epsilon", "tie_word_embeddings"}),
    # reorder_and_upcast_attn computes the attention scores in float32 with the scale applied first: in
    # float32 (labkit's dtype) that is the same function (tests/test_transformer.py measures it)
    harmless=frozenset({"attn_pdrop", "embd_pdrop", "resid_pdrop", "summary_type", "summary_use_proj",
                        "summary_activation", "summary_proj_to_labels", "summary_first_dropout",
                        "summary_last_dropout", "classifier_dropout", "reorder_and_upcast_attn", "is_decoder"}),
    refused={"activation_function": ("one of " + ", ".join(HF_ACTIVATIONS), lambda v, c: v in HF_ACTIVATIONS),
             "scale_attn_weights": ("scale_attn_weights=True: scores divided by sqrt(d_head)", lambda v, c: v is True),
             "scale_attn_by_inverse_layer_idx": ("scale_attn_by_inverse_layer_idx=False", lambda v, c: v is False),
             "add_cross_attention": ("add_cross_attention=False: a decoder without cross-attention",
                                     lambda v, c: v is False),
             **_NO_PRUNING})

BERT_OPTIONS = HFOptions(
    "BertEncoder.from_hf", ("bert",),
    implemented=frozenset({"vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                           "intermediate_size", "max_position_embeddings", "type_vocab_size", "layer_norm_eps"}),
    # pad_token_id only picks the embedding row kept at zero during training; BertModel has no LM head to tie
    harmless=frozenset({"hidden_dropout_prob", "attention_probs_dropout_prob", "classifier_dropout",
                        "tie_word_embeddings"}),
    refused={"hidden_act": ("one of " + ", ".join(HF_ACTIVATIONS), lambda v, c: v in HF_ACTIVATIONS),
             "is_decoder": ("is_decoder=False: bidirectional attention", lambda v, c: v is False),
             "add_cross_attention": ("add_cross_attention=False", lambda v, c: v is False),
             # transformers 5 dropped relative positions from BertModel; a 4.x checkpoint may still name them
             "position_embedding_type": ("position_embedding_type='absolute'", lambda v, c: v == "absolute"),
             **_NO_PRUNING})


def gpt_config_from_hf(c) -> TransformerConfig:
    """The TransformerConfig of a Hugging Face ``GPT2Config`` (refusing the options this file does not implement)."""
    GPT2_OPTIONS.check(c)
    return TransformerConfig(vocab_size=c.vocab_size, max_len=c.n_positions, d_model=c.n_embd,
                             n_heads=c.n_head, n_layers=c.n_layer, d_ff=c.n_inner or 4 * c.n_embd,
                             norm_position="pre", activation=HF_ACTIVATIONS[c.activation_function],
                             layer_norm_eps=c.layer_norm_epsilon, tie_weights=bool(c.tie_word_embeddings))


def bert_config_from_hf(c) -> TransformerConfig:
    """The TransformerConfig of a Hugging Face ``BertConfig`` (refusing the options this file does not implement)."""
    BERT_OPTIONS.check(c)
    return TransformerConfig(vocab_size=c.vocab_size, max_len=c.max_position_embeddings, d_model=c.hidden_size,
                             n_heads=c.num_attention_heads, n_layers=c.num_hidden_layers,
                             d_ff=c.intermediate_size, norm_position="post", activation=HF_ACTIVATIONS[c.hidden_act],
                             layer_norm_eps=c.layer_norm_eps, type_vocab_size=c.type_vocab_size)


def untied_head_check(who: str, sd: dict, head: str, embedding: str, tied: bool) -> None:
    """A config that says tie_word_embeddings=True must come with an LM head equal to the token embedding."""
    if tied and head in sd and not torch.equal(sd[head], sd[embedding]):
        raise ValueError(f"{who}: the config says tie_word_embeddings=True but {head} differs from {embedding}: "
                         f"the weights do not fit the config")


# ---------------------------------------------------------------- normalisation layers
class RMSNorm(nn.Module):
    """x / sqrt(mean(x^2) + eps) * g: LayerNorm without the mean subtraction and without a bias."""

    def __init__(self, d: int, eps: float = 1e-6):
        super().__init__()
        self.eps, self.weight = eps, nn.Parameter(torch.ones(d))

    def forward(self, x):
        # x: (..., d). The mean is over the last (channel) axis only: each token is scaled on its own,
        # whatever else is in the batch. rsqrt = 1/sqrt in one kernel; eps keeps an all-zero x finite.
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


class TokenBatchNorm(nn.BatchNorm1d):
    """BatchNorm over (B, T, C) tokens: statistics per channel across the batch and all positions."""

    def forward(self, x):
        # nn.BatchNorm1d wants channels on axis 1: (B, T, C) -> (B, C, T) -> normalise -> back
        return super().forward(x.transpose(1, 2)).transpose(1, 2)


def make_norm(cfg: TransformerConfig) -> nn.Module:
    if cfg.norm == "rms":
        return RMSNorm(cfg.d_model, cfg.layer_norm_eps)
    if cfg.norm == "batch":
        return TokenBatchNorm(cfg.d_model, eps=cfg.layer_norm_eps)
    return nn.LayerNorm(cfg.d_model, eps=cfg.layer_norm_eps, bias=cfg.bias)


# ---------------------------------------------------------------- the block
def activation(cfg: TransformerConfig) -> nn.Module:
    return {"gelu": nn.GELU(), "gelu_tanh": nn.GELU(approximate="tanh"), "relu": nn.ReLU()}[cfg.activation]


class FeedForward(nn.Module):
    """Position-wise MLP: Linear(d_model, d_ff) -> GELU -> Linear(d_ff, d_model) -> dropout."""

    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.fc = nn.Linear(cfg.d_model, cfg.d_ff, bias=cfg.bias)
        self.proj = nn.Linear(cfg.d_ff, cfg.d_model, bias=cfg.bias)
        self.act = activation(cfg)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x):
        # (B, T, d_model) -> (B, T, d_ff) -> (B, T, d_model): every position on its own, the same weights
        return self.drop(self.proj(self.act(self.fc(x))))


class Block(nn.Module):
    """One Transformer layer: multi-head self-attention and a feed-forward net, each in a residual branch.

    pre-LN  (GPT-2):  x = x + Attn(LN(x));   x = x + FFN(LN(x))
    post-LN (BERT):   x = LN(x + Attn(x));   x = LN(x + FFN(x))
    """

    def __init__(self, cfg: TransformerConfig, norm_position: str = "pre"):
        super().__init__()
        self.pre = norm_position == "pre"
        self.ln1, self.ln2 = make_norm(cfg), make_norm(cfg)
        self.attn = MultiHeadAttention(cfg.d_model, cfg.n_heads, cfg.dropout, cfg.bias)
        self.mlp = FeedForward(cfg)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x, mask=None, causal=False, need_weights=False):
        # x: (B, T, d_model) in and out, so blocks stack. The residual "x +" carries the input (and its
        # gradient) past each sublayer unchanged: a deep stack starts close to the identity.
        if self.pre:
            # pre-LN: the residual stream itself is never normalised; each sublayer reads a normalised
            # copy, so the gradient has a clean identity path to every block and deep stacks train
            # stably with little warmup (Xiong et al. 2020, arXiv:2002.04745).
            a, w = self._attend(self.ln1(x), mask, causal, need_weights)
            x = x + a
            x = x + self.mlp(self.ln2(x))
        else:
            # post-LN (the original Transformer and BERT): normalise after each residual sum
            a, w = self._attend(x, mask, causal, need_weights)
            x = self.ln1(x + a)
            x = self.ln2(x + self.mlp(x))
        return (x, w) if need_weights else x

    def _attend(self, x, mask, causal, need_weights):
        out = self.attn(x, mask, causal, need_weights)
        a, w = out if need_weights else (out, None)
        return self.drop(a), w


# ---------------------------------------------------------------- embeddings
class Embeddings(nn.Module):
    """token embedding + position encoding (+ segment embedding for BERT), optional LayerNorm, dropout."""

    def __init__(self, cfg: TransformerConfig, segments: bool = False, norm: bool = False):
        super().__init__()
        self.cfg = cfg
        self.tok = nn.Embedding(cfg.vocab_size, cfg.d_model)
        if cfg.positional == "learned":
            self.pos = nn.Embedding(cfg.max_len, cfg.d_model)
        else:
            self.register_buffer("pe", sinusoidal_positions(cfg.max_len, cfg.d_model), persistent=False)
        self.seg = nn.Embedding(cfg.type_vocab_size, cfg.d_model) if segments else None
        self.norm = make_norm(cfg) if norm else None
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, idx, token_type_ids=None):
        if idx.dim() != 2:
            raise ValueError(f"input ids must have shape (batch, seq_len); got {tuple(idx.shape)}")
        T = idx.size(1)
        if T > self.cfg.max_len:
            raise ValueError(f"sequence length {T} exceeds max_len={self.cfg.max_len}")
        pos = torch.arange(T, device=idx.device)
        # (B, T, d) + (T, d): the position vectors broadcast over the batch. Without them attention
        # would see a bag of tokens: it is the same for any order of its inputs.
        x = self.tok(idx) + (self.pos(pos) if self.cfg.positional == "learned" else self.pe[:T])
        if self.seg is not None:
            x = x + self.seg(torch.zeros_like(idx) if token_type_ids is None else token_type_ids)
        if self.norm is not None:
            x = self.norm(x)
        return self.drop(x)


def _init_weights(model: nn.Module, n_layers: int, std: float = 0.02) -> None:
    """GPT-2 initialisation: N(0, 0.02) everywhere, residual projections scaled by 1/sqrt(2 * n_layers)."""
    for name, p in model.named_parameters():
        if p.dim() >= 2:  # matrices and embeddings; norms keep their ones and zeros
            # attn.proj and mlp.proj write into the residual stream, 2 per block: each adds variance,
            # so scaling them by 1/sqrt(2L) keeps the stream's scale about constant with depth
            scale = 1 / math.sqrt(2 * n_layers) if name.endswith("proj.weight") else 1.0
            nn.init.normal_(p, 0.0, std * scale)
        elif name.endswith("bias"):
            nn.init.zeros_(p)


# ---------------------------------------------------------------- GPT (decoder-only)
class GPT(nn.Module):
    """Decoder-only Transformer (GPT-2 layout): causal self-attention, pre-LN, final LayerNorm, tied LM head."""

    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.cfg = cfg
        self.emb = Embeddings(cfg)
        self.blocks = nn.ModuleList(Block(cfg, cfg.norm_position or "pre") for _ in range(cfg.n_layers))
        self.ln_f = make_norm(cfg)
        self.lm_head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        _init_weights(self, cfg.n_layers)
        if cfg.tie_weights:  # one (vocab, d) matrix reads tokens in and scores them out (GPT-2 does this)
            self.lm_head.weight = self.emb.tok.weight

    def forward(self, idx, need_weights: bool = False):
        """idx (B, T) token ids -> logits (B, T, vocab_size) for the NEXT token at every position."""
        x, maps = self.emb(idx), []                                   # (B, T, d_model)
        for block in self.blocks:
            # causal: position t sees positions <= t only, so all T next-token predictions of a
            # sequence train in one pass without any of them seeing its answer
            x = block(x, causal=True, need_weights=need_weights)
            if need_weights:
                x, w = x
                maps.append(w)
        logits = self.lm_head(self.ln_f(x))   # pre-LN leaves the stream un-normalised: one last LN first
        return (logits, maps) if need_weights else logits

    @torch.no_grad()
    def generate(self, idx, max_new_tokens: int, *, greedy: bool = False, temperature: float = 1.0,
                 top_k: int | None = None, top_p: float | None = None, generator: torch.Generator | None = None):
        """Append max_new_tokens tokens to idx (B, T), one at a time, feeding each back in (autoregression)."""
        positive("temperature (use greedy=True for argmax)", temperature)
        whole_number("top_k", top_k, allow_none=True)
        if top_p is not None:
            number("top_p", top_p, minimum=0, maximum=1, open_low=True)
        for _ in range(max_new_tokens):
            # crop to the last max_len tokens (the positions the model has), predict from the last one
            logits = self(idx[:, -self.cfg.max_len:])[:, -1, :]          # (B, vocab_size)
            nxt = next_token(logits, greedy=greedy, temperature=temperature, top_k=top_k, top_p=top_p,
                             generator=generator)
            idx = torch.cat([idx, nxt], dim=1)
        return idx

    @classmethod
    def from_hf(cls, hf_model) -> "GPT":
        """Copy a Hugging Face ``GPT2LMHeadModel`` (or ``GPT2Model``) into a GPT with identical logits."""
        cfg = gpt_config_from_hf(hf_model.config)
        model = cls(cfg)
        sd = hf_model.state_dict()
        p = "transformer." if any(k.startswith("transformer.") for k in sd) else ""
        new = {"emb.tok.weight": sd[p + "wte.weight"], "emb.pos.weight": sd[p + "wpe.weight"],
               "ln_f.weight": sd[p + "ln_f.weight"], "ln_f.bias": sd[p + "ln_f.bias"]}
        # GPT-2 stores its linear layers as Conv1D with weight (in, out): transpose to nn.Linear's (out, in)
        names = {"ln_1": "ln1", "ln_2": "ln2", "attn.c_attn": "attn.qkv", "attn.c_proj": "attn.proj",
                 "mlp.c_fc": "mlp.fc", "mlp.c_proj": "mlp.proj"}
        for i in range(cfg.n_layers):
            for theirs, ours in names.items():
                w = sd[f"{p}h.{i}.{theirs}.weight"]
                new[f"blocks.{i}.{ours}.weight"] = w if theirs.startswith("ln") else w.t()
                new[f"blocks.{i}.{ours}.bias"] = sd[f"{p}h.{i}.{theirs}.bias"]
        untied_head_check("GPT.from_hf", sd, "lm_head.weight", p + "wte.weight", cfg.tie_weights)
        tok = new["emb.tok.weight"]
        new["lm_head.weight"] = tok if cfg.tie_weights else sd.get("lm_head.weight", tok)   # GPT2Model has no head
        model.load_state_dict(new, strict=True)
        return model


# ---------------------------------------------------------------- BERT (encoder-only)
class BertEncoder(nn.Module):
    """Encoder-only Transformer (BERT layout): token+position+segment embeddings, LayerNorm, post-LN blocks.

    Attention is bidirectional; ``attention_mask`` (B, T) with 1 = token, 0 = padding hides the pads.
    """

    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.cfg = cfg
        self.emb = Embeddings(cfg, segments=True, norm=True)
        self.blocks = nn.ModuleList(Block(cfg, cfg.norm_position or "post") for _ in range(cfg.n_layers))
        _init_weights(self, cfg.n_layers)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, need_weights: bool = False,
                causal: bool = False):
        """-> hidden states (B, T, d_model); with need_weights, also a list of (B, n_heads, T, T) per layer.

        ``causal=True`` hides the future as in a decoder (BERT was not trained that way: for experiments).
        """
        x = self.emb(input_ids, token_type_ids)
        mask = None if attention_mask is None else padding_mask(attention_mask)
        maps = []
        for block in self.blocks:
            x = block(x, mask, causal=causal, need_weights=need_weights)
            if need_weights:
                x, w = x
                maps.append(w)
        return (x, maps) if need_weights else x

    @classmethod
    def from_hf(cls, hf_bert_model) -> "BertEncoder":
        """Copy a Hugging Face ``BertModel`` into a BertEncoder with identical last_hidden_state."""
        cfg = bert_config_from_hf(hf_bert_model.config)
        model = cls(cfg)
        model.load_state_dict(_bert_state_dict(hf_bert_model.state_dict(), cfg.n_layers), strict=True)
        return model


def _bert_state_dict(sd: dict, n_layers: int, prefix: str = "") -> dict:
    """Rename a BertModel state dict to BertEncoder names; Q, K, V are stacked into one qkv matrix."""
    p = prefix if any(k.startswith(prefix + "embeddings.") for k in sd) else ""
    new = {"emb.tok.weight": sd[p + "embeddings.word_embeddings.weight"],
           "emb.pos.weight": sd[p + "embeddings.position_embeddings.weight"],
           "emb.seg.weight": sd[p + "embeddings.token_type_embeddings.weight"],
           "emb.norm.weight": sd[p + "embeddings.LayerNorm.weight"],
           "emb.norm.bias": sd[p + "embeddings.LayerNorm.bias"]}
    for i in range(n_layers):
        L, b = f"{p}encoder.layer.{i}.", f"blocks.{i}."
        for t in ("weight", "bias"):
            new[b + "attn.qkv." + t] = torch.cat([sd[L + f"attention.self.{n}.{t}"] for n in ("query", "key", "value")])
            new[b + "attn.proj." + t] = sd[L + "attention.output.dense." + t]
            new[b + "ln1." + t] = sd[L + "attention.output.LayerNorm." + t]
            new[b + "mlp.fc." + t] = sd[L + "intermediate.dense." + t]
            new[b + "mlp.proj." + t] = sd[L + "output.dense." + t]
            new[b + "ln2." + t] = sd[L + "output.LayerNorm." + t]
    return new


class BertForPretraining(nn.Module):
    """BertEncoder + the two BERT pretraining heads.

    MLM head: Linear -> GELU -> LayerNorm -> decoder tied to the token embeddings (+ bias), per position.
    Pair head (NSP or SOP): pooler Linear -> tanh on the [CLS] vector, then Linear(d_model, 2).
    """

    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = BertEncoder(cfg)
        self.mlm_transform = nn.Sequential(nn.Linear(cfg.d_model, cfg.d_model), activation(cfg),
                                           nn.LayerNorm(cfg.d_model, eps=cfg.layer_norm_eps))
        self.mlm_decoder = nn.Linear(cfg.d_model, cfg.vocab_size)
        self.pooler = nn.Linear(cfg.d_model, cfg.d_model)
        self.pair_head = nn.Linear(cfg.d_model, 2)
        _init_weights(self, cfg.n_layers)
        if cfg.tie_weights:
            self.mlm_decoder.weight = self.encoder.emb.tok.weight

    def forward(self, input_ids, attention_mask=None, token_type_ids=None):
        """-> (mlm_logits (B, T, vocab_size), pair_logits (B, 2))."""
        h = self.encoder(input_ids, attention_mask, token_type_ids)     # (B, T, d_model)
        # MLM logits at every position (the loss reads only the masked ones); the pair head reads the
        # [CLS] vector at position 0, whose attention spans both sentences
        mlm_logits = self.mlm_decoder(self.mlm_transform(h))            # (B, T, vocab_size)
        pair_logits = self.pair_head(torch.tanh(self.pooler(h[:, 0])))  # (B, 2)
        return mlm_logits, pair_logits
