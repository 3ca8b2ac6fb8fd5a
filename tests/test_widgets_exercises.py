import pytest

from labkit.exercises import Exercise, summary
from labkit.widgets import Choice, Float, Int, LogFloat, Panel, Toggle


def make_panel(calls, n_labels=32):
    return Panel(lambda **v: calls.append(v) or v["lr"] * 2, title="t",
                 validate=lambda v: (f"batch_size must be at most n_labels={v['n_labels']}; got {v['batch_size']}"
                                     if v["batch_size"] > v["n_labels"] else None),
                 lr=LogFloat(1e-5, 1e-1, 1e-3), batch_size=Int(1, 64, 16), n_labels=Int(16, 512, n_labels),
                 model=Choice(["scratch", "pretrained"]), freeze=Toggle(False))


def test_defaults_run():
    calls = []
    p = make_panel(calls)
    assert p.run() == pytest.approx(2e-3)
    assert calls == [{"lr": 1e-3, "batch_size": 16, "n_labels": 32, "model": "scratch", "freeze": False}]
    assert p.results[0][1] == pytest.approx(2e-3)


@pytest.mark.parametrize("override, words", [
    (dict(lr=0.0), "lr must be a finite number > 0"), (dict(lr=-1.0), "lr must be a finite number > 0"),
    (dict(lr=1.0), "lr must be a finite number from"), (dict(batch_size=0), "batch_size must be a whole number from 1"),
    (dict(batch_size=48), "batch_size must be at most n_labels=32"), (dict(model="big"), "model must be one of"),
    (dict(freeze="yes"), "freeze must be True or False"), (dict(epochs=3), "unknown parameter 'epochs'"),
])
def test_invalid_values_are_refused_with_a_message(override, words, capsys):
    calls = []
    p = make_panel(calls)
    assert p.run(**override) is None
    assert calls == []  # nothing was trained
    out = capsys.readouterr().out
    assert out.startswith("Refused:") and words in out


def test_value_error_from_training_becomes_a_message(capsys):
    def boom(**v):
        raise ValueError("n_labels is larger than the training split")
    p = Panel(boom, n=Int(1, 10, 5))
    assert p.run() is None
    assert "Refused: n_labels is larger" in capsys.readouterr().out


def test_widget_builds_and_reads_its_controls():
    calls = []
    p = make_panel(calls)
    box = p.widget()
    p._controls["lr"].value = 1e-2
    p._controls["model"].value = "pretrained"
    p._click(None)  # what the Run button does
    assert p.wait(10)
    assert calls[-1]["lr"] == pytest.approx(1e-2) and calls[-1]["model"] == "pretrained"
    assert "Done" in p._message.value
    assert len(box.children) == 1 + 5 + 3  # title, controls, [Run, Stop], message, output


def test_exercise_checks_and_hints(capsys):
    ex = Exercise("x", "2+2?", expected=lambda: 4, hint="count on your fingers")
    assert ex.check(None) is False and "not answered" in capsys.readouterr().out
    assert ex.check(5) is False and "Hint: count on your fingers" in capsys.readouterr().out
    assert ex.check(4.0) is True and "✅" in capsys.readouterr().out
    word = Exercise("w", "which?", expected="Pretrained")
    assert word.check(" pretrained ") and not word.check("scratch")
    custom = Exercise("c", "an lr that diverges", check_fn=lambda lr: lr > 0.5)
    assert custom.check(0.7) and not custom.check(0.1)
    tol = Exercise("t", "about pi", expected=3.14159, rel=1e-2)
    assert tol.check(3.14) and not tol.check("pi")


def test_static_description_for_the_book():
    html = make_panel([]).describe_html()
    for words in ("<code>lr</code>", "1e-05 … 0.1 (log scale)", "scratch, pretrained", "live kernel"):
        assert words in html


