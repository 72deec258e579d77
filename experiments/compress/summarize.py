#!/usr/bin/python3
"""Prints a compact markdown table from asrc compress report.json files (for RESULTS.md).
Usage: summarize.py experiments/compress/out/*/report.json"""
import json
import sys

print("| pipeline | # | pass | MB | size vs input | WER str | WER la | dWER la rel | CPU RTF str | CPU RTF la | chunk p50/p90 ms | final p50/p90 ms | utts |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
for path in sys.argv[1:]:
    r = json.load(open(path))
    rows = r["rows"]
    b0 = rows[0]["bytes"]
    w0 = rows[0].get("lookahead", {}).get("wer")
    for i, row in enumerate(rows):
        s, la = row.get("streaming", {}), row.get("lookahead", {})
        f = lambda d, k, p=2: f"{d[k]:.{p}f}" if k in d else "-"
        rel = "" if i == 0 or w0 in (None, 0) or "wer" not in la else f"{(la['wer'] - w0) / w0 * 100:+.1f}%"
        name = row["pass"] + (" (rolled back)" if row.get("rolled_back") else "")
        print(f"| {r.get('name', '')} | {i} | {name} | {row['bytes'] / 1e6:.2f} | {b0 / row['bytes']:.2f}x | "
              f"{f(s, 'wer')} | {f(la, 'wer')} | {rel} | {f(s, 'rtf_cpu', 4)} | {f(la, 'rtf_cpu', 4)} | "
              f"{f(s, 'chunk_ms_p50')} / {f(s, 'chunk_ms_p90')} | {f(la, 'final_ms_p50')} / {f(la, 'final_ms_p90')} | "
              f"{la.get('utterances', '-')} |")
