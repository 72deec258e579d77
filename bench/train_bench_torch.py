"""PyTorch side of bench/train_bench: one training step (RNN-T loss on both passes, summed, as
experiments/teacher/train.py's compute_loss without CTC and SpecAugment) or one KD step (teacher
forward without gradients + student forward/backward + AdamW; full KL(teacher || student) over the
vocabulary at every valid (t, u) node of both lattices, summed) of the demo teacher's model
(experiments/teacher/model.py, weights of experiments/teacher/checkpoint/demo_fp16.pt as float32)
on the batch bench/train_bench wrote (--ids: id and labels per line). Prints one JSON line.
  /usr/bin/python3 bench/train_bench_torch.py --ids FILE --mode rnnt|kd --threads N [--steps 3]"""
import argparse
import json
import os
import resource
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.join(ROOT, "experiments", "teacher"))
sys.path.insert(0, os.path.join(ROOT, "experiments", "train"))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from loss_curve import load_id_batch  # noqa: E402
from model import CascadedTransducer  # noqa: E402
from rnnt import rnnt_loss  # noqa: E402


def lattices(model, feats, lens, targets):
    enc, elens = model.encoder_causal(feats, lens)
    enc = enc[:, :int(elens.max())]
    enc2, _ = model.encoder_noncausal(enc, elens)
    blank = torch.zeros(targets.shape[0], 1, dtype=torch.int64)
    dec, _ = model.decoder(torch.cat([blank, targets], 1))
    return [model.joiner.full(enc, dec), model.joiner.full(enc2, dec)], elens


def kl(teacher_logits, student_logits, elens, tlens):
    n, t, u1, _ = student_logits.shape
    valid = (torch.arange(t)[None, :, None] < elens[:, None, None]) & (torch.arange(u1)[None, None, :] <= tlens[:, None, None])
    lt = F.log_softmax(teacher_logits, -1)
    ls = F.log_softmax(student_logits, -1)
    return ((lt.exp() * (lt - ls)).sum(-1) * valid).sum()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ids", required=True)
    ap.add_argument("--mode", choices=["rnnt", "kd"], default="rnnt")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--manifest", default="/work/shared/data/cathy/manifest.jsonl")
    ap.add_argument("--checkpoint", default=os.path.join(ROOT, "experiments/teacher/checkpoint/demo_fp16.pt"))
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    x, lens, tg, tl = load_id_batch(a.ids, a.manifest)
    rss_data = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    ck = torch.load(a.checkpoint, map_location="cpu")
    student = CascadedTransducer(**ck["config"])
    student.load_state_dict({k: v.float() for k, v in ck["model"].items()})
    student.train()
    teacher = None
    if a.mode == "kd":
        teacher = CascadedTransducer(**ck["config"])
        teacher.load_state_dict({k: v.float() for k, v in ck["model"].items()})
        teacher.eval()
    params = [p for n, p in student.named_parameters() if not n.startswith("ctc.")]
    opt = torch.optim.AdamW(params, lr=1e-4)
    ntok = int(tl.sum())
    times, cpus, first = [], [], None
    for s in range(a.steps):
        t0, c0 = time.perf_counter(), time.process_time()
        opt.zero_grad(set_to_none=True)
        if teacher is not None:
            with torch.no_grad():
                tlog, _ = lattices(teacher, x, lens, tg)
        slog, elens = lattices(student, x, lens, tg)
        if teacher is None:
            loss = sum(rnnt_loss(lg, tg.int(), elens.int(), tl.int(), blank=0, reduction="sum") for lg in slog)
        else:
            loss = sum(kl(t_, s_, elens, tl) for t_, s_ in zip(tlog, slog))
        loss = loss / ntok
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 5.0)
        opt.step()
        times.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
        if first is None:
            first = float(loss)
    warm = sorted(times[1:])
    print(json.dumps(dict(impl="pytorch", mode=a.mode, threads=a.threads, utts=len(tl), frames=int(lens.sum()),
                          tokens=ntok, params=sum(p.numel() for p in params), loss_per_token=round(first, 5),
                          cold_s=round(times[0], 4), step_s=round(warm[len(warm) // 2], 4), warm_steps=len(warm),
                          step_cpu_s=round(sorted(cpus[1:])[len(warm) // 2], 4),
                          rss_after_data_mib=round(rss_data, 1),
                          peak_rss_mib=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                          torch=torch.__version__)))


if __name__ == "__main__":
    main()
