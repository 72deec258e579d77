#!/usr/bin/python3
"""Greedy WER of both passes (streaming = causal encoder, look-ahead = non-causal encoder on the
causal output) on cathy dev, cathy test and the synthetic test set (held-out voices).

The causal encoder output is the whole-utterance chunk-masked forward, which equals running the
exported causal encoder chunk by chunk with the protocol of docs/bundle.md (checked by
check_export.py); greedy search: decoder starts from blank, at most --max-sym symbols per frame.
WER text normalization: lowercase, strip punctuation except apostrophes (hyphens -> spaces),
collapse whitespace (textnorm.py).

Writes RESULTS_DIR/wer.json, RESULTS_DIR/cathy_test_greedy.jsonl (id, reference, hyp_streaming,
hyp_lookahead).

  /usr/bin/python3 experiments/teacher/evaluate.py --ckpt experiments/teacher/exp/demo/best.pt
"""
import argparse
import json
import os
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import common as C  # noqa: E402
from textnorm import normalize  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt", required=True)
    ap.add_argument("--data", default="/work/shared/data")
    ap.add_argument("--synth-test", default=os.path.join(HERE, "..", "data", "default_eval", "manifest.jsonl"))
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    ap.add_argument("--max-sym", type=int, default=5)
    ap.add_argument("--sets", default="cathy_dev,cathy_test,synth_test")
    args = ap.parse_args()
    torch.set_num_threads(2)
    os.makedirs(args.out, exist_ok=True)
    model, tok, ck = C.load_checkpoint(args.ckpt)
    man = os.path.join(args.data, "cathy", "manifest.jsonl")
    sets = {"cathy_dev": C.read_manifest(man, "dev"), "cathy_test": C.read_manifest(man, "test"),
            "synth_test": C.read_manifest(args.synth_test)}
    results = {"checkpoint": C.repo_relative(os.path.abspath(args.ckpt), args.data), "epoch": ck["epoch"],
               "step": ck.get("step"), "max_sym": args.max_sym,
               "normalization": "lowercase; punctuation removed except apostrophes (hyphen -> space); whitespace collapsed",
               "sets": {}}
    for name in args.sets.split(","):
        items = sets[name]
        t0 = time.time()
        feats = [C.fbank(C.load_wave(d["audio_filepath"])) for d in items]
        hs, hl = C.decode_feats(model, feats, args.max_sym)
        refs = [d["text"] for d in items]
        hs = [tok.decode(h) for h in hs]
        hl = [tok.decode(h) for h in hl]
        nwords = sum(len(normalize(r).split()) for r in refs)
        r = {"utterances": len(items), "words": nwords, "hours": round(sum(d["duration"] for d in items) / 3600, 3),
             "wer_streaming": round(C.wer(refs, hs), 2), "wer_lookahead": round(C.wer(refs, hl), 2)}
        results["sets"][name] = r
        print("%-10s %4d utts %5d words  streaming WER %6.2f%%  look-ahead WER %6.2f%%  (%.0fs)" % (
            name, len(items), nwords, r["wer_streaming"], r["wer_lookahead"], time.time() - t0), flush=True)
        if name == "cathy_test":
            with open(os.path.join(args.out, "cathy_test_greedy.jsonl"), "w") as f:
                for d, a, b in zip(items, hs, hl):
                    f.write(json.dumps({"id": d["id"], "audio_filepath": os.path.relpath(d["audio_filepath"], args.data),
                                        "reference": normalize(d["text"]), "hyp_streaming": a,
                                        "hyp_lookahead": b}) + "\n")
    with open(os.path.join(args.out, "wer.json"), "w") as f:
        json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
