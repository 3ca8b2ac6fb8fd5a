"""The course kit: one source per lab (course/, otter-grader's format), the generated learner and instructor
notebooks kept up to date with it, and the autograder (scripts/grade.py, otter run) on good and bad submissions.

The grading tests use Lab 4b (NumPy only, seconds per run) at the smoke profile and chapter 1.
"""
import copy
import csv
import json
import re

import nbformat
import pytest

from scripts import course, grade

SOURCES = course.sources()
IDS = [course.lab_id(s) for s in SOURCES]


def test_there_are_sources():
    assert {"lab02", "lab03a", "lab03b", "lab03c", "lab04a", "lab04b", "lab05", "lab06", "lab07", "lab07b", "lab08"} <= set(IDS), IDS


def test_no_lab_is_a_hand_kept_pair():
    """Every notebook in labs/ and labs/solutions/ is generated from a source in course/."""
    generated = {path for s in SOURCES for path in course.targets(s)}
    kept = sorted(str(p.relative_to(course.ROOT)) for folder in (course.LABS, course.SOLUTIONS)
                  for p in folder.glob("*.ipynb") if p not in generated)
    assert not kept, f"{kept} have no source in course/: convert them (python -m scripts.course --draft, book/teaching.md)"


# ----------------------------------------------------------------------------- generation
@pytest.fixture(scope="module")
def generated():
    return {course.lab_id(s): course.generate(s) for s in SOURCES}


@pytest.mark.parametrize("lab", IDS)
def test_committed_notebooks_are_up_to_date_with_their_source(generated, lab):
    stale = [str(p.relative_to(course.ROOT)) for p in course.stale(generated[lab])]
    assert not stale, f"{stale} differ from course/: run make course (never edit a generated notebook by hand)"


def test_a_hand_edit_of_a_generated_notebook_is_detected(generated, tmp_path, monkeypatch):
    (learner, nb), = [(p, n) for p, n in generated["lab04b"].items() if p.parent == course.LABS]
    edited = copy.deepcopy(nb)
    edited.cells[-1].source += "\nan edit by hand"
    path = tmp_path / learner.name
    nbformat.write(edited, path)
    assert course.stale({path: nb}) == [path]
    nbformat.write(nb, path)
    assert course.stale({path: nb}) == []


def _questions(source_nb):
    """{question name: (test source, [cell sources inside the question])} of an otter source."""
    out, name, inside = {}, None, []
    for cell in source_nb.cells:
        text = cell.source
        if cell.cell_type == "raw" and text.startswith("# BEGIN QUESTION"):
            name, inside = json.loads(re.search(r"name:\s*(.+)", text).group(1)), []
        elif cell.cell_type == "raw" and text.startswith("# END QUESTION"):
            out[name] = inside
            name = None
        elif name is not None:
            inside.append(text)
    return out


@pytest.mark.parametrize("source", SOURCES, ids=IDS)
def test_every_check_of_the_lab_is_a_question_whose_test_runs_that_check(source, generated):
    nb = nbformat.read(source, as_version=4)
    questions = _questions(nb)
    learner, instructor = (generated[course.lab_id(source)][p] for p in course.targets(source))
    learner_checks = {key: (var, exercises) for _, key, var, exercises in course.check_cells(learner)}
    assert set(questions) == set(learner_checks), "every exercise checked in the lab is graded, and only those"
    for key, texts in questions.items():
        tests = [t for t in texts if t.startswith("def test_")]
        assert tests == [course.test_source(key, *learner_checks[key])], key
    # the instructor asserts each check; the learner's notebook runs its checks without asserting
    asserted = {m.group(1) for c in instructor.cells if c.cell_type == "code"
                for m in re.finditer(r'assert ex\["([^"]+)"\]\.check\(', c.source)}
    assert set(questions) <= asserted
    assert not any("assert ex[" in c.source for c in learner.cells)


@pytest.mark.parametrize("source", SOURCES, ids=IDS)
def test_generated_notebooks_carry_no_otter_markers_and_one_parameters_cell(source, generated):
    for path, nb in generated[course.lab_id(source)].items():
        code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
        assert not re.search(r"# ?(BEGIN|END) (SOLUTION|PROMPT)|# ?SOLUTION", code), path.name
        assert not [c for c in nb.cells if c.cell_type == "raw"], path.name
        assert sum("parameters" in c.metadata.get("tags", []) for c in nb.cells) == 1, path.name
        assert nb.cells[1].id == course.HEADER_ID and f"course/{source.name}" in nb.cells[1].source
        assert nb.metadata["otter"] == {"assignment_name": course.lab_id(source)}
    learner, _ = course.targets(source)
    assert not any(course.NBVAL in c.source for c in generated[course.lab_id(source)][learner].cells), \
        "checked outputs belong to the instructor version (the learner's notebook is stored without outputs)"


