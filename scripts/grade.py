"""make grade SUBMISSIONS=folder: grade a folder of learners' notebooks with otter-grader, offline, into a score table.

    python -m scripts.grade SUBMISSIONS [--lab lab04b] [--out _build/grades] [--timeout 600] [--jobs 1]

Each file under SUBMISSIONS is one submission (sub-folders too, e.g. one per learner). A notebook is
identified by the assignment name ``make course`` writes into its metadata (``otter.assignment_name``), or
else by the ``labkit.labs`` module it imports: a lab is graded against the tests of its source
``course/<lab>-*.ipynb``, a chapter against its quick checks (``scripts.course.chapter_master``). The
autograder zips are built by ``otter assign`` into a temporary folder, and each submission is graded by
``otter run`` (otter-grader's grading without Docker) in a process of its own with:

* a time limit (``--timeout`` seconds for the whole notebook; the process tree is killed past it);
* no network: ``tests/netguard`` on ``PYTHONPATH`` with ``LABKIT_NETGUARD=1`` (the guard the tests use),
  and the offline variables of the Hugging Face libraries;
* the profile the learner ran (the ``profile=...`` line ``labkit.setup`` printed in the submission), else
  ``--profile``; expected values are computed from the notebook's own objects at that profile.

It writes ``scores.csv`` (one row per submission: status, reason, score, and each exercise's points) and
``feedback.csv`` (one row per submission and exercise: points, and the message the check printed, i.e. the
hint the learner got). A file that is not a notebook, a notebook of another lab, one that raises, loops
forever or tries the network: each gets its row with the reason; the grading run itself never stops on one.
The network guard stops accidental downloads; it is not a sandbox for hostile code (grade those in a
container or a VM without network).
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GUARD = ROOT / "tests" / "netguard"
OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
_IMPORT = re.compile(r"(?:from\s+labkit\.labs\s+import\s+([A-Za-z0-9_]+))|(?:(?:from|import)\s+labkit\.labs\.([A-Za-z0-9_]+))")
_PROFILE = re.compile(r"\bprofile=(smoke|cpu|gpu)\b")
BLOCKED = "network access is blocked"


@dataclass
class Row:
    """The grade of one submission."""

    submission: str
    assignment: str = ""
    status: str = "graded"          # graded | not graded
    reason: str = ""
    profile: str = ""
    seconds: float = 0.0
    score: float = 0.0
    possible: float = 0.0
    exercises: list[dict] = field(default_factory=list)   # {"exercise", "points", "possible", "passed", "message"}

    @property
    def percent(self) -> float:
        return 100.0 * self.score / self.possible if self.possible else 0.0


# ----------------------------------------------------------------------------- what a submission is
def assignments() -> dict[str, Path]:
    """Every gradable assignment: lab id -> its course/ source, chapter stem -> its book/ notebook."""
    from scripts import course

    found = {course.lab_id(s): s for s in course.sources()}
    for nb in sorted((ROOT / "book").glob("ch*.ipynb")):
        found[nb.stem] = nb
    return found


def _module_to_assignment() -> dict[str, str]:
    """labkit.labs module -> assignment name (lab02 -> lab02; ch01 -> ch01-background), from the notebooks."""
    out = {}
    for name, path in assignments().items():
        text = path.read_text(errors="replace")
        for m in _IMPORT.finditer(text.replace("\\n", "\n")):
            out.setdefault(m.group(1) or m.group(2), name)
    return out


def identify(path: Path) -> tuple[object | None, str, str]:
    """(the notebook or None, its assignment name or '', why it cannot be graded or '')."""
    import nbformat

    try:
        nb = nbformat.read(path, as_version=4)
    except Exception as e:   # not JSON, not a notebook, unreadable
        kind = "not a notebook" if path.suffix != ".ipynb" else "not a readable notebook"
        return None, "", f"{kind} ({type(e).__name__}: {str(e).splitlines()[0][:120] if str(e) else ''})"
    name = nb.metadata.get("otter", {}).get("assignment_name", "")
    if not name:
        modules = _module_to_assignment()
        for cell in nb.cells:
            if cell.cell_type != "code":
                continue
            for m in _IMPORT.finditer(cell.source):
                name = modules.get(m.group(1) or m.group(2), "")
                if name:
                    break
            if name:
                break
    if not name:
        return nb, "", "not a notebook of this course: no assignment name in its metadata and no labkit.labs import"
    return nb, name, ""


def learner_profile(nb, default: str) -> str:
    """The profile the learner's run used, read from the setup line it printed; else ``default``."""
    for cell in nb.cells:
        for out in cell.get("outputs", []) if cell.cell_type == "code" else []:
            m = _PROFILE.search(out.get("text", "") if isinstance(out.get("text", ""), str) else "")
            if m:
                return m.group(1)
    return default


