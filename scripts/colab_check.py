"""make colab-check: the README's Colab set-up cell, tried in an environment that has only what Colab preinstalls.

    python -m scripts.colab_check                        # the default labs, at the smoke profile
    python -m scripts.colab_check labs/lab02-what-pretraining-buys.ipynb ...

What it does, so that a learner's first cell in Colab is known to work before a course starts:

1. a fresh virtual environment (``_build/colab/venv``) with Colab's own versions of the packages labkit
   shares with it (``scripts/colab-preinstalls.txt``), torch from ``TORCH_SPEC``, and a kernel for it;
2. the repository's committed HEAD served over HTTP as a git repository (``git+http://127.0.0.1:…``),
   standing in for ``git+https://github.com/<owner>/<repo>``;
3. for each lab: a new kernel, the README's cell ``!pip install --quiet "labkit[weights] @ git+…"`` put first,
   then every cell of the lab, at the smoke profile and offline;
4. after each lab, the versions of Colab's own packages (IPython, ipykernel, ipywidgets, plotly, numpy,
   torch): installing labkit must not replace one of them under Colab's running kernel (google-colab pins
   IPython; a replaced IPython breaks the runtime until it is restarted).

It prints one line per lab (ok or the error, seconds) and exits 1 if a lab failed or a package was replaced.
What it cannot show: Colab's browser front end (widgets and figures as Colab draws them), its GPU runtime,
and its Python (3.12 in Colab; this uses the machine's python3).
"""
from __future__ import annotations

import argparse
import functools
import http.server
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "_build" / "colab"
PREINSTALLS = Path(__file__).with_name("colab-preinstalls.txt")
SHARED = ("ipython", "ipykernel", "ipywidgets", "plotly", "numpy", "torch")
DEFAULT_LABS = ("labs/lab04a-optimizer-playground.ipynb", "labs/lab02-what-pretraining-buys.ipynb",
                "labs/lab07-meet-the-families.ipynb")


def _run(cmd: list[str], **kw) -> None:
    subprocess.run(cmd, check=True, **kw)


def make_env(python: str) -> Path:
    venv = WORK / "venv"
    if not (venv / ".preinstalled").exists():
        _run([python, "-m", "venv", "--clear", str(venv)])
        torch = os.environ.get("TORCH_SPEC", "torch>=2.3")
        _run([str(venv / "bin" / "pip"), "install", "--quiet", torch, "-r", str(PREINSTALLS)])
        (venv / ".preinstalled").touch()
    kernels = WORK / "jupyter" / "kernels" / "colab"
    kernels.mkdir(parents=True, exist_ok=True)
    env = {"PATH": f"{venv / 'bin'}:{os.environ.get('PATH', '/usr/bin:/bin')}", "LABKIT_PROFILE": "smoke",
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false"}
    (kernels / "kernel.json").write_text(json.dumps({
        "argv": [str(venv / "bin" / "python"), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Colab-like", "language": "python", "env": env}))
    return venv


def versions(venv: Path) -> dict[str, str]:
    code = ("import importlib.metadata as m, json; print(json.dumps({p: m.version(p) for p in %r}))" % (SHARED,))
    out = subprocess.run([str(venv / "bin" / "python"), "-c", code], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


class _Server(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):   # git hangs up early: fine
            super().handle_error(request, client_address)


def serve_repository() -> tuple[str, _Server]:
    """HEAD of this repository as a bare git repository over HTTP (git's 'dumb' protocol: plain files)."""
    bare = WORK / "repo.git"
    _run(["rm", "-rf", str(bare)])
    _run(["git", "clone", "--quiet", "--bare", str(ROOT), str(bare)])
    _run(["git", "-C", str(bare), "update-server-info"])
    server = _Server(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(WORK)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}/repo.git", server


def setup_cell(url: str) -> str:
    """The README's Colab cell, with this machine's stand-in for the GitHub address."""
    readme = (ROOT / "README.md").read_text()
    line = next(l for l in readme.splitlines() if l.startswith("!pip install") and "labkit[weights]" in l)
    return line.replace("https://github.com/<owner>/<repo>", url)


def run_lab(lab: str, cell: str) -> tuple[bool, str, float]:
    import nbformat
    from nbclient import NotebookClient
    nb = nbformat.read(ROOT / lab, as_version=4)
    nb.cells.insert(0, nbformat.v4.new_code_cell(cell))
    out = WORK / "executed"
    out.mkdir(parents=True, exist_ok=True)
    os.environ["JUPYTER_PATH"] = str(WORK / "jupyter")
    start = time.monotonic()
    client = NotebookClient(nb, kernel_name="colab", timeout=900, resources={"metadata": {"path": str(out)}})
    try:
        client.execute()
        ok, why = True, "ok"
    except Exception as e:  # the lab's error, reported with the others
        ok, why = False, f"{type(e).__name__}: {str(e).strip().splitlines()[-1][:300]}"
    nbformat.write(nb, out / Path(lab).name)
    return ok, why, time.monotonic() - start


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("labs", nargs="*", default=list(DEFAULT_LABS))
    ap.add_argument("--python", default="python3", help="the interpreter for the Colab-like environment")
    args = ap.parse_args(argv)
    for lab in args.labs:
        if not (ROOT / lab).is_file():
            ap.error(f"labs: no notebook {lab}")
    t = time.monotonic()
    venv = make_env(args.python)
    print(f"Colab-like environment: {versions(venv)} ({time.monotonic() - t:.0f} s)")
    url, server = serve_repository()
    failed = False
    try:
        for lab in args.labs:
            subprocess.run([str(venv / "bin" / "pip"), "uninstall", "--quiet", "-y", "labkit"],
                           capture_output=True)        # each lab starts as a new Colab runtime would
            before = versions(venv)
            ok, why, seconds = run_lab(lab, setup_cell(url))
            after = versions(venv)
            replaced = {p: f"{before[p]} -> {after[p]}" for p in SHARED if before[p] != after[p]}
            failed |= not ok or bool(replaced)
            print(f"{lab}: {why}, {seconds:.0f} s (set-up cell included); Colab's packages "
                  + (f"REPLACED: {replaced}" if replaced else "kept"))
    finally:
        server.shutdown()
    # the environment keeps labkit's own additions; a package that replaced one of Colab's is reinstalled next time
    if failed:
        (venv / ".preinstalled").unlink(missing_ok=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
