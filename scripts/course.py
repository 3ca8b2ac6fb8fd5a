"""make course: every lab's learner and instructor notebooks, generated from one source each.

    python -m scripts.course            # write labs/<lab>.ipynb and labs/solutions/<id>-solutions.ipynb
    python -m scripts.course --check    # exit 1 if a committed notebook is out of date with its source
    python -m scripts.course --draft labs/lab06-pick-the-right-tool.ipynb   # a first source, to fill in

The sources are ``course/<lab>.ipynb`` in otter-grader's notebook format (``otter assign``, format v1):
a raw ``# ASSIGNMENT CONFIG`` cell, and for each checked exercise a ``# BEGIN QUESTION`` block with its
test in a ``# BEGIN TESTS`` block. ``otter assign`` itself turns a source into its two views (the
"student" and the "autograder" notebook); this script adds only what the book needs on top:

* learner version (labs/<lab>.ipynb) = otter's student notebook: solutions removed, prompts kept,
  checks and hints kept; code cells that held only instructor code are dropped;
* instructor version (labs/solutions/<id>-solutions.ipynb) = otter's autograder notebook with otter's
  markers removed and the learner-only lines (``# BEGIN PROMPT`` ... ``# END PROMPT``) dropped, so every
  check cell is the instructor's ``assert ex[...].check(...)``; its relative links rebased to
  labs/solutions/, its MyST targets ``(label)=`` dropped (they belong to the lab's page); the stored outputs of its ``# NBVAL_CHECK_OUTPUT`` cells carried over from the
  committed file while the cell is unchanged (``make checked-outputs`` stores new ones);
* both: a header cell naming the source, the notebook's otter metadata reduced to the assignment name
  (``otter run`` checks it), no outputs.

The same otter run also writes the autograder zip that ``scripts.grade`` hands to ``otter run``.
Chapter notebooks are not generated: :func:`chapter_master` wraps their quick-check cells
(``answer_2_1 = None; ex["2.1"].check(answer_2_1)``) into the same question/test blocks, so a chapter
is graded exactly like a lab.
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import io
import json
import logging
import os
import re
import sys
import tempfile
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ROOT / "course"
LABS = ROOT / "labs"
SOLUTIONS = LABS / "solutions"
BOOK = ROOT / "book"

NBVAL = "# NBVAL_CHECK_OUTPUT"
HEADER_ID = "course-generated"
# otter assign's marker lines inside code cells (see otter.assign.solutions)
_PROMPT_BEGIN, _PROMPT_END = "# BEGIN PROMPT", "# END PROMPT"
_SOLUTION_LINE = re.compile(r"^\s*# (BEGIN SOLUTION( NO PROMPT)?|END SOLUTION)\s*$")
_SOLUTION_SUFFIX = re.compile(r"\s*# SOLUTION( NO PROMPT)?\s*$")
_ANY_SOLUTION = re.compile(r"#\s?SOLUTION")
_ANSWER_TAG, _SOLUTION_TAG = "otter_answer_cell", "otter_assign_solution_cell"
# a quick check: ex["2.1"].check(answer_2_1) (a chapter may name its dict otherwise: exercises["6.1.1"].check(align))
CHECK_CALL = re.compile(r"""\b([A-Za-z_]\w*)\[\s*["']([^"']+)["']\s*\]\.check\(\s*([A-Za-z_]\w*)\s*\)""")
_MD_LINK = re.compile(r"(\]\()([^)\s]+)(\))")
_TARGET = re.compile(r"^\([\w-]+\)=[ \t]*\n?", flags=re.M)


def lab_id(source: Path) -> str:
    """``course/lab04b-backprop-by-hand.ipynb`` -> ``lab04b``."""
    return source.stem.split("-")[0]


def targets(source: Path) -> tuple[Path, Path]:
    """Where a source's learner and instructor versions go: labs/<stem>.ipynb, labs/solutions/<id>-solutions.ipynb."""
    return LABS / f"{source.stem}.ipynb", SOLUTIONS / f"{lab_id(source)}-solutions.ipynb"


def sources() -> list[Path]:
    return sorted(SOURCES.glob("*.ipynb"))


