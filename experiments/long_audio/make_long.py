#!/usr/bin/env python3
"""Builds long recordings by concatenating Cathy utterances with sox (for run.sh; audio goes to
OUT, never into the repository).

  make_long.py CATHY_DIR OUT

Writes OUT/long_{2,10,30}min.flac (test, then dev, then train utterances in manifest order, until
the length is reached) with OUT/long.jsonl (their manifest: concatenated reference texts), and
OUT/test_2min_*.flac: the test split cut into consecutive ~2-minute recordings, with
OUT/test_2min.jsonl, for WER of segmented versus whole look-ahead; OUT/test_short.jsonl lists the
same utterances one by one (the model's WER on the audio it was trained for).
"""
import json
import os
import subprocess
import sys

cathy, out = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)
rows = [json.loads(l) for l in open(os.path.join(cathy, "manifest.jsonl")) if l.strip()]
order = {"test": 0, "dev": 1, "train": 2}
rows.sort(key=lambda r: order.get(r["split"], 3))  # stable: manifest order inside a split


def concat(name, parts):
    """sox-concatenates `parts` into OUT/name unless it is already there; returns a manifest row."""
    path = os.path.join(out, name)
    if not os.path.exists(path):
        # A list file would be neater, but sox takes inputs only as arguments.
        subprocess.run(["sox"] + [os.path.join(cathy, p["audio_filepath"]) for p in parts] + [path + ".tmp.flac"],
                       check=True)
        os.replace(path + ".tmp.flac", path)
    return {"id": name.rsplit(".", 1)[0], "audio_filepath": name,
            "duration": round(sum(p["duration"] for p in parts), 3),
            "text": " ".join(p["text"] for p in parts)}


def take(pool, seconds):
    parts, total = [], 0.0
    while pool and total < seconds:
        parts.append(pool.pop(0))
        total += parts[-1]["duration"]
    if total < seconds:
        sys.exit(f"make_long.py: {cathy} has only {total:.0f} s of audio, {seconds} s needed")
    return parts


with open(os.path.join(out, "long.jsonl"), "w") as f:
    for minutes in (2, 10, 30):
        f.write(json.dumps(concat(f"long_{minutes}min.flac", take(list(rows), minutes * 60))) + "\n")
test = [r for r in rows if r["split"] == "test"]
used = []
with open(os.path.join(out, "test_2min.jsonl"), "w") as f:
    i = 0
    while sum(r["duration"] for r in test) >= 120:  # a last piece under 2 minutes is left out
        parts = take(test, 120)
        used += parts
        f.write(json.dumps(concat(f"test_2min_{i}.flac", parts)) + "\n")
        i += 1
with open(os.path.join(out, "test_short.jsonl"), "w") as f:
    for r in used:
        f.write(json.dumps(dict(r, audio_filepath=os.path.join(os.path.abspath(cathy), r["audio_filepath"]))) + "\n")
