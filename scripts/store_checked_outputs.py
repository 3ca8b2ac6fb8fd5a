"""Run notebooks at the smoke profile and store the outputs of cells marked ``# NBVAL_CHECK_OUTPUT``.

Notebooks are committed without outputs, except these cells: ``pytest --nbval-lax`` (in ``make test``)
re-runs each notebook and compares exactly these outputs with the stored ones.

    python -m scripts.store_checked_outputs book/ch01-background.ipynb ...
"""
from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

MARK = "# NBVAL_CHECK_OUTPUT"


def store(path: Path) -> int:
    source = nbformat.read(path, as_version=4)
    executed = nbformat.read(path, as_version=4)
    NotebookClient(executed, kernel_name="python3", timeout=600,
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    n = 0
    for cell, done in zip(source.cells, executed.cells):
        if cell.cell_type != "code":
            continue
        if cell.source.lstrip().startswith(MARK):
            cell.outputs = [o for o in done.outputs if o.get("output_type") != "display_data" or "text/plain" in o.get("data", {})]
            cell.execution_count = done.execution_count
            n += 1
        else:
            cell.outputs, cell.execution_count = [], None
    nbformat.write(source, path)
    return n


def main(paths: list[str]) -> None:
    for p in paths:
        print(f"{p}: stored the output of {store(Path(p))} checked cell(s)")


if __name__ == "__main__":
    main(sys.argv[1:])
