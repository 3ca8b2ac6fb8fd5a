"""Continual learning: task heads that keep tasks apart, the replay memory, the Fisher diagonal (checked
against torch.func per-sample gradients), the EWC penalty, and the verdict wording."""
import pytest
import torch
import torch.nn.functional as F

from labkit import continual as C
from labkit.nn import BertEncoder, TransformerConfig
from labkit.privacy import per_sample_gradients
from labkit.train import fit
from labkit.transfer import BookEncoder


def tiny_encoder(seed=0):
    torch.manual_seed(seed)
    return BookEncoder(BertEncoder(TransformerConfig(vocab_size=12, max_len=8, d_model=8, n_heads=2, n_layers=1,
                                                     dropout=0.0)))


def rows(n=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, 12, (n, 5), generator=g)
    mask = torch.ones_like(ids)
    task = torch.arange(n) % 2
    label = torch.where(task == 0, torch.randint(2, (n,), generator=g), torch.randint(3, (n,), generator=g))
    return torch.utils.data.TensorDataset(ids, mask, task, label)


def test_each_row_gets_its_own_tasks_logits():
    model = C.TaskHeads(tiny_encoder(), {"a": 2, "b": 3}, dropout=0.0).eval()
    ids, mask, task, _ = rows().tensors
    out = model(ids, mask, task)
    assert out.shape == (12, 3)
    assert torch.all(out[task == 0, 2] == C.PAD_LOGIT)
    h = model.encoder(input_ids=ids, attention_mask=mask).last_hidden_state.mean(1)
    torch.testing.assert_close(out[task == 0, :2], model.heads["a"](h[task == 0]))
    torch.testing.assert_close(out[task == 1], model.heads["b"](h[task == 1]))
    assert model.task_id("b") == 1
    with pytest.raises(ValueError, match="task must be one of"):
        model.task_id("c")
    with pytest.raises(ValueError, match="n_classes"):
        C.TaskHeads(tiny_encoder(), {"a": 1})


def test_training_on_task_b_never_moves_head_a():
    model = C.TaskHeads(tiny_encoder(), {"a": 2, "b": 3})
    data = rows()
    b_only = torch.utils.data.TensorDataset(*(t[data.tensors[2] == 1] for t in data.tensors))
    head_a = model.heads["a"].weight.detach().clone()
    enc = model.encoder.bert.emb.tok.weight.detach().clone()
    fit(model, b_only, epochs=2, batch_size=3, lr=1e-2, progress=False)
    assert torch.equal(model.heads["a"].weight, head_a)
    assert not torch.equal(model.encoder.bert.emb.tok.weight, enc)       # the shared encoder does move


def test_replay_mixes_a_memory_of_the_old_task_in():
    new, old = [("b", i, 1) for i in range(10)], [("a", i, 0) for i in range(20)]
    mixed = C.replay_examples(new, old, 0.25, seed=1)
    assert mixed[:10] == new and len(mixed) == 15 and all(e in old for e in mixed[10:])
    assert len(set(mixed[10:])) == 5
    assert C.replay_examples(new, old, 0.0) == new
    with pytest.raises(ValueError, match="fraction"):
        C.replay_examples(new, old, 1.5)


def test_fisher_diagonal_is_the_mean_squared_per_example_gradient():
    model = C.TaskHeads(tiny_encoder(), {"a": 2, "b": 3}, dropout=0.0)
    data = rows(8)
    fisher = C.fisher_diagonal(model, data)
    assert set(fisher) == {n for n, _ in model.named_parameters() if n.startswith("encoder.")}
    ids, mask, task, label = data.tensors

    class Wrapped(torch.nn.Module):                       # per_sample_gradients calls model(x) with one input
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, x):
            return self.m(x[:, 0], x[:, 1], x[:, 2, 0])

    x = torch.stack([ids, mask, task[:, None].expand_as(ids)], dim=1)
    grads = per_sample_gradients(Wrapped(model).eval(), x, label)
    for name, f in fisher.items():
        torch.testing.assert_close(f, (grads["m." + name] ** 2).mean(0), atol=1e-7, rtol=1e-4)
    with pytest.raises(ValueError, match="not parameters"):
        C.fisher_diagonal(model, data, params=["nope"])


