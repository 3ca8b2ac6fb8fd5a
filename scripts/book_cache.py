"""Jupyter Book's execution cache, filled two notebooks at a time, and every notebook's time.

``make book`` runs ``build``: it executes, in ``--jobs`` parallel workers, the notebooks of
``_toc.yml`` that the cache lacks, stores them in the jupyter-cache that Jupyter Book reads
(``execute_notebooks: cache``), then runs ``jupyter-book build``, which finds every notebook
cached and executes nothing. What re-runs:

* a prose (markdown) edit: nothing (the cache keys a notebook by its code cells);
* a changed code cell: that notebook alone;
* a change to labkit (its ``.py`` and data files) or to pyproject.toml: every notebook, because
  their outputs come from that code (the cache folder is keyed by a hash of it; the last two
  keys are kept, so switching back is free);
* another profile (``LABKIT_PROFILE``): its own output folder and cache.

Commands::

    python -m scripts.book_cache build   --profile cpu  [--jobs 2] [--out .]
    python -m scripts.book_cache execute --profile cpu  [--jobs 2]    # fill the cache only
    python -m scripts.book_cache times   --profile cpu                # from the cache, slowest first
    python -m scripts.book_cache ingest  --profile smoke DIR          # notebooks papermill executed (make test)

Each notebook's cell timeout is ``--timeout`` (default 1800 s, a wide margin over the 5-minute
budget of a whole notebook) unless the notebook's metadata says ``"execution": {"timeout": N}``.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CODE = ["labkit/**/*.py", "labkit/data/*.jsonl", "labkit/data/*.txt", "labkit/data/*.md", "pyproject.toml"]
KEEP_KEYS = 2


def toc_notebooks(root: Path = ROOT) -> list[Path]:
    """The .ipynb files that _toc.yml puts in the book, in its order."""
    import yaml
    found: list[Path] = []

    def walk(node):
        if isinstance(node, dict):
            if isinstance(node.get("file"), str):
                p = root / (node["file"] + ".ipynb")
                if p.exists():
                    found.append(p)
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(yaml.safe_load((root / "_toc.yml").read_text()))
    return found


def code_key(root: Path = ROOT) -> str:
    """A hash of the code every notebook's outputs depend on (``BOOK_CODE_KEY`` overrides it, e.g. to keep a
    cache while iterating on the book's look)."""
    if os.environ.get("BOOK_CODE_KEY"):
        return os.environ["BOOK_CODE_KEY"]
    h = hashlib.sha1()
    for pattern in CODE:
        for p in sorted(root.glob(pattern)):
            if "__pycache__" not in p.parts:
                h.update(str(p.relative_to(root)).encode())
                h.update(p.read_bytes())
    return h.hexdigest()[:12]


def out_dir(profile: str, out: str | None) -> Path:
    """Where the book of ``profile`` is built: the repository root for cpu (``_build/html``), else ``_build/<profile>``."""
    if out:
        return (ROOT / out).resolve()
    return ROOT if profile == "cpu" else ROOT / "_build" / profile