def test_an_error_in_the_learners_code_is_reported_not_raised(capsys):
    ex = Exercise("f", "double it", check_fn=lambda f: f(2) == 4, hint="multiply by two")

    def todo(x):
        raise NotImplementedError

    assert ex.check(todo) is False
    out = capsys.readouterr().out
    assert "not implemented yet" in out and "❌" not in out
    assert ex.check(lambda x: x / 0) is False
    assert "your code raised ZeroDivisionError" in capsys.readouterr().out
    assert ex.check(abs) is False and "not yet (abs). Hint: multiply by two" in capsys.readouterr().out
    assert ex.check(lambda x: 2 * x) is True
    broken = Exercise("b", "labkit's own expected value fails", expected=lambda: 1 / 0)
    with pytest.raises(ZeroDivisionError):  # no learner code ran: the error is labkit's and shows
        broken.check(3)


def test_summary_reports_the_latest_attempt_of_each_exercise(capsys):
    ex = {"a": Exercise("a", "2+2?", expected=4), "b": Exercise("b", "3+3?", expected=6),
          "c": Exercise("c", "4+4?", expected=8)}
    ex["a"].check(4)
    ex["b"].check(6)
    ex["b"].check(5)   # the latest answer counts
    capsys.readouterr()
    assert summary(ex) == {"a": True, "b": False, "c": False}
    assert capsys.readouterr().out.splitlines() == ["a: ✅ passed", "b: not passed yet", "c: not passed yet"]


@pytest.mark.parametrize("spec, value, shown", [
    (Float(0.5, 0.9999, 0.999, step=0.0001), 0.999, "0.9990"),   # not "1.00"
    (Float(0.0, 0.99, 0.9), 0.9, "0.90"),
    (Float(0.0, 10.0, 2.5, step=0.5), 2.5, "2.5"),
    (Float(0.5, 0.9999, 0.999, step=0.0001, digits=3), 0.999, "0.999"),
])
def test_float_slider_shows_the_digits_its_step_needs(spec, value, shown):
    slider = spec.widget("x")
    assert slider.readout_format == spec.readout_format() and format(value, slider.readout_format) == shown


# ----------------------------------------------------------------------------- panels that say what they are doing
import threading  # noqa: E402
import time  # noqa: E402

import torch  # noqa: E402

from labkit.plots import LiveLossPlot  # noqa: E402
from labkit.train import Callback, fit  # noqa: E402
from labkit.widgets import RunControl, StopRun, _OutputSink, current_run, report_progress  # noqa: E402


class _Spy(Callback):
    """Records, after every step, what the panel's message line and buttons say."""

    def __init__(self, panel, sleep=0.0):
        self.panel, self.sleep, self.seen = panel, sleep, []

    def on_step_end(self, state):
        self.seen.append((state.step, self.panel.last_message, self.panel._run_button.disabled,
                          self.panel._stop_button.disabled))
        time.sleep(self.sleep)


def _training_panel(steps=12, sleep=0.0, runs=("a",), started=None):
    """A panel whose Run trains a tiny model for ``steps`` steps per run, into a live plot."""
    X, y = torch.randn(32, 3, generator=torch.Generator().manual_seed(0)), torch.arange(32) % 2
    plot = LiveLossPlot(every=1000, mode="redraw")
    holder = {}

    def train(lr, steps):
        out = []
        for run in runs:
            if started is not None:
                started.append(run)
            out.append(fit(torch.nn.Linear(3, 2), (X, y), steps=steps, batch_size=8, lr=lr, progress=False,
                           callbacks=[plot.track(run), holder["spy"]]))
        return out

    panel = Panel(train, title="tiny", lr=LogFloat(1e-3, 1.0, 0.1), steps=Int(1, 500, steps))
    panel.widget()
    holder["spy"] = _Spy(panel, sleep)
    return panel, holder["spy"], plot


@pytest.mark.parametrize("background", [False, True])
def test_run_says_running_with_the_step_and_disables_run_until_done(background):
    panel, spy, plot = _training_panel(steps=12)
    panel.background = background
    panel._run_button.click()            # what a press of Run does (ipywidgets calls the handler)
    assert panel.wait(30)
    # during the run: "Running… (step k of 12 · a)", Run disabled, Stop enabled
    assert spy.seen and all(run_off and not stop_off for _, _, run_off, stop_off in spy.seen)
    messages = [m for _, m, _, _ in spy.seen]
    assert all(m.startswith("Running…") for m in messages)
    assert "Running… (step 1 of 12 · a)" in messages
    assert len(plot.series["a"]["step"]) == 12
    # after it: Done, with the settings, and the buttons back
    assert panel.last_message.startswith("Done in ") and panel.last_message.endswith("lr=1.0e-01, steps=12")
    assert "Done in" in panel._message.value and not panel._run_button.disabled and panel._stop_button.disabled
    assert len(panel.results) == 1