def test_checked_cells_keep_their_stored_outputs():
    for lab in ("lab02", "lab03c", "lab05"):
        _, instructor = course.targets(course.source_of(lab))
        checked = [c for c in nbformat.read(instructor, as_version=4).cells
                   if c.cell_type == "code" and c.source.startswith(course.NBVAL)]
        assert checked and all(c.outputs for c in checked), lab


def test_instructor_lines_drop_prompts_and_markers():
    cell = ("# NBVAL_CHECK_OUTPUT  # SOLUTION NO PROMPT\ndef f(x):\n    # BEGIN PROMPT\n    raise NotImplementedError\n"
            "    # END PROMPT\n    # BEGIN SOLUTION NO PROMPT\n    return 2 * x\n    # END SOLUTION\n"
            "# BEGIN PROMPT\nex[\"1\"].check(f);\n# END PROMPT\nassert ex[\"1\"].check(f)  # SOLUTION NO PROMPT")
    assert course.instructor_lines(cell) == ("# NBVAL_CHECK_OUTPUT\ndef f(x):\n    return 2 * x\n"
                                             "assert ex[\"1\"].check(f)")


def test_links_are_rebased_for_the_solutions_folder():
    text = "[4.4](../book/ch04-4-backprop.ipynb#sec), [lab](lab05-fix.ipynb), [web](https://x.org/a), [here](#top)"
    assert course._rebase_links(text, course.LABS, course.SOLUTIONS) == (
        "[4.4](../../book/ch04-4-backprop.ipynb#sec), [lab](../lab05-fix.ipynb), [web](https://x.org/a), [here](#top)")


def test_the_instructor_version_leaves_myst_targets_to_the_lab(tmp_path):
    nb = nbformat.read(course.source_of("lab04b"), as_version=4)
    title = next(c for c in nb.cells if c.cell_type == "markdown")
    title.source = "(errata-lab-target)=\n" + title.source
    source = tmp_path / "lab04b-backprop-by-hand.ipynb"
    nbformat.write(nb, source)
    student, autograder, _ = course.assign(source, tmp_path / "out")
    learner, instructor = course.learner_version(student, source), course.instructor_version(autograder, source)
    assert learner.cells[0].source.startswith("(errata-lab-target)=\n# Lab 4b")
    assert instructor.cells[0].source.startswith("# Lab 4b · Solutions")


def test_a_source_with_two_parameters_cells_or_a_stray_solution_comment_is_refused():
    nb = nbformat.read(course.source_of("lab04b"), as_version=4)
    twice = copy.deepcopy(nb)
    twice.cells.append(nbformat.v4.new_code_cell("profile = None", metadata={"tags": ["parameters"]}))
    with pytest.raises(ValueError, match="exactly one cell tagged 'parameters'"):
        course.check_source(twice, "twice")
    stray = copy.deepcopy(nb)
    stray.cells.append(nbformat.v4.new_code_cell("x = 1  # SOLUTIONS are in labs/solutions"))
    with pytest.raises(ValueError, match="reads as an otter solution marker"):
        course.check_source(stray, "stray")
    with pytest.raises(ValueError, match="lab='lab99'"):
        course.source_of("lab99")


def test_a_chapter_becomes_an_otter_assignment_with_one_question_per_quick_check(tmp_path):
    import zipfile

    chapter = nbformat.read(course.BOOK / "ch06-1a-nlp-entities-qa.ipynb", as_version=4)   # its dict is `exercises`
    master = tmp_path / "ch06-1a.ipynb"
    nbformat.write(course.chapter_master(chapter, "ch06-1a-nlp-entities-qa"), master)
    _, autograder, zip_path = course.assign(master, tmp_path / "dist")
    with zipfile.ZipFile(zip_path) as z:
        tests = {n: z.read(n).decode() for n in z.namelist() if n.startswith("tests/")}
    assert sorted(tests) == ["tests/6.1.1.py", "tests/6.1.2.py", "tests/6.1.3.py"]
    assert "def test_6_1_1(exercises, align):" in tests["tests/6.1.1.py"]
    assert [c.source for c in autograder.cells if c.cell_type == "code"] == \
        [c.source for c in chapter.cells if c.cell_type == "code"], "the chapter's code runs unchanged"
    twice = copy.deepcopy(chapter)
    twice.cells.append(nbformat.v4.new_code_cell('exercises["6.1.1"].check(align)'))
    with pytest.raises(ValueError, match="checked in two cells"):
        course.chapter_master(twice, "twice")


