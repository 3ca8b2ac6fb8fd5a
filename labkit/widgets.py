"""Hyperparameter panels: a few declared ranges become sliders, dropdowns and toggles.

    panel = Panel(train_once, title="Lab 2",
                  lr=LogFloat(1e-5, 1e-1, 1e-3), epochs=Int(1, 30, 5),
                  strategy=Choice(["full", "lora"]),
                  r=Int(1, 64, 8, applies=lambda v: v["strategy"] == "lora"))
    panel            # the controls, Run and Stop (needs a live kernel)
    panel.run()      # the same run with the default values, drawn into this cell

``Run`` checks every value first. An invalid one (a learning rate <= 0, a batch
size larger than the labelled set, ...) is refused with a message that names the
parameter and the allowed range: no exception trace, nothing trained.

What a press of **Run** does, in a live kernel:

* the message line says ``Running… (step k of n)`` while the model trains (a
  :class:`labkit.plots.LiveLossPlot` reports every step; other code can call
  :func:`report_progress`), Run is disabled and Stop enabled;
* the run happens in a background thread, so the kernel stays free to receive
  **Stop**: the training loop then ends cleanly after the current step (it sets
  ``state.stop``, as early stopping does) and the message says ``Stopped at step k``;
  everything the run prints or displays lands in the panel's output area;
* at the end the message says ``Done`` with the settings the run used, leaving out
  the ones that do not apply to the chosen option (``applies=``; a control that
  does not apply is greyed out too).

``panel.run(...)`` in a notebook cell is the scripted form: it runs in the cell,
prints its message there, and leaves the panel's own message line alone.
"""
from __future__ import annotations

import contextlib
import contextvars
import html
import math
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from .check import number, positive, whole_number

__all__ = ["LogFloat", "Float", "Int", "Choice", "Toggle", "Panel", "RunControl", "StopRun", "current_run",
           "report_progress", "stop_requested"]

Applies = Callable[[dict], bool] | None


def _refusal(check: Callable, name: str, v: Any, **bounds) -> str | None:
    """The message a :mod:`labkit.check` guard would raise for ``v``, or None when ``v`` is allowed."""
    try:
        check(name, v, **bounds)
    except ValueError as e:
        return str(e)
    return None


def _decimals(step: float) -> int:
    """Decimals needed to show multiples of ``step`` exactly: 0.01 -> 2, 0.0001 -> 4, 0.5 -> 1, 1 -> 0."""
    for d in range(10):
        if abs(round(step, d) - step) <= 1e-12 * max(1.0, abs(step)):
            return d
    return 10


def _positions(low: float, high: float, step: float, limit: int = 100_000) -> list[float]:
    """Every value a slider from ``low`` to ``high`` in steps of ``step`` can take (at most ``limit``)."""
    n = min(limit, int(math.floor((high - low) / step + 1e-9)) + 1)
    return [low + i * step for i in range(n)]


# ----------------------------------------------------------------------------- controls
@dataclass
class LogFloat:
    """A positive number on a log slider (learning rates, weight decays); ``step`` is in powers of ten.

    The readout shows as many significant digits as it takes to tell neighbouring positions apart
    (two for the default step of 0.1: 1.0e-3, 1.3e-3, 1.6e-3, ...).
    """
    low: float
    high: float
    default: float
    label: str | None = None
    step: float = 0.1
    applies: Applies = None

    def __post_init__(self):
        if not (0 < self.low <= self.default <= self.high):
            raise ValueError(f"LogFloat needs 0 < low <= default <= high; got {self.low}, {self.default}, {self.high}")
        positive("step", self.step)

    def positions(self) -> list[float]:
        return [10 ** e for e in _positions(math.log10(self.low), math.log10(self.high), self.step)]

    def readout_format(self) -> str:
        values = self.positions()
        for d in range(1, 6):
            if len({format(v, f".{d}e") for v in values}) == len(values):
                return f".{d}e"
        return ".6e"

    def show(self, v: float) -> str:
        return format(v, self.readout_format())

    def validate(self, name: str, v: Any) -> str | None:
        return _refusal(positive, name, v) or _refusal(number, name, v, minimum=self.low, maximum=self.high)

    def widget(self, name: str):
        import ipywidgets as w
        return w.FloatLogSlider(value=self.default, base=10, min=math.log10(self.low), max=math.log10(self.high),
                                step=self.step, description=self.label or name, readout_format=self.readout_format(),
                                continuous_update=False, style={"description_width": "initial"})


