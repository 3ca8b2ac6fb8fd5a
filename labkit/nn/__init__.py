"""From-scratch building blocks and models."""
from .parameters import count_parameters, freeze, replace_linears  # noqa: F401
from .classifier import SequenceClassifier, mean_pool  # noqa: F401
from .bilstm import BiLSTMClassifier, BiLSTMEncoder, BiLSTMLanguageModel  # noqa: F401
from .attention import (  # noqa: F401
    MultiHeadAttention, attention_loop, attention_weights, scaled_dot_product_attention, sinusoidal_positions,
)
from .transformer import (  # noqa: F401
    GPT, BertEncoder, BertForPretraining, Block, RMSNorm, TransformerConfig,
)
from .efficientnet import EfficientNetLite0, lite0_parameter_count, load_packaged_lite0  # noqa: F401
from .llama import GroupedQueryAttention, KVCache, Llama, LlamaConfig, SwiGLU, apply_rope, rope_angles  # noqa: F401
from .seq2seq import CrossAttention, Seq2Seq, Seq2SeqConfig  # noqa: F401
from .vit import PatchEmbedding, ViT, ViTConfig  # noqa: F401
