#!/usr/bin/python3
"""Train the cascaded two-pass transducer teacher (rnnt loss on both passes, summed).

  nice -n 10 /usr/bin/python3 experiments/teacher/train.py --exp experiments/teacher/exp/demo \
      --data /work/shared/data --synth experiments/teacher/data_gen/manifest.jsonl [--resume]
"""
import argparse
import json
import math
import os
import random
import sys
import time

import torch
import torch.nn.functional as F
import torchaudio

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import common as C  # noqa: E402
from model import CascadedTransducer, PRESETS, count  # noqa: E402
from textnorm import normalize  # noqa: E402
from rnnt import rnnt_loss  # noqa: E402  (same values/grads as torchaudio's, ~3x faster on CPU)

SPEEDS = (0.9, 1.0, 1.1)


def log(*a):
    print(time.strftime("%H:%M:%S"), *a, flush=True)


def build_features(items, speeds, cache_path):
    if os.path.exists(cache_path):
        d = torch.load(cache_path)
        if d["ids"] == [it["id"] for it in items] and d["speeds"] == list(speeds):
            return d["feats"]
    t0 = time.time()
    feats = []
    for it in items:
        w = C.load_wave(it["audio_filepath"])
        feats.append([C.fbank(C.speed_perturb(w, s)).half() for s in speeds])
    torch.save({"ids": [it["id"] for it in items], "speeds": list(speeds), "feats": feats}, cache_path)
    log("features for %d utterances x %d speeds in %.1fs" % (len(items), len(speeds), time.time() - t0))
    return feats


