"""LoRA, adapters, BitFit, freezing schedules and distillation (labkit.lora, labkit.adapters, labkit.finetune)."""
import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from transformers import BertConfig, BertModel

from labkit.adapters import add_adapters
from labkit.data.tasks import CATEGORIES, make_category_reviews
from labkit.finetune import (GradualUnfreezing, bitfit, distill, distillation_loss, layerwise_param_groups,
                             memory_breakdown, slice_layers, unfreeze_top_k)
from labkit.lora import LoRALinear, inject_lora, lora_state_dict, merge_lora, unmerge_lora
from labkit.nn import SequenceClassifier, count_parameters, freeze
from labkit.train import Callback, fit

H, LAYERS, FF = 32, 2, 64


def tiny_bert(seed=0):
    torch.manual_seed(seed)
    cfg = BertConfig(hidden_size=H, num_hidden_layers=LAYERS, num_attention_heads=4, intermediate_size=FF,
                     vocab_size=100, max_position_embeddings=32)
    return BertModel(cfg).eval()


def batch(n=4, length=7, seed=1):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, 100, (n, length), generator=g)
    mask = torch.ones_like(ids)
    mask[0, -2:] = 0
    return ids, mask


def hidden(model, ids, mask):
    return model(input_ids=ids, attention_mask=mask).last_hidden_state


# ----------------------------------------------------------------------------- LoRA
def test_lora_is_the_base_model_at_initialisation():
    base = tiny_bert()
    model = copy.deepcopy(base)
    names = inject_lora(model, ["query", "value"], r=4, alpha=8)
    assert names == [f"encoder.layer.{i}.attention.self.{m}" for i in range(LAYERS) for m in ("query", "value")]
    ids, mask = batch()
    assert torch.equal(hidden(model, ids, mask), hidden(base, ids, mask))
    layer = model.get_submodule(names[0])
    assert isinstance(layer, LoRALinear) and layer.scale == 2.0
    assert layer.lora_A.shape == (4, H) and layer.lora_B.shape == (H, 4) and not layer.lora_A.eq(0).all()


def test_lora_trains_only_its_matrices_and_the_count_is_right():
    model = tiny_bert()
    freeze(model)
    inject_lora(model, ["query", "value"], r=4)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_A" in n or "lora_B" in n for n in trainable)
    assert count_parameters(model, trainable_only=True) == LAYERS * 2 * (4 * H + H * 4)
    assert set(lora_state_dict(model)) == trainable


def test_merge_equals_unmerged_and_unmerge_restores_the_base():
    model = tiny_bert()
    inject_lora(model, ["query", "value", "dense"], r=4, alpha=8)
    base_weights = {n: m.base.weight.clone() for n, m in model.named_modules() if isinstance(m, LoRALinear)}
    torch.manual_seed(3)
    for m in model.modules():
        if isinstance(m, LoRALinear):
            nn.init.normal_(m.lora_B, std=0.2)   # a trained-looking, non-zero update
    ids, mask = batch()
    with torch.no_grad():
        unmerged = hidden(model, ids, mask)
        merged = hidden(merge_lora(model), ids, mask)
    assert not torch.allclose(unmerged, hidden(tiny_bert(), ids, mask), atol=1e-3)  # the update does something
    assert torch.allclose(merged, unmerged, atol=1e-5)
    unmerge_lora(model)
    for n, m in model.named_modules():
        if isinstance(m, LoRALinear):
            assert torch.allclose(m.base.weight, base_weights[n], atol=1e-6)


def test_lora_matches_peft_given_the_same_matrices():
    peft = pytest.importorskip("peft")
    ours, theirs = tiny_bert(), tiny_bert()
    freeze(ours)   # peft freezes the base model; inject_lora leaves that to you
    inject_lora(ours, ["query", "value"], r=4, alpha=8)
    theirs = peft.get_peft_model(theirs, peft.LoraConfig(r=4, lora_alpha=8, target_modules=["query", "value"],
                                                         lora_dropout=0.0))
    torch.manual_seed(5)
    copied = 0
    for name, m in ours.named_modules():
        if isinstance(m, LoRALinear):
            nn.init.normal_(m.lora_B, std=0.2)
            target = theirs.base_model.model.get_submodule(name)
            with torch.no_grad():
                target.lora_A["default"].weight.copy_(m.lora_A)
                target.lora_B["default"].weight.copy_(m.lora_B)
            copied += 1
    assert copied == 2 * LAYERS
    ids, mask = batch()
    with torch.no_grad():
        a, b = hidden(ours, ids, mask), hidden(theirs, ids, mask)
    assert (a - b).abs().max() <= 1e-5
    assert count_parameters(ours, trainable_only=True) == sum(p.numel() for p in theirs.parameters() if p.requires_grad)


def test_lora_bad_input_is_refused():
    with pytest.raises(ValueError, match=r"^r \(the LoRA rank\)"):
        inject_lora(tiny_bert(), ["query"], r=0)
    with pytest.raises(ValueError, match="alpha"):
        inject_lora(tiny_bert(), ["query"], r=4, alpha=0)
    with pytest.raises(ValueError, match="target_modules.*'qkv'.*query"):
        inject_lora(tiny_bert(), ["qkv"])
    with pytest.raises(ValueError, match=r"^r \(the LoRA rank\)"):
        LoRALinear(nn.Linear(4, 4), r=-1)


