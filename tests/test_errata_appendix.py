"""The errata appendix links every correction to the cell that makes it: each {ref} target exists in a page."""
import json
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parent.parent
APPENDIX = ROOT / "book" / "appendix-errata.md"


def _targets() -> dict[str, str]:
    """MyST targets ``(label)=`` in the book's pages and labs: label -> page."""
    found = {}
    for path in [*ROOT.glob("book/*.md"), *ROOT.glob("book/*.ipynb"), *ROOT.glob("labs/*.ipynb")]:
        if path.suffix == ".ipynb":
            text = "\n".join("".join(c["source"]) for c in json.loads(path.read_text())["cells"]
                             if c["cell_type"] == "markdown")
        else:
            text = path.read_text()
        for label in re.findall(r"^\(([\w-]+)\)=\s*$", text, re.M):
            assert label not in found, f"target {label} defined twice: {found[label]} and {path.name}"
            found[label] = path.name
    return found


def test_every_link_of_the_errata_appendix_has_its_target():
    links = re.findall(r"\{ref\}`[^`<]*<([\w-]+)>`", APPENDIX.read_text())
    assert len(links) >= 50, len(links)
    missing = sorted(set(links) - set(_targets()))
    assert not missing, f"the errata appendix links to targets no page defines: {missing}"


def test_every_errata_target_in_the_book_is_listed_in_the_appendix():
    linked = set(re.findall(r"<([\w-]+)>`", APPENDIX.read_text()))
    unlisted = sorted(label for label in _targets() if label.startswith("errata-") and label not in linked)
    assert not unlisted, f"cells that correct the article but are missing from the appendix: {unlisted}"
