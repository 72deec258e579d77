"""Text normalization used for training targets and for WER: lowercase, strip punctuation except
apostrophes (hyphens become spaces), collapse whitespace. Also the recipe's WER (word Levenshtein
over normalized text); no torch here, so scripts without PyTorch can import it."""
import re

_keep = re.compile(r"[^a-z' ]+")


def normalize(text: str) -> str:
    t = text.lower().replace("-", " ")
    t = _keep.sub(" ", t)
    t = " ".join(w.strip("'") for w in t.split())
    return " ".join(t.split())


def edit_distance(a, b):
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1]))
        prev = cur
    return prev[len(b)]


def wer(refs, hyps):
    e = n = 0
    for r, h in zip(refs, hyps):
        r, h = normalize(r).split(), normalize(h).split()
        e += edit_distance(r, h)
        n += len(r)
    return 100.0 * e / max(1, n)
