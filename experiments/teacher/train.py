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


def tempo(x, factor):
    """Feature-domain tempo perturbation: resample the frame sequence [T, F] to round(T / factor) frames
    (linear interpolation). Used with --pack, where only speed-1.0 features exist."""
    if factor == 1.0:
        return x
    t = max(8, int(round(x.shape[0] / factor)))
    return F.interpolate(x.t()[None], size=t, mode="linear", align_corners=True)[0].t()


def load_pack(path, device):
    """experiments/teacher/pack_feats.py output -> (bpe bytes, {set: [(feats fp16 [T, 80], tokens, text)]}, info)."""
    import pickle
    from pack_feats import unpack_set
    with open(path, "rb") as f:
        pack = pickle.load(f)
    sets = {}
    for name in ("cathy_train", "cathy_dev", "synth_train"):
        sets[name] = [(torch.from_numpy(f).to(device).half(), torch.from_numpy(tg).to(device), text)
                      for f, tg, text in unpack_set(pack[name])]
    return pack["bpe_model"], sets, pack["info"]


def compute_loss(model, feats, lens, targets, tlens, specaug, ctc_weight, rnnt_impl="fast"):
    loss_fn = rnnt_loss if rnnt_impl == "fast" else torchaudio.functional.rnnt_loss
    enc, elens = model.encoder_causal(feats, lens, specaug)
    tmax = int(elens.max())
    enc = enc[:, :tmax]
    enc2, _ = model.encoder_noncausal(enc, elens)
    blank = torch.zeros(targets.shape[0], 1, dtype=torch.int64, device=targets.device)
    dec, _ = model.decoder(torch.cat([blank, targets], 1))
    tg32, el32, tl32 = targets.int(), elens.int(), tlens.int()
    l1 = loss_fn(model.joiner.full(enc, dec), tg32, el32, tl32, blank=0,
                                         reduction="sum")
    dec2, joiner2 = model.pair(lookahead=True)
    if dec2 is not model.decoder:  # two-decoder variant: the look-ahead pass's own pair
        dec, _ = dec2(torch.cat([blank, targets], 1))
    l2 = loss_fn(joiner2.full(enc2, dec), tg32, el32, tl32, blank=0,
                                         reduction="sum")
    lctc = torch.zeros((), device=enc.device)
    if ctc_weight > 0:
        lp = F.log_softmax(model.ctc(enc), -1).transpose(0, 1)
        lctc = F.ctc_loss(lp, targets, elens, tlens, blank=0, reduction="sum", zero_infinity=True)
    return l1, l2, lctc


