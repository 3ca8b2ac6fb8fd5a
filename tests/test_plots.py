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


# ----------------------------------------------------------------------------- static counterparts (the book)
import numpy as np  # noqa: E402
import plotly.graph_objects as go  # noqa: E402

from labkit import static_panels as sp  # noqa: E402


def _toy_traces(option, value):
    """Two traces per run whose data say which run they are: y = 100·option + value."""
    return [go.Scatter(x=[0, 1], y=[100 * option + value] * 2, name=f"a {option},{value}"),
            go.Scatter(x=[0], y=[-(100 * option + value)], name=f"b {option},{value}")]


def _shown(fig):
    """What a reader sees: the y data of the visible traces."""
    return [list(t.y) for t in fig.data if t.visible is not False]


def _press(fig, args):
    restyle, *indices = args
    fig.plotly_restyle(restyle, trace_indexes=indices[0] if indices else None)


def test_explorer_slider_and_dropdown_act_independently():
    fig = sp.explorer(_toy_traces, slider=("lr", [1, 2, 3]), dropdown=("labels", [0, 5]), slider_default=1,
                      fixed=[go.Scatter(x=[0], y=[7], name="fixed")])
    assert len(fig.data) == 1 + 3 * 2
    assert _shown(fig) == [[7], [2, 2], [-2]]                           # option 0, value 2, and the fixed trace
    steps, buttons = fig.layout.sliders[0].steps, fig.layout.updatemenus[0].buttons
    assert [s.label for s in steps] == ["1", "2", "3"] and len(buttons) == 2
    _press(fig, buttons[1].args)                                        # dropdown: option 5 ...
    assert _shown(fig) == [[7], [502, 502], [-502]]
    _press(fig, steps[2].args)                                          # ... then slider: value 3
    assert _shown(fig) == [[7], [503, 503], [-503]]
    _press(fig, buttons[0].args)                                        # the dropdown keeps the slider's value
    assert _shown(fig) == [[7], [3, 3], [-3]]
    assert [t.name for t in fig.data if t.visible is not False][1:] == ["a 0,3", "b 0,3"]


def test_explorer_refuses_runs_of_different_shapes_and_a_bad_default():
    with pytest.raises(ValueError, match="same number"):
        sp.explorer(lambda o, v: _toy_traces(o, v)[:1 + (v == 2)], slider=("lr", [1, 2]), dropdown=("n", [0]))
    with pytest.raises(ValueError, match="slider_default"):
        sp.explorer(_toy_traces, slider=("lr", [1, 2]), slider_default=2)
    with pytest.raises(ValueError, match="at least one"):
        sp.explorer(_toy_traces, slider=("lr", []))


def test_lab04a_counterpart_holds_every_optimizer_and_rate_as_computed():
    from labkit import surfaces
    grid = sp.lab04a_grid("quadratic", lrs=[0.01, 0.05, 0.1], steps=30, optimizers=["gd", "adam"])
    fig = sp.lab04a_figure(grid)
    assert len(fig.layout.sliders[0].steps) == 3 and [b.label for b in fig.layout.updatemenus[0].buttons] == [
        "optimizer: gd", "optimizer: adam"]
    adam = fig.layout.updatemenus[0].buttons[1].args
    path, f = surfaces.trajectory("quadratic", "adam", lr=0.05, steps=30)
    k = 2 * 1                                                  # lr 0.05 is the second slider position: 2 traces each
    assert np.allclose(adam[0]["x"][k], path[:, 0], atol=1e-6) and np.allclose(adam[0]["y"][k], path[:, 1], atol=1e-6)
    assert adam[0]["name"][k].startswith("adam at lr 5e-02")
    # gd at 0.1 on this quadratic (λ_max = 25): the factor 1 − 0.1·25 = −1.5 makes it diverge, and the name says so
    assert grid.runs[("gd", 0.1)]["diverged"] and "diverged" in fig.layout.updatemenus[0].buttons[0].args[0]["name"][4]
    assert not grid.runs[("gd", 0.01)]["diverged"]
    n_fixed = len(fig.data) - 3 * 2
    assert all(t.visible is not False for t in fig.data[:n_fixed])  # the contours are always shown


