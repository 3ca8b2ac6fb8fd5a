"""labkit.scale's parameter formula equals the parameters actually counted in the models."""
import pytest
import torch

from labkit import scale
from labkit.nn import GPT, BertEncoder, TransformerConfig
from labkit.nn.transformer import bert_config_from_hf, gpt_config_from_hf


def n_params(model):
    return sum(p.numel() for p in model.parameters())   # tied weights are counted once


@pytest.mark.parametrize("kw", [dict(), dict(d_model=96, n_heads=3, n_layers=3, d_ff=200, max_len=40)])
def test_param_count_matches_labkit_models(kw):
    cfg = TransformerConfig(vocab_size=321, **kw)
    assert scale.param_count(cfg, "gpt") == n_params(GPT(cfg))
    assert scale.param_count(cfg, "bert") == n_params(BertEncoder(cfg))


def test_param_count_matches_hf_gpt2_and_bert_base():
    from transformers import BertConfig, BertModel, GPT2Config, GPT2LMHeadModel
    with torch.device("meta"):                      # shapes only, no memory: GPT-2 small and BERT-base
        gpt2 = GPT2LMHeadModel(GPT2Config())
        bert = BertModel(BertConfig())
    assert scale.param_count(gpt_config_from_hf(gpt2.config), "gpt") == n_params(gpt2) == 124_439_808
    assert scale.param_count(bert_config_from_hf(bert.config), "bert", pooler=True) == n_params(bert)


def test_flops_and_memory():
    assert scale.training_flops(1e9, 2e10) == 6 * 1e9 * 2e10
    m = scale.training_memory(1000)
    assert m["total"] == 1000 * (4 + 4 + 8)
    with pytest.raises(ValueError, match="optimizer"):
        scale.training_memory(10, optimizer="lion")
    with pytest.raises(ValueError, match="kind"):
        scale.param_count(TransformerConfig(vocab_size=5), "t5")
