"""The live loss curve: its data, and what a headless kernel (papermill, the book) keeps."""
import json

import nbformat
import pytest
from nbclient import NotebookClient

from labkit.plots import LiveLossPlot, line_plot
from labkit.train import fit


def test_plot_collects_every_step_and_validation_point():
    import torch
    torch.manual_seed(0)
    X, y = torch.randn(64, 3), torch.randint(0, 2, (64,))
    plot = LiveLossPlot(every=4)
    a, b = plot.track("a"), plot.track("b")
    fit(torch.nn.Linear(3, 2), (X, y), val=(X, y), epochs=2, batch_size=16, lr=0.1, callbacks=[a])
    fit(torch.nn.Linear(3, 2), (X, y), val=(X, y), epochs=3, batch_size=16, lr=0.1, callbacks=[b])
    assert len(plot.series["a"]["step"]) == 8 and len(plot.series["b"]["val_loss"]) == 3
    fig = plot.figure()
    assert [t.name for t in fig.data] == ["a · train", "a · val", "b · train", "b · val"]
    with pytest.raises(ValueError, match="every"):
        LiveLossPlot(every=0)


def test_headless_kernel_keeps_exactly_the_final_frame():
    code = """
import torch
from labkit.plots import LiveLossPlot
from labkit.train import fit
torch.manual_seed(0)
X, y = torch.randn(64, 3), torch.randint(0, 2, (64,))
print("before")
plot = LiveLossPlot(every=2)
h = fit(torch.nn.Linear(3, 2), (X, y), val=(X, y), epochs=3, batch_size=8, lr=0.1, callbacks=[plot])
print("after", plot.mode, plot.draws)
"""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(code)]
    NotebookClient(nb, kernel_name="python3", timeout=120).execute()
    outputs = nb.cells[0].outputs
    figures = [o for o in outputs if "application/vnd.plotly.v1+json" in o.get("data", {})]
    texts = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    assert "before" in texts and "after redraw" in texts  # other output of the cell survives
    draws = int(texts.split("after redraw")[1].split()[0])
    assert draws > 3  # it redrew while training ...
    assert len(figures) == 1  # ... into one slot, which holds the final frame
    fig = figures[0]["data"]["application/vnd.plotly.v1+json"]
    train = next(t for t in fig["data"] if t["name"].endswith("train"))
    val = next(t for t in fig["data"] if t["name"].endswith("val"))
    assert len(train["x"]) == 24 and len(val["x"]) == 3


def test_line_plot():
    fig = line_plot([16, 32], {"a": [0.5, 0.6], "b": [0.7, 0.9]}, title="t", x_title="x", y_title="y", log_x=True)
    assert len(fig.data) == 2 and fig.layout.xaxis.type == "log"