def save_split(obj, out_dir, name, part_mb):
    """torch.save(obj) written as name.part00, name.part01, ... of at most part_mb MB each (for transfer
    limits); join with `cat name.part* > name`."""
    import io
    buf = io.BytesIO()
    torch.save(obj, buf)
    data = buf.getvalue()
    step = int(part_mb * 1e6)
    for i in range(0, len(data), step):
        with open(os.path.join(out_dir, "%s.part%02d" % (name, i // step)), "wb") as f:
            f.write(data[i:i + step])


def average_states(states):
    avg = {}
    for k in states[0]:
        if states[0][k].is_floating_point():
            avg[k] = sum(s[k] for s in states) / len(states)
        else:
            avg[k] = states[-1][k].clone()
    return avg


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--exp", default=os.path.join(HERE, "exp", "demo"))
    ap.add_argument("--data", default="/work/shared/data")
    ap.add_argument("--synth", default=os.path.join(HERE, "data_gen", "manifest.jsonl"))
    ap.add_argument("--synth-test", default=os.path.join(HERE, "..", "data", "default_eval", "manifest.jsonl"))
    ap.add_argument("--pack", default="", help="train from pack_feats.py output instead of audio (no speed "
                    "perturbation; use --tempo)")
    ap.add_argument("--preset", default="demo", choices=sorted(PRESETS))
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--time-budget", type=float, default=0, help="seconds of training; then evaluate and save")
    ap.add_argument("--synth-per-epoch", type=int, default=600, help="-1: all")
    ap.add_argument("--synth-lazy", action="store_true", help="compute synthetic features when first drawn "
                    "(not all up front; for a synthetic set larger than a CPU run can use)")
    ap.add_argument("--max-frames", type=int, default=5000, help="padded feature frames per batch")
    ap.add_argument("--max-n", type=int, default=24)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--warmup", type=int, default=400)
    ap.add_argument("--sched", default="invsqrt", choices=["invsqrt", "cosine"],
                    help="cosine: warmup, then cosine decay to 0 over --time-budget (needs it)")
    ap.add_argument("--tempo", action="store_true", help="feature-domain tempo perturbation 0.9/1.0/1.1")
    ap.add_argument("--ctc-weight", type=float, default=0.2)
    ap.add_argument("--bpe-vocab", type=int, default=256)
    ap.add_argument("--rnnt-impl", default="fast", choices=["fast", "torchaudio"],
                    help="fast: rnnt.py (plain torch ops, same values and gradients as torchaudio's rnnt_loss, "
                         "~3x faster on CPU); torchaudio: torchaudio.functional.rnnt_loss")
    ap.add_argument("--eval-every", type=int, default=0, help="dev WER every K steps (0: after each epoch)")
    ap.add_argument("--avg-last", type=int, default=0,
                    help="also save avg.pt: the mean of the last K weight snapshots (taken every --snap-every steps)")
    ap.add_argument("--snap-every", type=int, default=200)
    ap.add_argument("--dev-limit", type=int, default=0, help="evaluate on the first N dev utterances only")
    ap.add_argument("--split-dir", default="", help="also write last.pt/avg.pt (no optimizer) there in parts")
    ap.add_argument("--split-mb", type=float, default=15.0)
    ap.add_argument("--keep-epochs", action="store_true", help="write epoch-N.pt after every epoch")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--lookahead-decoder", action="store_true",
                    help="two-decoder variant: the look-ahead pass gets its own decoder and joiner (model.py)")
    ap.add_argument("--init-from", default="", help="start from this checkpoint's weights (model only, e.g. "
                    "checkpoint/demo_fp16.pt) with a fresh optimizer; its BPE model must be the data's "
                    "(pack_feats.py --bpe-from the same checkpoint)")
    ap.add_argument("--stop-at", default="", help="HH:MM wall-clock time; stop after the epoch that passes it")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--save-every", type=int, default=0,
                    help="also write step-K.pt (model + optimizer; --resume from it restarts that epoch) every K steps")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type != "cpu":
        torch.set_default_device(device)  # every tensor the model code creates lands there
    os.makedirs(args.exp, exist_ok=True)
    if args.split_dir:
        os.makedirs(args.split_dir, exist_ok=True)
    random.seed(args.seed)
    torch.manual_seed(args.seed)
    hw = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu x%d threads" % args.threads
    log("device", hw, "torch", torch.__version__)

    # ---------------- data: pools of (feature variants, targets); one variant per speed
    ckpt_last = os.path.join(args.exp, "last.pt")
    resume = args.resume and os.path.exists(ckpt_last)
    if args.pack:
        bpe_bytes, sets, data_info = load_pack(args.pack, device)
        tok = C.Tokenizer(bpe_bytes)
        pool_cathy = [([f], tg) for f, tg, _ in sets["cathy_train"]]
        pool_synth = [([f], tg) for f, tg, _ in sets["synth_train"]]
        f_dev = [f.float() for f, _, _ in sets["cathy_dev"]]
        refs_dev = [t for _, _, t in sets["cathy_dev"]]
        norm_variant = 0
        log("pack %s: %s (held-out sentences checked when packing)" % (args.pack, json.dumps(data_info)))
    else:
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
        data_info = dict(cathy_train_utts=len(cathy_train),
                         cathy_train_hours=sum(d["duration"] for d in cathy_train) / 3600,
                         synth_train_utts=len(synth), synth_train_hours=sum(d["duration"] for d in synth) / 3600,
                         speed_perturb=list(SPEEDS))
        log("cathy train %d, synth train %d, dev %d, test %d, synth test %d; no held-out sentence in training "
            "text (checked)" % (len(cathy_train), len(synth), len(cathy_dev), len(cathy_test), len(synth_test)))
        if resume or args.init_from:
            bpe_bytes = torch.load(ckpt_last if resume else args.init_from, map_location="cpu")["bpe_model"]
        else:
            bpe_bytes = C.train_bpe(train_texts, args.bpe_vocab, os.path.join(args.exp, "bpe"))
        tok = C.Tokenizer(bpe_bytes)
        feat_dir = os.path.join(HERE, "data_gen")
        os.makedirs(feat_dir, exist_ok=True)
        f_cathy = build_features(cathy_train, SPEEDS, os.path.join(feat_dir, "feats_cathy_train.pt"))
        if args.synth_lazy:  # computed when an epoch first draws the utterance (kept in memory)
            f_synth = [None] * len(synth)
        else:
            f_synth = build_features(synth, (1.0,), os.path.join(feat_dir, "feats_synth_train.pt")) if synth else []
        f_dev = [x[0].float() for x in build_features(cathy_dev, (1.0,), os.path.join(feat_dir, "feats_cathy_dev.pt"))]
        refs_dev = [d["text"] for d in cathy_dev]
        pool_cathy = [(f_cathy[i], torch.tensor(tok.encode(d["text"]))) for i, d in enumerate(cathy_train)]
        pool_synth = [(f_synth[i], torch.tensor(tok.encode(d["text"]))) for i, d in enumerate(synth)]
        norm_variant = SPEEDS.index(1.0)
    if args.dev_limit:
        f_dev, refs_dev = f_dev[:args.dev_limit], refs_dev[:args.dev_limit]
    data_info["synth_per_epoch"] = args.synth_per_epoch
    data_info["tempo_perturb"] = args.tempo
    data_info["synth_lazy"] = args.synth_lazy

    # ---------------- model
    cfg = dict(PRESETS[args.preset])
    cfg["vocab"] = len(tok)
    if args.lookahead_decoder:
        cfg["lookahead_decoder"] = True
    model = CascadedTransducer(**cfg).to(device)
    history = []  # --init-from continues its checkpoint's history; --resume replaces it below
    if resume:
        ck = torch.load(ckpt_last, map_location=device)
        model.load_state_dict(ck["model"])
    elif args.init_from:
        init = torch.load(args.init_from, map_location=device)
        if init["bpe_model"] != bpe_bytes:
            sys.exit("--init-from %s: its BPE model differs from the training data's (pack with "
                     "pack_feats.py --bpe-from %s)" % (args.init_from, args.init_from))
        sd = dict(init["model"])
        if args.lookahead_decoder:  # a one-pair checkpoint: the look-ahead pair starts as a copy
            for k in list(sd):
                for a, b in (("decoder.", "decoder_la."), ("joiner.", "joiner_la.")):
                    if k.startswith(a) and b + k[len(a):] not in sd:
                        sd[b + k[len(a):]] = sd[k]
        model.load_state_dict(sd)  # fp16 weights are copied into the fp32 parameters
        history = list(init.get("history", []))
        log("initialized from %s (step %d of its run)" % (args.init_from, init.get("step", 0)))
    else:
        if args.synth_lazy:
            sys.exit("--synth-lazy needs --init-from or --resume (a fresh model takes its feature statistics "
                     "from all training features)")
        allf = torch.cat([v[norm_variant if len(v) > 1 else 0].float() for v, _ in pool_cathy + pool_synth])
        model.encoder_causal.feat_mean.copy_(allf.mean(0))
        model.encoder_causal.feat_istd.copy_(1.0 / allf.std(0).clamp(min=1e-3))
        del allf
    n_params = {k: count(getattr(model, k)) for k in ["encoder_causal", "encoder_noncausal", "decoder", "joiner"]}
    log("params", n_params, "total (exported)", sum(n_params.values()))
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.98), weight_decay=1e-3)
    step, epoch0, train_time, best = 0, 0, 0.0, None
    if resume:
        opt.load_state_dict(ck["opt"])
        step, epoch0, train_time, history, best = ck["step"], ck["epoch"], ck["train_time"], ck["history"], ck.get("best")
        random.setstate(ck["py_rng"])
        torch.set_rng_state(ck["torch_rng"].cpu())
        log("resumed from epoch %d step %d" % (epoch0, step))
    assert args.sched != "cosine" or args.time_budget > 0, "--sched cosine needs --time-budget"

    def lr_at(s, elapsed):
        s = max(1, s)
        if args.sched == "cosine":
            frac = min(1.0, elapsed / args.time_budget)
            return args.lr * min(1.0, s / args.warmup) * 0.5 * (1 + math.cos(math.pi * frac))
        return args.lr * min(s / args.warmup, math.sqrt(args.warmup / s))

    def checkpoint(with_opt=True, state=None):
        ck = dict(model={k: v.detach().cpu() for k, v in (state or model.state_dict()).items()}, config=cfg,
                  bpe_model=bpe_bytes, step=step, epoch=epoch, train_time=train_time, history=history,
                  best=best, data=data_info, hardware=hw, args=vars(args))
        if with_opt:
            ck.update(opt=opt.state_dict(), py_rng=random.getstate(), torch_rng=torch.get_rng_state())
        return ck

    def evaluate(tag):
        t_dev = time.time()
        hs, hl = C.decode_feats(model, f_dev)
        model.train()
        w_s = C.wer(refs_dev, [tok.decode(h) for h in hs])
        w_l = C.wer(refs_dev, [tok.decode(h) for h in hl])
        log("  %s dev WER streaming %.2f look-ahead %.2f (%.1fs) | ref: %s | hyp_s: %s | hyp_l: %s" % (
            tag, w_s, w_l, time.time() - t_dev, normalize(refs_dev[0]), tok.decode(hs[0]), tok.decode(hl[0])))
        return w_s, w_l

    specaug = SpecAug()
    snaps = []
    t_start = time.time()
    out_of_time = False
    epoch = epoch0
    for epoch in range(epoch0 + 1, args.epochs + 1):
        model.train()
        t_ep = time.time()
        # epoch sample: all cathy (random speed) + a random subset of the synthetic set
        items = [(v[random.randrange(len(v))], tg) for v, tg in pool_cathy]
        n_syn = len(pool_synth) if args.synth_per_epoch < 0 else min(args.synth_per_epoch, len(pool_synth))
        t_feat, n_new = time.time(), 0
        for i in random.sample(range(len(pool_synth)), n_syn):
            if pool_synth[i][0] is None:  # --synth-lazy
                pool_synth[i] = ([C.fbank(C.load_wave(synth[i]["audio_filepath"])).half()], pool_synth[i][1])
                n_new += 1
            items.append((pool_synth[i][0][0], pool_synth[i][1]))
        if n_new:
            log("features for %d new synthetic utterances in %.1fs" % (n_new, time.time() - t_feat))
        if args.tempo:
            items = [(tempo(f.float(), random.choice(SPEEDS)), tg) for f, tg in items]
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
            lr = lr_at(step, time.time() - t_start)
            for g in opt.param_groups:
                g["lr"] = lr
            opt.zero_grad()
            loss.backward()
            gn = torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
            tot["rnnt_causal"] += float(l1); tot["rnnt_lookahead"] += float(l2); tot["ctc"] += float(lc)
            tot["tokens"] += ntok
            if args.save_every and step % args.save_every == 0:
                ck = checkpoint()
                ck.update(epoch=epoch - 1, partial_epoch=epoch, batches_done=bi + 1,
                          train_time=train_time + time.time() - t_ep)
                torch.save(ck, os.path.join(args.exp, "step-%d.pt" % step))
            if args.avg_last and step % args.snap_every == 0:
                snaps = (snaps + [{k: v.detach().clone() for k, v in model.state_dict().items()}])[-args.avg_last:]
            if bi % 20 == 0:
                log("ep %d %d/%d step %d lr %.2e loss/tok causal %.3f lookahead %.3f ctc %.3f gn %.2f" % (
                    epoch, bi, len(batches), step, lr, float(l1) / ntok, float(l2) / ntok,
                    float(lc) / ntok, float(gn)))
            if args.eval_every and step % args.eval_every == 0:
                w_s, w_l = evaluate("step %d" % step)
                t_sofar = train_time + time.time() - t_ep
                history.append(dict(step=step, epoch=epoch, train_s_total=round(t_sofar, 1),
                                    dev_wer_streaming=w_s, dev_wer_lookahead=w_l, dev_n=len(f_dev)))
                if best is None or (w_s + w_l) <= best["score"]:  # the learning curve's best point so far
                    best = dict(epoch=epoch, step=step, score=w_s + w_l, dev_wer_streaming=w_s,
                                dev_wer_lookahead=w_l)
                    ck = checkpoint()
                    ck.update(epoch=epoch - 1, partial_epoch=epoch, batches_done=bi + 1, train_time=t_sofar)
                    torch.save(ck, os.path.join(args.exp, "best.pt"))
            if args.time_budget and time.time() - t_start > args.time_budget:
                out_of_time = True
                break
        ep_time = time.time() - t_ep
        train_time += ep_time
        w_s = w_l = None
        if not args.eval_every or out_of_time or epoch == args.epochs:
            w_s, w_l = evaluate("epoch %d" % epoch)
        rec = dict(epoch=epoch, step=step, train_s=round(ep_time, 1),
                   loss_causal=tot["rnnt_causal"] / max(1, tot["tokens"]),
                   loss_lookahead=tot["rnnt_lookahead"] / max(1, tot["tokens"]),
                   loss_ctc=tot["ctc"] / max(1, tot["tokens"]), dev_wer_streaming=w_s, dev_wer_lookahead=w_l,
                   n_utts=len(items))
        history.append(rec)
        log("EPOCH", json.dumps(rec))
        if w_s is not None:
            is_best = best is None or (w_s + w_l) <= best["score"]  # ties: prefer the later epoch
            if is_best:
                best = dict(epoch=epoch, score=w_s + w_l, dev_wer_streaming=w_s, dev_wer_lookahead=w_l)
                torch.save(checkpoint(), os.path.join(args.exp, "best.pt"))
        ck = checkpoint()
        torch.save(ck, ckpt_last + ".tmp")
        os.replace(ckpt_last + ".tmp", ckpt_last)
        if args.keep_epochs:
            torch.save(ck, os.path.join(args.exp, "epoch-%d.pt" % epoch))
        if out_of_time:
            log("time budget reached")
            break
        if args.stop_at:
            hh, mm = map(int, args.stop_at.split(":"))
            now = time.localtime()
            if now.tm_hour * 60 + now.tm_min >= hh * 60 + mm:
                log("stop-at reached")
                break
    if args.split_dir:
        save_split(checkpoint(with_opt=False), args.split_dir, "last.pt", args.split_mb)
    if args.avg_last and len(snaps) > 1:
        avg = average_states(snaps)
        cur = {k: v.detach().clone() for k, v in model.state_dict().items()}
        model.load_state_dict(avg)
        w_s, w_l = evaluate("average of last %d snapshots" % len(snaps))
        history.append(dict(averaged=len(snaps), snap_every=args.snap_every, step=step,
                            dev_wer_streaming=w_s, dev_wer_lookahead=w_l))
        ck = checkpoint(with_opt=False, state=avg)
        torch.save(ck, os.path.join(args.exp, "avg.pt"))
        if args.split_dir:
            save_split(ck, args.split_dir, "avg.pt", args.split_mb)
        model.load_state_dict(cur)
    log("done; total train time %.1f min" % (train_time / 60))


if __name__ == "__main__":
    main()
