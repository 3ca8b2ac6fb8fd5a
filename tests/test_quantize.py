"""Weight-only quantisation from scratch: NF4 levels as bitsandbytes builds them, absmax codes as torch's own
per-channel quantiser gives them, the error bound, packing, the model rewrite, the QLoRA arithmetic."""
import warnings

import pytest
import torch
from torch import nn
from transformers import LlamaConfig

from labkit import quantize as Q
from labkit import sizing

# bitsandbytes' NF4 code book (functional.py, get_4bit_type("nf4")): the reference the levels are built to match
BNB_NF4 = [-1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
           -0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725,
           0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941,
           0.7229568362236023, 1.0]


def test_nf4_levels_are_bitsandbytes_code_book():
    levels = Q.nf4_levels()
    torch.testing.assert_close(levels, torch.tensor(BNB_NF4), atol=1e-6, rtol=0)
    assert (levels == 0).sum() == 1 and len(levels) == 16


def test_nf4_codes_are_the_nearest_level():
    w = torch.randn(4, 64, generator=torch.Generator().manual_seed(2))
    codes, absmax = Q.nf4_quantize(w, 16)
    scaled = (w.reshape(4, 4, 16) / absmax[..., None]).reshape(4, 64)
    brute = (scaled.unsqueeze(-1) - Q.nf4_levels()).abs().argmin(-1)
    assert torch.equal(codes.long(), brute)


def test_int8_codes_equal_torch_per_channel_quantisation_with_the_same_scales():
    w = torch.randn(7, 16, generator=torch.Generator().manual_seed(0))
    q, s = Q.absmax_quantize(w, 8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = torch.quantize_per_channel(w, s[:, 0].double(), torch.zeros(7, dtype=torch.long), 0, torch.qint8)
    assert torch.equal(q, ref.int_repr())
    torch.testing.assert_close(s[:, 0], w.abs().amax(1) / 127)


@pytest.mark.parametrize("bits,group", [(8, None), (4, None), (4, 4), (8, 8)])
def test_every_weight_is_within_half_a_step(bits, group):
    w = torch.randn(5, 16, generator=torch.Generator().manual_seed(bits))
    q, s = Q.absmax_quantize(w, bits, group)
    assert int(q.abs().max()) <= 2 ** (bits - 1) - 1
    step = s.repeat_interleave(16 // s.shape[1], dim=1)
    assert torch.all((Q.dequantize(q, s) - w).abs() <= step / 2 + 1e-6)


def test_finer_groups_and_more_bits_give_smaller_errors():
    lin = nn.Linear(64, 32)
    with torch.no_grad():
        lin.weight.normal_(0, 0.05, generator=torch.Generator().manual_seed(0))   # trained weights: about normal
    err = {}
    for scheme, g in (("int8", None), ("int4", None), ("int4", 16), ("nf4", 16)):
        err[(scheme, g)] = float((Q.QuantizedLinear(lin, scheme, g).weight_hat() - lin.weight.detach()).abs().mean())
    assert err[("int8", None)] < err[("int4", 16)] < err[("int4", None)]
    assert err[("nf4", 16)] < err[("int4", 16)]         # normal weights: NF4's levels beat equal steps


def test_pack_and_unpack_round_trip():
    codes = torch.randint(-7, 8, (3, 10), dtype=torch.int8)
    packed = Q.pack_int4(codes, 8)
    assert packed.dtype == torch.uint8 and packed.shape == (3, 5)
    assert torch.equal(Q.unpack_int4(packed, 8), codes)
    with pytest.raises(ValueError, match="even"):
        Q.pack_int4(codes[:, :3], 8)


def test_quantized_linear_stores_few_bytes_and_computes_with_the_dequantised_weight():
    lin = nn.Linear(32, 6)
    x = torch.randn(4, 32)
    for scheme, group, code_bytes in (("int8", None, 32 * 6), ("int4", 8, 16 * 6), ("nf4", 8, 16 * 6)):
        ql = Q.QuantizedLinear(lin, scheme, group)
        assert ql.codes.numel() * ql.codes.element_size() == code_bytes
        torch.testing.assert_close(ql(x), torch.nn.functional.linear(x, ql.weight_hat(), lin.bias))


def test_quantize_linears_replaces_every_linear_but_the_skipped_ones():
    model = nn.Sequential()
    model.add_module("body", nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 8)))
    model.add_module("head", nn.Linear(8, 2))
    q = Q.quantize_linears(model, "int4", 4)
    assert isinstance(q.body[0], Q.QuantizedLinear) and isinstance(q.body[2], Q.QuantizedLinear)
    assert isinstance(q.head, nn.Linear) and isinstance(model.body[0], nn.Linear)    # the original is untouched
    err = Q.weight_error(model, q)
    assert err["quantised weights"] == 128 and 0 < err["relative error"] < 0.2
    with pytest.raises(ValueError, match="no nn.Linear"):
        Q.quantize_linears(nn.Sequential(nn.ReLU()))
    with pytest.raises(ValueError, match="group_size"):
        Q.quantize_linears(model, "int4", 3)
    with pytest.raises(ValueError, match="scheme"):
        Q.quantize_linears(model, "int3")


def llama_7b():
    return LlamaConfig(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32,
                       num_key_value_heads=32, vocab_size=32000)


def test_qlora_memory_arithmetic():
    c = llama_7b()
    m = Q.qlora_memory(c, r=64)
    linear = 32 * (4 * 4096 * 4096 + 3 * 4096 * 11008)
    assert m["4-bit weights"] == linear / 2
    assert m["constant bits per weight"] == pytest.approx(0.127, abs=5e-4)            # the paper's 0.127 bits
    assert Q.qlora_memory(c, double_quant=False)["constant bits per weight"] == 0.5
    assert m["bf16 embeddings, norms, head"] == 2 * (sizing.param_count(c) - linear)
    assert m["LoRA parameters"] == 32 * 64 * (4 * 8192 + 3 * (4096 + 11008))
    parts = [k for k in m if k not in ("parameters", "total", "LoRA parameters", "constant bits per weight")]
    assert m["total"] == pytest.approx(sum(m[k] for k in parts))
    table = Q.lora_memory_table({"7B": c})
    assert table.loc["7B", "full fine-tuning (AdamW, mixed bf16)"] == pytest.approx(16 * sizing.param_count(c) / 1e9)
    assert table.loc["7B", "QLoRA r=64 all linear (NF4 base)"] < table.loc["7B", "LoRA r=8 q,v (bf16 base)"]
    with pytest.raises(ValueError, match="Llama-style"):
        Q.qlora_memory(type("C", (), {"model_type": "bert"})())


def test_quantization_verdict_follows_the_numbers():
    good = Q.quantization_verdict("int8", 3.9, 0.9995, 0.0)
    assert "3.90x smaller" in good and "the vectors barely move" in good and "0.0 accuracy points lost (within 1)" in good
    bad = Q.quantization_verdict("int4", 7.1, 0.93, 6.5)
    assert "the vectors move noticeably" in bad and "6.5 accuracy points lost (MORE than 1)" in bad
    assert "gained" in Q.quantization_verdict("x", 2.0, 0.999, -1.2)
