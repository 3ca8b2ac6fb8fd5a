"""One module per lab (``lab02``, ``lab03a``, ...): its panel, its helpers and its checked exercises.

The lab notebook and its solutions notebook both import them, so neither keeps a copy of the code:
the solutions notebook fills in the answers and asserts that every check passes.
"""