# ----------------------------------------------------------------------------- which parameters train
def classifier(seed=0):
    torch.manual_seed(seed)
    return SequenceClassifier(tiny_bert(seed), n_classes=2)


def toy_data(n=16, seed=2):
    ids, mask = batch(n, seed=seed)
    return ids, mask, (ids[:, 1] % 2)


def test_frozen_weights_stay_bitwise_unchanged_after_training():
    model = classifier()
    unfreeze_top_k(model.encoder, 1)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    fit(model, toy_data(), epochs=2, batch_size=8, lr=1e-2)
    for n, p in model.named_parameters():
        top = n.startswith(f"encoder.encoder.layer.{LAYERS - 1}.") or n.startswith("head.")
        if top:
            assert p.requires_grad
        else:
            assert not p.requires_grad and torch.equal(p, before[n]), n
    assert not torch.equal(model.head.weight, before["head.weight"])
    with pytest.raises(ValueError, match="k must"):
        unfreeze_top_k(model.encoder, LAYERS + 1)


def test_bitfit_and_adapter_counts():
    model = classifier()
    bitfit(model)
    biases = sum(p.numel() for n, p in model.encoder.named_parameters() if n.endswith("bias"))
    assert count_parameters(model, trainable_only=True) == biases + H * 2 + 2
    with pytest.raises(ValueError, match="head"):
        bitfit(classifier(), head="classifier")

    model = classifier().eval()
    ids, mask, _ = toy_data(4)
    with torch.no_grad():
        before = model(ids, mask)
    freeze(model.encoder)
    names = add_adapters(model.encoder, ["output.dense"], bottleneck=8)
    assert len(names) == 2 * LAYERS   # attention.output.dense and output.dense in each block
    per_adapter = H * 8 + 8 + 8 * H + H
    assert count_parameters(model, trainable_only=True) == 2 * LAYERS * per_adapter + H * 2 + 2
    with torch.no_grad():
        assert torch.allclose(model(ids, mask), before, atol=1e-6)   # identity at initialisation
    with pytest.raises(ValueError, match="bottleneck"):
        add_adapters(classifier().encoder, bottleneck=0)


def test_layerwise_groups_and_gradual_unfreezing():
    model = classifier()
    groups = layerwise_param_groups(model, base_lr=1e-3, decay=0.5)
    assert [g["name"] for g in groups] == ["head", "block 1", "block 0", "embeddings"]
    assert [g["lr"] for g in groups] == pytest.approx([1e-3, 5e-4, 2.5e-4, 1.25e-4])
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))
    with pytest.raises(ValueError, match="decay"):
        layerwise_param_groups(model, 1e-3, decay=0)

    seen = []

    class Record(Callback):
        def on_epoch_end(self, state):
            seen.append(sorted({n.split(".")[3] for n, p in model.named_parameters()
                                if p.requires_grad and n.startswith("encoder.encoder.layer.")}))

    embeddings = model.encoder.embeddings.word_embeddings.weight.detach().clone()
    optimizer = torch.optim.AdamW(groups)
    fit(model, toy_data(), epochs=3, batch_size=8, optimizer=optimizer,
        callbacks=[GradualUnfreezing(model.encoder), Record()])
    assert seen == [["1"], ["0", "1"], ["0", "1"]]   # after epochs 1, 2, 3: top block first
    assert torch.equal(model.encoder.embeddings.word_embeddings.weight, embeddings)  # thawed only at the end


# ----------------------------------------------------------------------------- distillation
def test_distillation_loss_matches_its_formula():
    torch.manual_seed(0)
    s, t, y = torch.randn(5, 3), torch.randn(5, 3), torch.tensor([0, 2, 1, 1, 0])
    T, alpha = 3.0, 0.7
    p_t, p_s = torch.softmax(t / T, -1), torch.softmax(s / T, -1)
    kl = (p_t * (p_t.log() - p_s.log())).sum(-1).mean()
    ce = -torch.log_softmax(s, -1)[torch.arange(5), y].mean()
    assert distillation_loss(s, t, y, T, alpha).item() == pytest.approx((alpha * T * T * kl + (1 - alpha) * ce).item(),
                                                                         rel=1e-5)
    assert distillation_loss(s, s, y, T, 1.0).item() == pytest.approx(0.0, abs=1e-6)
    assert distillation_loss(s, t, y, T, 0.0).item() == pytest.approx(F.cross_entropy(s, y).item(), rel=1e-6)
    with pytest.raises(ValueError, match=r"^T \(temperature\)"):
        distillation_loss(s, t, y, T=0)
    with pytest.raises(ValueError, match="alpha"):
        distillation_loss(s, t, y, alpha=1.5)


