"""labkit.show_source: the header names the real file and lines; html is highlighted; text keeps the header."""
import re
from pathlib import Path

import pytest

import labkit
from labkit import lora, optim
from labkit.nn import GPT
from labkit.source import Source

ROOT = Path(labkit.__file__).resolve().parent.parent


def _parts(text):
    """[(path, first, last, body)] from the text/plain form."""
    found = re.findall(r"^# (\S+):(\d+)-(\d+)\n(.*?)(?=^# \S+:\d+-\d+\n|\Z)", text, flags=re.S | re.M)
    return [(p, int(a), int(b), body) for p, a, b, body in found]


@pytest.mark.parametrize("obj, first_line", [
    (lora.LoRALinear, "class LoRALinear(nn.Module):"),
    (lora.inject_lora, "def inject_lora("),
    (optim.SGD.step, "@torch.no_grad()"),   # a decorated method: from its decorator, dedented
    (GPT.generate, "@torch.no_grad()"),
    (labkit.source, '"""Show the code'),     # a module: the whole file
])
def test_header_names_the_real_file_and_lines(obj, first_line):
    (path, a, b, body), = _parts(repr(labkit.show_source(obj)))
    lines = (ROOT / path).read_text().splitlines()
    assert path.startswith("labkit/") and path.endswith(".py")
    assert 1 <= a <= b <= len(lines)
    shown = body.rstrip("\n").splitlines()
    assert len(shown) == b - a + 1
    assert [s.strip() for s in shown] == [s.strip() for s in lines[a - 1:b]]  # the same lines, dedented
    assert shown[0].startswith(first_line)
    assert not shown[0].startswith(" ")


def test_several_objects_one_call_and_the_text_form_keeps_each_header():
    src = labkit.show_source(lora.LoRALinear, lora.merge_lora)
    text = repr(src)
    assert [p for p, *_ in _parts(text)] == ["labkit/lora.py", "labkit/lora.py"]
    assert text.startswith("# labkit/lora.py:")
    assert "def merge_lora" in text and "class LoRALinear" in text


def test_html_is_highlighted_and_headed():
    src = labkit.show_source(lora.LoRALinear, lora.merge_lora)
    html = src._repr_html_()
    (path, a, b, _), _ = _parts(repr(src))
    assert html.count('class="labkit-source"') == 2
    assert f"{path}:{a}-{b}" in html
    assert re.search(r'<span style="color: #[0-9A-Fa-f]+; font-weight: bold">class</span>', html)  # a keyword, styled
    assert "&lt;" not in html.split("LoRALinear", 1)[0]  # the header is text, not escaped code
    assert "<script" not in html


def test_a_property_shows_its_getter():
    from labkit.embeddings import SkipGramNS
    text = repr(labkit.show_source(SkipGramNS.embeddings))
    assert text.startswith("# labkit/embeddings.py:") and "def embeddings" in text


@pytest.mark.parametrize("obj", [len, print, object(), 3])
def test_refuses_what_has_no_python_source(obj):
    with pytest.raises(TypeError, match="no Python source.*builtins"):
        labkit.show_source(obj)


def test_needs_an_object():
    with pytest.raises(TypeError, match="at least one object"):
        Source()
