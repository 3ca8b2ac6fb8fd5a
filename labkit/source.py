"""Show the code the book explains, from the package itself: ``show_source(lora.LoRALinear)``.

The code a chapter discusses is the code that runs, so the notebook shows it
from labkit rather than keeping a copy. Each object is shown with a header
naming its file and lines (``labkit/lora.py:23-68``) and syntax highlighting
that works in JupyterLab, Colab and the HTML book (inline styles, no CSS
file needed); plain text (for papermill and terminals) keeps the header too.
"""
from __future__ import annotations

import html
import inspect
import textwrap
from pathlib import Path

__all__ = ["show_source", "Source"]

_ROOT = Path(__file__).resolve().parent.parent  # the folder that holds labkit/


def _where(obj) -> tuple[str, int, int, str]:
    """(path shown to the reader, first line, last line, source text dedented)."""
    target = inspect.unwrap(obj.fget if isinstance(obj, property) else obj)
    try:
        lines, start = inspect.getsourcelines(target)
    except (TypeError, OSError) as e:
        raise TypeError(f"show_source: no Python source for {obj!r} (builtins, C extensions and instances have "
                        "none); pass a function, class, method or module written in Python") from e
    path = Path(inspect.getsourcefile(target) or "?").resolve()
    try:
        shown = path.relative_to(_ROOT).as_posix()
    except ValueError:
        shown = path.name
    start = max(start, 1)
    return shown, start, start + len(lines) - 1, textwrap.dedent("".join(lines))


class Source:
    """One or more pieces of source, rendered as highlighted code with file:line headers."""

    def __init__(self, *objects):
        if not objects:
            raise TypeError("show_source needs at least one object (a function, class, method or module)")
        self.parts = [_where(o) for o in objects]

    def __repr__(self) -> str:  # text/plain: what papermill, tests and terminals see
        return "\n".join(f"# {p}:{a}-{b}\n{src.rstrip()}\n" for p, a, b, src in self.parts)

    def _repr_html_(self) -> str:
        try:
            from pygments import highlight
            from pygments.formatters import HtmlFormatter
            from pygments.lexers import PythonLexer
            fmt = HtmlFormatter(noclasses=True, style="default", nobackground=True)
            body = lambda src: highlight(src, PythonLexer(), fmt)  # noqa: E731
        except ImportError:  # pragma: no cover - pygments ships with IPython
            body = lambda src: f"<pre>{html.escape(src)}</pre>"  # noqa: E731
        out = []
        for p, a, b, src in self.parts:
            out.append(
                # explicit light background and dark text: readable under a dark notebook theme too
                '<div class="labkit-source" style="margin:0.4em 0;border:1px solid #ddd;border-radius:4px;'
                'background:#fafafa;color:#1f2328">'
                f'<div style="font-family:monospace;font-size:85%;background:#f3f3f3;padding:2px 8px;'
                f'border-bottom:1px solid #ddd">{html.escape(p)}:{a}-{b}</div>'
                f'<div style="padding:0 8px;overflow-x:auto">{body(src)}</div></div>')
        return "\n".join(out)


def show_source(*objects) -> Source:
    """Highlighted source of each object with its ``labkit/file.py:first-last`` header.

    Put it last in a cell (or pass it to ``display``) to show it.
    """
    return Source(*objects)
