"""torchaudio side of bench/loss_bench.cc: median ms of rnnt_loss forward + backward (mean
reduction, blank 0) on random logits [B, T, U+1, V] at the given thread count.
Usage: loss_bench_torch.py B T U V THREADS RUNS"""
import sys
import time

import torch
import torchaudio.functional as F

B, T, U, V, threads, runs = map(int, sys.argv[1:7])
torch.set_num_threads(threads)
g = torch.Generator().manual_seed(0)
x = torch.randn(B, T, U + 1, V, generator=g).requires_grad_()
y = torch.randint(1, V, (B, U), generator=g, dtype=torch.int32)
tl = torch.full((B,), T, dtype=torch.int32)
ul = torch.full((B,), U, dtype=torch.int32)
times = []
for i in range(runs + 2):
    x.grad = None
    t0 = time.perf_counter()
    F.rnnt_loss(x, y, tl, ul, blank=0, reduction="mean").backward()
    times.append((time.perf_counter() - t0) * 1e3)
times = sorted(times[2:])
print("%.3f" % times[len(times) // 2])
