"""PyTorch autograd reference for tests/grad/models_test.cc.

Usage: torch_reference.py MODEL DIR
DIR/spec.txt lists the tensors the test wrote ("name dtype dim..." per line; dtype f32 or i64,
raw little-endian data in DIR/name.bin); the lines whose name starts with "w:" are the trainable
weights. The script runs MODEL (the same ops as the C++ graph, in float64) and writes the
gradient of the loss w.r.t. each weight to DIR/name.grad.bin (float64) and the loss to
DIR/loss.bin.
"""
import math
import os
import sys

import numpy as np
import torch


def load(d):
    tensors, weights = {}, []
    with open(os.path.join(d, "spec.txt")) as f:
        for line in f:
            parts = line.split()
            if not parts:
                continue
            name, dtype, dims = parts[0], parts[1], [int(x) for x in parts[2:]]
            key = name[2:] if name.startswith("w:") else name
            arr = np.fromfile(os.path.join(d, key + ".bin"), dtype=np.float32 if dtype == "f32" else np.int64)
            t = torch.from_numpy(arr.reshape(dims))
            if dtype == "f32":
                t = t.double()
            if name.startswith("w:"):
                t.requires_grad_(True)
                weights.append(key)
            tensors[key] = t
    return tensors, weights


def mlp(t):
    h = torch.relu(t["x"] @ t["w1t"].T + t["b1"])  # Gemm transB=1
    z = h @ t["w2"] + t["b2"]
    logp = torch.log_softmax(z, dim=-1)
    return -(logp * t["onehot"]).sum(dim=1).mean()


def attention(t):
    x = t["emb"][t["tokens"]]  # Gather
    b, tt, d = x.shape
    h = 2
    dh = d // h
    q = (x @ t["wq"] + t["bq"]).reshape(b, tt, h, dh).permute(0, 2, 1, 3)
    k = (x @ t["wk"]).reshape(b, tt, h, dh).permute(0, 2, 3, 1)
    v = (x @ t["wv"]).reshape(b, tt, h, dh).permute(0, 2, 1, 3)
    a = torch.softmax((q @ k) * (1.0 / math.sqrt(dh)), dim=-1)
    o = (a @ v).permute(0, 2, 1, 3).reshape(b, tt, d) @ t["wo"]
    y = torch.nn.functional.layer_norm(x + o, (d,), t["gamma"], t["beta"], eps=1e-5)
    f = torch.relu(y @ t["f1"] + t["fb1"]) @ t["f2"]
    out = y + f
    return (out * t["r"]).sum()


def main():
    model, d = sys.argv[1], sys.argv[2]
    torch.set_default_dtype(torch.float64)
    t, weights = load(d)
    loss = {"mlp": mlp, "attention": attention}[model](t)
    loss.backward()
    np.array([loss.item()], dtype=np.float64).tofile(os.path.join(d, "loss.bin"))
    for w in weights:
        t[w].grad.detach().numpy().astype(np.float64).tofile(os.path.join(d, w + ".grad.bin"))


if __name__ == "__main__":
    main()
