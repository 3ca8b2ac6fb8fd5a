"""The Vision Transformer (ViT, Dosovitskiy et al. 2021) from scratch: an image read as a sequence of patches.

Only the input differs from BERT: the image is cut into P x P patches, each patch is flattened and
projected to a d_model vector (one convolution with kernel = stride = P does both), a learned [CLS]
vector is put in front, learned position vectors are added, and chapter 3.2's ``Block`` stack (pre-norm,
GELU) reads the sequence. The [CLS] output, through a final LayerNorm and a tanh pooler, stands for
the whole image.

``ViT.from_hf`` copies a Hugging Face ``ViTModel`` into these modules and reproduces its
last_hidden_state and pooler_output to float precision.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..check import whole_number
from .seq2seq import rename_layer
from .transformer import _NO_PRUNING, HF_ACTIVATIONS, Block, HFOptions, TransformerConfig


@dataclass
class ViTConfig:
    image_size: int = 32            # square images, image_size x image_size pixels
    patch_size: int = 8             # P: patches are P x P; the sequence has (image_size / P)^2 of them (+ [CLS])
    channels: int = 3
    d_model: int = 64
    n_heads: int = 4
    n_layers: int = 2
    d_ff: int | None = None         # None -> 4 * d_model
    layer_norm_eps: float = 1e-12   # HF ViT's default

    def __post_init__(self):
        for name in ("image_size", "patch_size", "channels", "d_model", "n_heads", "n_layers"):
            whole_number(name, getattr(self, name), minimum=1)
        if self.image_size % self.patch_size:
            raise ValueError(f"patch_size must divide image_size={self.image_size}; got {self.patch_size}")
        self.d_ff = 4 * self.d_model if self.d_ff is None else self.d_ff
        self.block  # checks that n_heads divides d_model

    @property
    def n_patches(self) -> int:
        return (self.image_size // self.patch_size) ** 2

    @property
    def block(self) -> TransformerConfig:
        """What each encoder Block reads (an image has no vocabulary: vocab_size is unused)."""
        return TransformerConfig(vocab_size=1, max_len=self.n_patches + 1, d_model=self.d_model,
                                 n_heads=self.n_heads, n_layers=self.n_layers, d_ff=self.d_ff,
                                 norm_position="pre", activation="gelu", layer_norm_eps=self.layer_norm_eps)


VIT_OPTIONS = HFOptions(
    "ViT.from_hf", ("vit",),
    implemented=frozenset({"image_size", "patch_size", "num_channels", "hidden_size", "num_hidden_layers",
                           "num_attention_heads", "intermediate_size", "layer_norm_eps"}),
    # encoder_stride sizes the decoder of ViTForMaskedImageModeling, which from_hf does not copy
    harmless=frozenset({"hidden_dropout_prob", "attention_probs_dropout_prob", "encoder_stride"}),
    refused={"hidden_act": ("hidden_act='gelu' (exact GELU)", lambda v, c: HF_ACTIVATIONS.get(v) == "gelu"),
             "qkv_bias": ("qkv_bias=True", lambda v, c: v is True),
             "pooler_act": ("pooler_act='tanh'", lambda v, c: v == "tanh"),
             "pooler_output_size": ("a pooler as wide as hidden_size", lambda v, c: v in (None, c.hidden_size)),
             **_NO_PRUNING})


def vit_config_from_hf(c) -> ViTConfig:
    """The ViTConfig of a Hugging Face ``ViTConfig`` (refusing the options this file does not implement)."""
    VIT_OPTIONS.check(c)
    return ViTConfig(image_size=c.image_size, patch_size=c.patch_size, channels=c.num_channels, d_model=c.hidden_size,
                     n_heads=c.num_attention_heads, n_layers=c.num_hidden_layers, d_ff=c.intermediate_size,
                     layer_norm_eps=c.layer_norm_eps)


# One layer's Hugging Face ViT tensors under labkit's names (ours: theirs); a tuple is stacked into one matrix.
_HF_LAYER = {"attn.qkv": ("attention.q_proj", "attention.k_proj", "attention.v_proj"),
             "attn.proj": "attention.o_proj", "ln1": "layernorm_before", "ln2": "layernorm_after",
             "mlp.fc": "mlp.fc1", "mlp.proj": "mlp.fc2"}
_HF_LAYER_4X = {"attn.qkv": ("attention.attention.query", "attention.attention.key", "attention.attention.value"),
                "attn.proj": "attention.output.dense", "ln1": "layernorm_before", "ln2": "layernorm_after",
                "mlp.fc": "intermediate.dense", "mlp.proj": "output.dense"}     # transformers 4.x names


class PatchEmbedding(nn.Module):
    """(B, C, H, W) image -> (B, n_patches, d_model): a linear map of each flattened P x P patch.

    A convolution with kernel_size = stride = P visits each patch once, without overlap, and applies
    the same (d_model x C*P*P) matrix to it: exactly "flatten the patch, multiply by W, add b".
    """

    def __init__(self, cfg: ViTConfig):
        super().__init__()
        self.image_size = cfg.image_size
        self.proj = nn.Conv2d(cfg.channels, cfg.d_model, kernel_size=cfg.patch_size, stride=cfg.patch_size)

    def forward(self, images):
        if images.dim() != 4 or images.shape[-2:] != (self.image_size, self.image_size):
            raise ValueError(f"images must have shape (batch, channels, {self.image_size}, {self.image_size}) "
                             f"(image_size={self.image_size}); got {tuple(images.shape)}")
        x = self.proj(images)                       # (B, d_model, H/P, W/P): one vector per patch
        return x.flatten(2).transpose(1, 2)         # (B, n_patches, d_model), patches in reading order


class ViT(nn.Module):
    """Patch embedding + [CLS] + learned positions -> pre-norm encoder -> LayerNorm; pooler on [CLS]."""

    def __init__(self, cfg: ViTConfig):
        super().__init__()
        self.cfg = cfg
        self.patches = PatchEmbedding(cfg)
        self.cls = nn.Parameter(torch.zeros(1, 1, cfg.d_model))
        self.pos = nn.Parameter(torch.zeros(1, cfg.n_patches + 1, cfg.d_model))
        self.blocks = nn.ModuleList(Block(cfg.block, "pre") for _ in range(cfg.n_layers))
        self.norm = nn.LayerNorm(cfg.d_model, eps=cfg.layer_norm_eps)
        self.pooler = nn.Linear(cfg.d_model, cfg.d_model)
        for name, p in self.named_parameters():
            if p.dim() >= 2:
                nn.init.trunc_normal_(p, 0.0, 0.02)
            elif name.endswith("bias"):
                nn.init.zeros_(p)

    def forward(self, images):
        """images (B, C, H, W) -> (hidden (B, 1 + n_patches, d_model), pooled (B, d_model))."""
        x = self.patches(images)                                        # (B, N, d)
        x = torch.cat([self.cls.expand(x.size(0), -1, -1), x], dim=1)   # (B, 1 + N, d): [CLS] first
        x = x + self.pos
        for block in self.blocks:
            x = block(x)                                                # bidirectional, no mask
        x = self.norm(x)
        return x, torch.tanh(self.pooler(x[:, 0]))

    @classmethod
    def from_hf(cls, hf_model) -> "ViT":
        """Copy a Hugging Face ``ViTModel`` (with its pooler) into a ViT."""
        cfg = vit_config_from_hf(hf_model.config)
        model = cls(cfg)
        sd = hf_model.state_dict()
        p = "vit." if "vit.embeddings.cls_token" in sd else ""
        if p + "pooler.dense.weight" not in sd:
            raise ValueError(f"ViT.from_hf needs a ViTModel with its pooler (add_pooling_layer=True); "
                             f"this {type(hf_model).__name__} has none")
        new = {"cls": sd[p + "embeddings.cls_token"], "pos": sd[p + "embeddings.position_embeddings"]}
        for t in ("weight", "bias"):
            new["patches.proj." + t] = sd[p + "embeddings.patch_embeddings.projection." + t]
            new["norm." + t] = sd[p + "layernorm." + t]
            new["pooler." + t] = sd[p + "pooler.dense." + t]
        old = f"{p}encoder.layer.0.layernorm_before.weight" in sd       # transformers 4.x
        for i in range(cfg.n_layers):
            theirs = f"{p}encoder.layer.{i}." if old else f"{p}layers.{i}."
            new.update(rename_layer(sd, theirs, f"blocks.{i}.", _HF_LAYER_4X if old else _HF_LAYER))
        model.load_state_dict(new, strict=True)
        return model