def test_a_draft_wraps_each_check_in_a_question_with_its_test(tmp_path):
    learner, _ = course.targets(course.source_of("lab05"))
    nb = course.draft(learner)
    assert nb.cells[0].source.startswith("# ASSIGNMENT CONFIG")
    questions = _questions(nb)
    assert list(questions) == [f"5.{i}" for i in range(1, 9)]
    assert all("# BEGIN SOLUTION NO PROMPT" in "\n".join(t) for t in questions.values())


# ----------------------------------------------------------------------------- grading: small parts
def test_identify_and_profile(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("my answers: 42")
    assert grade.identify(text)[2].startswith("not a notebook")
    broken = tmp_path / "broken.ipynb"
    broken.write_text("{ not json")
    assert grade.identify(broken)[2].startswith("not a readable notebook")
    other = tmp_path / "other.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import numpy")]), other)
    assert "not a notebook of this course" in grade.identify(other)[2]
    by_import = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("from labkit.labs import lab04b")])
    nbformat.write(by_import, other)
    assert grade.identify(other)[1:] == ("lab04b", "")
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("from labkit.labs import ch01")]), other)
    assert grade.identify(other)[1] == "ch01-background"
    ran = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("run = setup(profile)", outputs=[
        nbformat.v4.new_output("stream", name="stdout", text="profile=cpu · device=cpu · offline · seed=0\n")])])
    assert grade.learner_profile(ran, "smoke") == "cpu"
    assert grade.learner_profile(by_import, "smoke") == "smoke"


def test_the_learners_message_is_taken_out_of_otters_failure_text():
    otter = ("❌ Test case failed\nError at line 4 in test 4b.2:\n      assert passed, message\n"
             "AssertionError: ❌ Exercise 4b.2: not yet (tanh_backward). Hint: differentiate tanh")
    assert grade._message(otter) == "❌ Exercise 4b.2: not yet (tanh_backward). Hint: differentiate tanh"


def test_bad_arguments_are_refused(tmp_path):
    with pytest.raises(ValueError, match="SUBMISSIONS="):
        grade.grade(tmp_path / "missing", tmp_path / "out")
    with pytest.raises(ValueError, match="lab='lab99'"):
        grade.grade(tmp_path, tmp_path / "out", lab="lab99")
    with pytest.raises(ValueError, match="timeout"):
        grade.grade(tmp_path, tmp_path / "out", timeout=0)


def test_outcome_records_the_checks_verdict_and_never_raises():
    from labkit.exercises import Exercise
    from labkit.grading import outcome

    ex = {"1": Exercise("1", "one plus one?", expected=2, hint="count on your fingers")}
    assert outcome(ex, "1", 2) == (True, "✅ Exercise 1: correct.")
    passed, message = outcome(ex, "1", 3)
    assert not passed and "Hint: count on your fingers" in message
    assert outcome(ex, "1", None) == (False, "Exercise 1: not answered yet. one plus one?")
    assert not outcome(None, "1", 2)[0] and not outcome(ex, "2", 2)[0]


# ----------------------------------------------------------------------------- grading: whole submissions
def _lab04b(kind):
    learner, instructor = course.targets(course.source_of("lab04b"))
    return nbformat.read(learner if kind == "learner" else instructor, as_version=4)


def _insert_after_setup(nb, source):
    nb = copy.deepcopy(nb)
    i = next(i for i, c in enumerate(nb.cells) if "lab04b.exercises(" in c.source)
    nb.cells.insert(i + 1, nbformat.v4.new_code_cell(source))
    return nb


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    folder = tmp_path_factory.mktemp("submissions")
    nbformat.write(_lab04b("instructor"), folder / "instructor.ipynb")
    nbformat.write(_lab04b("learner"), folder / "unanswered.ipynb")
    wrong = _lab04b("instructor")   # every answer right but one, checked the way a learner checks
    for cell in wrong.cells:
        cell.source = "\n".join(l for l in cell.source.replace("assert ex[", "ex[").split("\n")
                                if not l.startswith("assert all("))
        if cell.source.startswith("def tanh_backward"):
            cell.source = "def tanh_backward(z, grad_out):\n    return grad_out * (1 - np.tanh(z))"
    nbformat.write(wrong, folder / "one-wrong.ipynb")
    nbformat.write(_insert_after_setup(_lab04b("instructor"), "raise ValueError('a bug of the learner')"),
                   folder / "raises.ipynb")
    nbformat.write(_insert_after_setup(_lab04b("instructor"), "import urllib.request\n"
                                       "urllib.request.urlopen('http://example.com', timeout=5)"),
                   folder / "network.ipynb")
    (folder / "answers.txt").write_text("4b.1: sigma times one minus sigma")
    nbformat.write(nbformat.read(course.targets(course.source_of("lab05"))[0], as_version=4), folder / "lab05.ipynb")
    out = tmp_path_factory.mktemp("grades")
    rows = grade.grade(folder, out, lab="lab04b", timeout=300, jobs=2, profile="smoke")
    return {r.submission: r for r in rows}, out


