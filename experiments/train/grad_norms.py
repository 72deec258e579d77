#!/usr/bin/python3
"""Per-tensor gradient norms of the recipe's model (PyTorch autograd) against asrc's
(`bench/train_bench --mode grads`, same weights, same utterance): the RNN-T loss of both passes,
summed, on the first utterance of IDS. Tensors are paired by name ("ROLE/enc.X" ~ "ROLE.X"), the
ones the ONNX export renamed (onnx::MatMul_N, transposed Linear weights) by element count and the
nearest norm. Prints the losses and the worst relative differences over tensors whose norm is above 1e-4 (the
attention key biases have an exact gradient of 0: their norms are float noise).
  /usr/bin/python3 experiments/train/grad_norms.py --init INIT.pt --ids IDS --asrc ASRC_GRADS.txt"""
import argparse
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "teacher"))
sys.path.insert(0, HERE)

import torch  # noqa: E402

from loss_curve import load_id_batch  # noqa: E402
from model import CascadedTransducer  # noqa: E402
from rnnt import rnnt_loss  # noqa: E402


def torch_norms(init, ids, manifest):
    ck = torch.load(init, map_location="cpu")
    m = CascadedTransducer(**ck["config"])
    m.load_state_dict({k: v.float() for k, v in ck["model"].items()})
    m.eval()  # no dropout (the trained teacher's config has 0.1); the model has no batch norm
    x, lens, tg, tl = load_id_batch(ids, manifest)
    x, lens, tg, tl = x[:1], lens[:1], tg[:1, :int(tl[0])], tl[:1]
    enc, el = m.encoder_causal(x, lens)
    enc = enc[:, :int(el.max())]
    enc2, _ = m.encoder_noncausal(enc, el)
    dec, _ = m.decoder(torch.cat([torch.zeros(1, 1, dtype=torch.int64), tg], 1))
    loss = sum(rnnt_loss(m.joiner.full(e, dec), tg.int(), el.int(), tl.int(), blank=0, reduction="sum") for e in (enc, enc2))
    loss.backward()
    return float(loss), {n: (p.numel(), float(p.grad.norm())) for n, p in m.named_parameters() if p.grad is not None}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--init", required=True)
    ap.add_argument("--ids", required=True)
    ap.add_argument("--asrc", required=True)
    ap.add_argument("--manifest", default="/work/shared/data/cathy/manifest.jsonl")
    a = ap.parse_args()
    tloss, t = torch_norms(a.init, a.ids, a.manifest)
    lines = open(a.asrc).read().split("\n")
    aloss = float(lines[0].split()[1])
    pairs, rest = [], []
    for line in lines[1:]:
        if not line.strip():
            continue
        n, c, v = line.split()
        role, name = n.split("/", 1)
        k = role + "." + re.sub(r"^(enc|dec|joiner|model)\.", "", name)
        (pairs.append((n, k, float(v))) if k in t else rest.append((n, int(c), float(v))))
    used = {k for _, k, _ in pairs}
    for n, c, v in rest:
        cand = [(abs(v - tv) / max(tv, 1e-30), k) for k, (tc, tv) in t.items() if tc == c and k not in used]
        if cand:
            k = min(cand)[1]
            used.add(k)
            pairs.append((n, k, v))
    rel = sorted(((abs(v - t[k][1]) / max(t[k][1], 1e-30), n, v, t[k][1]) for n, k, v in pairs), reverse=True)
    print("loss: asrc %.6f  pytorch %.6f" % (aloss, tloss))
    print("tensors: asrc %d (%d elements), pytorch %d (%d elements), paired %d" % (
        len(lines) - 2, sum(int(l.split()[1]) for l in lines[1:] if l.strip()), len(t), sum(c for c, _ in t.values()), len(pairs)))
    for r in [r for r in rel if r[3] > 1e-4][:10]:
        print("  rel %.2e  %s  asrc %.6g  pytorch %.6g" % r)
    big = [r for r in rel if r[3] > 1e-4]
    print("max relative difference over tensors with norm > 1e-4: %.2e" % (big[0][0] if big else 0))


if __name__ == "__main__":
    main()