def source_of(lab: str) -> Path:
    """The source of lab ``lab`` (e.g. ``lab04b``); a clear error naming the labs that have one."""
    found = [s for s in sources() if lab_id(s) == lab]
    if not found:
        raise ValueError(f"lab={lab!r}: no source course/{lab}-*.ipynb; labs with a source: "
                         f"{', '.join(lab_id(s) for s in sources())}")
    return found[0]


# ----------------------------------------------------------------------------- otter assign
def assign(master: Path, outdir: Path) -> tuple[nbformat.NotebookNode, nbformat.NotebookNode, Path | None]:
    """Run ``otter assign`` on ``master`` into ``outdir``: (student notebook, autograder notebook, autograder zip)."""
    from otter.assign import main as otter_assign

    logging.getLogger("otter").setLevel(logging.WARNING)
    master, outdir = Path(master).resolve(), Path(outdir).resolve()
    with contextlib.redirect_stdout(io.StringIO()):
        otter_assign(str(master), str(outdir), no_pdfs=True, no_run_tests=True)
    student = nbformat.read(outdir / "student" / master.name, as_version=4)
    autograder = nbformat.read(outdir / "autograder" / master.name, as_version=4)
    zips = sorted((outdir / "autograder").glob("*-autograder_*.zip"))
    return student, autograder, (zips[-1] if zips else None)


