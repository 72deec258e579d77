"""Reference for tests/train/optimizer_test.cc: torch.optim.AdamW with
torch.nn.utils.clip_grad_norm_ over a few steps, and a warmup-cosine learning rate set on the
param group each step (the closed form, in Python). Usage: optim_ref.py OUT.json
Writes the initial parameters, each step's gradients, rates and pre-clip norms, and the final
parameters and moments (float32 values as JSON numbers, exact). Exit code 3: torch missing."""
import json
import math
import sys

try:
    import torch
except ImportError as e:
    print("optim_ref.py: %s" % e)
    sys.exit(3)

gen = torch.Generator().manual_seed(99)
shapes = [(4, 5), (7,), (3, 2, 3), (1,)]
params = [torch.nn.Parameter(torch.randn(s, generator=gen)) for s in shapes]
init = [p.detach().clone() for p in params]
peak, warmup, total, min_lr = 0.01, 2, 6, 1e-4
opt = torch.optim.AdamW(params, lr=peak, betas=(0.9, 0.98), eps=1e-8, weight_decay=0.05)
scales = [0.1, 5.0, 0.5, 10.0, 1.0, 0.2, 3.0, 0.05]  # steps 1, 6 and 8 stay under max_norm 2
steps = []
for i, sc in enumerate(scales):
    s = i + 1
    lr = peak * s / warmup if s <= warmup else \
        min_lr + (peak - min_lr) * 0.5 * (1 + math.cos(math.pi * min(1.0, (s - warmup) / (total - warmup))))
    grads = [torch.randn(p.shape, generator=gen) * sc for p in params]
    for p, g in zip(params, grads):
        p.grad = g.clone()
    norm = torch.nn.utils.clip_grad_norm_(params, 2.0)
    for group in opt.param_groups:
        group["lr"] = lr
    opt.step()
    steps.append({"lr": lr, "norm": float(norm), "grads": [g.flatten().tolist() for g in grads]})

state = [opt.state[p] for p in params]
json.dump({"shapes": shapes, "beta1": 0.9, "beta2": 0.98, "eps": 1e-8, "weight_decay": 0.05, "max_norm": 2.0,
           "schedule": {"peak": peak, "warmup": warmup, "total": total, "min_lr": min_lr},
           "init": [t.flatten().tolist() for t in init], "steps": steps,
           "final": [p.detach().flatten().tolist() for p in params],
           "exp_avg": [s["exp_avg"].flatten().tolist() for s in state],
           "exp_avg_sq": [s["exp_avg_sq"].flatten().tolist() for s in state]}, open(sys.argv[1], "w"))