def test_progress_messages_are_throttled_not_sent_every_step():
    said = []
    control = RunControl(lambda c: said.append(c.where()), every_s=3600)
    for k in range(1, 101):
        control.progress(k, 100, "run")
    assert said == ["step 1 of 100 · run", "step 100 of 100 · run"]  # the first and the last step
    assert control.steps_done == 100


def test_stop_ends_the_run_between_steps_and_starts_no_further_run():
    started = []
    panel, spy, plot = _training_panel(steps=400, sleep=0.01, runs=("first", "second"), started=started)
    panel.background = True
    panel._run_button.click()
    deadline = time.monotonic() + 30
    while len(spy.seen) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert panel.running and len(spy.seen) >= 3
    panel._stop_button.click()           # pressed from the main thread while the run trains in its thread
    assert panel.last_message.startswith("Stopping after step")
    assert panel.wait(30)
    k = len(plot.series["first"]["step"])
    assert 3 <= k < 400                  # it ended between two steps, long before its budget
    assert started == ["first", "second"] and "second" not in plot.series  # the second run never trained a step
    assert panel.last_message.startswith(f"Stopped at step {k} of 400 · first")
    assert panel.results == [] and not panel._run_button.disabled and panel._stop_button.disabled


def test_a_stopped_run_ends_after_the_step_in_progress_and_keeps_its_history():
    class PressStop(Callback):           # as if Stop were pressed while step 2 trained
        def on_step_end(self, state):
            if state.step == 2:
                current_run().request_stop()

    histories = []

    def train(steps):
        histories.append(fit(torch.nn.Linear(3, 2), (torch.randn(16, 3), torch.arange(16) % 2), steps=steps,
                             batch_size=4, lr=0.1, progress=False, callbacks=[PressStop(), LiveLossPlot(mode="redraw")]))

    panel = Panel(train, steps=Int(1, 100, 50))
    panel.widget()
    panel.click()
    assert panel.wait(30) and panel.last_message == "Stopped at step 2 of 50: steps=50"
    assert [s["step"] for s in histories[0].steps] == [1, 2] and histories[0].epochs  # a clean end: epoch record


def test_scripted_runs_leave_the_message_line_alone(capsys):
    panel = make_panel([])
    panel.widget()
    before = panel._message.value
    assert panel.run(lr=-1.0) is None
    panel.run()
    assert panel._message.value == before and panel.last_message is None
    out = capsys.readouterr().out
    assert "Refused: lr must be a finite number > 0" in out and "Done" in out


def test_a_click_after_a_refusal_replaces_the_red_line():
    panel = make_panel([])
    panel.widget()
    panel._controls["batch_size"].value = 48
    panel.click()
    assert panel.last_message.startswith("Refused: batch_size must be at most n_labels=32")
    assert "#b00020" in panel._message.value and not panel._run_button.disabled
    panel._controls["batch_size"].value = 16
    panel.click()
    assert panel.wait(10) and panel.last_message.startswith("Done") and "#b00020" not in panel._message.value