class SpecAug:
    def __init__(self, freq_masks=2, freq_width=15, time_width=25, time_per_frames=200):
        self.fm, self.fw, self.tw, self.tpf = freq_masks, freq_width, time_width, time_per_frames

    def __call__(self, x, lens):  # x [N, T, F] normalized
        x = x.clone()
        for n in range(x.shape[0]):
            T = int(lens[n])
            for _ in range(self.fm):
                w = random.randint(0, self.fw)
                f0 = random.randint(0, x.shape[2] - w)
                x[n, :, f0:f0 + w] = 0.0
            for _ in range(max(1, T // self.tpf)):
                w = random.randint(0, min(self.tw, T // 5))
                t0 = random.randint(0, max(0, T - w))
                x[n, t0:t0 + w, :] = 0.0
        return x


def make_batches(lens, max_frames, max_n):
    order = sorted(range(len(lens)), key=lambda i: lens[i] + random.random() * 30)
    batches, cur, cur_max = [], [], 0
    for i in order:
        m = max(cur_max, lens[i])
        if cur and (m * (len(cur) + 1) > max_frames or len(cur) >= max_n):
            batches.append(cur)
            cur, m = [], lens[i]
        cur.append(i)
        cur_max = m
    if cur:
        batches.append(cur)
    random.shuffle(batches)
    return batches


def compute_loss(model, feats, lens, targets, tlens, specaug, ctc_weight, rnnt_impl="fast"):
    loss_fn = rnnt_loss if rnnt_impl == "fast" else torchaudio.functional.rnnt_loss
    enc, elens = model.encoder_causal(feats, lens, specaug)
    tmax = int(elens.max())
    enc = enc[:, :tmax]
    enc2, _ = model.encoder_noncausal(enc, elens)
    blank = torch.zeros(targets.shape[0], 1, dtype=torch.int64)
    dec, _ = model.decoder(torch.cat([blank, targets], 1))
    tg32, el32, tl32 = targets.int(), elens.int(), tlens.int()
    l1 = loss_fn(model.joiner.full(enc, dec), tg32, el32, tl32, blank=0,
                                         reduction="sum")
    l2 = loss_fn(model.joiner.full(enc2, dec), tg32, el32, tl32, blank=0,
                                         reduction="sum")
    lctc = torch.zeros(())
    if ctc_weight > 0:
        lp = F.log_softmax(model.ctc(enc), -1).transpose(0, 1)
        lctc = F.ctc_loss(lp, targets, elens, tlens, blank=0, reduction="sum", zero_infinity=True)
    return l1, l2, lctc


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--exp", default=os.path.join(HERE, "exp", "demo"))
    ap.add_argument("--data", default="/work/shared/data")
    ap.add_argument("--synth", default=os.path.join(HERE, "data_gen", "manifest.jsonl"))
    ap.add_argument("--synth-test", default=os.path.join(HERE, "..", "data", "default_eval", "manifest.jsonl"))
    ap.add_argument("--preset", default="demo", choices=sorted(PRESETS))
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--synth-per-epoch", type=int, default=600)
    ap.add_argument("--max-frames", type=int, default=5000, help="padded feature frames per batch")
    ap.add_argument("--max-n", type=int, default=24)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--warmup", type=int, default=400)
    ap.add_argument("--ctc-weight", type=float, default=0.2)
    ap.add_argument("--bpe-vocab", type=int, default=256)
    ap.add_argument("--rnnt-impl", default="fast", choices=["fast", "torchaudio"],
                    help="fast: rnnt.py (plain torch ops, same values and gradients as torchaudio's rnnt_loss, "
                         "~3x faster on CPU); torchaudio: torchaudio.functional.rnnt_loss")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--stop-at", default="", help="HH:MM wall-clock time; stop after the epoch that passes it")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--save-every", type=int, default=0,
                    help="also write step-K.pt (model + optimizer; --resume from it restarts that epoch) every K steps")
    args = ap.parse_args()
    torch.set_num_threads(2)
    os.makedirs(args.exp, exist_ok=True)
    random.seed(args.seed)
    torch.manual_seed(args.seed)

    # ---------------- data
    man = os.path.join(args.data, "cathy", "manifest.jsonl")
    cathy_train = C.read_manifest(man, "train")
    cathy_dev = C.read_manifest(man, "dev")
    cathy_test = C.read_manifest(man, "test")
    synth = C.read_manifest(args.synth) if args.synth and os.path.exists(args.synth) else []
    synth_test = C.read_manifest(args.synth_test) if os.path.exists(args.synth_test) else []
    heldout = {normalize(d["text"]) for d in cathy_dev + cathy_test + synth_test}
    train_texts = [normalize(d["text"]) for d in cathy_train + synth]
    leak = heldout & set(train_texts)
    assert not leak, "held-out sentences in training text: %s" % sorted(leak)[:5]
    log("cathy train %d (%.2f h), synth train %d (%.2f h), dev %d, test %d, synth test %d; no held-out "
        "sentence in training text (checked)" % (
            len(cathy_train), sum(d["duration"] for d in cathy_train) / 3600, len(synth),
            sum(d["duration"] for d in synth) / 3600, len(cathy_dev), len(cathy_test), len(synth_test)))

    ckpt_last = os.path.join(args.exp, "last.pt")
    resume = args.resume and os.path.exists(ckpt_last)
    if resume:
        ck = torch.load(ckpt_last, map_location="cpu")
        bpe_bytes = ck["bpe_model"]
    else:
        bpe_bytes = C.train_bpe(train_texts, args.bpe_vocab, os.path.join(args.exp, "bpe"))
    tok = C.Tokenizer(bpe_bytes)

    feat_dir = os.path.join(HERE, "data_gen")
    os.makedirs(feat_dir, exist_ok=True)
    f_cathy = build_features(cathy_train, SPEEDS, os.path.join(feat_dir, "feats_cathy_train.pt"))
    f_synth = build_features(synth, (1.0,), os.path.join(feat_dir, "feats_synth_train.pt")) if synth else []
    f_dev = [x[0].float() for x in build_features(cathy_dev, (1.0,), os.path.join(feat_dir, "feats_cathy_dev.pt"))]
    tg_cathy = [torch.tensor(tok.encode(d["text"])) for d in cathy_train]
    tg_synth = [torch.tensor(tok.encode(d["text"])) for d in synth]

    # ---------------- model
    cfg = dict(PRESETS[args.preset])
    cfg["vocab"] = len(tok)
    model = CascadedTransducer(**cfg)
    if resume:
        model.load_state_dict(ck["model"])
    else:
        allf = torch.cat([x[1].float() for x in f_cathy] + [x[0].float() for x in f_synth])
        model.encoder_causal.feat_mean.copy_(allf.mean(0))
        model.encoder_causal.feat_istd.copy_(1.0 / allf.std(0).clamp(min=1e-3))
        del allf
    n_params = {k: count(getattr(model, k)) for k in ["encoder_causal", "encoder_noncausal", "decoder", "joiner"]}
    log("params", n_params, "total (exported)", sum(n_params.values()))
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.98), weight_decay=1e-3)
    step, epoch0, train_time, history, best = 0, 0, 0.0, [], None
    if resume:
        opt.load_state_dict(ck["opt"])
        step, epoch0, train_time, history, best = ck["step"], ck["epoch"], ck["train_time"], ck["history"], ck.get("best")
        random.setstate(ck["py_rng"])
        torch.set_rng_state(ck["torch_rng"])
        log("resumed from epoch %d step %d" % (epoch0, step))

    def lr_at(s):
        s = max(1, s)
        return args.lr * min(s / args.warmup, math.sqrt(args.warmup / s))

    specaug = SpecAug()
    for epoch in range(epoch0 + 1, args.epochs + 1):
        model.train()
        t_ep = time.time()
        # epoch sample: all cathy (random speed) + a random subset of the synthetic set
        items = [(f_cathy[i][random.randrange(len(SPEEDS))], tg_cathy[i]) for i in range(len(cathy_train))]
        if f_synth:
            for i in random.sample(range(len(f_synth)), min(args.synth_per_epoch, len(f_synth))):
                items.append((f_synth[i][0], tg_synth[i]))
        batches = make_batches([x[0].shape[0] for x in items], args.max_frames, args.max_n)
        tot = {"rnnt_causal": 0.0, "rnnt_lookahead": 0.0, "ctc": 0.0, "tokens": 0}
        for bi, b in enumerate(batches):
            feats = torch.nn.utils.rnn.pad_sequence([items[i][0].float() for i in b], batch_first=True)
            lens = torch.tensor([items[i][0].shape[0] for i in b])
            tg = torch.nn.utils.rnn.pad_sequence([items[i][1] for i in b], batch_first=True)
            tl = torch.tensor([items[i][1].shape[0] for i in b])
            l1, l2, lc = compute_loss(model, feats, lens, tg, tl, specaug, args.ctc_weight, args.rnnt_impl)
            ntok = int(tl.sum())
            loss = (l1 + l2 + args.ctc_weight * lc) / ntok
            step += 1
            for g in opt.param_groups:
                g["lr"] = lr_at(step)
            opt.zero_grad()
            loss.backward()
            gn = torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
            tot["rnnt_causal"] += float(l1); tot["rnnt_lookahead"] += float(l2); tot["ctc"] += float(lc)
            tot["tokens"] += ntok
            if args.save_every and step % args.save_every == 0:
                torch.save(dict(model=model.state_dict(), opt=opt.state_dict(), config=cfg, bpe_model=bpe_bytes,
                                step=step, epoch=epoch - 1, partial_epoch=epoch, batches_done=bi + 1,
                                train_time=train_time + time.time() - t_ep, history=history, best=best,
                                py_rng=random.getstate(), torch_rng=torch.get_rng_state(), args=vars(args)),
                           os.path.join(args.exp, "step-%d.pt" % step))
            if bi % 20 == 0:
                log("ep %d %d/%d step %d lr %.2e loss/tok causal %.3f lookahead %.3f ctc %.3f gn %.2f" % (
                    epoch, bi, len(batches), step, lr_at(step), float(l1) / ntok, float(l2) / ntok,
                    float(lc) / ntok, float(gn)))
        ep_time = time.time() - t_ep
        train_time += ep_time
        # dev greedy WER, both passes
        t_dev = time.time()
        hs, hl = C.decode_feats(model, f_dev)
        refs = [d["text"] for d in cathy_dev]
        w_s = C.wer(refs, [tok.decode(h) for h in hs])
        w_l = C.wer(refs, [tok.decode(h) for h in hl])
        rec = dict(epoch=epoch, step=step, train_s=round(ep_time, 1),
                   loss_causal=tot["rnnt_causal"] / tot["tokens"], loss_lookahead=tot["rnnt_lookahead"] / tot["tokens"],
                   loss_ctc=tot["ctc"] / tot["tokens"], dev_wer_streaming=w_s, dev_wer_lookahead=w_l,
                   n_utts=len(items))
        history.append(rec)
        log("EPOCH", json.dumps(rec), "dev decode %.1fs" % (time.time() - t_dev))
        log("  dev[0] ref:", normalize(refs[0]), "| hyp_s:", tok.decode(hs[0]), "| hyp_l:", tok.decode(hl[0]))
        is_best = best is None or (w_s + w_l) <= best["score"]  # ties: prefer the later epoch
        if is_best:
            best = dict(epoch=epoch, score=w_s + w_l, dev_wer_streaming=w_s, dev_wer_lookahead=w_l)
        ck = dict(model=model.state_dict(), opt=opt.state_dict(), config=cfg, bpe_model=bpe_bytes, step=step,
                  epoch=epoch, train_time=train_time, history=history, best=best, py_rng=random.getstate(),
                  torch_rng=torch.get_rng_state(),
                  data=dict(cathy_train_utts=len(cathy_train),
                            cathy_train_hours=sum(d["duration"] for d in cathy_train) / 3600,
                            synth_train_utts=len(synth), synth_train_hours=sum(d["duration"] for d in synth) / 3600,
                            synth_per_epoch=args.synth_per_epoch, speed_perturb=list(SPEEDS)),
                  args=vars(args))
        torch.save(ck, ckpt_last + ".tmp")
        os.replace(ckpt_last + ".tmp", ckpt_last)
        torch.save(ck, os.path.join(args.exp, "epoch-%d.pt" % epoch))
        if is_best:
            torch.save(ck, os.path.join(args.exp, "best.pt"))
        if args.stop_at:
            hh, mm = map(int, args.stop_at.split(":"))
            now = time.localtime()
            if now.tm_hour * 60 + now.tm_min >= hh * 60 + mm:
                log("stop-at reached")
                break
    log("done; total train time %.1f min" % (train_time / 60))


if __name__ == "__main__":
    main()