def test_lab02_figure_names_each_arm_with_its_accuracies():
    from labkit.train import History
    grid = sp.Grid("lab02", ("lr", [1e-4, 1e-3]), ("labels", [16, 64]), note="toy")
    for n in (16, 64):
        for lr in (1e-4, 1e-3):
            grid.runs[(n, lr)] = {arm: {"x": [1, 2], "y": [0.7, 0.6], "test": n / 100 + lr + (arm == "pretrained"),
                                        "train": 1.0, "val": 0.5, "val_x": [2], "val_y": [0.6]}
                                  for arm in ("scratch", "pretrained")}
    fig = sp.lab02_figure(grid)
    visible = [t.name for t in fig.data if t.visible is not False]
    assert visible[0] == "scratch · test 0.16 (train 1.00)"          # 16 labels, lr 1e-3 (the middle of two)
    names = fig.layout.updatemenus[0].buttons[1].args[0]["name"]
    assert names[0] == "scratch · test 0.64 (train 1.00)" and names[2] == "pretrained · test 1.64 (train 1.00)"
    assert History is not None


def test_lab02_and_lab03c_grids_train_for_real(encoders):
    from labkit.data.reviews import balanced_subset, make_reviews
    from labkit.data.text import encode
    data = make_reviews(seed=0, n_train=40, n_val=8, n_test=8)
    grid = sp.lab02_grid(encoders, data, labels=[8], lrs=[1e-3], epochs=1, batch_size=8)
    run = grid.runs[(8, 1e-3)]
    assert set(run) == {"scratch", "pretrained"} and len(run["scratch"]["x"]) == 1 and run["scratch"]["val_y"]
    assert 0 <= run["pretrained"]["test"] <= 1 and len(sp.lab02_figure(grid).data) == 4
    train, test = encode(encoders.tokenizer, balanced_subset(data.train, 4)), encode(encoders.tokenizer, data.test)
    grid = sp.lab03c_grid(encoders, train, test, strategies=["linear probe", "BitFit"], epochs=1, batch_size=4)
    fig = sp.lab03c_figure(grid)
    assert [b.label for b in fig.layout.updatemenus[0].buttons] == ["all strategies", "linear probe", "BitFit"]
    assert grid.runs["linear probe"]["trainable"] < grid.runs["BitFit"]["trainable"]   # BitFit adds the biases
    assert list(fig.data[-1].y) == ["linear probe", "BitFit"]


@pytest.fixture(scope="module")
def encoders():
    from labkit.transfer import Encoders
    return Encoders("all-MiniLM-L6-v2", quiet=True)


def test_live_widget_appears_with_its_first_points(monkeypatch):
    import torch

    import labkit.plots as plots
    monkeypatch.setattr(plots, "_ipython", lambda: object())
    monkeypatch.setattr("IPython.display.display", lambda *a, **k: None)
    plot = LiveLossPlot(every=1, mode="widget")
    plot.min_interval = plot.settle = 0.0
    plot.draw()
    assert plot._widget is None        # nothing is displayed before the first point (an empty one stayed empty)
    torch.manual_seed(0)
    X, y = torch.randn(32, 3), torch.randint(0, 2, (32,))
    fit(torch.nn.Linear(3, 2), (X, y), val=(X, y), epochs=2, batch_size=8, lr=0.1, callbacks=[plot.track("a")])
    fit(torch.nn.Linear(3, 2), (X, y), val=(X, y), epochs=1, batch_size=8, lr=0.1, callbacks=[plot.track("b")])
    w = plot._widget
    assert [t.name for t in w.data] == ["a · train", "a · val", "b · train", "b · val"]
    assert len(w.data[0].x) == 8 and len(w.data[2].x) == 4 and len(w.data[3].x) == 1


def test_live_widget_redraws_at_most_every_min_interval_and_always_at_the_end(monkeypatch):
    import torch

    import labkit.plots as plots
    monkeypatch.setattr(plots, "_ipython", lambda: object())
    monkeypatch.setattr("IPython.display.display", lambda *a, **k: None)
    plot = LiveLossPlot(every=1, mode="widget")
    plot.min_interval = 3600
    X, y = torch.randn(64, 3), torch.randint(0, 2, (64,))
    fit(torch.nn.Linear(3, 2), (X, y), epochs=2, batch_size=4, lr=0.1, callbacks=[plot])
    assert plot.draws >= 32 and len(plot._widget.data[0].x) == 32   # asked 32+ times; the final frame has every step


# ----------------------------------------------------------------------------- what a reader of the static page needs
from labkit.plots import TokenTable, fit_title, sparse_labels, token_table  # noqa: E402
from labkit.runtime import WeightsNotice, stand_in_notice, weights_notice  # noqa: E402