def test_done_lists_only_the_settings_that_apply_and_skips_their_checks():
    calls = []
    panel = Panel(lambda **v: calls.append(v), strategy=Choice(["full", "LoRA", "top-k", "BitFit"]),
                  r=Int(1, 64, 8, applies=lambda v: v["strategy"] == "LoRA"),
                  k=Int(0, 6, 2, applies=lambda v: v["strategy"] == "top-k"), lr=LogFloat(1e-5, 1e-1, 1e-3))
    panel.widget()
    assert panel._controls["r"].disabled and panel._controls["k"].disabled     # "full" uses neither
    panel._controls["strategy"].value = "LoRA"
    assert not panel._controls["r"].disabled and panel._controls["k"].disabled
    panel.click()
    assert panel.wait(10) and panel.last_message.endswith("strategy=LoRA, r=8, lr=1.0e-03")
    panel._controls["strategy"].value = "BitFit"
    panel.click()
    assert panel.wait(10) and panel.last_message.endswith("strategy=BitFit, lr=1.0e-03")
    assert calls[-1]["r"] == 8 and calls[-1]["k"] == 2                          # on_run still gets every value
    assert panel.check({"strategy": "BitFit", "r": 0, "k": 7, "lr": 1e-3}) == []  # r, k unused: not checked
    assert panel.check({"strategy": "LoRA", "r": 0, "k": 7, "lr": 1e-3}) == [
        "r must be a whole number from 1 to 64; got 0"]
    assert "(only where it applies)" in panel.describe_html()


def test_an_error_in_a_button_run_is_shown_in_the_panel_not_lost_in_a_thread():
    def boom(n):
        raise FloatingPointError("loss is nan at step 3")

    panel = Panel(boom, n=Int(1, 10, 5))
    panel.background = True
    panel.widget()
    panel.click()
    assert panel.wait(10)
    assert panel.last_message == "Failed: FloatingPointError: loss is nan at step 3"
    text = "".join(o.get("text", "") for o in panel._log.outputs)
    assert "Traceback" in text and "FloatingPointError" in text and not panel._run_button.disabled


def test_what_a_button_run_prints_goes_to_the_panel_output(capsys):
    def talk(n):
        print("training", n)
        print("done")

    panel = Panel(talk, n=Int(1, 10, 5))
    panel.background = True
    panel.widget()
    panel.click()
    assert panel.wait(10)
    assert [o["text"] for o in panel._log.outputs] == ["training 5\ndone\n"] and panel._output.outputs == ()
    assert "training" not in capsys.readouterr().out      # not in the cell that happens to be running


def test_output_sink_takes_displays_and_updates_them_in_place():
    import ipywidgets as w
    out = w.Output()
    sink = _OutputSink(out)

    def msg(kind, **content):
        return {"header": {"msg_type": kind}, "content": content}

    assert sink.hook(msg("display_data", data={"text/plain": "a"}, metadata={}, transient={"display_id": "x"})) is None
    assert sink.hook(msg("display_data", data={"text/plain": "b"}, metadata={})) is None
    assert sink.hook(msg("update_display_data", data={"text/plain": "a2"}, metadata={},
                         transient={"display_id": "x"})) is None
    assert [o["data"]["text/plain"] for o in out.outputs] == ["a2", "b"]
    elsewhere = msg("update_display_data", data={}, metadata={}, transient={"display_id": "other cell"})
    assert sink.hook(elsewhere) is elsewhere                # a display outside the panel: passed on
    assert sink.hook(msg("clear_output", wait=True)) is None and len(out.outputs) == 2
    sink.hook(msg("display_data", data={"text/plain": "c"}, metadata={}))
    assert [o["data"]["text/plain"] for o in out.outputs] == ["c"]
    assert sink.hook(msg("stream", name="stdout", text="x")) is not None


def test_report_progress_outside_a_panel_run_does_nothing():
    assert current_run() is None
    report_progress(3, 10)                                   # no error, nothing to tell
    with pytest.raises(StopRun):
        plot = LiveLossPlot(mode="redraw")
        tracker = plot.track("x")
        control = RunControl()
        control.request_stop()
        from labkit.widgets import _ACTIVE
        token = _ACTIVE.set(control)
        try:
            tracker.on_fit_start(None)
        finally:
            _ACTIVE.reset(token)


def _slider_specs():
    """Every slider of the labs' panels (and Lab 3c's, which its notebook builds)."""
    from types import SimpleNamespace

    from labkit.labs import lab02, lab04a
    specs = {}
    lab = SimpleNamespace(run=lambda **v: None, pretrain=lambda **v: None)
    for name, panel in {"lab02": lab02.panel(lab, n_labels=32, epochs=8), "lab04a": lab04a.panel(steps=300)}.items():
        specs.update({f"{name}.{k}": s for k, s in panel.params.items() if isinstance(s, (Float, LogFloat, Int))})
    specs.update({"lab03c.r": Int(1, 64, 8), "lab03c.k": Int(0, 6, 2), "lab03c.lr": LogFloat(1e-5, 1e-1, 1e-3)})
    return specs