def open_cache(profile: str, out: str | None):
    """The jupyter-cache at <out>/_build/.jupyter_cache, a link to the folder of the current code key."""
    from jupyter_cache import get_cache
    base = out_dir(profile, out) / "_build"
    key = code_key()
    target = base / "jupyter_cache" / key
    target.mkdir(parents=True, exist_ok=True)
    link = base / ".jupyter_cache"
    previous = os.readlink(link) if link.is_symlink() else None
    if link.exists() and not link.is_symlink():  # a cache from before: keep it under its own name
        shutil.move(str(link), str(base / "jupyter_cache" / "unkeyed"))
    if previous != f"jupyter_cache/{key}":
        if link.is_symlink():
            link.unlink()
        link.symlink_to(f"jupyter_cache/{key}")
    folders = sorted((p for p in (base / "jupyter_cache").iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime)
    for old in folders[:-KEEP_KEYS]:
        if old != target:
            shutil.rmtree(old, ignore_errors=True)
    os.utime(target)
    return get_cache(str(target)), previous is not None and previous != f"jupyter_cache/{key}"


def _execute(path: str, timeout: int) -> dict:
    """Run one notebook in a kernel (its own folder as the working directory); wall and CPU seconds."""
    import nbformat
    from jupyter_cache.executors.utils import single_nb_execution
    nb = nbformat.read(path, as_version=4)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = single_nb_execution(nb, cwd=str(Path(path).parent), timeout=timeout, allow_errors=False,
                                 meta_override=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    error = None
    if result.err is not None:
        lines = [line for line in (result.exc_string or "").splitlines() if line.strip()]
        error = f"{type(result.err).__name__}: {lines[-1] if lines else result.err}"[:300]
    return {"path": path, "seconds": result.time, "cpu_seconds": cpu, "error": error,
            "nb": nbformat.writes(nb) if error is None else None}


def _cached(cache, path: Path):
    import nbformat
    try:
        return cache.match_cache_notebook(nbformat.read(path, as_version=4))
    except KeyError:
        return None


def _store(cache, path: Path, nb_json: str, data: dict):
    import nbformat
    from jupyter_cache.base import CacheBundleIn
    cache.add_nb_to_project(str(path))
    return cache.cache_notebook_bundle(CacheBundleIn(nbformat.reads(nb_json, as_version=4), str(path), data=data),
                                       check_validity=False, overwrite=True)


def execute(profile: str, jobs: int = 2, timeout: int = 1800, out: str | None = None, match: str | None = None,
            quiet: bool = False) -> tuple[list[dict], bool]:
    """Execute every TOC notebook the cache lacks, ``jobs`` at a time (longest first); return (rows, code changed)."""
    os.environ["LABKIT_PROFILE"] = profile
    os.environ.setdefault("LABKIT_HEADLESS", "1")
    os.environ.setdefault("PLOTLY_RENDERER", "plotly_mimetype+notebook_connected")
    cache, changed = open_cache(profile, out)
    notebooks = [p for p in toc_notebooks() if not match or match in str(p)]
    todo = [p for p in notebooks if _cached(cache, p) is None]
    known = _previous_times(profile)
    todo.sort(key=lambda p: -known.get(str(p.relative_to(ROOT)), 60.0))
    if not quiet:
        print(f"book cache ({profile}, code {code_key()}): {len(notebooks) - len(todo)} of {len(notebooks)} notebooks "
              f"cached; executing {len(todo)} with {jobs} worker(s)", flush=True)
    rows, failed = [], []
    start = time.perf_counter()
    if todo:
        with ProcessPoolExecutor(max_workers=max(1, jobs)) as pool:
            futures = [pool.submit(_execute, str(p), timeout) for p in todo]
            for fut in as_completed(futures):
                r = fut.result()
                rel = str(Path(r["path"]).relative_to(ROOT))
                if r["error"]:
                    failed.append(rel)
                    print(f"  FAILED {rel} after {r['seconds']:.0f} s: {r['error']}", flush=True)
                    continue
                _store(cache, Path(r["path"]), r["nb"], {"execution_seconds": r["seconds"],
                                                          "cpu_seconds": r["cpu_seconds"], "profile": profile,
                                                          "jobs": jobs, "load": os.getloadavg()[0]})
                if not quiet:
                    print(f"  {r['seconds']:7.1f} s wall {r['cpu_seconds']:7.1f} s cpu  {rel}", flush=True)
    if not quiet and todo:
        print(f"executed {len(todo) - len(failed)} notebook(s) in {time.perf_counter() - start:.0f} s "
              f"(load {os.getloadavg()[0]:.1f})", flush=True)
    rows = times(profile, out, cache=cache)
    _save_times(profile, rows)
    if failed:
        raise SystemExit(f"{len(failed)} notebook(s) failed: {', '.join(failed)}")
    return rows, changed


def times(profile: str, out: str | None = None, cache=None) -> list[dict]:
    """Every TOC notebook's cached time (None where it is not cached), slowest first."""
    if cache is None:
        cache, _ = open_cache(profile, out)
    rows = []
    for p in toc_notebooks():
        rec = _cached(cache, p)
        data = rec.data if rec is not None else {}
        rows.append({"notebook": str(p.relative_to(ROOT)), "seconds": data.get("execution_seconds"),
                     "cpu_seconds": data.get("cpu_seconds"), "load": data.get("load"), "jobs": data.get("jobs")})
    return sorted(rows, key=lambda r: -(r["seconds"] or -1))


def print_times(rows: list[dict], profile: str, budget: float = 300.0) -> None:
    print(f"\nnotebook times at the {profile} profile, slowest first (wall and CPU seconds of the kernel; "
          f"load = 1-min load average when it finished; jobs = notebooks run side by side):")
    print(f"{'notebook':58s} {'wall s':>8s} {'cpu s':>8s} {'load':>5s} {'jobs':>4s}")
    for r in rows:
        if r["seconds"] is None:
            print(f"{r['notebook']:58s} {'not cached':>8s}")
            continue
        flag = "  over the 5-minute budget" if r["seconds"] > budget else ""
        print(f"{r['notebook']:58s} {r['seconds']:8.1f} {r['cpu_seconds'] or 0:8.1f} {r['load'] or 0:5.1f} "
              f"{r['jobs'] or 0:4d}{flag}")
    done = [r for r in rows if r["seconds"] is not None]
    print(f"{len(done)} notebooks, {sum(r['seconds'] for r in done):.0f} s wall, "
          f"{sum(r['cpu_seconds'] or 0 for r in done):.0f} s CPU in all")


def _times_file() -> Path:
    return ROOT / "_build" / "notebook_times.json"


def _previous_times(profile: str) -> dict[str, float]:
    try:
        return json.loads(_times_file().read_text()).get(profile, {})
    except (OSError, ValueError):
        return {}


def _save_times(profile: str, rows: list[dict]) -> None:
    path = _times_file()
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        data = {}
    data.setdefault(profile, {}).update({r["notebook"]: r["seconds"] for r in rows if r["seconds"] is not None})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1))


