"""Classify texts with a saved pipeline from the command line.

    python -m labkit.classify MODEL_DIR reviews.txt        # one text per line
    python -m labkit.classify MODEL_DIR < reviews.txt      # or from stdin ("-" or no file)
    python -m labkit.classify MODEL_DIR --text "the zipper broke on day two"
    labkit-classify MODEL_DIR reviews.txt --json           # JSON lines: label, probability, probs, logits

Each output line is ``label<TAB>probability<TAB>text`` (or one JSON object).
Bad input (a missing or damaged model folder, an empty line, a line of control
characters) stops with a one-line message on stderr and exit code 2; nothing is
printed for any text until every text is read, the model folder has passed its
checks and every prediction is a number.
"""
from __future__ import annotations

import argparse
import json
import sys
import unicodedata

PROG = "labkit-classify"


class InputError(Exception):
    """Bad input from the user: reported as one line, exit code 2."""


def control_characters(line: str) -> int:
    """How many characters of ``line`` are control or format characters (Unicode Cc, Cf), tab excepted."""
    return sum(ch != "\t" and unicodedata.category(ch) in ("Cc", "Cf") for ch in line)


def check_line(line: str, shown: str) -> str:
    """A text to classify: refused when empty, when it holds a NUL, or when over half of it is control characters."""
    if not line.strip():
        raise InputError(f"{shown}: empty line (give one non-empty text per line)")
    if "\x00" in line:
        raise InputError(f"{shown}: holds a NUL character (U+0000), which text never does: is the input "
                         f"binary, or UTF-16 (save it as UTF-8)?")
    n = control_characters(line)
    if 2 * n > len(line):
        first = next(ch for ch in line if ch != "\t" and unicodedata.category(ch) in ("Cc", "Cf"))
        raise InputError(f"{shown}: {n} of its {len(line)} characters are control characters (e.g. "
                         f"U+{ord(first):04X}): this is not text; is the input binary?")
    return line


def _read(name: str) -> tuple[str, str]:
    """(contents, the name shown in messages) of a file, or of stdin for '-'."""
    try:
        if name == "-":
            raw = sys.stdin.buffer.read() if hasattr(sys.stdin, "buffer") else sys.stdin.read().encode("utf-8")
            return raw.decode("utf-8-sig"), "<stdin>"
        with open(name, encoding="utf-8-sig") as f:
            return f.read(), name
    except FileNotFoundError:
        raise InputError(f"input file {name!r} does not exist") from None
    except IsADirectoryError:
        raise InputError(f"input file {name!r} is a directory, not a text file") from None
    except PermissionError:
        raise InputError(f"input file {name!r} cannot be read (permission denied)") from None
    except UnicodeDecodeError as e:
        shown = "<stdin>" if name == "-" else repr(name)
        raise InputError(f"input {shown} is not UTF-8 text (byte {e.start}: {e.reason}); save it as UTF-8") from None


def read_texts(files: list[str], text: str | None) -> list[str]:
    """All texts to classify, in order; a bad line is an error naming its file and line number."""
    texts: list[str] = []
    if text is not None:
        if not text.strip():
            raise InputError("--text is empty: give at least one word")
        texts.append(check_line(text, "--text"))
    sources = files or ([] if text is not None else ["-"])
    for name in sources:
        contents, shown = _read(name)
        for number, line in enumerate(contents.splitlines(), start=1):
            texts.append(check_line(line, f"{shown}, line {number}"))
    if not texts:
        raise InputError("no texts to classify: the input is empty")
    return texts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=PROG, description="Classify texts with a model saved by "
                                     "labkit.pipeline.save_pipeline (one text per line).")
    parser.add_argument("model_dir", help="folder written by save_pipeline")
    parser.add_argument("files", nargs="*", help="text files, one text per line; '-' or none: stdin")
    parser.add_argument("--text", help="classify this one text (files, if any, follow it)")
    parser.add_argument("--json", action="store_true", help="print JSON lines (with every probability and logit)")
    parser.add_argument("--batch-size", type=int, default=32, help="texts per forward pass (default 32)")
    args = parser.parse_args(argv)
    if args.batch_size < 1:
        parser.error(f"--batch-size must be >= 1; got {args.batch_size}")

    from .pipeline import ModelFolderError
    try:
        texts = read_texts(args.files, args.text)
        import torch
        from transformers.utils import logging as hf_logging
        hf_logging.set_verbosity_error()
        from .pipeline import load_pipeline
        clf = load_pipeline(args.model_dir, batch_size=args.batch_size)    # checks the whole folder first
        logits = clf.predict_logits(texts)
        broken = (~torch.isfinite(logits).all(-1)).nonzero().flatten().tolist()
        if broken:
            raise ModelFolderError(f"the model in {args.model_dir!r} computed NaN or infinite logits for "
                                   f"{len(broken)} of the {len(texts)} texts (first: text {broken[0] + 1}): "
                                   f"its weights do not make a working model")
    except (InputError, ModelFolderError) as e:
        print(f"{PROG}: error: {' '.join(str(e).split())}", file=sys.stderr)    # one line, whatever the message
        return 2

    probs = logits.softmax(-1)
    for text, z, p in zip(texts, logits.tolist(), probs.tolist()):
        k = max(range(len(p)), key=p.__getitem__)
        if args.json:
            print(json.dumps({"text": text, "label": clf.labels[k], "probability": p[k],
                              "probs": dict(zip(clf.labels, p)), "logits": z}, ensure_ascii=False))
        else:
            print(f"{clf.labels[k]}\t{p[k]:.4f}\t{text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
