"""The TensorBoard callback: what it writes is what fit computed (read back with TensorBoard's own reader);
histograms summarise the weights at each epoch end; a resumed run logs every step once."""
import pytest
import torch

from labkit.tracking import TensorBoard, plot_histograms, plot_scalars, read_events, weight_stats
from labkit.train import fit, warmup_cosine


def make():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
    g = torch.Generator().manual_seed(0)
    X = torch.randn(96, 4, generator=g)
    return model, (X, (X[:, 0] > 0).long() + (X[:, 1] > 0.5).long())


KW = dict(epochs=3, batch_size=16, lr=1e-2, seed=1, scheduler=warmup_cosine(4, 18), progress=False)


def test_scalars_are_the_history(tmp_path):
    model, data = make()
    h = fit(model, data, val=data, metrics={"acc": lambda o, t: (o.argmax(1) == t).float().mean()},
            callbacks=[TensorBoard(tmp_path)], **KW)
    ev = read_events(tmp_path)
    loss, lr = ev.scalar("train/loss"), ev.scalar("train/lr")
    assert loss.step.tolist() == [s["step"] for s in h.steps] == list(range(1, 19))
    assert loss.value.tolist() == pytest.approx([s["loss"] for s in h.steps], rel=1e-6)   # stored as float32
    assert lr.value.tolist() == pytest.approx([s["lr"] for s in h.steps], rel=1e-6)
    assert lr.value.iloc[0] < lr.value.iloc[3]                       # the warmup is visible
    for key in ("train_loss", "val_loss", "val_acc"):
        rows = ev.scalar(f"epoch/{key}")
        assert rows.step.tolist() == [6, 12, 18]
        assert rows.value.tolist() == pytest.approx([r[key] for r in h.epochs], rel=1e-6)
    with pytest.raises(KeyError, match="train/loss"):
        ev.scalar("train/los")
    assert len(plot_scalars(ev, ["train/loss", "train/lr"]).data) == 2


def test_histograms_summarise_the_weights(tmp_path):
    model, data = make()
    fit(model, data, callbacks=[TensorBoard(tmp_path)], **KW)
    ev = read_events(tmp_path)
    names = [n for n, _ in model.named_parameters()]
    assert sorted(ev.histograms.tag.unique()) == sorted(f"weights/{n}" for n in names)
    last = ev.histograms[ev.histograms.step == 3].set_index("tag")
    for name, s in weight_stats(model).items():
        row = last.loc[f"weights/{name}"]
        assert row["num"] == s["num"] and sum(row["counts"]) == pytest.approx(s["num"])
        assert row["min"] == pytest.approx(s["min"], rel=1e-6) and row["max"] == pytest.approx(s["max"], rel=1e-6)
        assert row["sum"] == pytest.approx(s["sum"], rel=1e-4, abs=1e-5)
    first = ev.histograms[ev.histograms.step == 1].set_index("tag")
    assert first.loc["weights/0.weight", "sum"] != last.loc["weights/0.weight", "sum"]   # the weights moved
    assert len(plot_histograms(ev, "weights/0.weight").data) == 3
    frozen, _ = make()
    frozen[0].weight.requires_grad_(False)
    fit(frozen, data, callbacks=[TensorBoard(tmp_path / "frozen")], **KW)
    assert "weights/0.weight" not in set(read_events(tmp_path / "frozen").histograms.tag)


def test_a_resumed_run_logs_every_step_once(tmp_path):
    model, data = make()
    full = fit(model, data, **KW)
    ck = tmp_path / "run.ckpt"
    m1, _ = make()
    fit(m1, data, checkpoint=ck, interrupt_after=8, callbacks=[TensorBoard(tmp_path / "tb", every=1)], **KW)
    m2, _ = make()
    fit(m2, data, checkpoint=ck, resume=True, callbacks=[TensorBoard(tmp_path / "tb")], **KW)
    loss = read_events(tmp_path / "tb").scalar("train/loss")
    assert loss.step.tolist() == list(range(1, 19))
    assert loss.value.tolist() == pytest.approx([s["loss"] for s in full.steps], rel=1e-6)


def test_every_and_bad_input(tmp_path):
    model, data = make()
    fit(model, data, callbacks=[TensorBoard(tmp_path, every=5, histograms=False)], **KW)
    ev = read_events(tmp_path)
    assert ev.scalar("train/loss").step.tolist() == [5, 10, 15] and ev.histograms.empty
    with pytest.raises(ValueError, match="every"):
        TensorBoard(tmp_path, every=0)
    with pytest.raises(FileNotFoundError, match="no TensorBoard event files"):
        read_events(tmp_path / "nothing-here")
