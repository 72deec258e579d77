"""PyTorch reference for tests/train/transducer_torch_test.cc: the tiny transducer of
tests/train/tiny_transducer.h in torch, its loss (torchaudio rnnt_loss, or the full transducer KL)
and the autograd gradients of every weight. Usage:
  transducer_ref.py rnnt|kl DIR
DIR holds spec.txt (one line per tensor: "name f32|i32|i64 dims...") and name.bin (raw little-
endian); writes DIR/loss.txt and DIR/<weight>.grad.txt (one number a line, %.17g)."""
import sys

import numpy as np
import torch
import torchaudio.functional as AF

DT = {"f32": np.float32, "i32": np.int32, "i64": np.int64}


def load(d):
    out = {}
    for line in open(d + "/spec.txt"):
        name, dt, *dims = line.split()
        a = np.fromfile(d + "/" + name + ".bin", dtype=DT[dt]).reshape([int(x) for x in dims])
        out[name] = torch.from_numpy(a.copy())
    return out


def main():
    mode, d = sys.argv[1], sys.argv[2]
    t = load(d)
    weights = ["enc_w", "enc_b", "enc_proj", "embed", "out_w", "out_b"]
    w = {k: t[k].clone().requires_grad_(True) for k in weights}
    h = torch.relu(t["features"] @ w["enc_w"] + w["enc_b"])
    enc = (h @ w["enc_proj"]).unsqueeze(2)
    dec = w["embed"][t["decoder_input"]].unsqueeze(1)
    logits = torch.tanh(enc + dec) @ w["out_w"] + w["out_b"]
    tl, ul = t["feature_lengths"].int(), t["target_lengths"].int()
    if mode == "rnnt":
        loss = AF.rnnt_loss(logits, t["targets"].int(), tl, ul, blank=0, reduction="mean")
    else:  # sum over valid (t, u) nodes of KL(teacher || student), mean over the batch
        ls = torch.log_softmax(logits.double(), -1)
        lt = torch.log_softmax(t["teacher_logits"].double(), -1)
        kl = (lt.exp() * (lt - ls)).sum(-1)
        B, T, U1 = kl.shape
        mask = (torch.arange(T)[None, :, None] < tl[:, None, None]) & (torch.arange(U1)[None, None, :] <= ul[:, None, None])
        loss = (kl * mask).sum() / B
    loss.backward()
    np.savetxt(d + "/loss.txt", [loss.item()], fmt="%.17g")
    for k in weights:
        np.savetxt(d + "/" + k + ".grad.txt", w[k].grad.double().numpy().ravel(), fmt="%.17g")


if __name__ == "__main__":
    main()
