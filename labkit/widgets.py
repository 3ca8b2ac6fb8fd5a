"""Hyperparameter panels: a few declared ranges become sliders, dropdowns and toggles.

    panel = Panel(train_once, title="Lab 2",
                  lr=LogFloat(1e-5, 1e-1, 1e-3), epochs=Int(1, 30, 5),
                  freeze=Toggle(False), model=Choice(["scratch", "pretrained"]))
    panel            # the controls and a Run button (needs a live kernel)
    panel.run()      # the same run with the default values, drawn into this cell

``Run`` checks every value first. An invalid one (a learning rate <= 0, a batch
size larger than the labelled set, ...) is refused with a message that names the
parameter and the allowed range: no exception trace, nothing trained.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from .check import number, positive, whole_number

__all__ = ["LogFloat", "Float", "Int", "Choice", "Toggle", "Panel"]


def _refusal(check: Callable, name: str, v: Any, **bounds) -> str | None:
    """The message a :mod:`labkit.check` guard would raise for ``v``, or None when ``v`` is allowed."""
    try:
        check(name, v, **bounds)
    except ValueError as e:
        return str(e)
    return None


@dataclass
class LogFloat:
    """A positive number on a log slider (learning rates, weight decays)."""
    low: float
    high: float
    default: float
    label: str | None = None

    def __post_init__(self):
        if not (0 < self.low <= self.default <= self.high):
            raise ValueError(f"LogFloat needs 0 < low <= default <= high; got {self.low}, {self.default}, {self.high}")

    def validate(self, name: str, v: Any) -> str | None:
        return _refusal(positive, name, v) or _refusal(number, name, v, minimum=self.low, maximum=self.high)

    def widget(self, name: str):
        import ipywidgets as w
        return w.FloatLogSlider(value=self.default, base=10, min=math.log10(self.low), max=math.log10(self.high),
                                step=0.1, description=self.label or name, readout_format=".1e",
                                continuous_update=False, style={"description_width": "initial"})


@dataclass
class Float:
    """A number on a linear slider.

    The readout next to the slider shows ``digits`` decimals; by default as many as ``step``
    has, so a slider with step 0.0001 shows 0.999 as "0.9990", not rounded to "1.00".
    """
    low: float
    high: float
    default: float
    step: float = 0.01
    label: str | None = None
    digits: int | None = None

    def readout_format(self) -> str:
        if self.digits is not None:
            return f".{self.digits}f"
        return f".{_decimals(self.step)}f"

    def validate(self, name: str, v: Any) -> str | None:
        return _refusal(number, name, v, minimum=self.low, maximum=self.high)

    def widget(self, name: str):
        import ipywidgets as w
        return w.FloatSlider(value=self.default, min=self.low, max=self.high, step=self.step,
                             description=self.label or name, readout_format=self.readout_format(),
                             continuous_update=False, style={"description_width": "initial"})


def _decimals(step: float) -> int:
    """Decimals needed to show multiples of ``step`` exactly: 0.01 -> 2, 0.0001 -> 4, 0.5 -> 1, 1 -> 0."""
    for d in range(10):
        if abs(round(step, d) - step) <= 1e-12 * max(1.0, abs(step)):
            return d
    return 10


@dataclass
class Int:
    """A whole number on a slider (epochs, batch size, layers)."""
    low: int
    high: int
    default: int
    step: int = 1
    label: str | None = None

    def validate(self, name: str, v: Any) -> str | None:
        return _refusal(whole_number, name, v, minimum=self.low, maximum=self.high)

    def widget(self, name: str):
        import ipywidgets as w
        return w.IntSlider(value=self.default, min=self.low, max=self.high, step=self.step,
                           description=self.label or name, continuous_update=False,
                           style={"description_width": "initial"})


@dataclass
class Choice:
    """One of a few options, as a dropdown."""
    options: Sequence[Any]
    default: Any = None
    label: str | None = None

    def __post_init__(self):
        self.options = list(self.options)
        if not self.options:
            raise ValueError("Choice needs at least one option")
        if self.default is None:
            self.default = self.options[0]

    def validate(self, name: str, v: Any) -> str | None:
        if v not in self.options:
            return f"{name} must be one of {', '.join(map(repr, self.options))}; got {v!r}"
        return None

    def widget(self, name: str):
        import ipywidgets as w
        return w.Dropdown(options=self.options, value=self.default, description=self.label or name,
                          style={"description_width": "initial"})


@dataclass
class Toggle:
    """On or off, as a checkbox."""
    default: bool = False
    label: str | None = None

    def validate(self, name: str, v: Any) -> str | None:
        if not isinstance(v, bool):
            return f"{name} must be True or False; got {v!r}"
        return None

    def widget(self, name: str):
        import ipywidgets as w
        return w.Checkbox(value=self.default, description=self.label or name, indent=False)


class Panel:
    """Controls for declared hyperparameters, a Run button, a message line and an output area.

    ``on_run(**values)`` does the work (trains, plots); it may return a result,
    which :meth:`run` returns too. ``validate(values) -> str | None`` adds checks
    across parameters (e.g. batch size against the labelled-set size).
    """

    def __init__(self, on_run: Callable[..., Any], *, title: str = "", validate: Callable | None = None,
                 **params: Any):
        if not params:
            raise ValueError("Panel needs at least one parameter")
        self.on_run, self.title, self.params, self.extra_check = on_run, title, params, validate
        self.results: list[tuple[dict, Any]] = []
        self._controls: dict[str, Any] | None = None
        self._message = self._output = None
        self._clicked = False

    # --------------------------------------------------------------- values
    def defaults(self) -> dict[str, Any]:
        return {k: spec.default for k, spec in self.params.items()}

    def values(self) -> dict[str, Any]:
        """The values on the controls (or the defaults when no controls were drawn)."""
        if self._controls is None:
            return self.defaults()
        return {k: c.value for k, c in self._controls.items()}

    def check(self, values: dict[str, Any]) -> list[str]:
        """Every problem with ``values``, as sentences naming the parameter."""
        problems = [f"unknown parameter {k!r}; this panel has {', '.join(self.params)}"
                    for k in values if k not in self.params]
        problems += [msg for k, spec in self.params.items() if k in values
                     for msg in [spec.validate(k, values[k])] if msg]
        if not problems and self.extra_check is not None:
            msg = self.extra_check(values)
            if msg:
                problems.append(msg)
        return problems

    # --------------------------------------------------------------- running
    def run(self, **overrides: Any) -> Any:
        """Run ``on_run`` with the current values updated by ``overrides``; refuse invalid values."""
        values = {**self.values(), **overrides}
        problems = self.check(values)
        if problems:
            self._say("Refused: " + "; ".join(problems), error=True)
            return None
        try:
            result = self.on_run(**values)
        except ValueError as e:  # a bad combination that only the training code can see
            self._say(f"Refused: {e}", error=True)
            return None
        self.results.append((values, result))
        self._say("Done: " + ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                                       for k, v in values.items()))
        return result

    def _say(self, text: str, error: bool = False) -> None:
        if self._message is not None:
            color = "#b00020" if error else "#1b5e20"
            self._message.value = f"<span style='color:{color}'>{text}</span>"
        if not self._clicked:
            print(text)

    def _click(self, _button) -> None:
        self._output.clear_output(wait=True)
        self._clicked = True
        try:
            with self._output:
                self.run()
        finally:
            self._clicked = False

    def widget(self):
        import ipywidgets as w
        self._controls = {k: spec.widget(k) for k, spec in self.params.items()}
        button = w.Button(description="Run", button_style="primary", icon="play")
        button.on_click(self._click)
        self._message = w.HTML(value="<i>Set the values and press Run.</i>")
        self._output = w.Output()
        head = [w.HTML(f"<b>{self.title}</b>")] if self.title else []
        return w.VBox(head + list(self._controls.values()) + [button, self._message, self._output])

    def describe_html(self) -> str:
        """A static description of the controls, for the rendered book where nothing can be clicked."""
        rows = "".join(f"<tr><td><code>{k}</code></td><td>{type(spec).__name__}</td>"
                       f"<td>{_allowed(spec)}</td><td><code>{spec.default!r}</code></td></tr>"
                       for k, spec in self.params.items())
        return (f"<div><b>{self.title}</b><table><tr><th>parameter</th><th>control</th><th>allowed</th>"
                f"<th>default</th></tr>{rows}</table><p><i>The controls and the Run button appear when this "
                f"notebook runs in a live kernel (JupyterLab or Colab); the run below uses the defaults.</i></p></div>")

    def _ipython_display_(self) -> None:
        from IPython.display import HTML, display

        from .runtime import headless
        display(HTML(self.describe_html()) if headless() else self.widget())


def _allowed(spec: Any) -> str:
    if hasattr(spec, "allowed"):  # a spec defined elsewhere describes itself
        return spec.allowed()
    if isinstance(spec, LogFloat):
        return f"{spec.low:g} … {spec.high:g} (log scale)"
    if isinstance(spec, (Int, Float)):
        return f"{spec.low:g} … {spec.high:g}, step {spec.step:g}"
    if isinstance(spec, Choice):
        return ", ".join(map(str, spec.options))
    if isinstance(spec, Toggle):
        return "on / off"
    return type(spec).__name__
