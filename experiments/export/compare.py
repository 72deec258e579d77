#!/usr/bin/env python3
"""Utterance-by-utterance comparison of sherpa-onnx (tests/cli/sherpa_decode.js) with `asrc eval`
in look-ahead mode (greedy), for experiments/export/run.sh. Prints a Markdown section.

usage: compare.py TITLE SHERPA.json ASRC_SOURCE.json ASRC_EXPORT.json [SHERPA_16BIT.json]
SHERPA_16BIT.json: sherpa-onnx fed 16-bit-scaled samples on an export without the front-end offset
(a diagnostic of the front-end difference).
"""
import json
import sys


def norm(s):
    return " ".join(s.lower().split())


def words(s):
    # WER normalization for all three columns alike: lowercase, punctuation but apostrophes removed
    return "".join(c if c.isalnum() or c in " '" else " " for c in s.lower()).split()


def wer(refs, hyps):
    errors = total = 0
    for ref, hyp in zip(refs, hyps):
        r, h = words(ref), words(hyp)
        d = list(range(len(h) + 1))
        for i in range(1, len(r) + 1):
            prev, d[0] = d[0], i
            for j in range(1, len(h) + 1):
                prev, d[j] = d[j], min(d[j] + 1, d[j - 1] + 1, prev + (r[i - 1] != h[j - 1]))
        errors += d[len(h)]
        total += len(r)
    return 100.0 * errors / max(1, total)


def asrc_hyps(path):
    la = json.load(open(path))["lookahead"]
    return la, {u["id"]: norm(u["hypothesis"]) for u in la["per_utterance"]}


def main():
    title, sherpa_path, src_path, exp_path = sys.argv[1:5]
    sh = json.load(open(sherpa_path))
    src, src_h = asrc_hyps(src_path)
    exp, exp_h = asrc_hyps(exp_path)
    utts = sh["utterances"]
    diff_src = [u for u in utts if norm(u["text"]) != src_h.get(u["id"])]
    diff_exp = [u for u in utts if norm(u["text"]) != exp_h.get(u["id"])]
    n = len(utts)
    refs = [u["reference"] for u in utts]
    w_sh = wer(refs, [u["text"] for u in utts])
    w_src = wer(refs, [src_h.get(u["id"], "") for u in utts])
    w_exp = wer(refs, [exp_h.get(u["id"], "") for u in utts])
    print(f"### {title}\n")
    print(f"{n} utterances, {sh['audio_s']:.1f} s of audio.\n")
    print("| decoder | same hypothesis as sherpa-onnx | WER % | RTF (wall) | RTF (CPU) |")
    print("|---|---|---|---|---|")
    print(f"| sherpa-onnx {sh.get('version', '1.13.8')} (node, export, greedy, 1 thread) | - | "
          f"{w_sh:.2f} | {sh['rtf']:.4f} | {sh['cpu_rtf']:.4f} |")
    print(f"| asrc eval, source bundle (cascade, look-ahead, greedy, --max-symbols 1) | {n - len(diff_src)}/{n} | "
          f"{w_src:.2f} | {src['rtf']:.4f} | {src['rtf_cpu']:.4f} |")
    print(f"| asrc eval, exported folder (merged encoder, sherpa-onnx's front end) | {n - len(diff_exp)}/{n} | "
          f"{w_exp:.2f} | {exp['rtf']:.4f} | {exp['rtf_cpu']:.4f} |")
    print()
    if len(sys.argv) > 5:
        s16 = json.load(open(sys.argv[5]))
        same16 = sum(norm(u["text"]) == src_h.get(u["id"]) for u in s16["utterances"])
        print(f"Diagnostic: sherpa-onnx fed 16-bit-scaled samples (its normalize_samples=false; export without "
              f"the offset) gives the same hypothesis as asrc eval on the source bundle for "
              f"{same16}/{len(s16['utterances'])} utterances (WER {wer(refs, [u['text'] for u in s16['utterances']]):.2f}).\n")
    for label, diffs, hyps in (("source bundle", diff_src, src_h), ("exported folder", diff_exp, exp_h)):
        if not diffs:
            continue
        print(f"Differing hypotheses, sherpa-onnx vs asrc eval on the {label} ({len(diffs)}):\n")
        for u in diffs[:10]:
            print(f"- `{u['id']}`: sherpa-onnx \"{norm(u['text'])}\" / asrc \"{hyps.get(u['id'])}\"")
        if len(diffs) > 10:
            print(f"- ... {len(diffs) - 10} more")
        print()


if __name__ == "__main__":
    main()