@dataclass
class Float:
    """A number on a linear slider.

    The readout next to the slider shows ``digits`` decimals; by default as many as ``step``
    (and the default value) need, so 0.999 reads "0.999" or "0.9990", never "1.00". A default
    that is not a whole number of steps from ``low`` makes the step finer, so the slider can
    come back to it.
    """
    low: float
    high: float
    default: float
    step: float = 0.01
    label: str | None = None
    digits: int | None = None
    applies: Applies = None

    def __post_init__(self):
        positive("step", self.step)
        off_grid = (self.default - self.low) / self.step
        if abs(off_grid - round(off_grid)) > 1e-6:
            self.step = 10.0 ** -max(_decimals(self.step), _decimals(self.default), _decimals(self.low))

    def readout_format(self) -> str:
        if self.digits is not None:
            return f".{self.digits}f"
        return f".{max(_decimals(self.step), _decimals(self.low))}f"

    def positions(self) -> list[float]:
        return _positions(self.low, self.high, self.step)

    def show(self, v: float) -> str:
        return format(v, self.readout_format())

    def validate(self, name: str, v: Any) -> str | None:
        return _refusal(number, name, v, minimum=self.low, maximum=self.high)

    def widget(self, name: str):
        import ipywidgets as w
        return w.FloatSlider(value=self.default, min=self.low, max=self.high, step=self.step,
                             description=self.label or name, readout_format=self.readout_format(),
                             continuous_update=False, style={"description_width": "initial"})


@dataclass
class Int:
    """A whole number on a slider (epochs, batch size, layers)."""
    low: int
    high: int
    default: int
    step: int = 1
    label: str | None = None
    applies: Applies = None

    def positions(self) -> list[int]:
        return list(range(self.low, self.high + 1, self.step))

    def readout_format(self) -> str:
        return "d"

    def show(self, v: int) -> str:
        return str(v)

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
    applies: Applies = None

    def __post_init__(self):
        self.options = list(self.options)
        if not self.options:
            raise ValueError("Choice needs at least one option")
        if self.default is None:
            self.default = self.options[0]

    def show(self, v: Any) -> str:
        return str(v)

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
    applies: Applies = None

    def show(self, v: bool) -> str:
        return str(v)

    def validate(self, name: str, v: Any) -> str | None:
        if not isinstance(v, bool):
            return f"{name} must be True or False; got {v!r}"
        return None

    def widget(self, name: str):
        import ipywidgets as w
        return w.Checkbox(value=self.default, description=self.label or name, indent=False)


def _show(spec: Any, v: Any) -> str:
    if hasattr(spec, "show"):
        try:
            return spec.show(v)
        except (TypeError, ValueError):
            pass
    return f"{v:g}" if isinstance(v, float) else str(v)


# ----------------------------------------------------------------------------- a run in progress
class StopRun(Exception):
    """Raised where a stopped panel run cannot end more cleanly (e.g. when its next training run would start)."""