@pytest.mark.parametrize("name, spec", list(_slider_specs().items()))
def test_every_slider_readout_tells_its_positions_apart(name, spec):
    shown = [format(v, spec.readout_format()) for v in spec.positions()]
    assert len(set(shown)) == len(shown), name
    assert spec.widget(name).readout_format == spec.readout_format()


def test_beta2_readouts_tell_0_999_from_0_99_and_a_default_off_the_step_refines_it():
    beta2 = _slider_specs()["lab04a.beta2"]
    assert beta2.show(0.999) != beta2.show(0.99) and beta2.show(0.999).startswith("0.999")
    coarse = Float(0.5, 0.9999, 0.999)   # step 0.01 cannot come back to 0.999: the step becomes 0.001
    assert coarse.step == pytest.approx(0.001) and coarse.show(0.999) == "0.999" and coarse.show(0.99) == "0.990"
    assert LogFloat(1e-4, 1.0, 1e-3).show(10 ** -2.9) == "1.3e-03"
    fine = LogFloat(1e-4, 1e-3, 1e-4, step=0.01)           # neighbours 2.3% apart need three digits
    assert fine.readout_format() == ".2e"


def test_in_a_real_kernel_a_button_run_trains_in_a_thread_and_the_kernel_stays_free():
    """ipykernel: the run's plot goes to the panel's output area, the next cell runs while it trains, Stop works."""
    import nbformat
    from nbclient import NotebookClient

    first = """
import time, torch
from labkit.plots import LiveLossPlot
from labkit.train import Callback, fit
from labkit.widgets import Int, Panel

class Slow(Callback):
    def on_step_end(self, state):
        time.sleep(0.02)

def train(steps):
    print("training starts")
    plot = LiveLossPlot(every=1, mode="redraw")
    return fit(torch.nn.Linear(3, 2), (torch.randn(32, 3), torch.arange(32) % 2), steps=steps, batch_size=8,
               lr=0.1, progress=False, callbacks=[Slow(), plot])

panel = Panel(train, steps=Int(1, 5000, 3000))
box = panel.widget()
panel.click()
print("clicked", panel.running)
"""
    second = """
for _ in range(100):
    time.sleep(0.1)
    if panel._control is not None and panel._control.steps_done >= 3:
        break
print("next cell ran while training:", panel.running, panel.last_message.startswith("Running… (step"))
panel.stop()
print("finished:", panel.wait(30), panel.last_message)
outs = panel._output.outputs + panel._log.outputs
kinds = [o["output_type"] for o in outs]
figures = sum("application/vnd.plotly.v1+json" in o.get("data", {}) for o in outs)
# notebook_connected renderers display plotly.js's loader once per kernel, before the first figure
loaders = sum(o["output_type"] == "display_data" and "application/vnd.plotly.v1+json" not in o.get("data", {})
              and "cdn.plot.ly" in o.get("data", {}).get("text/html", "") for o in outs)
others = kinds.count("display_data") - figures - loaders
print("panel output:", kinds.count("stream"), "stream,", figures, "figure,", others, "other display,",
      "loader shown at most once:", loaders <= 1)
"""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(first), nbformat.v4.new_code_cell(second)]
    NotebookClient(nb, kernel_name="python3", timeout=120).execute()
    cell1, cell2 = ("".join(o.get("text", "") for o in c.outputs) for c in nb.cells)
    assert "clicked True" in cell1 and "training starts" not in cell1
    assert not any("application/vnd.plotly.v1+json" in o.get("data", {}) for c in nb.cells for o in c.outputs)
    assert "next cell ran while training: True True" in cell2
    assert "finished: True Stopped at step" in cell2 and "of 3000" in cell2
    # the print, and one plot slot redrawn in place (not a new figure, nor a new plotly.js loader, per draw)
    assert "panel output: 1 stream, 1 figure, 0 other display, loader shown at most once: True" in cell2
