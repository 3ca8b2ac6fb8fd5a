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
    assert calls[-1]["lr"] == pytest.approx(1e-2) and calls[-1]["model"] == "pretrained"
    assert "Done" in p._message.value
    assert len(box.children) == 1 + 5 + 3


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