def ingest(profile: str, folder: str, out: str | None = None) -> int:
    """Cache notebooks that papermill already executed (``make test`` keeps them): the injected-parameters cell
    is dropped, and a notebook is taken only if its code cells are exactly those of the source."""
    import nbformat
    cache, _ = open_cache(profile, out)
    taken = 0
    for src in toc_notebooks():
        done = Path(folder) / src.relative_to(ROOT)
        if not done.exists() or _cached(cache, src) is not None:
            continue
        nb = nbformat.read(done, as_version=4)
        nb.cells = [c for c in nb.cells if "injected-parameters" not in c.get("metadata", {}).get("tags", [])]
        source = nbformat.read(src, as_version=4)
        code = lambda book: [c.source for c in book.cells if c.cell_type == "code"]  # noqa: E731
        errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
        if code(nb) != code(source) or errors:
            continue
        for cell, original in zip(nb.cells, source.cells):  # papermill's own metadata out, the source's back
            cell.metadata = original.metadata
        nb.metadata = source.metadata
        seconds = (nb.metadata.get("papermill") or {}).get("duration")
        _store(cache, src, nbformat.writes(nb), {"execution_seconds": seconds, "profile": profile, "from": "tests"})
        taken += 1
    print(f"book cache ({profile}): took {taken} notebook(s) executed by the tests from {folder}")
    return taken


def build(profile: str, jobs: int, timeout: int, out: str | None, extra: list[str]) -> None:
    executed = ROOT / "_build" / "executed" / profile   # what `make test` executed (LABKIT_KEEP_EXECUTED)
    if executed.is_dir():
        ingest(profile, str(executed), out)
    rows, changed = execute(profile, jobs=jobs, timeout=timeout, out=out)
    target = out_dir(profile, out)
    cmd = [str(Path(sys.executable).parent / "jupyter-book"), "build", str(ROOT), "--path-output", str(target),
           "--warningiserror", "--keep-going", "--builder", "html", *extra]
    if changed:          # the code changed under unchanged notebooks: Sphinx must read them all again
        cmd.append("--all")
    start = time.perf_counter()
    subprocess.run(cmd, check=True)
    print(f"jupyter-book build: {time.perf_counter() - start:.0f} s; book at {target / '_build' / 'html' / 'index.html'}")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", choices=["build", "execute", "times", "ingest"])
    ap.add_argument("folder", nargs="?", help="ingest: the folder of executed notebooks")
    ap.add_argument("--profile", default=os.environ.get("LABKIT_PROFILE", "cpu"))
    ap.add_argument("--jobs", type=int, default=int(os.environ.get("BOOK_JOBS", "2")))
    ap.add_argument("--timeout", type=int, default=1800, help="seconds per cell (default 1800)")
    ap.add_argument("--out", default=None, help="build folder (default: . for cpu, _build/<profile> otherwise)")
    ap.add_argument("--match", default=None)
    args, extra = ap.parse_known_args(argv)
    if args.command == "build":
        build(args.profile, args.jobs, args.timeout, args.out, extra)
    elif args.command == "execute":
        rows, _ = execute(args.profile, args.jobs, args.timeout, args.out, args.match)
        print_times(rows, args.profile)
    elif args.command == "times":
        print_times(times(args.profile, args.out), args.profile)
    else:
        if not args.folder:
            ap.error("ingest needs the folder of executed notebooks")
        ingest(args.profile, args.folder, args.out)


if __name__ == "__main__":
    main()
