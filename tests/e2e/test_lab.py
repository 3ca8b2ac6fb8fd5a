"""The labs in a real JupyterLab, as a learner uses them: open, Run All, then the panel's controls and buttons.

For each lab: the notebook runs top to bottom with no error output and no browser console error;
then a control is changed and Run pressed, and while it trains the loss curve gains points (it is
read from the plotly graph in the page), the message line says "Running… (step k of n)" and ends
with "Done"; a value the panel must refuse is refused with a message that names the parameter.
"""
from __future__ import annotations

import time

import pytest

RUN_ALL_S = 420    # a lab at the smoke profile, on a loaded 2-core machine

LABS = {
    "lab02": dict(path="labs/lab02-what-pretraining-buys.ipynb", change={"epochs": "6"},
                  refuse=({"batch_size": "32"}, "Refused: batch_size must be at most n_labels=16; got 32")),
    "lab03b": dict(path="labs/lab03b-pretrain-your-gpt.ipynb", change={"steps": "150"}),
    "lab03c": dict(path="labs/lab03c-finetuning-strategies.ipynb",
                   change={"strategy": "linear probe", "epochs": "10"}),
    "lab03a": dict(path="labs/lab03a-attention-playground.ipynb", change={"layer": "1"}, curve=False,
                   refuse=({"sentence": "   "}, "Refused: sentence must be a non-empty piece of text")),
}

NOTEBOOK_STATE = """() => {
  const nb = window.jupyterapp.shell.currentWidget;
  if (!nb || !nb.content || !nb.content.model || !nb.sessionContext.session) return null;
  const cells = nb.content.model.cells, kernel = nb.sessionContext.session.kernel;
  let code = 0, done = 0; const errors = [];
  for (let i = 0; i < cells.length; i++) {
    const c = cells.get(i);
    if (c.type !== 'code') continue;
    code++;
    if (c.executionCount !== null) done++;
    for (const o of c.outputs.toJSON()) if (o.output_type === 'error') errors.push(`cell ${i}: ${o.ename}: ${o.evalue}`);
  }
  return {code, done, errors, status: kernel ? kernel.status : 'none'};
}"""

POINTS = """() => Array.from(window.jupyterapp.shell.currentWidget.node.querySelectorAll('.js-plotly-plot')).reduce(
  (n, gd) => n + (gd.data || []).reduce((m, t) => m + (t.x ? t.x.length : 0), 0), 0)"""

PLOTS = """() => Array.from(window.jupyterapp.shell.currentWidget.node.querySelectorAll('.js-plotly-plot')).map(gd => [gd.className,
  gd.data ? gd.data.map(t => t.x ? t.x.length : 'no x') : 'no data', !!gd.closest('.jp-Notebook')])"""

# the message line, the curve's points and the Run button, read at one instant
SAMPLE = """() => { const p = window.jupyterapp.shell.currentWidget.node.querySelector('.labkit-panel');
  return [p.querySelector('.labkit-message').innerText.trim(), (""" + POINTS + """)(),
          p.querySelector('.labkit-run').disabled]; }"""

# Every message the panel shows and every time Run is disabled, recorded by the page itself as the DOM changes: a
# short run (Lab 3a at the smoke profile) can say "Running…" and "Done" between two of the samples above.
OBSERVE = """() => { const p = window.jupyterapp.shell.currentWidget.node.querySelector('.labkit-panel');
  const run = p.querySelector('.labkit-run'), seen = window.__labkitSeen = {messages: [], disabled: 0};
  new MutationObserver(records => { for (const r of records) {
      if (r.type === 'characterData') seen.messages.push(r.target.data.trim());
      for (const n of r.addedNodes) seen.messages.push((n.textContent || '').trim()); } })
    .observe(p.querySelector('.labkit-message'), {childList: true, subtree: true, characterData: true});
  new MutationObserver(records => { for (const r of records) if (r.oldValue === null) seen.disabled++; })
    .observe(run, {attributes: true, attributeFilter: ['disabled'], attributeOldValue: true}); }"""


def _open(page, server, path):
    p = page.page
    # a workspace of its own, reset: no notebook of an earlier test is restored beside this one
    workspace = path.rsplit("/", 1)[-1].split(".")[0]
    p.goto(f"{server['url']}/lab/workspaces/{workspace}/tree/{path}?token={server['token']}&reset",
           wait_until="domcontentloaded")
    p.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell.currentWidget && "
                        "window.jupyterapp.shell.currentWidget.sessionContext && "
                        "window.jupyterapp.shell.currentWidget.sessionContext.session && "
                        "window.jupyterapp.shell.currentWidget.sessionContext.session.kernel && "
                        "window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.status === 'idle'",
                        timeout=120_000)


