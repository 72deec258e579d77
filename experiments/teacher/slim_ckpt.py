#!/usr/bin/python3
"""A training checkpoint -> the committed form (checkpoint/demo_fp16.pt): model weights in float16, no
optimizer or RNG state, paths made repository-relative (common.repo_relative); keeps config, BPE model,
step/epoch/train_time, history, best, data and args, so train.py --init-from continues from it.

  /usr/bin/python3 experiments/teacher/slim_ckpt.py --ckpt experiments/teacher/exp/cpu/best.pt \
      --out experiments/teacher/checkpoint/demo_fp16.pt --note "..."
"""
import argparse
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import common as C  # noqa: E402

KEEP = ("model", "config", "bpe_model", "step", "epoch", "train_time", "history", "best", "data", "hardware",
        "args", "note", "partial_epoch", "batches_done")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--note", default="model weights of the committed bundle in float16 (no optimizer state); "
                    "continue with train.py --init-from")
    ap.add_argument("--max-mb", type=float, default=15.0)
    args = ap.parse_args()
    ck = torch.load(args.ckpt, map_location="cpu")
    data_root = ck.get("args", {}).get("data", "/work/shared/data")
    out = {k: ck[k] for k in KEEP if k in ck}
    out["model"] = {k: v.half() if v.is_floating_point() else v for k, v in ck["model"].items()}
    out["note"] = args.note
    for k in ("args", "data", "history", "best"):
        if k in out:
            out[k] = C.repo_relative(out[k], data_root)
    tmp = args.out + ".tmp"
    torch.save(out, tmp)
    mb = os.path.getsize(tmp) / 1e6
    if mb > args.max_mb:
        os.remove(tmp)
        sys.exit("%s: %.1f MB, over --max-mb %.1f" % (args.out, mb, args.max_mb))
    os.replace(tmp, args.out)
    print("wrote %s (%.1f MB, step %s)" % (args.out, mb, out.get("step")))


if __name__ == "__main__":
    main()