def test_fit_title_breaks_long_titles_at_spaces_and_keeps_short_ones():
    long = "Test accuracy against trainable parameters (8 labels, 1 epochs; real all-MiniLM-L6-v2 weights; profile cpu)"
    lines = fit_title(long, 40).split("<br>")
    assert len(lines) == 3 and all(len(line) <= 40 for line in lines)
    assert " ".join(lines) == long                       # nothing lost, only spaces turned into breaks
    assert fit_title("Loss", 40) == "Loss"
    assert fit_title("a<br>" + "word " * 12, 20).count("<br>") >= 3          # an existing break is kept
    assert fit_title("<sup>" + "x" * 30 + "</sup> y", 32) == "<sup>" + "x" * 30 + "</sup> y"  # markup not counted
    name = "weights/encoder.layer.0.attention.self.query.lora_B.default.weight"   # one word, longer than a line
    cut = fit_title(f"{name}: histogram", 30).split("<br>")
    assert all(len(line) <= 30 for line in cut) and len(cut) >= 3
    assert "".join(cut).replace(" ", "") == f"{name}:histogram"                # cut, nothing lost or added
    assert cut[0].endswith(".")                                                  # after a dot, not mid-word
    with pytest.raises(ValueError, match="width"):
        fit_title("t", 0)


def test_token_table_blocks_fit_the_width_and_keep_every_position():
    tokens = ["[CLS]"] + [f"word{i}" for i in range(40)] + ["[SEP]"]
    t = token_table({"token": tokens, "id": list(range(len(tokens)))}, width=400)
    blocks = t.blocks()
    assert len(blocks) > 1
    assert sum(b.shape[1] for b in blocks) == len(tokens)                    # every position, once, in order
    assert [c for b in blocks for c in b.columns] == list(range(len(tokens)))
    px = lambda n: TokenTable.CELL_PX + TokenTable.CHAR_PX * n  # noqa: E731
    for b in blocks:
        width = px(len("token")) + sum(px(max(len(str(c)), *(len(str(v)) for v in b[c]))) for c in b.columns)
        assert width <= 400 or b.shape[1] == 1
    html = t._repr_html_()
    assert html.count("<table") == len(blocks) and "word39" in html and "word39" in repr(t)
    assert token_table({"a": [1, 2]}).blocks()[0].shape == (1, 2)            # a short row: one block
    with pytest.raises(ValueError, match="one value per position"):
        token_table({"token": ["a", "b"], "id": [1]})
    with pytest.raises(ValueError, match="rows"):
        token_table({})


class _Loaded:
    def __init__(self, name, real, source):
        self.name, self.real_weights, self.source = name, real, source


def test_stand_in_notice_only_for_offline_stand_ins():
    assert stand_in_notice(_Loaded("all-MiniLM-L6-v2", True, "package")) is None
    assert stand_in_notice(_Loaded("bert-base-uncased", False, "random-init")) is None   # random on purpose
    n = stand_in_notice(_Loaded("gpt2", False, "random-tiny"))
    assert isinstance(n, WeightsNotice) and n.names == ["gpt2"]
    assert n.text.startswith("Offline, gpt2 is a tiny randomly initialised stand-in") and "model does" in n.text
    both = stand_in_notice({"a": _Loaded("gpt2", False, "random-tiny"), "b": _Loaded("t5-small", False, "random-tiny"),
                            "c": _Loaded("all-MiniLM-L6-v2", True, "package")})
    assert both.names == ["gpt2", "t5-small"] and "gpt2 and t5-small are" in both.text and "models do" in both.text
    many = stand_in_notice([_Loaded(f"m{i}", False, "random-tiny") for i in range(7)])
    assert "m0, m1, m2 and 4 other models" in many.text
    own = stand_in_notice("wav2vec2-base-960h", why="At the cpu profile", where="at the gpu profile online")
    assert own.text.startswith("At the cpu profile, wav2vec2-base-960h") and own.text.endswith("at the gpu profile online.")
    with pytest.raises(TypeError, match="real_weights"):
        stand_in_notice(42)