def _run_all(page):
    p = page.page
    p.wait_for_function("() => { const nb = window.jupyterapp.shell.currentWidget;"
                        " return nb.context.isReady && nb.content.widgets.length > 0; }", timeout=60_000)
    p.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
    start = time.monotonic()
    deadline, retried = start + RUN_ALL_S, False
    while time.monotonic() < deadline:
        state = p.evaluate(NOTEBOOK_STATE)
        assert not state["errors"], state["errors"]
        if state["done"] == state["code"] and state["status"] == "idle":
            return state
        if not retried and state["done"] == 0 and state["status"] == "idle" and time.monotonic() - start > 20:
            p.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")  # it came too early
            retried = True
        time.sleep(1)
    raise AssertionError(f"Run All did not finish in {RUN_ALL_S} s: {p.evaluate(NOTEBOOK_STATE)}")


def _set(panel, name, value):
    """Set one control of the panel (slider readout, dropdown or text box) as a learner would."""
    slider = panel.locator(".widget-slider").filter(has=panel.page.locator(f".widget-label:text-is('{name}')"))
    if slider.count():
        readout = slider.first.locator(".widget-readout")
        readout.click()
        readout.press("Control+A")
        readout.type(value)
        readout.press("Enter")
        panel.page.wait_for_timeout(300)
        assert readout.inner_text().strip() == value, (name, readout.inner_text())
        return
    dropdown = panel.locator(".widget-dropdown").filter(has=panel.page.locator(f"label:text-is('{name}')"))
    if dropdown.count():
        dropdown.first.locator("select").select_option(label=value)
        panel.page.wait_for_timeout(300)
        return
    text = panel.locator(".widget-text").filter(has=panel.page.locator(f"label:text-is('{name}')"))
    assert text.count(), f"no control named {name!r} on the panel"
    box = text.first.locator("input")
    box.fill(value)
    box.press("Enter")
    panel.page.wait_for_timeout(300)


def _message(panel) -> str:
    return panel.locator(".labkit-message").first.inner_text().strip()


@pytest.mark.parametrize("name", list(LABS))
def test_lab_runs_and_its_panel_says_what_it_does(name, lab_server, page):
    lab = LABS[name]
    _open(page, lab_server, lab["path"])
    _run_all(page)
    assert not page.errors, page.errors
    panel = page.page.locator(".labkit-panel").first
    panel.scroll_into_view_if_needed()
    assert _message(panel) == "Set the values and press Run."   # the notebook's own runs left no message
    for control, value in lab["change"].items():
        _set(panel, control, value)
    before = page.page.evaluate(POINTS)
    print(name, "after Run All and the changes:", page.page.evaluate(PLOTS))
    page.page.evaluate(OBSERVE)
    panel.locator(".labkit-run").click()
    seen, deadline = [], time.monotonic() + 300
    while time.monotonic() < deadline:
        msg, points, disabled = page.page.evaluate(SAMPLE)
        seen.append((msg, points, disabled))
        if msg.startswith(("Done", "Refused", "Failed", "Stopped")):
            break
        time.sleep(0.2)
    messages = [m for m, _, _ in seen]
    assert messages[-1].startswith("Done"), messages[-3:]
    observed = page.page.evaluate("() => window.__labkitSeen")
    running = [(m, n, off) for m, n, off in seen if m.startswith("Running…")]
    assert running or any(m.startswith("Running…") for m in observed["messages"]), (
        f"the message line never said Running…: it showed {observed['messages'][:8]}")
    assert observed["disabled"] >= 1, "Run was never disabled during the run"
    disabled = [off for _, _, off in running]   # the first and last sample may race the button's own update
    assert not running or sum(disabled) >= len(disabled) - 2, f"Run was not disabled during the run: {disabled}"
    assert not panel.locator(".labkit-run").is_disabled()
    if lab.get("curve", True):
        assert any(m.startswith("Running… (step") for m, _, _ in running), messages
        counts = [n for _, n, _ in running]
        assert max(counts) > min(counts) and max(counts) > 0, (
            f"the curve did not grow during the run: {counts}; before the run {before}; plots now: "
            + str(page.page.evaluate(PLOTS)) + f"; console: {page.errors[:3]}")
        assert seen[-1][1] >= max(counts) and seen[-1][1] != before
    for control, value in lab["change"].items():
        assert f"{control}={value}" in messages[-1], messages[-1]
    if "refuse" in lab:
        bad, words = lab["refuse"]
        for control, value in bad.items():
            _set(panel, control, value)
        panel.locator(".labkit-run").click()
        page.page.wait_for_function("() => document.querySelector('.labkit-message').innerText.startsWith('Refused')",
                                    timeout=30_000)
        assert _message(panel).startswith(words), _message(panel)
    assert not page.errors, page.errors
    assert not [u for u in page.blocked if "jupyter" not in u], page.blocked
