"""Classify texts with a saved pipeline from the command line.

    python -m labkit.classify MODEL_DIR reviews.txt        # one text per line
    python -m labkit.classify MODEL_DIR < reviews.txt      # or from stdin ("-" or no file)
    python -m labkit.classify MODEL_DIR --text "the zipper broke on day two"
    labkit-classify MODEL_DIR reviews.txt --json           # JSON lines: label, probability, probs, logits

Each output line is ``label<TAB>probability<TAB>text`` (or one JSON object).
Bad input (a missing model folder, an empty line) stops with a one-line message
and a non-zero exit code; nothing is printed for any text until all are read.
"""
from __future__ import annotations

import argparse
import json
import sys

PROG = "labkit-classify"


class InputError(Exception):
    """Bad input from the user: reported as one line, exit code 2."""


def read_texts(files: list[str], text: str | None) -> list[str]:
    """All texts to classify, in order; an empty line is an error naming its file and line number."""
    texts: list[str] = []
    if text is not None:
        if not text.strip():
            raise InputError("--text is empty: give at least one word")
        texts.append(text)
    sources = files or ([] if text is not None else ["-"])
    for name in sources:
        try:
            if name == "-":
                lines, shown = sys.stdin.read().splitlines(), "<stdin>"
            else:
                with open(name, encoding="utf-8") as f:
                    lines, shown = f.read().splitlines(), name
        except FileNotFoundError:
            raise InputError(f"input file {name!r} does not exist") from None
        except (UnicodeDecodeError, IsADirectoryError) as e:
            raise InputError(f"cannot read input file {name!r} as UTF-8 text: {e}") from None
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                raise InputError(f"{shown}, line {number}: empty line (give one non-empty text per line)")
            texts.append(line)
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

    try:
        texts = read_texts(args.files, args.text)
        from .pipeline import read_config
        read_config(args.model_dir)          # fail fast (and cheaply) on a bad model folder
    except (InputError, FileNotFoundError, ValueError) as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2

    from transformers.utils import logging as hf_logging
    hf_logging.set_verbosity_error()
    from .pipeline import load_pipeline
    clf = load_pipeline(args.model_dir, batch_size=args.batch_size)
    logits = clf.predict_logits(texts)
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
