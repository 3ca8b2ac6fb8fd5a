"""A book that reads offline: the JavaScript it needs comes with it, not from a CDN.

A Sphinx extension (``_config.yml``: ``sphinx.local_extensions``). At build time it

* copies plotly.js from the installed ``plotly`` package, and MathJax 3 (SVG output), mermaid
  (its ES module and the chunks it imports), require.js and the Jupyter widgets HTML manager from
  their npm packages (``npm pack``, once, into ``_build/vendor``) into ``_static/vendor/``;
* loads plotly.js once, before anything else, on each page that has a plotly figure;
* removes what each plotly figure would fetch by itself (plotly.js from cdn.plot.ly, and one
  MathJax 2 per figure from cdnjs): the page's own copies serve every figure;
* writes each inline set-up script once (sphinx-thebe's ``const THEBE_JS_URL`` came twice, a console error);
* fails the build if a page still loads a script or style sheet from another host.

    python _ext/labkit_offline.py fetch     # what the build does when _build/vendor is missing
"""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENDOR = ROOT / "_build" / "vendor"
STATIC = VENDOR / "static"            # an html_static_path: its vendor/ lands in _static/vendor/
NPM = {  # package@version -> files or folders to keep (relative to the package), or "mermaid-esm"
    "requirejs@2.3.7": ["require.js"],
    "mathjax@3.2.2": ["es5/tex-mml-svg.js"],
    "mermaid@10.9.1": "mermaid-esm",
    "@jupyter-widgets/html-manager@1.0.15": ["dist/embed-amd.js", "dist/*.woff2", "dist/*.woff", "dist/*.ttf",
                                             "dist/*.eot", "dist/*.svg"],
}
FILES = {  # where each asset lands under _static/
    "plotly": "vendor/plotly/plotly.min.js",
    "requirejs": "vendor/requirejs/require.js",
    "mathjax": "vendor/mathjax/es5/tex-mml-svg.js",
    "mermaid": "vendor/mermaid/dist/mermaid.esm.min.mjs",
    "html-manager": "vendor/html-manager/dist/embed-amd.js",
}
STRIP = [  # what plotly's notebook renderers write into each figure's HTML
    re.compile(r'<script[^>]*\bsrc="https://cdn\.plot\.ly/[^"]*"[^>]*>\s*</script>'),
    re.compile(r'<script type="module">\s*import\s+"https://cdn\.plot\.ly/[^"]*"\s*;?\s*</script>'),
    re.compile(r'<script[^>]*\bsrc="https://cdnjs\.cloudflare\.com/ajax/libs/mathjax/[^"]*"[^>]*>\s*</script>'),
]
INLINE = re.compile(r"<script>(.*?)</script>", re.S)
REMOTE = re.compile(r'<(?:script|link)\b[^>]*\b(?:src|href)="((?:https?:)?//[^"]+)"[^>]*>')


def _short(spec: str) -> str:
    name = spec.rsplit("@", 1)[0]
    return {"@jupyter-widgets/html-manager": "html-manager"}.get(name, name)


def _mermaid_files(package: Path) -> list[Path]:
    """mermaid.esm.min.mjs and every chunk it imports, statically or dynamically (nothing else of dist/)."""
    dist, todo, seen = package / "dist", ["mermaid.esm.min.mjs"], set()
    pattern = re.compile(r'["\']\./([\w.-]+\.m?js)["\']')
    while todo:
        name = todo.pop()
        if name in seen or not (dist / name).exists():
            continue
        seen.add(name)
        todo.extend(pattern.findall((dist / name).read_text(encoding="utf-8", errors="replace")))
    return [dist / n for n in sorted(seen)]


def have_assets() -> bool:
    return all((STATIC / path).exists() for key, path in FILES.items() if key != "plotly")


def fetch(quiet: bool = False) -> None:
    """npm pack each package once and keep the files the book uses, under _build/vendor/static/vendor/."""
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm is needed once to fetch MathJax, mermaid, require.js and the widget manager "
                           "(apt-get install -y npm), or copy them into _build/vendor/static/vendor/")
    with tempfile.TemporaryDirectory() as tmp:
        for spec, keep in NPM.items():
            subprocess.run([npm, "pack", spec, "--silent", "--pack-destination", tmp], check=True,
                           stdout=subprocess.DEVNULL)
        for spec, keep in NPM.items():
            tgz = next(Path(tmp).glob(_short(spec).replace("/", "-") + "-*.tgz"), None) or \
                next(Path(tmp).glob("*" + _short(spec) + "-*.tgz"))
            unpacked = Path(tmp) / _short(spec)
            with tarfile.open(tgz) as tar:
                tar.extractall(unpacked, filter="data")
            package = unpacked / "package"
            files = _mermaid_files(package) if keep == "mermaid-esm" else \
                [f for pattern in keep for f in sorted(package.glob(pattern))]
            dest = STATIC / "vendor" / _short(spec)
            shutil.rmtree(dest, ignore_errors=True)
            for f in files:
                target = dest / f.relative_to(package)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(f, target)
            if not quiet:
                size = sum(f.stat().st_size for f in files) / 2 ** 20
                print(f"  {spec}: {len(files)} file(s), {size:.1f} MiB")


def _plotly_js() -> None:
    import plotly
    src = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    dest = STATIC / FILES["plotly"]
    if not dest.exists() or dest.stat().st_size != src.stat().st_size:
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dest)


# ----------------------------------------------------------------------------- the Sphinx side
def _config_inited(app, config) -> None:
    if not have_assets():
        fetch(quiet=True)
    _plotly_js()
    config.html_static_path = [*config.html_static_path, str(STATIC)]


def _page_context(app, pagename, templatename, context, doctree) -> None:
    body = context.get("body", "")
    if "Plotly.newPlot" in body:     # before require.js, which would make plotly.js an anonymous AMD module
        app.add_js_file(FILES["plotly"], priority=100)


def _once(html: str) -> str:
    """Drop an inline <script> of the page's head that repeats an earlier one word for word."""
    end = html.find("</head>")
    if end < 0:
        return html
    seen: set[str] = set()

    def keep(m):
        body = m.group(1).strip()
        if body in seen:
            return ""
        seen.add(body)
        return m.group(0)

    return INLINE.sub(keep, html[:end]) + html[end:]


def _build_finished(app, exception) -> None:
    if exception is not None or app.builder.format != "html":
        return
    remote: dict[str, set[str]] = {}
    for page in Path(app.outdir).rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        new = text
        for pattern in STRIP:
            new = pattern.sub("", new)
        new = _once(new)
        if new != text:
            page.write_text(new, encoding="utf-8")
        for url in REMOTE.findall(new):
            remote.setdefault(url, set()).add(str(page.relative_to(app.outdir)))
    if remote:
        from sphinx.util import logging
        lines = [f"{url} (on {len(pages)} page(s), e.g. {sorted(pages)[0]})" for url, pages in sorted(remote.items())]
        logging.getLogger(__name__).warning("pages still load from another host: " + "; ".join(lines))


def setup(app):
    app.connect("config-inited", _config_inited)
    app.connect("html-page-context", _page_context)
    app.connect("build-finished", _build_finished)
    return {"parallel_read_safe": True, "parallel_write_safe": True}


if __name__ == "__main__":
    if sys.argv[1:] == ["fetch"]:
        fetch()
        _plotly_js()
        print(f"assets in {STATIC / 'vendor'}")
    else:
        print(__doc__)
