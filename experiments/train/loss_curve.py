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
         distill pass's defaults. Prints one JSON line per step (loss before the update).
         --batches LOG instead: step s trains on the utterances that line s of asrc's
         train_log.jsonl names ("utts"; the file may still be growing: it waits for the line),
         labels from the manifest's "token_ids" — the same shuffled batches asrc saw.
  subset: /usr/bin/python3 experiments/train/loss_curve.py subset --manifest M --out F --n 40
         [--max-duration 2.5]: the first N lines of M's train split no longer than max-duration."""
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


def load_manifest_batches(manifest):
    """id -> (raw fbank [T, 80], token ids) for every line of MANIFEST with token_ids."""
    out = {}
    for line in open(manifest):
        r = json.loads(line)
        if "token_ids" not in r:
            continue
        path = r["audio_filepath"]
        if not os.path.isabs(path):
            path = os.path.join(os.path.dirname(manifest), path)
        out[r["id"]] = (C.fbank(C.load_wave(path)), r["token_ids"])
    return out


def follow_batches(log_path, table):
    """Yields (step, padded batch) for every step line of asrc's train_log.jsonl, waiting for lines
    that asrc has not written yet."""
    step = 0
    with open(log_path) as f:
        while True:
            line = f.readline()
            if not line:
                time.sleep(2)
                continue
            r = json.loads(line)
            if "utts" not in r:
                continue  # a dev line
            step += 1
            assert r["step"] == step, (r["step"], step)
            feats = [table[u][0] for u in r["utts"]]
            labels = [table[u][1] for u in r["utts"]]
            lens = torch.tensor([f.shape[0] for f in feats])
            x = torch.nn.utils.rnn.pad_sequence(feats, batch_first=True)
            tl = torch.tensor([len(w) for w in labels])
            tg = torch.zeros(len(labels), int(tl.max()), dtype=torch.int64)
            for i, w in enumerate(labels):
                tg[i, :len(w)] = torch.tensor(w)
            yield step, (x, lens, tg, tl)


def subset(a):
    n = 0
    with open(a.out, "w") as out:
        for line in open(a.manifest):
            r = json.loads(line)
            if r.get("split") == "train" and r["duration"] <= a.max_duration and n < a.n:
                out.write(json.dumps(r) + "\n")
                n += 1
    print("wrote", n, "lines to", a.out)


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
    if a.batches:
        batches = follow_batches(a.batches, load_manifest_batches(a.manifest))
    else:
        fixed = load_id_batch(a.ids, a.manifest)
        batches = ((s, fixed) for s in range(1, a.steps + 1))
    params = [p for n, p in model.named_parameters() if not n.startswith("ctc.")]
    opt = torch.optim.AdamW(params, lr=a.lr, weight_decay=0.0)
    warmup = min(a.warmup, a.steps - 1)
    t0 = time.time()
    for step, (x, lens, tg, tl) in batches:
        if step > a.steps:
            break
        ntok = int(tl.sum())
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
    p.add_argument("--ids", help="one fixed batch (JSON lines: id, labels)")
    p.add_argument("--batches", help="asrc's train_log.jsonl: the utterances of every step")
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--manifest", default="/work/shared/data/cathy/manifest.jsonl")
    p = sub.add_parser("subset")
    p.add_argument("--manifest", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--n", type=int, default=40)
    p.add_argument("--max-duration", type=float, default=2.5)
    a = ap.parse_args()
    {"init": init, "train": train, "subset": subset}[a.cmd](a)


if __name__ == "__main__":
    main()