class RunControl:
    """What the code run by a press of **Run** sees: where it is (for the message line) and whether Stop was pressed.

    :class:`labkit.plots.LiveLossPlot` reports every training step here and ends the
    training loop after the current step once Stop is pressed; other code can call
    :func:`report_progress` and :func:`stop_requested`.
    """

    def __init__(self, on_progress: Callable[["RunControl"], None] | None = None, every_s: float = 0.25):
        self.step: int | None = None
        self.total: int | None = None
        self.name: str | None = None
        self.steps_done = 0
        self._stop = threading.Event()
        self._on_progress, self._every_s, self._last = on_progress, every_s, -math.inf

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    def request_stop(self) -> None:
        self._stop.set()

    def progress(self, step: int, total: int | None = None, name: str | None = None) -> None:
        """Record that ``step`` (of ``total``) of the run called ``name`` has finished."""
        self.step, self.total, self.name = step, total, name
        self.steps_done += 1
        now = time.monotonic()
        if self._on_progress is not None and (now - self._last >= self._every_s or step == 1 or step == total):
            self._last = now
            self._on_progress(self)

    def where(self) -> str:
        """"step 12 of 40 · pretrained", or "" before the first step."""
        if self.step is None:
            return ""
        text = f"step {self.step}" + (f" of {self.total}" if self.total else "")
        return text + (f" · {self.name}" if self.name else "")


_ACTIVE: contextvars.ContextVar[RunControl | None] = contextvars.ContextVar("labkit_panel_run", default=None)


def current_run() -> RunControl | None:
    """The :class:`RunControl` of the panel run this code is part of, or None (a script, a plain cell)."""
    return _ACTIVE.get()


def report_progress(step: int, total: int | None = None, name: str | None = None) -> None:
    """Tell the panel that started this code how far it is (nothing happens outside a panel run)."""
    control = _ACTIVE.get()
    if control is not None:
        control.progress(step, total, name)


def stop_requested() -> bool:
    """Whether Stop was pressed on the panel that started this code (always False outside a panel run)."""
    control = _ACTIVE.get()
    return control is not None and control.stop_requested


# ----------------------------------------------------------------------------- output of a background run
class _ThreadStreams:
    """sys.stdout/sys.stderr stand-ins that send what a routed thread writes to that thread's sink."""

    def __init__(self):
        self.routes: dict[int, Callable[[str, str], None]] = {}
        self.lock = threading.Lock()
        self.saved: tuple | None = None

    @contextlib.contextmanager
    def route(self, sink: Callable[[str, str], None]):
        ident = threading.get_ident()
        with self.lock:
            if not self.routes:
                self.saved = (sys.stdout, sys.stderr)
                sys.stdout, sys.stderr = _Routed(sys.stdout, "stdout", self), _Routed(sys.stderr, "stderr", self)
            self.routes[ident] = sink
        try:
            yield
        finally:
            with self.lock:
                self.routes.pop(ident, None)
                if not self.routes and self.saved is not None:
                    if isinstance(sys.stdout, _Routed):
                        sys.stdout = self.saved[0]
                    if isinstance(sys.stderr, _Routed):
                        sys.stderr = self.saved[1]
                    self.saved = None


class _Routed:
    def __init__(self, inner, name: str, streams: _ThreadStreams):
        self._inner, self._name, self._streams = inner, name, streams

    def write(self, text: str) -> int:
        sink = self._streams.routes.get(threading.get_ident())
        if sink is None:
            return self._inner.write(text)
        sink(self._name, text)
        return len(text)

    def flush(self) -> None:
        if threading.get_ident() not in self._streams.routes:
            self._inner.flush()

    def __getattr__(self, attr):
        return getattr(self._inner, attr)


_STREAMS = _ThreadStreams()


