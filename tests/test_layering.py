"""The package's layers: models (labkit.nn) import nothing from data (labkit.data), at module or function level."""
import ast
from pathlib import Path

import labkit

NN = Path(labkit.__file__).parent / "nn"


def _imports(source: str, package: str = "labkit.nn") -> list[str]:
    """Every module an ``import`` or ``from ... import`` anywhere in ``source`` names, made absolute."""
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            parts = package.split(".")
            base = parts[: len(parts) - node.level + 1] if node.level else []
            mod = ".".join(base + ([node.module] if node.module else []))
            out += [mod] + [f"{mod}.{a.name}" for a in node.names]
    return out


def test_relative_and_function_level_imports_are_seen():
    names = _imports("def f():\n    from ..data.vocab import Vocab\nfrom .attention import causal_mask\n"
                     "import labkit.data.corpus\n")
    assert {"labkit.data.vocab", "labkit.nn.attention", "labkit.data.corpus"} <= set(names)


def test_nn_imports_nothing_from_data():
    files = sorted(NN.glob("*.py"))
    assert len(files) >= 5
    offenders = {p.name: [m for m in _imports(p.read_text()) if m == "labkit.data" or m.startswith("labkit.data.")]
                 for p in files}
    assert not {k: v for k, v in offenders.items() if v}, offenders