def test_distill_trains_a_sliced_student():
    teacher = classifier()
    student = SequenceClassifier(slice_layers(teacher.encoder, [LAYERS - 1]), n_classes=2)
    assert len(student.encoder.encoder.layer) == 1 and len(teacher.encoder.encoder.layer) == LAYERS
    history = distill(student, teacher, torch.utils.data.TensorDataset(*toy_data()), T=2.0, alpha=0.5,
                      epochs=2, batch_size=8, lr=1e-2)
    assert len(history.steps) == 4 and all(s["loss"] > 0 for s in history.steps)
    mem = memory_breakdown(student, *toy_data(4)[:2])
    assert mem["AdamW state MB"] == pytest.approx(2 * mem["grads MB"]) and mem["activations MB"] > 0


def test_category_task_is_balanced_and_deterministic():
    a, b = make_category_reviews(seed=1), make_category_reviews(seed=1)
    assert a.train == b.train and len(a.train) == 300
    for split in ("train", "val", "test"):
        labels = a.labels(split)
        assert all(labels.count(k) == len(labels) // 3 for k in CATEGORIES)
    assert all(any(p in t.lower() for p in CATEGORIES[y]) for t, y in a.test)
    with pytest.raises(ValueError, match="n_train"):
        make_category_reviews(n_train=10)


def test_every_strategy_runs_and_trains_what_it_says():
    from labkit.strategies import STRATEGIES, run_strategy
    data = torch.utils.data.TensorDataset(*toy_data(8))
    counts = {}
    for name in STRATEGIES:
        r = run_strategy(name, tiny_bert(), data, data, lr=1e-3, epochs=2, batch_size=4)
        assert 0 <= r.test_acc <= 1 and r.seconds > 0 and r.memory["activations MB"] > 0
        counts[name] = r.trainable
    total = count_parameters(classifier())
    head = H * 2 + 2
    assert counts["full"] == total
    assert counts["linear_probe"] == head
    assert counts["lora"] == head + LAYERS * 2 * (8 * H + H * 8)
    assert head < counts["bitfit"] < counts["top_k"] <= total
    # gradual unfreezing, 2 epochs: the head in epoch 1, then the head and the top block
    top_block = sum(p.numel() for p in tiny_bert().encoder.layer[-1].parameters())
    assert counts["gradual"] == head + top_block
    with pytest.raises(ValueError, match="name must be one of 'full', 'linear_probe'"):
        run_strategy("prefix tuning", tiny_bert(), data, data, lr=1e-3, epochs=1)


def test_strategies_have_a_label_and_a_learning_rate_each():
    from labkit.strategies import LABELS, LEARNING_RATES, STRATEGIES, StrategyResult
    assert set(LABELS) == set(LEARNING_RATES) == set(STRATEGIES)
    assert all(k.isidentifier() and k.islower() for k in STRATEGIES)  # short ids; labels are for tables
    mem = {"grads MB": 1.0, "AdamW state MB": 2.0, "activations MB": 3.0}
    row = StrategyResult("lora", 0.5, 10, 1000, 1.0, 2.0, mem, None, None).row()
    assert row["strategy"] == "LoRA (r=8, query/value)" and row["grads+AdamW MB"] == 3.0
    assert StrategyResult("bitfit", 0.5, 10, 1000, 1.0, 2.0, mem, None, None).label == "BitFit"
    assert StrategyResult("student, KD", 0.5, 10, 10, 1.0, 2.0, mem, None, None).row()["strategy"] == "student, KD"


def test_distill_with_alpha_zero_is_plain_fine_tuning_and_alpha_one_is_not():
    teacher, data = classifier(seed=3), torch.utils.data.TensorDataset(*toy_data())
    losses = {}
    for arm in ("ce", 0.0, 1.0):
        student = classifier(seed=1)
        torch.manual_seed(0)
        kw = dict(epochs=1, batch_size=8, lr=1e-2)
        h = fit(student, data, **kw) if arm == "ce" else distill(student, teacher, data, T=2.0, alpha=arm, **kw)
        losses[arm] = [s["loss"] for s in h.steps]
    assert losses[0.0] == pytest.approx(losses["ce"], rel=1e-6)
    assert losses[1.0] != pytest.approx(losses["ce"], rel=1e-3)


def test_replace_linears_matches_whole_name_parts_and_changes_nothing_on_a_miss():
    from labkit.nn import replace_linears
    model = nn.Sequential()
    model.add_module("query", nn.Linear(2, 2))
    model.add_module("myquery", nn.Linear(2, 2))
    model.add_module("block", nn.Sequential())
    model.block.add_module("query", nn.Linear(2, 2))
    replaced = replace_linears(model, "query", lambda lin: nn.Sequential(lin))
    assert replaced == ["query", "block.query"]
    assert isinstance(model.myquery, nn.Linear) and isinstance(model.block.query, nn.Sequential)
    before = copy.deepcopy(model)
    with pytest.raises(ValueError, match=r"targets \['value'\] match no nn.Linear.*myquery"):
        replace_linears(model, ["myquery", "value"], lambda lin: nn.Sequential(lin))
    assert str(model) == str(before)  # refused before anything changed
    with pytest.raises(ValueError, match="targets is empty"):
        replace_linears(model, [], nn.Sequential)
