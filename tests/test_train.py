"""The training loop: determinism, exact resume, interruption, errors, callbacks."""
import os
import signal

import pytest
import torch

from labkit.train import Callback, EarlyStopping, History, evaluate, fit, load_checkpoint, train_step, warmup_cosine


def make_model(seed=1):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(4, 32), torch.nn.ReLU(), torch.nn.Dropout(0.3), torch.nn.Linear(32, 3))


def make_data(n=120):
    g = torch.Generator().manual_seed(0)
    X = torch.randn(n, 4, generator=g)
    y = (X[:, 0] > 0).long() + (X[:, 1] > 0.5).long()
    return X, y


def same_weights(a, b):
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


KW = dict(epochs=4, batch_size=16, lr=1e-2, seed=3)


def test_same_seed_same_history():
    X, y = make_data()
    h1 = fit(make_model(), (X, y), val=(X, y), **KW)
    h2 = fit(make_model(), (X, y), val=(X, y), **KW)
    assert h1 == h2 and len(h1.steps) == 4 * 8
    h3 = fit(make_model(), (X, y), val=(X, y), **{**KW, "seed": 4})
    assert h3 != h1  # another data order gives another history


def test_training_reduces_loss():
    X, y = make_data()
    h = fit(make_model(), (X, y), val=(X, y), epochs=30, batch_size=16, lr=1e-2, metrics={"acc": lambda o, t: (o.argmax(1) == t).float().mean()})
    assert h.epochs[-1]["val_loss"] < 0.7 * h.epochs[0]["val_loss"]
    assert h.last("val_acc") > 0.8


@pytest.mark.parametrize("stop_at", [5, 8, 13])
def test_exact_resume(tmp_path, stop_at):
    X, y = make_data()
    sched = warmup_cosine(3, 32)
    full_model = make_model()
    full = fit(full_model, (X, y), val=(X, y), scheduler=sched, clip_grad_norm=1.0, **KW)
    ck = tmp_path / "run.ckpt"
    part = fit(make_model(), (X, y), val=(X, y), scheduler=sched, clip_grad_norm=1.0, checkpoint=ck,
               interrupt_after=stop_at, **KW)
    assert part.interrupted and len(part.steps) == stop_at
    torch.manual_seed(12345)  # a different global random state must not matter
    resumed_model = make_model(seed=99)  # different initial weights: the checkpoint must overwrite them
    resumed = fit(resumed_model, (X, y), val=(X, y), scheduler=sched, clip_grad_norm=1.0, checkpoint=ck,
                  resume=True, **KW)
    assert resumed == full
    assert same_weights(resumed_model, full_model)


def test_interrupt_saves_checkpoint_and_resumes(tmp_path):
    X, y = make_data()
    ck = tmp_path / "run.ckpt"

    class Interrupt(Callback):
        def on_step_end(self, state):
            if state.step == 6:
                os.kill(os.getpid(), signal.SIGINT)  # what a kernel interrupt does

    h = fit(make_model(), (X, y), checkpoint=ck, callbacks=[Interrupt()], **KW)
    assert h.interrupted and len(h.steps) == 6
    assert load_checkpoint(ck)["step"] == 6
    m = make_model()
    resumed = fit(m, (X, y), checkpoint=ck, resume=True, **KW)
    ref_model = make_model()
    ref = fit(ref_model, (X, y), **KW)
    assert resumed == ref and same_weights(m, ref_model)


def test_checkpoint_is_written_atomically(tmp_path):
    X, y = make_data()
    ck = tmp_path / "sub" / "run.ckpt"
    fit(make_model(), (X, y), checkpoint=ck, checkpoint_every=3, **KW)
    assert ck.exists() and not (tmp_path / "sub" / "run.ckpt.tmp").exists()
    assert load_checkpoint(ck)["step"] == 32


