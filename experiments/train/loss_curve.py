#!/usr/bin/python3
"""PyTorch side of the loss-curve check (issue 12): the demo teacher's architecture from scratch,
trained by the recipe's model (experiments/teacher/model.py, rnnt.py) on the same batches and from
the same initial weights as `asrc train` on the exported bundle. See experiments/train/README.md.

  init:  /usr/bin/python3 experiments/train/loss_curve.py init --out DIR [--ln-jitter 0.02]
         random weights (torch.manual_seed(0), the "demo" preset, dropout 0; LayerNorm weights and
         biases jittered so that the ONNX export does not merge them into one tensor), the feature
         normalization (feat_mean/feat_istd, not trained) and tokenizer of the demo teacher's
         checkpoint; writes DIR/init.pt and the bundle DIR/bundle (experiments/teacher/export.py).
  train: /usr/bin/python3 experiments/train/loss_curve.py train --init DIR/init.pt --ids IDS --steps N
         [--lr 1e-3] [--warmup 10] [--threads 1]
         full-batch training on the utterances of IDS (one JSON line each: id, labels — as
         bench/train_bench --ids-out writes them from asrc's own tokenization), RNN-T loss of both
         passes summed per token (train.py's compute_loss without CTC/SpecAugment), AdamW
         (weight decay 0), global-norm clipping at 5, linear warmup then cosine to lr/10 — the
         distill pass's defaults. Prints one JSON line per step (loss before the update)."""
import argparse
import json
import math
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "experiments", "teacher"))

import torch  # noqa: E402

import common as C  # noqa: E402
from model import CascadedTransducer, PRESETS  # noqa: E402
from rnnt import rnnt_loss  # noqa: E402

TEACHER_CKPT = os.path.join(ROOT, "experiments/teacher/checkpoint/demo_fp16.pt")


def make_model():
    cfg = dict(PRESETS["demo"], dropout=0.0)
    return CascadedTransducer(**cfg), cfg


def init(a):
    import export as E
    torch.manual_seed(0)
    model, cfg = make_model()
    ck = torch.load(TEACHER_CKPT, map_location="cpu")
    with torch.no_grad():
        # torch.onnx.export merges initializers with identical values into one, and at PyTorch's
        # default init every LayerNorm has weight 1 and bias 0: the bundle would tie all of them
        # (one trainable per graph). --ln-jitter gives each its own values (0: the tied export).
        for mod in model.modules():
            if isinstance(mod, torch.nn.LayerNorm) and a.ln_jitter > 0:
                mod.weight.add_(a.ln_jitter * torch.randn_like(mod.weight))
                mod.bias.add_(a.ln_jitter * torch.randn_like(mod.bias))
        for name in ("feat_mean", "feat_istd"):
            getattr(model.encoder_causal, name).copy_(ck["model"]["encoder_causal." + name].float())
    os.makedirs(a.out, exist_ok=True)
    torch.save({"config": cfg, "model": model.state_dict()}, os.path.join(a.out, "init.pt"))
    E.export(model, C.Tokenizer(ck["bpe_model"]), os.path.join(a.out, "bundle"),
             {"weights": "random init (experiments/train/loss_curve.py init, torch.manual_seed(0))"})
    print("wrote", os.path.join(a.out, "init.pt"), "and", os.path.join(a.out, "bundle"))


def load_id_batch(ids_path, manifest):
    """The utterances of IDS_PATH (JSON lines with id and labels) as a padded batch: raw fbank
    x [N, T, 80], lens [N], targets [N, U] (0-padded), target lengths [N]."""
    want = [json.loads(line) for line in open(ids_path)]
    paths = {}
    for line in open(manifest):
        r = json.loads(line)
        paths[r["id"]] = os.path.join(os.path.dirname(manifest), r["audio_filepath"])
    feats = [C.fbank(C.load_wave(paths[w["id"]])) for w in want]
    lens = torch.tensor([f.shape[0] for f in feats])
    x = torch.nn.utils.rnn.pad_sequence(feats, batch_first=True)
    tl = torch.tensor([len(w["labels"]) for w in want])
    tg = torch.zeros(len(want), int(tl.max()), dtype=torch.int64)
    for i, w in enumerate(want):
        tg[i, :len(w["labels"])] = torch.tensor(w["labels"])
    return x, lens, tg, tl


def lr_at(step, lr, warmup, total):  # train::Schedule::WarmupCosine(lr, warmup, total, lr / 10)
    s = max(step, 1)
    if step <= warmup:
        return lr * s / warmup
    progress = min(1.0, (s - warmup) / max(total - warmup, 1))
    return lr / 10 + (lr - lr / 10) * 0.5 * (1 + math.cos(math.pi * progress))


def train(a):
    torch.set_num_threads(a.threads)
    ck = torch.load(a.init, map_location="cpu")
    model = CascadedTransducer(**ck["config"])
    model.load_state_dict(ck["model"])
    model.train()
    x, lens, tg, tl = load_id_batch(a.ids, a.manifest)
    ntok = int(tl.sum())
    params = [p for n, p in model.named_parameters() if not n.startswith("ctc.")]
    opt = torch.optim.AdamW(params, lr=a.lr, weight_decay=0.0)
    warmup = min(a.warmup, a.steps - 1)
    t0 = time.time()
    for step in range(1, a.steps + 1):
        lr = lr_at(step, a.lr, warmup, a.steps)
        for g in opt.param_groups:
            g["lr"] = lr
        opt.zero_grad(set_to_none=True)
        enc, elens = model.encoder_causal(x, lens)
        enc = enc[:, :int(elens.max())]
        enc2, _ = model.encoder_noncausal(enc, elens)
        blank = torch.zeros(tg.shape[0], 1, dtype=torch.int64)
        dec, _ = model.decoder(torch.cat([blank, tg], 1))
        l1 = rnnt_loss(model.joiner.full(enc, dec), tg.int(), elens.int(), tl.int(), blank=0, reduction="sum")
        l2 = rnnt_loss(model.joiner.full(enc2, dec), tg.int(), elens.int(), tl.int(), blank=0, reduction="sum")
        loss = (l1 + l2) / ntok
        loss.backward()
        gn = float(torch.nn.utils.clip_grad_norm_(params, 5.0))
        opt.step()
        print(json.dumps(dict(step=step, loss=round(float(loss), 5), lr=lr, grad_norm=round(gn, 4),
                              elapsed_s=round(time.time() - t0, 1))), flush=True)


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("init")
    p.add_argument("--out", required=True)
    p.add_argument("--ln-jitter", type=float, default=0.02, help="LayerNorm weight/bias += this * N(0, 1)")
    p = sub.add_parser("train")
    p.add_argument("--init", required=True)
    p.add_argument("--ids", required=True)
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--manifest", default="/work/shared/data/cathy/manifest.jsonl")
    a = ap.parse_args()
    init(a) if a.cmd == "init" else train(a)


if __name__ == "__main__":
    main()
