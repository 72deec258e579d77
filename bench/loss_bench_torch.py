"""PyTorch side of bench/loss_bench.cc: median ms of a loss's forward + backward on random
logits [B, T, U+1, V] at the given thread count (all utterances full length).
  rnnt: torchaudio.functional.rnnt_loss (mean, blank 0)
  kl:   full KL(teacher || student) per node, summed (log_softmax both sides, autograd)
Usage: loss_bench_torch.py KIND B T U V THREADS RUNS"""
import sys
import time

import torch
import torchaudio.functional as F

kind = sys.argv[1]
B, T, U, V, threads, runs = map(int, sys.argv[2:8])
torch.set_num_threads(threads)
g = torch.Generator().manual_seed(0)
x = torch.randn(B, T, U + 1, V, generator=g).requires_grad_()
teacher = torch.randn(B, T, U + 1, V, generator=g)
y = torch.randint(1, V, (B, U), generator=g, dtype=torch.int32)
tl = torch.full((B,), T, dtype=torch.int32)
ul = torch.full((B,), U, dtype=torch.int32)


def loss():
    if kind == "rnnt":
        return F.rnnt_loss(x, y, tl, ul, blank=0, reduction="mean")
    lt = teacher.log_softmax(-1)
    return (lt.exp() * (lt - x.log_softmax(-1))).sum() / B


times = []
for i in range(runs + 2):
    x.grad = None
    t0 = time.perf_counter()
    loss().backward()
    times.append((time.perf_counter() - t0) * 1e3)
times = sorted(times[2:])
print("%.3f" % times[len(times) // 2])