def _points(row):
    return {e["exercise"]: e["points"] for e in row.exercises}


def test_the_instructor_version_scores_everything(graded):
    row = graded[0]["instructor.ipynb"]
    assert (row.status, row.reason, row.score, row.possible) == ("graded", "", 6, 6), row
    assert row.profile == "smoke"


def test_the_unanswered_learner_version_scores_nothing_and_says_not_done(graded):
    row = graded[0]["unanswered.ipynb"]
    assert (row.status, row.reason, row.score, row.possible) == ("graded", "", 0, 6), row
    assert all("not implemented yet" in e["message"] for e in row.exercises)


def test_one_wrong_answer_loses_exactly_that_exercises_points_and_shows_its_hint(graded):
    row = graded[0]["one-wrong.ipynb"]
    assert row.status == "graded" and row.reason == "", row
    assert _points(row) == {f"4b.{i}": (0.0 if i == 2 else 1.0) for i in range(1, 7)}
    message = next(e["message"] for e in row.exercises if e["exercise"] == "4b.2")
    assert "❌ Exercise 4b.2" in message and "Hint:" in message


def test_a_notebook_that_raises_is_graded_on_what_ran_and_says_why(graded):
    row = graded[0]["raises.ipynb"]
    assert row.status == "graded" and row.score == 6, row
    assert "raised ValueError: a bug of the learner" in row.reason


def test_a_notebook_that_tries_the_network_is_stopped_and_says_so(graded):
    row = graded[0]["network.ipynb"]
    assert row.status == "graded" and row.reason.startswith("tried to reach the network (blocked)"), row


def test_a_file_that_is_not_a_notebook_and_a_notebook_of_another_lab_get_a_row_with_the_reason(graded):
    rows = graded[0]
    assert rows["answers.txt"].status == "not graded" and rows["answers.txt"].reason.startswith("not a notebook")
    assert (rows["lab05.ipynb"].status, rows["lab05.ipynb"].reason) == ("not graded", "a notebook of lab05, not lab04b")


def test_the_score_tables(graded):
    rows, out = graded
    with (out / "scores.csv").open() as f:
        table = {r["submission"]: r for r in csv.DictReader(f)}
    assert set(table) == set(rows)
    assert table["instructor.ipynb"]["percent"] == "100.0" and table["unanswered.ipynb"]["percent"] == "0.0"
    assert table["one-wrong.ipynb"]["4b.2"] == "0" and table["one-wrong.ipynb"]["4b.1"] == "1"
    assert table["answers.txt"]["status"] == "not graded"
    with (out / "feedback.csv").open() as f:
        feedback = list(csv.DictReader(f))
    hint = [r for r in feedback if r["submission"] == "one-wrong.ipynb" and r["exercise"] == "4b.2"]
    assert hint and hint[0]["passed"] == "no" and "Hint:" in hint[0]["message"]
    print("\n" + (out / "scores.csv").read_text())


def test_a_notebook_that_loops_forever_is_stopped_at_the_time_limit(tmp_path):
    folder = tmp_path / "subs"
    folder.mkdir()
    nbformat.write(_insert_after_setup(_lab04b("learner"), "while True:\n    pass"), folder / "loops.ipynb")
    rows = grade.grade(folder, tmp_path / "out", timeout=20, profile="smoke")
    assert len(rows) == 1 and rows[0].status == "not graded" and rows[0].reason.startswith("time limit"), rows


def test_a_chapter_is_graded_by_its_quick_checks(tmp_path):
    """Chapter 1's three quick checks: two answered right (computed with the chapter's own functions), one with
    the naive answer (15 % of the tokens, forgetting that only 80 % of the chosen ones become [MASK])."""
    chapter = nbformat.read(course.BOOK / "ch01-background.ipynb", as_version=4)
    answers = {"answer_1_1": "[ch01.profile_in(*s) for s in ch01.SITUATIONS]", "answer_1_2": "2000 * 0.15",
               "answer_1_3": "ch01.weights_mb()"}
    answered = copy.deepcopy(chapter)
    for cell in answered.cells:
        for var, value in answers.items():
            cell.source = cell.source.replace(f"{var} = None", f"{var} = {value}")
    folder = tmp_path / "subs"
    folder.mkdir()
    nbformat.write(answered, folder / "ch01-answered.ipynb")
    rows = grade.grade(folder, tmp_path / "out", timeout=300, profile="smoke")
    row = rows[0]
    assert (row.assignment, row.status) == ("ch01-background", "graded"), row
    assert _points(row) == {"1.1": 1.0, "1.2": 0.0, "1.3": 1.0}, row
    assert "Hint:" in next(e["message"] for e in row.exercises if e["exercise"] == "1.2")
