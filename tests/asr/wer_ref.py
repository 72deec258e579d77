"""Independent WER reference for tests/asr/wer_test.cc: reads TSV lines "ref<TAB>hyp" (already
normalized), prints per line "ref_words errors" using a plain Levenshtein over words and the same
over characters: "ref_words word_errors ref_chars char_errors"."""
import sys


def lev(a, b):
    d = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(len(a) + 1):
        d[i][0] = i
    for j in range(len(b) + 1):
        d[0][j] = j
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] != b[j - 1]))
    return d[len(a)][len(b)]


for line in open(sys.argv[1], encoding="utf-8"):
    line = line.rstrip("\n")
    ref, hyp = line.split("\t")
    print(len(ref.split()), lev(ref.split(), hyp.split()), len(ref), lev(list(ref), list(hyp)))