def check_source(nb: nbformat.NotebookNode, name: str) -> None:
    """Refuse a source that the generated notebooks could not satisfy (one parameters cell, otter config first)."""
    cells = nb.cells
    if not cells or cells[0].cell_type != "raw" or not cells[0].source.startswith("# ASSIGNMENT CONFIG"):
        raise ValueError(f"{name}: the first cell must be the raw '# ASSIGNMENT CONFIG' cell of otter assign")
    tagged = [c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(tagged) != 1:
        raise ValueError(f"{name}: needs exactly one cell tagged 'parameters', found {len(tagged)}")
    for i, c in enumerate(cells):
        if c.cell_type != "code":
            continue
        for line in c.source.splitlines():
            if _ANY_SOLUTION.search(line) and not (_SOLUTION_LINE.match(line) or _SOLUTION_SUFFIX.search(line)):
                raise ValueError(f"{name}, cell {i}: {line.strip()!r} reads as an otter solution marker "
                                 "(otter replaces any line with '# SOLUTION' in it); reword the comment")


# ----------------------------------------------------------------------------- the two views
def _otter_metadata(nb: nbformat.NotebookNode) -> None:
    """Keep only the assignment name of otter's notebook metadata (its tests live in the autograder zip)."""
    name = nb.metadata.get("otter", {}).get("assignment_name")
    nb.metadata.pop("otter", None)
    if name:
        nb.metadata["otter"] = {"assignment_name": name}


def _title(nb: nbformat.NotebookNode) -> tuple[int, str]:
    for i, c in enumerate(nb.cells):
        if c.cell_type == "markdown":
            for line in c.source.splitlines():
                if line.startswith("# "):
                    return i, line[2:].strip()
    raise ValueError("the notebook has no '# ' title line")


def _short_title(title: str) -> str:
    """'Lab 4b: Backprop by hand · 手推反向传播' -> 'Lab 4b'."""
    return re.split(r" · |: ", title, maxsplit=1)[0].strip()


def _header(source: Path, text: str) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_markdown_cell(text)
    cell.id = HEADER_ID
    return cell


def _rebase_links(text: str, here: Path, there: Path) -> str:
    """Relative markdown links written for a notebook in ``here``, rewritten for one in ``there``."""
    def fix(m: re.Match) -> str:
        target = m.group(2)
        if re.match(r"^([a-z][a-z0-9+.-]*:|#|/)", target, flags=re.I):
            return m.group(0)
        path, _, anchor = target.partition("#")
        new = os.path.relpath(os.path.normpath(here / path), there).replace(os.sep, "/")
        return m.group(1) + new + ("#" + anchor if anchor else "") + m.group(3)
    return _MD_LINK.sub(fix, text)


def instructor_lines(source: str) -> str:
    """A code cell of otter's autograder notebook as the instructor reads it: prompts dropped, markers removed."""
    out, in_prompt = [], False
    for line in source.split("\n"):
        stripped = line.strip()
        if stripped == _PROMPT_BEGIN:
            in_prompt = True
            continue
        if stripped == _PROMPT_END:
            in_prompt = False
            continue
        if in_prompt or _SOLUTION_LINE.match(line):
            continue
        out.append(_SOLUTION_SUFFIX.sub("", line))
    return "\n".join(out).strip("\n")


def _clear(cell: nbformat.NotebookNode) -> None:
    if cell.cell_type == "code":
        cell.outputs, cell.execution_count = [], None


def learner_version(student: nbformat.NotebookNode, source: Path) -> nbformat.NotebookNode:
    nb = copy.deepcopy(student)
    _otter_metadata(nb)
    cells = []
    for cell in nb.cells:
        if cell.cell_type == "code" and not cell.source.strip():
            continue          # a cell that held only instructor code
        tags = cell.metadata.get("tags", [])
        if _SOLUTION_TAG in tags:   # otter's name for a learner's answer cell (as its default mode writes it)
            tags[tags.index(_SOLUTION_TAG)] = _ANSWER_TAG
        _clear(cell)
        cells.append(cell)
    nb.cells = cells
    i, title = _title(nb)
    _, solutions = targets(source)
    nb.cells.insert(i + 1, _header(source, (
        f"*This notebook is generated from `course/{source.name}` by `make course`: to change the lab, edit that "
        f"source, not this file. Instructors: the same lab with every solution is "
        f"[{_short_title(title)} solutions](solutions/{solutions.name}).*")))
    return nb


def instructor_version(autograder: nbformat.NotebookNode, source: Path,
                       previous: nbformat.NotebookNode | None = None) -> nbformat.NotebookNode:
    nb = copy.deepcopy(autograder)
    _otter_metadata(nb)
    stored = {}
    if previous is not None:   # outputs of unchanged checked cells, as make checked-outputs stored them
        stored = {c.get("id"): c for c in previous.cells
                  if c.cell_type == "code" and c.source.lstrip().startswith(NBVAL) and c.get("outputs")}
    learner, _ = targets(source)
    cells = []
    for cell in nb.cells:
        tags = cell.metadata.get("tags", [])
        if _ANSWER_TAG in tags:
            continue           # a learner-only cell (otter's prompt block)
        if _SOLUTION_TAG in tags:
            tags.remove(_SOLUTION_TAG)
            if not tags:
                cell.metadata.pop("tags")
        for key in ("editable", "deletable"):   # otter locks question cells for learners only
            cell.metadata.pop(key, None)
        if cell.cell_type == "code":
            cell.source = instructor_lines(cell.source)
            if not cell.source.strip():
                continue
            _clear(cell)
            old = stored.get(cell.get("id"))
            if old is not None and old.source == cell.source:
                cell.outputs, cell.execution_count = copy.deepcopy(old.outputs), old.execution_count
        elif cell.cell_type == "markdown":   # a MyST target belongs to the lab's page: the book would see it twice
            cell.source = _rebase_links(_TARGET.sub("", cell.source), LABS, SOLUTIONS).lstrip("\n")
        cells.append(cell)
    nb.cells = cells
    i, title = _title(nb)
    short = _short_title(title)
    nb.cells[i].source = nb.cells[i].source.replace(f"# {title}", f"# {short} · Solutions · 参考答案", 1)
    nb.cells.insert(i + 1, _header(source, (
        f"**For instructors.** [{title}](../{learner.name}) with every solution in place: each answer is handed "
        f"to the same check as the lab, and every check cell asserts that it passes. Generated from "
        f"`course/{source.name}` by `make course` (as is the lab itself): edit that source, not this file.")))
    return nb


def generate(source: Path, workdir: Path | None = None) -> dict[Path, nbformat.NotebookNode]:
    """The learner and instructor notebooks of ``source``: {path: notebook}."""
    check_source(nbformat.read(source, as_version=4), f"course/{source.name}")
    learner_path, instructor_path = targets(source)
    previous = nbformat.read(instructor_path, as_version=4) if instructor_path.exists() else None
    with tempfile.TemporaryDirectory() as tmp:
        student, autograder, _ = assign(source, Path(workdir or tmp) / lab_id(source))
    return {learner_path: learner_version(student, source),
            instructor_path: instructor_version(autograder, source, previous)}


def cells_signature(nb: nbformat.NotebookNode) -> list[tuple]:
    """What must match between a committed generated notebook and a fresh one: each cell's type, source, tags."""
    return [(c.cell_type, c.source, tuple(c.get("metadata", {}).get("tags", []))) for c in nb.cells] + \
        [("metadata.otter", json.dumps(nb.metadata.get("otter", {}), sort_keys=True), ())]


def stale(paths: dict[Path, nbformat.NotebookNode]) -> list[Path]:
    """Which of ``paths`` differ (or are missing) on disk."""
    out = []
    for path, nb in paths.items():
        if not path.exists() or cells_signature(nbformat.read(path, as_version=4)) != cells_signature(nb):
            out.append(path)
    return out


def _write(path: Path, nb: nbformat.NotebookNode) -> bool:
    text = nbformat.writes(nb) + "\n"
    if path.exists() and path.read_text() == text:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return True


# ----------------------------------------------------------------------------- chapters and drafts
def check_cells(nb: nbformat.NotebookNode) -> list[tuple[int, str, str, str]]:
    """(cell index, exercise key, answer variable, name of the exercises dict) of every quick-check call
    ``ex["K"].check(VAR)`` in a code cell."""
    found = []
    for i, c in enumerate(nb.cells):
        if c.cell_type == "code":
            for m in CHECK_CALL.finditer(c.source):
                found.append((i, m.group(2), m.group(3), m.group(1)))
    return found


def test_source(key: str, var: str, exercises: str = "ex") -> str:
    """The otter test of one quick check: the same check the learner ran, its printed verdict as the message."""
    fn = "test_" + re.sub(r"\W", "_", key)
    return (f"def {fn}({exercises}, {var}):\n"
            f"    from labkit.grading import outcome\n"
            f"    passed, message = outcome({exercises}, {json.dumps(key)}, {var})\n"
            f"    assert passed, message")


def _raw(text: str, cid: str) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_raw_cell(text)
    cell.id = cid
    return cell


def question_cells(key: str, var: str, points: int = 1, lock: bool = True, exercises: str = "ex") -> tuple[list, list]:
    """The raw cells that open and close one question around its cells: (before, after)."""
    slug = re.sub(r"\W", "-", key)
    before = [_raw(f"# BEGIN QUESTION\nname: {json.dumps(key)}\npoints: {points}\ncheck_cell: false", f"q-{slug}")]
    if not lock:
        before.append(_raw("# BEGIN SOLUTION", f"s-{slug}"))
    test = nbformat.v4.new_code_cell(test_source(key, var, exercises))
    test.id = f"t-{slug}"
    after = ([_raw("# END SOLUTION", f"se-{slug}")] if not lock else []) + \
        [_raw("# BEGIN TESTS", f"tb-{slug}"), test, _raw("# END TESTS", f"te-{slug}"), _raw("# END QUESTION", f"qe-{slug}")]
    return before, after


def assignment_config(name: str) -> nbformat.NotebookNode:
    return _raw("# ASSIGNMENT CONFIG\n"
                f"name: {name}\n"
                "init_cell: false            # labkit's checks print the verdicts; no otter.Notebook in the lab\n"
                "check_all_cell: false\n"
                "export_cell: false\n"
                "run_tests: false            # tests/test_notebooks.py runs the instructor version\n"
                "strip_solutions_from_all_cells: true\n"
                "generate: true              # the autograder zip for otter run (scripts/grade.py)\n"
                "tests:\n"
                "  files: false\n"
                "  ok_format: false          # exception-based tests: one labkit check each", "assignment-config")


def chapter_master(chapter: nbformat.NotebookNode, name: str) -> nbformat.NotebookNode:
    """A chapter notebook as an otter source: each quick-check cell becomes a question whose test is its check."""
    nb = copy.deepcopy(chapter)
    cells = [assignment_config(name)]
    checks, seen = {}, set()
    for i, key, var, exercises in check_cells(nb):
        if key in seen:
            raise ValueError(f"{name}: exercise {key} is checked in two cells; an otter question needs one")
        seen.add(key)
        checks.setdefault(i, []).append((key, var, exercises))
    for i, cell in enumerate(nb.cells):
        if i not in checks:
            cells.append(cell)
            continue
        # one question per check call: the cell goes in the first; a further check of the same cell is a
        # question with a test only (otter runs it right after the cell too)
        (key, var, exercises), *more = checks[i]
        before, after = question_cells(key, var, lock=False, exercises=exercises)
        cells += before + [cell] + after
        for key, var, exercises in more:
            before, after = question_cells(key, var, exercises=exercises)
            cells += before + after
    nb.cells = cells
    return nb


def draft(learner: Path) -> nbformat.NotebookNode:
    """A first source for a hand-kept lab: its learner notebook, each check cell wrapped in a question with a
    test, its prompt lines marked, and an empty instructor slot (``# BEGIN SOLUTION NO PROMPT``) to fill in."""
    nb = nbformat.read(learner, as_version=4)
    name = learner.stem.split("-")[0]
    checks = {}
    for i, key, var, exercises in check_cells(nb):
        checks.setdefault(i, []).append((key, var, exercises))
    cells = [assignment_config(name)]
    for i, cell in enumerate(nb.cells):
        if i not in checks:
            cells.append(cell)
            continue
        key, var, exercises = checks[i][0]
        answers_here = re.search(rf"^\s*{re.escape(var)}\s*=|^\s*def {re.escape(var)}\b", cell.source, flags=re.M)
        before, after = question_cells(key, var, lock=not answers_here, exercises=exercises)
        lines = cell.source.rstrip("\n")
        asserts = "\n".join(f"assert {d}[{json.dumps(k)}].check({v})" for k, v, d in checks[i])
        cell.source = (f"{_PROMPT_BEGIN}\n{lines}\n{_PROMPT_END}\n# BEGIN SOLUTION NO PROMPT\n"
                       f"# (the instructor's answer goes here)\n{asserts}\n# END SOLUTION")
        cells += before + [cell] + after
        for key, var, exercises in checks[i][1:]:
            before, after = question_cells(key, var, exercises=exercises)
            cells += before + after
    nb.cells = cells
    return nb


# ----------------------------------------------------------------------------- command line
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="exit 1 if a generated notebook is out of date")
    parser.add_argument("--draft", metavar="LAB_NOTEBOOK", help="write a first course/ source for a hand-kept lab")
    parser.add_argument("labs", nargs="*", help="lab ids (e.g. lab04b); default: every source in course/")
    args = parser.parse_args(argv)
    if args.draft:
        learner = Path(args.draft)
        out = SOURCES / f"{learner.stem}.ipynb"
        if out.exists():
            print(f"{out.relative_to(ROOT)} exists; not overwritten", file=sys.stderr)
            return 1
        SOURCES.mkdir(exist_ok=True)
        nbformat.write(draft(learner), out)
        print(f"wrote {out.relative_to(ROOT)}: fill in each '# BEGIN SOLUTION NO PROMPT' slot (see book/teaching.md)")
        return 0
    chosen = [source_of(lab) for lab in args.labs] if args.labs else sources()
    bad = 0
    for source in chosen:
        out = generate(source)
        if args.check:
            for path in stale(out):
                print(f"out of date: {path.relative_to(ROOT)} (run make course)")
                bad += 1
            continue
        for path, nb in out.items():
            changed = _write(path, nb)
            lost = [c.get("id") for c in nb.cells if c.cell_type == "code"
                    and c.source.lstrip().startswith(NBVAL) and not c.get("outputs")]
            note = f"; {len(lost)} checked cell(s) without stored output: run make checked-outputs" if lost else ""
            print(f"{'wrote' if changed else 'unchanged'} {path.relative_to(ROOT)}{note}")
    if args.check and not bad:
        print(f"{2 * len(chosen)} generated notebooks are up to date with course/")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
