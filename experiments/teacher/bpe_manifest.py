"""Copy a NeMo manifest with each line's "token_ids" from the teacher checkpoint's own SentencePiece
model (the ids the teacher was trained on), and audio_filepath made absolute.

asrc's training data (lib/train/data.h) uses "token_ids" when a line has it; without it asrc falls
back to a greedy longest-match over tokens.txt, which agrees with the teacher's BPE on only about a
third of cathy's train lines.

  /usr/bin/python3 experiments/teacher/bpe_manifest.py /work/shared/data/cathy/manifest.jsonl \
      experiments/data/cathy_bpe/manifest.jsonl --splits train dev
"""
import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common as C  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("manifest")
    ap.add_argument("out")
    ap.add_argument("--checkpoint", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                         "checkpoint", "demo_fp16.pt"))
    ap.add_argument("--splits", nargs="*", default=[])
    args = ap.parse_args()
    tok = C.Tokenizer(torch.load(args.checkpoint, map_location="cpu")["bpe_model"])
    base = os.path.dirname(os.path.abspath(args.manifest))
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    n = 0
    with open(args.manifest) as f, open(args.out, "w") as o:
        for line in f:
            if not line.strip():
                continue
            e = json.loads(line)
            if args.splits and e.get("split") not in args.splits:
                continue
            e["audio_filepath"] = os.path.join(base, e["audio_filepath"])
            e["token_ids"] = tok.encode(e["text"])
            o.write(json.dumps(e) + "\n")
            n += 1
    print("wrote %d lines to %s" % (n, args.out))


if __name__ == "__main__":
    main()