class _OutputSink:
    """Writes a background run's prints and displays into an ``ipywidgets.Output`` by setting its outputs.

    ipywidgets recommends this for threads (``Output.append_stdout`` and friends): an Output
    widget's context manager captures by the id of the message being handled, which a
    thread's output does not carry. Displays with an id (``display(..., display_id=True)``,
    a live plot's redraws) are updated in place.
    """

    def __init__(self, output, log=None):
        self.output, self.log = output, log if log is not None else output
        self.ids: dict[str, int] = {}
        self.clear_pending = False

    def _outputs(self) -> list[dict]:
        if self.clear_pending:
            self.clear_pending = False
            self.ids.clear()
            return []
        return list(self.output.outputs)

    def stream(self, name: str, text: str) -> None:
        """Printed text goes to its own area: setting an Output's outputs redraws every output in it, and a live
        figure redrawn while it trains loses its updates ("Error setting state: gd.data must be an array")."""
        if not text:
            return
        outs = list(self.log.outputs) if self.log is not self.output else self._outputs()
        if outs and outs[-1].get("output_type") == "stream" and outs[-1].get("name") == name:
            outs[-1] = {**outs[-1], "text": outs[-1]["text"] + text}
        else:
            outs.append({"output_type": "stream", "name": name, "text": text})
        self.log.outputs = tuple(outs)

    def hook(self, msg: dict) -> dict | None:
        """An ipykernel display hook: take display messages of this thread, pass everything else on."""
        kind, content = msg.get("header", {}).get("msg_type"), msg.get("content", {})
        display_id = (content.get("transient") or {}).get("display_id")
        if kind == "display_data":
            outs = self._outputs()
            outs.append({"output_type": "display_data", "data": content.get("data", {}),
                         "metadata": content.get("metadata", {})})
            if display_id:
                self.ids[display_id] = len(outs) - 1
            self.output.outputs = tuple(outs)
            return None
        if kind == "update_display_data" and display_id in self.ids and not self.clear_pending:
            outs = list(self.output.outputs)
            outs[self.ids[display_id]] = {"output_type": "display_data", "data": content.get("data", {}),
                                          "metadata": content.get("metadata", {})}
            self.output.outputs = tuple(outs)
            return None
        if kind == "clear_output":
            if content.get("wait"):
                self.clear_pending = True
            else:
                self.ids.clear()
                self.output.outputs = ()
            return None
        return msg

    @contextlib.contextmanager
    def capture(self):
        """Route this thread's prints and displays here for the duration of the block."""
        pub = None
        try:
            from IPython.core.interactiveshell import InteractiveShell
            if InteractiveShell.initialized():
                pub = InteractiveShell.instance().display_pub
        except ImportError:
            pass
        hooked = pub is not None and hasattr(pub, "register_hook")
        if hooked:
            pub.register_hook(self.hook)
        try:
            with _STREAMS.route(self.stream):
                yield
        finally:
            if hooked:
                pub.unregister_hook(self.hook)


def _in_kernel() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    ip = get_ipython()
    return ip is not None and getattr(ip, "kernel", None) is not None