def test_stand_in_notice_reads_an_encoders_object():
    class Enc:                                   # labkit.transfer.Encoders: name, real_weights, .loaded (Pretrained)
        name, real_weights, loaded = "distilbert-base-uncased", False, _Loaded("distilbert-base-uncased", False, "random-tiny")
    assert stand_in_notice(Enc()).names == ["distilbert-base-uncased"]
    Enc.loaded = _Loaded("distilbert-base-uncased", False, "random-init")
    assert stand_in_notice(Enc()) is None


def test_weights_notice_displays_a_box_with_a_text_fallback(monkeypatch, capsys):
    import IPython
    import IPython.display
    shown = []
    monkeypatch.setattr(IPython, "get_ipython", lambda: object())
    monkeypatch.setattr(IPython.display, "display", lambda obj: shown.append(obj))
    weights_notice(_Loaded("all-MiniLM-L6-v2", True, "package"))
    assert shown == []                                           # real weights: nothing on the page
    weights_notice(_Loaded("gpt2", False, "random-tiny"), what="the logits <below>")
    (notice,) = shown
    html = notice._repr_html_()
    assert 'class="labkit-weights-notice' in html and "not the published weights" in html
    assert "The logits &lt;below&gt;" in html                    # escaped
    assert "background" in html and "color:" in html             # its own colours: readable in any theme
    assert repr(notice).startswith("NOTE · not the published weights.")
    monkeypatch.setattr(IPython, "get_ipython", lambda: None)    # a plain script: a printed line
    weights_notice(_Loaded("gpt2", False, "random-tiny"))
    assert "NOTE · not the published weights. Offline, gpt2" in capsys.readouterr().out


def test_contour_figure_stops_a_diverging_path_at_the_frame_and_says_so():
    from labkit import surfaces
    s = surfaces.SURFACES["quadratic"]
    paths = {f"gd {f}": surfaces.trajectory("quadratic", "gd", lr=f * 2 / 25, steps=40)[0] for f in (0.5, 1.02)}
    fig = surfaces.contour_figure("quadratic", paths)
    lines = [t for t in fig.data if t.type == "scatter" and t.mode == "lines+markers"]
    converging, diverging = lines
    assert converging.name == "gd 0.5" and len(converging.x) == 41                  # unchanged
    assert diverging.name.startswith("gd 1.02 · leaves the frame at step") and "ends outside" in diverging.name
    step = int(diverging.name.split("step ")[1].split(",")[0])
    assert len(diverging.x) == step + 1                                           # up to the first point outside
    inside = [s.y_range[0] <= y <= s.y_range[1] and s.x_range[0] <= x <= s.x_range[1]
              for x, y in zip(diverging.x, diverging.y)]
    assert all(inside[:-1]) and not inside[-1]
    assert list(fig.layout.yaxis.range) == list(s.y_range)                        # the frame of the converging paths
    ends = [t for t in fig.data if t.type == "scatter" and t.mode == "markers" and t.showlegend is False]
    assert len(ends) == 1                                                          # no end marker out of the frame


def test_sparse_labels_keep_labels_apart_and_inside_the_plot():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=80), rng.normal(size=80)
    words = [f"word{i}" for i in range(80)]
    shown = sparse_labels(x, y, words, width=480, height=380, font_px=9)
    kept = [i for i, t in enumerate(shown) if t]
    assert 0 < len(kept) < 80 and all(shown[i] == words[i] for i in kept)       # some, not all; never altered
    sx = 24 + (x - x.min()) / (x.max() - x.min()) * 432
    sy = 19 + (y.max() - y) / (y.max() - y.min()) * 342
    boxes = [(sx[i] - (0.62 * 9 * len(words[i]) + 4) / 2, sy[i] - 6 - 11.7, sx[i] + (0.62 * 9 * len(words[i]) + 4) / 2,
              sy[i] - 6) for i in kept]
    for a in range(len(boxes)):
        assert 0 <= boxes[a][0] and boxes[a][2] <= 480
        for b in range(a + 1, len(boxes)):
            A, B = boxes[a], boxes[b]
            assert not (A[0] < B[2] and B[0] < A[2] and A[1] < B[3] and B[1] < A[3])
    far = sparse_labels([0, 100], [0, 100], ["a", "b"])
    assert far == ["a", "b"]                                                      # nothing in the way: all kept
    assert sparse_labels([0, 0.0001, 10], [0, 0, 10], ["same", "place", "far"]).count("") == 1   # one of two on top
    with pytest.raises(ValueError, match="one entry per point"):
        sparse_labels([0, 1], [0], ["a", "b"])
