#!/usr/bin/python3
"""The two-decoder variant of the demo teacher (model.py lookahead_decoder=True), made on the CPU:
the committed weights (checkpoint/demo_fp16.pt), the look-ahead pass's decoder + joiner started as
copies of the shared pair, then only that pair trained (both encoders and the streaming pair
frozen) with the look-ahead pass's rnnt loss on cathy train. Exports the bundle (graphs
decoder_lookahead / joiner_lookahead, docs/bundle.md) for asrc's share-decoder pass.

  OMP_WAIT_POLICY=PASSIVE /usr/bin/python3 experiments/teacher/two_decoder.py \
      --out experiments/teacher/exp/two_decoder --steps 120

A full training run of the variant is train.py --lookahead-decoder (both pairs trained from the
start, on a GPU machine as in README section 2b); none was made for this bundle.
"""
import argparse
import json
import os
import random
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import common as C  # noqa: E402
import export as E  # noqa: E402
from model import CascadedTransducer  # noqa: E402
from rnnt import rnnt_loss  # noqa: E402
from textnorm import normalize  # noqa: E402


def wer(hyps, refs, tok):
    import torchaudio
    errs = sum(torchaudio.functional.edit_distance(normalize(r).split(), tok.decode(h).split())
               for h, r in zip(hyps, refs))
    return 100.0 * errs / max(1, sum(len(normalize(r).split()) for r in refs))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt", default=os.path.join(HERE, "checkpoint", "demo_fp16.pt"))
    ap.add_argument("--data", default="/work/shared/data")
    ap.add_argument("--out", required=True)
    ap.add_argument("--steps", type=int, default=120)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--dev", type=int, default=40, help="cathy dev utterances for the before/after WER")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    random.seed(args.seed)
    torch.manual_seed(args.seed)
    base, tok, ck = C.load_checkpoint(args.ckpt)
    cfg = dict(ck["config"], lookahead_decoder=True)
    model = CascadedTransducer(**cfg)
    sd = dict(base.state_dict())
    for k in list(sd):
        for a, b in (("decoder.", "decoder_la."), ("joiner.", "joiner_la.")):
            if k.startswith(a):
                sd[b + k[len(a):]] = sd[k].clone()
    model.load_state_dict(sd)
    model.float().eval()
    train_params = list(model.decoder_la.parameters()) + list(model.joiner_la.parameters())
    for p in model.parameters():
        p.requires_grad_(False)
    for p in train_params:
        p.requires_grad_(True)
    opt = torch.optim.AdamW(train_params, lr=args.lr, weight_decay=1e-3)
    manifest = os.path.join(args.data, "cathy", "manifest.jsonl")
    train = C.read_manifest(manifest, "train")
    dev = C.read_manifest(manifest, "dev")[: args.dev]
    dev_feats = [C.fbank(C.load_wave(d["audio_filepath"])) for d in dev]
    refs = [d["text"] for d in dev]
    with torch.no_grad():
        _, hl0 = C.decode_feats(model, dev_feats)
    before = wer(hl0, refs, tok)
    print("look-ahead dev WER (%d utts) before: %.2f" % (len(dev), before), flush=True)
    t0 = time.time()
    for step in range(1, args.steps + 1):
        batch = random.sample(train, args.batch)
        feats = [C.fbank(C.load_wave(d["audio_filepath"])) for d in batch]
        targets = [torch.tensor(tok.encode(d["text"])) for d in batch]
        lens = torch.tensor([f.shape[0] for f in feats])
        tlens = torch.tensor([len(t) for t in targets])
        x = torch.nn.utils.rnn.pad_sequence(feats, batch_first=True)
        y = torch.nn.utils.rnn.pad_sequence(targets, batch_first=True)
        with torch.no_grad():
            enc, elens = model.encoder_causal(x, lens)
            enc = enc[:, : int(elens.max())]
            enc2, _ = model.encoder_noncausal(enc, elens)
        model.decoder_la.train()
        dec, _ = model.decoder_la(torch.cat([torch.zeros(len(batch), 1, dtype=torch.int64), y], 1))
        loss = rnnt_loss(model.joiner_la.full(enc2, dec), y.int(), elens.int(), tlens.int(), blank=0,
                         reduction="sum") / float(tlens.sum())
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(train_params, 5.0)
        opt.step()
        model.decoder_la.eval()
        if step % 10 == 0:
            print("step %d loss %.3f (%.0f s)" % (step, float(loss), time.time() - t0), flush=True)
    with torch.no_grad():
        _, hl1 = C.decode_feats(model, dev_feats)
    after = wer(hl1, refs, tok)
    print("look-ahead dev WER (%d utts) after: %.2f" % (len(dev), after), flush=True)
    info = {"weights": "trained", "checkpoint": os.path.basename(args.ckpt),
            "two_decoder": {"made_by": "experiments/teacher/two_decoder.py", "steps": args.steps,
                            "batch": args.batch, "lr": args.lr, "seed": args.seed,
                            "trained": "decoder_lookahead and joiner_lookahead only (encoders and the streaming pair frozen)",
                            "init": "copies of the shared decoder and joiner",
                            "data": "cathy train (<data>/cathy/manifest.jsonl split train)",
                            "hardware": "2 shared CPU cores", "seconds": round(time.time() - t0, 1),
                            "lookahead_dev_wer_before": before, "lookahead_dev_wer_after": after,
                            "dev_utts": len(dev)}}
    with torch.no_grad():
        mj = E.export(model, tok, os.path.join(args.out, "bundle"), info)
    print("exported", os.path.join(args.out, "bundle"), json.dumps(mj["info"]["params"]))


if __name__ == "__main__":
    main()
