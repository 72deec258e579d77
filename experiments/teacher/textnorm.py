"""Text normalization used for training targets and for WER: lowercase, strip punctuation except
apostrophes (hyphens become spaces), collapse whitespace."""
import re

_keep = re.compile(r"[^a-z' ]+")


def normalize(text: str) -> str:
    t = text.lower().replace("-", " ")
    t = _keep.sub(" ", t)
    t = " ".join(w.strip("'") for w in t.split())
    return " ".join(t.split())
