"""What every exercise test asks of a check: it refuses wrong answers, and its hint does not write the answer out."""


def refuses(ex, *answers) -> bool:
    """Whether exercise ``ex`` refuses every one of ``answers``."""
    return not any(ex.check(a) for a in answers)


def states_answer(hint: str, value) -> bool:
    """Whether ``hint`` writes out ``value``: a number in the usual forms, or a word (any case)."""
    if isinstance(value, str):
        return value.lower() in hint.lower()
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return str(value) in hint
    forms = {str(value), f"{value:,}", f"{value:g}", f"{value:.1f}", f"{value:.2f}", f"{value:.3g}", f"{value:.4g}"}
    return any(f in hint for f in forms)
