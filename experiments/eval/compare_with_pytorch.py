#!/usr/bin/python3
"""Compares asrc's greedy hypotheses with the PyTorch recipe's on the same utterances.

  /usr/bin/python3 experiments/eval/compare_with_pytorch.py ASRC_EVAL.json \
      [--pytorch experiments/teacher/results/cathy_test_greedy.jsonl] [--show 10]

ASRC_EVAL.json: `asrc eval --json` output (per_utterance id/reference/hypothesis per mode).
The PyTorch file has one JSON object per line: id, reference, hyp_streaming, hyp_lookahead.
Per mode prints: utterances compared, identical hypotheses (after whitespace collapsing; also
after the WER normalization), both WERs computed here with the recipe's own normalization and
Levenshtein (experiments/teacher/textnorm.py), and their difference. Exit code 1 when a goal is
missed (>= 99% identical, |WER difference| <= 0.1 absolute) or ids do not match.
"""
import argparse
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "teacher"))
from textnorm import normalize, wer  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("asrc_json")
    ap.add_argument("--pytorch", default=os.path.join(HERE, "..", "teacher", "results", "cathy_test_greedy.jsonl"))
    ap.add_argument("--show", type=int, default=10, help="print up to this many differing utterances per mode")
    ap.add_argument("--out", help="also write the comparison as JSON here")
    args = ap.parse_args()
    ours = json.load(open(args.asrc_json))
    theirs = {}
    for line in open(args.pytorch, encoding="utf-8"):
        if line.strip():
            d = json.loads(line)
            theirs[d["id"]] = d
    ok = True
    summary = {}
    for mode, key in (("streaming", "hyp_streaming"), ("lookahead", "hyp_lookahead")):
        if mode not in ours:
            print("%s: not in %s" % (mode, args.asrc_json))
            continue
        utts = [u for u in ours[mode]["per_utterance"] if "error" not in u]
        failed = [u for u in ours[mode]["per_utterance"] if "error" in u]
        missing = [u["id"] for u in utts if u["id"] not in theirs]
        if missing:
            print("%s: %d ids not in the PyTorch file, e.g. %s" % (mode, len(missing), missing[:3]))
            ok = False
        pairs = [(u, theirs[u["id"]]) for u in utts if u["id"] in theirs]
        refs = [t["reference"] for _, t in pairs]
        h_ours = [u["hypothesis"] for u, _ in pairs]
        h_theirs = [t[key] for _, t in pairs]
        same = sum(" ".join(a.split()) == " ".join(b.split()) for a, b in zip(h_ours, h_theirs))
        same_norm = sum(normalize(a) == normalize(b) for a, b in zip(h_ours, h_theirs))
        w_ours, w_theirs = wer(refs, h_ours), wer(refs, h_theirs)
        n = len(pairs)
        frac = 100.0 * same / max(1, n)
        print("%-9s %4d utts (%d failed in asrc, %d PyTorch-only)  identical %d = %.2f%% (normalized %d)  "
              "WER asrc %.2f  PyTorch %.2f  diff %+.2f  (asrc's own report: %.2f)" % (
                  mode, n, len(failed), len(set(theirs) - {u["id"] for u in utts}), same, frac, same_norm,
                  w_ours, w_theirs, w_ours - w_theirs, ours[mode]["wer"]))
        shown = 0
        for (u, t), a, b in zip(pairs, h_ours, h_theirs):
            if " ".join(a.split()) != " ".join(b.split()) and shown < args.show:
                print("   %s\n     asrc:    %s\n     pytorch: %s" % (u["id"], a, b))
                shown += 1
        summary[mode] = {"utterances": n, "failed_in_asrc": len(failed), "identical": same,
                         "identical_percent": round(frac, 2), "identical_normalized": same_norm,
                         "wer_asrc": round(w_ours, 3), "wer_pytorch": round(w_theirs, 3),
                         "wer_diff": round(w_ours - w_theirs, 3)}
        if frac < 99.0 or abs(w_ours - w_theirs) > 0.1 or failed:
            ok = False
    if args.out:
        with open(args.out, "w") as f:
            json.dump(summary, f, indent=1)
    print("goals (>= 99%% identical, |WER diff| <= 0.1): %s" % ("met" if ok else "NOT met"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