def test_resume_refuses_other_settings(tmp_path):
    X, y = make_data()
    ck = tmp_path / "run.ckpt"
    fit(make_model(), (X, y), checkpoint=ck, interrupt_after=3, **KW)
    with pytest.raises(ValueError, match="batch_size"):
        fit(make_model(), (X, y), checkpoint=ck, resume=True, **{**KW, "batch_size": 8})


def test_nan_loss_names_the_step():
    X, y = make_data()
    X = X.clone()
    X[40] = float("nan")
    with pytest.raises(FloatingPointError, match=r"at step \d+;"):
        fit(make_model(), (X, y), epochs=1, batch_size=8, lr=1e-2, seed=0)


@pytest.mark.parametrize("kwargs, match", [
    (dict(lr=0.0), "lr"), (dict(lr=-1e-3), "lr"), (dict(lr=float("nan")), "lr"),
    (dict(batch_size=0), "batch_size"), (dict(batch_size=121), "batch_size"), (dict(epochs=0), "epochs"),
    (dict(clip_grad_norm=-1.0), "clip_grad_norm"), (dict(resume=True), "checkpoint"),
])
def test_bad_input_names_the_parameter(kwargs, match):
    X, y = make_data()
    args = {**dict(epochs=1, batch_size=16, lr=1e-2), **kwargs}
    with pytest.raises(ValueError, match=match):
        fit(make_model(), (X, y), **args)


def test_bad_optimizer_lr_and_empty_data():
    X, y = make_data()
    model = make_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    opt.param_groups[0]["lr"] = -0.1
    with pytest.raises(ValueError, match="lr"):
        fit(model, (X, y), optimizer=opt)
    with pytest.raises(ValueError, match="empty"):
        fit(make_model(), (X[:0], y[:0]), lr=1e-3, batch_size=1)
    with pytest.raises(TypeError, match="train"):
        fit(make_model(), 42, lr=1e-3)


def test_early_stopping_restores_best():
    X, y = make_data()
    es = EarlyStopping(monitor="val_loss", patience=1)
    # a huge learning rate makes the validation loss rise quickly
    h = fit(make_model(), (X, y), val=(X, y), epochs=50, batch_size=16, lr=3.0, callbacks=[es])
    assert len(h.epochs) < 50
    assert es.best == min(r["val_loss"] for r in h.epochs)


def test_callbacks_see_every_step_and_epoch():
    X, y = make_data()
    seen = {"steps": [], "epochs": 0, "start": 0, "end": 0}

    class Spy(Callback):
        def on_fit_start(self, s): seen["start"] += 1
        def on_step_end(self, s): seen["steps"].append(s.step)
        def on_epoch_end(self, s): seen["epochs"] += 1
        def on_fit_end(self, s): seen["end"] += 1

    fit(make_model(), (X, y), callbacks=[Spy()], **KW)
    assert seen == {"steps": list(range(1, 33)), "epochs": 4, "start": 1, "end": 1}


def test_warmup_cosine_shape():
    model = make_model()
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    sched = warmup_cosine(4, 20)(opt)
    lrs = []
    for _ in range(20):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert max(lrs) == 1.0 and lrs[-1] < 0.05 and all(a >= b for a, b in zip(lrs[4:], lrs[5:]))
    with pytest.raises(ValueError, match="warmup_steps"):
        warmup_cosine(30, 20)


def test_evaluate_is_weighted_and_restores_mode():
    X, y = make_data(100)
    model = make_model()
    model.train()
    r = evaluate(model, (X, y), batch_size=30)
    with torch.no_grad():
        model.eval()
        full = torch.nn.functional.cross_entropy(model(X), y).item()
    assert r["loss"] == pytest.approx(full, rel=1e-5)
    model.train()
    evaluate(model, (X, y))
    assert model.training


def test_history_roundtrip():
    h = History(steps=[{"step": 1, "epoch": 1, "loss": 1.0, "lr": 0.1}], epochs=[{"epoch": 1, "val_loss": 2.0}])
    assert History.from_dict(h.to_dict()) == h
    assert h.last("val_loss") == 2.0
    with pytest.raises(KeyError, match="val_acc"):
        h.last("val_acc")