def test_ewc_penalty_pulls_towards_the_task_a_weights():
    model = C.TaskHeads(tiny_encoder(), {"a": 2, "b": 3}, dropout=0.0)
    fisher = {"heads.a.weight": torch.full_like(model.heads["a"].weight, 2.0)}
    loss = C.EWCLoss(model, fisher, lam=3.0)
    assert float(loss.penalty()) == 0.0
    with torch.no_grad():
        model.heads["a"].weight += 0.1
    assert float(loss.penalty()) == pytest.approx(0.5 * 3.0 * 2.0 * 0.01 * model.heads["a"].weight.numel())
    out, target = torch.randn(4, 3), torch.tensor([0, 1, 2, 0])
    assert float(C.EWCLoss(model, fisher, lam=0.0)(out, target)) == pytest.approx(float(F.cross_entropy(out, target)))
    with pytest.raises(ValueError, match="lam"):
        C.EWCLoss(model, fisher, lam=-1.0)


def test_ewc_pull_moves_each_weight_back_by_its_share_of_the_fisher():
    model = C.TaskHeads(tiny_encoder(), {"a": 2, "b": 3}, dropout=0.0)
    w = model.heads["a"].weight                                # 2 x 8 = 16 weights
    f = torch.zeros_like(w)
    f[0, 0], f[0, 1] = 12.0, 2.0                               # mean F = 14 / 16
    pull = C.EWCPull(model, {"heads.a.weight": f}, strength=0.25)
    anchor = w.detach().clone()
    with torch.no_grad():
        w += 1.0
    pull.on_step_end(None)
    moved = anchor + 1.0 - w.detach()
    assert float(moved[0, 0]) == pytest.approx(1.0)           # 0.25 * 12 / (14/16) > 1: all the way back
    assert float(moved[0, 1]) == pytest.approx(0.25 * 2 / (14 / 16))
    assert float(moved[1:].abs().max()) == 0.0                # Fisher 0: free to move
    assert float(pull.rates().max()) == 1.0 and len(pull.rates()) == 16
    with pytest.raises(ValueError, match="strength"):
        C.EWCPull(model, {"heads.a.weight": f}, strength=0.0)
    with pytest.raises(ValueError, match="all zero"):
        C.EWCPull(model, {"heads.a.weight": torch.zeros_like(w)}, strength=0.5)


def test_task_accuracy_counts_rows_right():
    model = C.TaskHeads(tiny_encoder(), {"a": 2, "b": 3}, dropout=0.0)
    data = rows()
    ids, mask, task, _ = data.tensors
    pred = model.eval()(ids, mask, task).argmax(-1)
    flipped = torch.utils.data.TensorDataset(ids, mask, task, pred)
    assert C.task_accuracy(model, flipped) == 1.0


def test_verdicts_follow_the_numbers():
    arms = {"naive sequential": (0.60, 0.99), "replay 25%": (0.85, 0.98), "EWC λ=1e8": (0.61, 0.80)}
    lines = C.continual_verdicts(0.90, arms)
    assert "30.0 points lost" in lines[0] and "Forgetting is measurable" in lines[0]
    assert "replay 25%: task A 0.850; saves 25.0 of the 30.0 lost points (83% of the loss); task B level" in lines[1]
    assert "saves no more than 2 points (+1.0)" in lines[2] and "task B 19.0 points lower than naive" in lines[2]
    none = C.continual_verdicts(0.90, {"naive sequential": (0.895, 0.99), "replay": (0.9, 0.99)})
    assert "No forgetting beyond the margin" in none[0] and "task A +0.5 points against" in none[1]
    better = C.continual_verdicts(0.60, {"naive sequential": (0.75, 0.6)})
    assert "(15.0 points gained)" in better[0]
    table = C.forgetting_rows(0.9, arms)
    assert table.loc["replay 25%", "task A points lost"] == pytest.approx(5.0)
    with pytest.raises(ValueError, match="naive must be one of"):
        C.continual_verdicts(0.9, arms, naive="x")