# ----------------------------------------------------------------------------- the panel
class Panel:
    """Controls for declared hyperparameters, Run and Stop buttons, a message line and an output area.

    ``on_run(**values)`` does the work (trains, plots); it may return a result,
    which :meth:`run` returns too. ``validate(values) -> str | None`` adds checks
    across parameters (e.g. batch size against the labelled-set size). A control
    made with ``applies=lambda v: ...`` is checked, listed and enabled only when
    it applies to the other values (e.g. a LoRA rank only for LoRA).

    ``panel.background`` (None: automatic) says whether a press of Run trains in
    a background thread: automatic means yes in a Jupyter kernel, so Stop can
    be received while the model trains.
    """

    def __init__(self, on_run: Callable[..., Any], *, title: str = "", validate: Callable | None = None,
                 **params: Any):
        if not params:
            raise ValueError("Panel needs at least one parameter")
        self.on_run, self.title, self.params, self.extra_check = on_run, title, params, validate
        self.results: list[tuple[dict, Any]] = []
        self.background: bool | None = None
        self.last_message: str | None = None   # what the message line said last (after a press of Run)
        self._controls: dict[str, Any] | None = None
        self._message = self._output = self._log = self._run_button = self._stop_button = None
        self._thread: threading.Thread | None = None
        self._control: RunControl | None = None

    # --------------------------------------------------------------- values
    def defaults(self) -> dict[str, Any]:
        return {k: spec.default for k, spec in self.params.items()}

    def values(self) -> dict[str, Any]:
        """The values on the controls (or the defaults when no controls were drawn)."""
        if self._controls is None:
            return self.defaults()
        return {k: c.value for k, c in self._controls.items()}

    def applicable(self, values: dict[str, Any]) -> dict[str, bool]:
        """For each parameter, whether it applies to ``values`` (its ``applies`` rule; True without one)."""
        out = {}
        for k, spec in self.params.items():
            rule = getattr(spec, "applies", None)
            try:
                out[k] = True if rule is None else bool(rule(values))
            except (KeyError, TypeError, ValueError):
                out[k] = True
        return out

    def check(self, values: dict[str, Any]) -> list[str]:
        """Every problem with ``values``, as sentences naming the parameter (parameters that do not apply are
        not checked)."""
        problems = [f"unknown parameter {k!r}; this panel has {', '.join(self.params)}"
                    for k in values if k not in self.params]
        applies = self.applicable(values)
        problems += [msg for k, spec in self.params.items() if k in values and applies[k]
                     for msg in [spec.validate(k, values[k])] if msg]
        if not problems and self.extra_check is not None:
            msg = self.extra_check(values)
            if msg:
                problems.append(msg)
        return problems

    def settings(self, values: dict[str, Any]) -> str:
        """"k=v, ..." for the parameters that apply to ``values``, as the message line shows them."""
        applies = self.applicable(values)
        return ", ".join(f"{k}={_show(self.params[k], v)}" for k, v in values.items()
                         if k in self.params and applies[k])

    # --------------------------------------------------------------- running
    def _attempt(self, values: dict[str, Any], control: RunControl | None) -> tuple[str, str, Any]:
        """Check and run once: (outcome, message, result), outcome one of refused / done / stopped."""
        problems = self.check(values)
        if problems:
            return "refused", "Refused: " + "; ".join(problems), None
        start = time.perf_counter()
        token = _ACTIVE.set(control)
        try:
            result = self.on_run(**values)
        except ValueError as e:  # a bad combination that only the training code can see
            return "refused", f"Refused: {e}", None
        except StopRun:
            result = None
        finally:
            _ACTIVE.reset(token)
        if control is not None and control.stop_requested:
            return "stopped", f"Stopped at {control.where() or 'the start'}: {self.settings(values)}", result
        self.results.append((values, result))
        return "done", f"Done in {time.perf_counter() - start:.1f} s: {self.settings(values)}", result

    def run(self, **overrides: Any) -> Any:
        """Run ``on_run`` with the current values updated by ``overrides``; refuse invalid values.

        This is the scripted form (a notebook cell): the message is printed in the cell, and the
        panel's own message line is left as it is.
        """
        outcome, text, result = self._attempt({**self.values(), **overrides}, None)
        print(text)
        return result

    @property
    def running(self) -> bool:
        """Whether a run started by the Run button has not finished yet."""
        return self._thread is not None and self._thread.is_alive()

    def click(self) -> None:
        """What a press of Run does: check the values, then run them (in a background thread in a kernel)."""
        if self.running or self._control is not None:
            return
        if self._controls is None:
            self.widget()
        values = self.values()
        problems = self.check(values)
        if problems:  # the last run's output stays; only the message line changes
            self._say("Refused: " + "; ".join(problems), error=True)
            return
        self._output.outputs = self._log.outputs = ()
        control = self._control = RunControl(lambda c: self._say(f"Running… ({c.where()})"))
        self._run_button.disabled, self._stop_button.disabled = True, False
        self._say("Running…")
        background = _in_kernel() if self.background is None else self.background
        if background:
            self._thread = threading.Thread(target=self._work, args=(values, control), daemon=True,
                                            name=f"labkit panel {self.title or 'run'}")
            self._thread.start()
        else:
            self._work(values, control)

    def _click(self, _button=None) -> None:
        self.click()

    def _work(self, values: dict[str, Any], control: RunControl) -> None:
        sink = _OutputSink(self._output, self._log)
        try:
            with sink.capture():
                try:
                    outcome, text, _ = self._attempt(values, control)
                except Exception as e:  # noqa: BLE001 (shown to the learner, not raised in a thread)
                    outcome, text = "failed", f"Failed: {type(e).__name__}: {e}"
                    sys.stderr.write(traceback.format_exc())
            self._say(text, error=outcome in ("refused", "failed"))
        finally:
            self._control = None
            self._run_button.disabled, self._stop_button.disabled = False, True

    def stop(self) -> None:
        """What a press of Stop does: the run ends after its current training step."""
        control = self._control
        if control is None:
            return
        control.request_stop()
        self._say(f"Stopping after {control.where() or 'the first step'}…")

    def _press_stop(self, _button=None) -> None:
        self.stop()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for a run started by Run to finish; True if it has."""
        if self._thread is not None:
            self._thread.join(timeout)
        return not self.running

    def _say(self, text: str, error: bool = False) -> None:
        self.last_message = text
        if self._message is not None:
            color = "#b00020" if error else "#1b5e20"
            self._message.value = f"<span style='color:{color}'>{html.escape(text)}</span>"

    def _grey_out(self, _change=None) -> None:
        """Disable the controls that do not apply to the values now on the panel."""
        if self._controls is None:
            return
        for k, applies in self.applicable(self.values()).items():
            self._controls[k].disabled = not applies

    def widget(self):
        import ipywidgets as w
        self._controls = {k: spec.widget(k) for k, spec in self.params.items()}
        self._run_button = w.Button(description="Run", button_style="primary", icon="play",
                                    tooltip="train with these values")
        self._stop_button = w.Button(description="Stop", button_style="warning", icon="stop", disabled=True,
                                     tooltip="end the run after the current training step")
        self._run_button.add_class("labkit-run")
        self._stop_button.add_class("labkit-stop")
        self._run_button.on_click(self._click)
        self._stop_button.on_click(self._press_stop)
        self._message = w.HTML(value="<i>Set the values and press Run.</i>")
        self._message.add_class("labkit-message")
        self._output = w.Output()   # what the run displays (figures, tables)
        self._log = w.Output()      # what it prints
        if any(getattr(spec, "applies", None) for spec in self.params.values()):
            for c in self._controls.values():
                c.observe(self._grey_out, names="value")
            self._grey_out()
        head = [w.HTML(f"<b>{html.escape(self.title)}</b>")] if self.title else []
        box = w.VBox(head + list(self._controls.values())
                     + [w.HBox([self._run_button, self._stop_button]), self._message,
                        w.VBox([self._output, self._log])])
        box.add_class("labkit-panel")
        return box

    def describe_html(self) -> str:
        """A static description of the controls, for the rendered book where nothing can be clicked."""
        rows = "".join(f"<tr><td><code>{k}</code></td><td>{type(spec).__name__}</td>"
                       f"<td>{html.escape(_allowed(spec))}</td><td><code>{html.escape(repr(spec.default))}</code>"
                       f"</td></tr>" for k, spec in self.params.items())
        return (f"<div class='labkit-panel-static'><b>{html.escape(self.title)}</b><table><tr><th>parameter</th>"
                f"<th>control</th><th>allowed</th><th>default</th></tr>{rows}</table><p><i>The controls and the Run "
                f"button appear when this notebook runs in a live kernel (JupyterLab or Colab); the run below uses "
                f"the defaults.</i></p></div>")

    def _ipython_display_(self) -> None:
        from IPython.display import HTML, display

        from .runtime import headless
        display(HTML(self.describe_html()) if headless() else self.widget())


def _allowed(spec: Any) -> str:
    if hasattr(spec, "allowed"):  # a spec defined elsewhere describes itself
        text = spec.allowed()
    elif isinstance(spec, LogFloat):
        text = f"{spec.low:g} … {spec.high:g} (log scale)"
    elif isinstance(spec, (Int, Float)):
        text = f"{spec.low:g} … {spec.high:g}, step {spec.step:g}"
    elif isinstance(spec, Choice):
        text = ", ".join(map(str, spec.options))
    elif isinstance(spec, Toggle):
        text = "on / off"
    else:
        text = type(spec).__name__
    return text + (" (only where it applies)" if getattr(spec, "applies", None) else "")