# ----------------------------------------------------------------------------- the autograders
def build_autograder(name: str, workdir: Path) -> Path:
    """The otter autograder zip of assignment ``name`` (a lab's source, or a chapter wrapped by chapter_master)."""
    import nbformat

    from scripts import course

    path = assignments()[name]
    out = workdir / name
    if path.parent == course.SOURCES:
        master = path
    else:   # a chapter: its quick checks as otter questions, written beside the chapter (relative paths hold)
        master = out / "master" / path.name
        master.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(course.chapter_master(nbformat.read(path, as_version=4), name), master)
    _, _, zip_path = course.assign(master, out / "dist")
    if zip_path is None:
        raise RuntimeError(f"otter assign wrote no autograder zip for {name}")
    return zip_path


# ----------------------------------------------------------------------------- one submission
def grade_env(profile: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(OFFLINE)
    env.update({"LABKIT_NETGUARD": "1", "LABKIT_HEADLESS": "1", "LABKIT_PROFILE": profile,
                "TOKENIZERS_PARALLELISM": "false", "PYDEVD_DISABLE_FILE_VALIDATION": "1"})
    paths = [str(GUARD), str(ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    return env


def _kill_tree(pid: int) -> None:
    """Kill ``pid`` and every process under it (the notebook's kernel runs in a session of its own)."""
    try:
        import psutil
        procs = psutil.Process(pid).children(recursive=True) + [psutil.Process(pid)]
        for p in procs:
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(procs, timeout=10)
    except Exception:
        try:
            os.killpg(pid, signal.SIGKILL)
        except OSError:
            pass


def run_one(zip_path: Path, notebook: Path, result: Path, profile: str, timeout: float) -> tuple[str, float]:
    """Grade ``notebook`` with ``otter run`` in a worker process: ('' or why it failed, seconds)."""
    cmd = [sys.executable, "-m", "scripts.grade", "--worker", str(zip_path), str(notebook), str(result)]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=grade_env(profile), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_tree(proc.pid)
        proc.communicate()
        return f"time limit: stopped after {timeout:g} s (an endless loop, or too slow at the {profile} profile)", \
            time.perf_counter() - start
    seconds = time.perf_counter() - start
    if proc.returncode != 0 or not result.exists():
        last = [l for l in (out or "").strip().splitlines() if l.strip()][-1:] or ["no output"]
        return f"grading failed: {last[0][:200]}", seconds
    return "", seconds


def worker(zip_path: str, notebook: str, result: str) -> int:
    """Inside the time-limited process: otter run, then the per-exercise results as JSON."""
    import contextlib
    import io

    from otter.run import main as otter_run

    log = io.StringIO()
    with contextlib.redirect_stdout(log):
        results = otter_run(notebook, autograder=zip_path, output_dir=None, no_logo=True)
    exercises = []
    for name, test in results.results.items():
        passed = all(r.passed for r in test.test_case_results)
        messages = [r.message for r in test.test_case_results if not r.passed]
        message = _message(messages[0]) if messages else "passed"
        exercises.append({"exercise": name, "points": float(test.score), "possible": float(test.possible),
                          "passed": passed, "message": message})
    errors = []
    for i, cell in enumerate((results.notebook or {}).get("cells", [])):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                errors.append({"cell": i, "ename": out.get("ename", ""), "evalue": str(out.get("evalue", ""))[:300]})
    Path(result).write_text(json.dumps({"exercises": exercises, "errors": errors}, ensure_ascii=False))
    return 0


def _message(text: str) -> str:
    """The learner's message out of otter's failure text (otter prefixes the failing test line)."""
    m = re.search(r"\n(?:AssertionError|[A-Za-z]*Error|Exception): (.*)\Z", text, flags=re.S)
    return " ".join((m.group(1) if m else text).split())


def grade_submission(path: Path, rel: str, zips: dict, workdir: Path, only: str | None, profile: str,
                     timeout: float) -> Row:
    row = Row(rel)
    nb, name, why = identify(path)
    row.assignment = name
    if why:
        row.status, row.reason = "not graded", why
        return row
    if only and name != only:
        row.status, row.reason = "not graded", f"a notebook of {name}, not {only}"
        return row
    if name not in zips:
        row.status, row.reason = "not graded", f"no autograder for {name!r} (not a lab with a course/ source or a chapter)"
        return row
    zip_path = zips[name]
    if isinstance(zip_path, str):    # the autograder could not be built
        row.status, row.reason = "not graded", zip_path
        return row
    import nbformat

    row.profile = learner_profile(nb, profile)
    folder = Path(tempfile.mkdtemp(dir=workdir, prefix="sub-"))
    nb.metadata.setdefault("otter", {})["assignment_name"] = name   # identified by its import: name it for otter
    notebook = folder / "submission.ipynb"
    nbformat.write(nb, notebook)
    result = folder / "result.json"
    failure, row.seconds = run_one(zip_path, notebook, result, row.profile, timeout)
    if failure:
        row.status, row.reason = "not graded", failure
        return row
    data = json.loads(result.read_text())
    row.exercises = data["exercises"]
    row.score = sum(e["points"] for e in row.exercises)
    row.possible = sum(e["possible"] for e in row.exercises)
    errors = data["errors"]
    net = [e for e in errors if BLOCKED in e["evalue"]]
    if net:
        row.reason = f"tried to reach the network (blocked): {net[0]['ename']}: {net[0]['evalue'][:160]}"
    elif errors:
        e = errors[0]
        row.reason = (f"the notebook raised {e['ename']}: {e['evalue'][:160]} "
                      f"({len(errors)} cell(s) raised; the other cells ran)")
    return row


# ----------------------------------------------------------------------------- the tables
def write_tables(rows: list[Row], out: Path) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    keys = []
    for r in rows:
        for e in r.exercises:
            if e["exercise"] not in keys:
                keys.append(e["exercise"])
    scores, feedback = out / "scores.csv", out / "feedback.csv"
    with scores.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["submission", "assignment", "status", "score", "possible", "percent", "profile", "seconds",
                    "reason"] + keys)
        for r in rows:
            points = {e["exercise"]: e["points"] for e in r.exercises}
            w.writerow([r.submission, r.assignment, r.status, f"{r.score:g}", f"{r.possible:g}",
                        f"{r.percent:.1f}" if r.status == "graded" else "", r.profile, f"{r.seconds:.1f}", r.reason]
                       + [f"{points[k]:g}" if k in points else "" for k in keys])
    with feedback.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["submission", "assignment", "exercise", "points", "possible", "passed", "message"])
        for r in rows:
            if r.status != "graded":
                w.writerow([r.submission, r.assignment, "", "", "", "", r.reason])
            for e in r.exercises:
                w.writerow([r.submission, r.assignment, e["exercise"], f"{e['points']:g}", f"{e['possible']:g}",
                            "yes" if e["passed"] else "no", e["message"]])
    return scores, feedback


def submissions(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and not any(
        part.startswith(".") or part == "__pycache__" for part in p.relative_to(folder).parts))


def grade(folder: Path, out: Path, lab: str | None = None, timeout: float = 600, jobs: int = 1,
          profile: str = "cpu") -> list[Row]:
    """Grade every file under ``folder``; write the two tables into ``out``; return the rows."""
    folder, out = Path(folder), Path(out)
    if not folder.is_dir():
        raise ValueError(f"SUBMISSIONS={str(folder)!r}: expected a folder of notebooks")
    if lab is not None and lab not in assignments():
        raise ValueError(f"lab={lab!r}: not an assignment of this course; known: {', '.join(assignments())}")
    if timeout <= 0 or jobs < 1:
        raise ValueError(f"timeout must be > 0 s and jobs >= 1 (got timeout={timeout}, jobs={jobs})")
    files = submissions(folder)
    with tempfile.TemporaryDirectory(prefix="labkit-grade-") as tmp:
        workdir = Path(tmp)
        needed = set()
        for path in files:
            _, name, why = identify(path)
            if name and not why and (lab is None or name == lab):
                needed.add(name)
        zips: dict[str, object] = {}
        for name in sorted(needed & set(assignments())):
            try:
                zips[name] = build_autograder(name, workdir)
            except Exception as e:
                zips[name] = f"the autograder of {name} could not be built: {type(e).__name__}: {e}"
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            rows = list(pool.map(lambda p: grade_submission(p, str(p.relative_to(folder)), zips, workdir, lab,
                                                            profile, timeout), files))
    write_tables(rows, out)
    return rows


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--worker"]:
        return worker(*argv[1:4])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("submissions", help="a folder of learners' notebooks (sub-folders too)")
    parser.add_argument("--lab", help="grade only this assignment (e.g. lab04b); other notebooks get a row saying so")
    parser.add_argument("--out", default="_build/grades", help="where scores.csv and feedback.csv go")
    parser.add_argument("--timeout", type=float, default=600, help="seconds one notebook may run (default 600)")
    parser.add_argument("--jobs", type=int, default=1, help="submissions graded at once (default 1)")
    parser.add_argument("--profile", default="cpu", choices=["smoke", "cpu", "gpu"],
                        help="the profile for a submission that does not show the one it ran (default cpu)")
    args = parser.parse_args(argv)
    rows = grade(Path(args.submissions), Path(args.out), args.lab, args.timeout, args.jobs, args.profile)
    for r in rows:
        score = f"{r.score:g}/{r.possible:g} ({r.percent:.0f}%)" if r.status == "graded" else r.status
        print(f"{r.submission}: {r.assignment or '?'} {score}{' · ' + r.reason if r.reason else ''}")
    print(f"wrote {Path(args.out) / 'scores.csv'} and {Path(args.out) / 'feedback.csv'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