# ----------------------------------------------------------------------------- the step and the budget
def test_train_step_is_the_textbook_step():
    """Gradients are cleared before backward (not summed over steps), clipped, applied, then the LR moves."""
    X, y = make_data()
    model, ref = make_model(), make_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    ref_opt = torch.optim.SGD(ref.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    model.eval(), ref.eval()  # no dropout: both must compute the same thing
    for _ in range(3):
        loss = train_step(model, (X, y), opt, clip=0.5, scheduler=sched)
        ref_opt.zero_grad()
        ref_loss = torch.nn.functional.cross_entropy(ref(X), y)
        ref_loss.backward()
        torch.nn.utils.clip_grad_norm_(ref.parameters(), 0.5)
        ref_opt.step()
        for g in ref_opt.param_groups:
            g["lr"] *= 0.5
        assert loss == pytest.approx(ref_loss.item(), abs=1e-6)
    assert same_weights(model, ref) or all(torch.allclose(a, b, atol=1e-6) for a, b in
                                           zip(model.parameters(), ref.parameters()))
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1 * 0.5 ** 3)
    total = torch.sqrt(sum((p.grad ** 2).sum() for p in model.parameters()))
    assert total <= 0.5 + 1e-5


def test_train_step_refuses_a_non_finite_loss_before_touching_the_weights():
    X, y = make_data()
    model = make_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(FloatingPointError, match="at step 7"):
        train_step(model, (X, y), opt, loss_fn=lambda o, t: o.sum() * float("nan"), step=7)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_fit_calls_train_step(monkeypatch):
    import labkit.train as train
    calls = []
    real = train.train_step
    monkeypatch.setattr(train, "train_step", lambda *a, **k: calls.append(k["step"]) or real(*a, **k))
    X, y = make_data()
    train.fit(make_model(), (X, y), steps=5, batch_size=16, lr=1e-2)
    assert calls == [1, 2, 3, 4, 5]


def test_step_budget_is_a_complete_run_with_its_last_epoch_record():
    X, y = make_data()  # 120 examples, batch 16 -> 8 steps per epoch
    h = fit(make_model(), (X, y), val=(X, y), steps=20, batch_size=16, lr=1e-2, seed=3)
    assert not h.interrupted
    assert len(h.steps) == 20
    assert [r["epoch"] for r in h.epochs] == [1, 2, 3] and h.epochs[-1]["step"] == 20
    assert "val_loss" in h.epochs[-1]
    assert h.epochs[-1]["train_loss"] == pytest.approx(sum(s["loss"] for s in h.steps[16:]) / 4)


def test_step_budget_resumes_exactly(tmp_path):
    X, y = make_data()
    kw = dict(steps=20, batch_size=16, lr=1e-2, seed=3, scheduler=warmup_cosine(3, 20))
    full_model = make_model()
    full = fit(full_model, (X, y), **kw)
    ck = tmp_path / "run.ckpt"
    part = fit(make_model(), (X, y), checkpoint=ck, interrupt_after=11, **kw)
    assert part.interrupted and len(part.steps) == 11
    m = make_model(seed=5)
    resumed = fit(m, (X, y), checkpoint=ck, resume=True, **kw)
    assert resumed == full and same_weights(m, full_model)


@pytest.mark.parametrize("kwargs, match", [
    (dict(epochs=2, steps=10), "not both"), (dict(steps=0), "steps"), (dict(steps=2.5), "steps"),
    (dict(steps=True), "steps"), (dict(checkpoint_every=0), "checkpoint_every"),
])
def test_budget_bad_input(kwargs, match):
    X, y = make_data()
    with pytest.raises(ValueError, match=match):
        fit(make_model(), (X, y), batch_size=16, lr=1e-2, **kwargs)
