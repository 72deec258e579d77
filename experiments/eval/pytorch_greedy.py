#!/usr/bin/python3
"""PyTorch greedy hypotheses (the teacher recipe's own search, experiments/teacher/common.py) in the
format of experiments/teacher/results/cathy_test_greedy.jsonl, for a checkpoint or for a preset with
random weights built exactly as `export.py --random PRESET` builds it (torch.manual_seed(0)).

A random-weight model emits several labels on most frames, so every hypothesis is long and one
flipped label anywhere makes it differ: a strict check of asrc's front end, chunked streaming
encoder, look-ahead encoder and greedy search against PyTorch, independent of how far training got.

  /usr/bin/python3 experiments/eval/pytorch_greedy.py --random demo --tokens BUNDLE/tokens.txt \
      --data /work/shared/data/cathy/manifest.jsonl --split test --out /tmp/pt_random.jsonl
"""
import argparse
import json
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "teacher"))
import common as C  # noqa: E402
from model import CascadedTransducer, PRESETS  # noqa: E402


def detokenize(ids, tokens):
    """The same rule as asrc's TokensToText: SentencePiece word starts, <special> symbols dropped."""
    text = ""
    for i in ids:
        sym = tokens[i]
        if sym.startswith("<") and sym.endswith(">"):
            continue
        for part in sym.split("\u2581")[:1]:
            text += part
        for part in sym.split("\u2581")[1:]:
            if text and not text.endswith(" "):
                text += " "
            text += part
    return " ".join(text.split())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt")
    ap.add_argument("--random", choices=sorted(PRESETS))
    ap.add_argument("--tokens", required=True, help="the bundle's tokens.txt")
    ap.add_argument("--data", required=True)
    ap.add_argument("--split")
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--max-sym", type=int, default=5)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.ckpt:
        model, _, _ = C.load_checkpoint(args.ckpt)
    else:
        torch.manual_seed(0)
        model = CascadedTransducer(**dict(PRESETS[args.random])).eval()
    tokens = [line.rsplit(" ", 1)[0] for line in open(args.tokens, encoding="utf-8").read().splitlines()]
    items = C.read_manifest(args.data, args.split)
    if args.limit:
        items = items[:args.limit]
    feats = [C.fbank(C.load_wave(d["audio_filepath"])) for d in items]
    hs, hl = C.decode_feats(model, feats, args.max_sym)
    with open(args.out, "w") as f:
        for d, a, b in zip(items, hs, hl):
            f.write(json.dumps({"id": d["id"], "reference": d["text"], "hyp_streaming": detokenize(a, tokens),
                                "hyp_lookahead": detokenize(b, tokens)}) + "\n")
    print("wrote", args.out, len(items), "utterances")


if __name__ == "__main__":
    main()
