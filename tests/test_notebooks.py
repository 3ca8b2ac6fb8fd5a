"""Every notebook under book/ and labs/ runs, top to bottom, at the smoke profile, offline.

One test per notebook, found by globbing, so a new notebook needs no edit here.
The executed copy goes to the test's temporary folder; the wall time is printed
(``make bench`` reports timings; tests do not assert them).
"""
import json
import os
import pathlib
import shutil
import time

import papermill as pm
import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted(p for d in ("book", "labs") for p in (ROOT / d).rglob("*.ipynb")
                   if ".ipynb_checkpoints" not in p.parts and "_build" not in p.parts)


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 3, NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[str(p.relative_to(ROOT)) for p in NOTEBOOKS])
def test_notebook_runs_at_smoke_profile(path, tmp_path):
    cells = json.loads(path.read_text())["cells"]
    tagged = [c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1 and "profile" in "".join(tagged[0]["source"]), \
        f"{path.name}: needs exactly one cell tagged 'parameters' that sets profile"
    start = time.perf_counter()
    out = tmp_path / path.name
    pm.execute_notebook(str(path), str(out), parameters={"profile": "smoke"}, kernel_name="python3",
                        cwd=str(path.parent), progress_bar=False, log_output=False)
    seconds = time.perf_counter() - start
    executed = json.loads(out.read_text())
    errors = [o for c in executed["cells"] for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    keep = os.environ.get("LABKIT_KEEP_EXECUTED")   # `make e2e` builds its smoke book from these executed copies
    if keep:
        dest = pathlib.Path(keep) / path.relative_to(ROOT)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(out, dest)
    print(f"\n{path.relative_to(ROOT)}: {seconds:.1f} s at the smoke profile")
