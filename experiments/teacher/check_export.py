#!/usr/bin/python3
"""Export check: the bundle's ONNX graphs in ONNX Runtime (onnxruntime-node, via ort_check.js) give
the same outputs as PyTorch on the same features.

 * causal encoder, run chunk by chunk with the generic cache protocol of docs/bundle.md (in ORT),
   vs the PyTorch whole-utterance chunk-masked forward (first ceil(T/4) frames);
 * the same in PyTorch (forward_chunk loop vs whole-utterance forward);
 * non-causal encoder on the causal output; decoder and joiner single steps on random inputs;
 * greedy hypotheses of both passes (ORT graphs vs PyTorch) are identical.

  /usr/bin/python3 experiments/teacher/check_export.py --ckpt experiments/teacher/exp/demo/best.pt \
      --bundle experiments/teacher/bundle
  /usr/bin/python3 experiments/teacher/check_export.py --random paper --bundle experiments/teacher/paper_scale/bundle
"""
import argparse
import json
import math
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import common as C  # noqa: E402
from model import CascadedTransducer, PRESETS  # noqa: E402


def save(work, name, t):
    np.ascontiguousarray(t.detach().numpy().astype(np.float32)).tofile(os.path.join(work, name))
    return name


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt")
    ap.add_argument("--random", choices=sorted(PRESETS), help="bundle was exported with export.py --random PRESET")
    ap.add_argument("--bundle", required=True)
    ap.add_argument("--data", default="/work/shared/data")
    ap.add_argument("--n", type=int, default=3, help="cathy test utterances to check")
    ap.add_argument("--work", default="")
    ap.add_argument("--tol", type=float, default=1e-4)
    ap.add_argument("--max-sym", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(2)
    if args.ckpt:
        model, tok, _ = C.load_checkpoint(args.ckpt)
    else:
        torch.manual_seed(0)
        mj = json.load(open(os.path.join(args.bundle, "model.json")))
        cfg = dict(PRESETS[args.random])
        cfg["vocab"] = mj["decoding"]["vocab_size"]
        model = CascadedTransducer(**cfg).eval()
    work = args.work or tempfile.mkdtemp(prefix="asrc_check_")
    os.makedirs(work, exist_ok=True)
    items = C.read_manifest(os.path.join(args.data, "cathy", "manifest.jsonl"), "test")
    # the shortest, a middle and the longest of the first 40 (exercises 1..many chunks)
    cand = sorted(items[:40], key=lambda d: d["duration"])
    picks = [cand[0], cand[len(cand) // 2], cand[-1]][: args.n] if args.n <= 3 else cand[: args.n]
    enc = model.encoder_causal
    meta = {"max_sym": args.max_sym, "utts": []}
    worst_py = 0.0
    with torch.no_grad():
        for i, it in enumerate(picks):
            f = C.fbank(C.load_wave(it["audio_filepath"]))
            T = f.shape[0]
            full, olens = enc(f[None], torch.tensor([T]))
            Tp = int(olens[0])
            ref = full[0, :Tp]
            # PyTorch chunk-by-chunk equals the whole-utterance forward
            xp = enc.pad_features(f[None], torch.tensor([T]))
            cache = enc.init_cache(1)
            outs = []
            for k in range(math.ceil(T / enc.chunk_frames)):
                o, *cache = enc.forward_chunk(xp[:, k * enc.chunk_frames: k * enc.chunk_frames + enc.chunk_frames + 3], *cache)
                outs.append(o)
            py_stream = torch.cat(outs, 1)[0, :Tp]
            worst_py = max(worst_py, float((py_stream - ref).abs().max()))
            ref2, _ = model.encoder_noncausal(ref[None], torch.tensor([Tp]))
            ref2 = ref2[0]
            meta["utts"].append({
                "id": it["id"], "T": T,
                "feats": save(work, "feats_%d.f32" % i, f),
                "ref_causal": save(work, "ref_causal_%d.f32" % i, ref),
                "ref_noncausal": save(work, "ref_noncausal_%d.f32" % i, ref2),
                "hyp_streaming": C.greedy_search(model, ref, args.max_sym),
                "hyp_lookahead": C.greedy_search(model, ref2, args.max_sym),
            })
        # decoder / joiner probes
        g = torch.Generator().manual_seed(0)
        V, H, nl = model.config["vocab"], model.config["dec_hidden"], model.config["dec_layers"]
        y = torch.randint(0, V, (4, 1), generator=g)
        h = torch.randn(nl, 4, H, generator=g) * 0.5
        c = torch.randn(nl, 4, H, generator=g) * 0.5
        dout, (h2, c2) = model.decoder.lstm(model.decoder.embed(y), (h, c))
        meta["decoder_probe"] = {"y": [int(v) for v in y[:, 0]], "states": [save(work, "dec_h.f32", h), save(work, "dec_c.f32", c)],
                                 "ref_out": save(work, "dec_out.f32", dout[:, 0]),
                                 "ref_states": [save(work, "dec_h2.f32", h2), save(work, "dec_c2.f32", c2)]}
        e = torch.randn(6, model.config["d"], generator=g)
        dd = torch.randn(6, H, generator=g)
        meta["joiner_probe"] = {"enc": save(work, "j_enc.f32", e), "enc_shape": list(e.shape),
                                "dec": save(work, "j_dec.f32", dd), "dec_shape": list(dd.shape),
                                "ref": save(work, "j_ref.f32", model.joiner(e, dd))}
    json.dump(meta, open(os.path.join(work, "meta.json"), "w"), indent=1)
    print("pytorch: chunk-by-chunk vs whole-utterance causal encoder max abs diff %.2e" % worst_py)
    r = subprocess.run(["node", os.path.join(HERE, "ort_check.js"), args.bundle, work])
    if r.returncode != 0:
        sys.exit("ort_check.js failed")
    res = json.load(open(os.path.join(work, "ort_out.json")))
    ok = worst_py <= args.tol
    for u in res["utts"]:
        ok &= u["causal_max_abs_diff"] <= args.tol and u["noncausal_max_abs_diff"] <= args.tol
        ok &= u["hyp_streaming_equal"] and u["hyp_lookahead_equal"] and u["encoder_out_lens"] == u["T_out"]
    ok &= res["decoder_max_abs_diff"] <= args.tol and res["joiner_max_abs_diff"] <= args.tol
    if args.ckpt:
        for u in res["utts"]:
            print("  %s streaming: %s" % (u["id"], tok.decode(u["hyp_streaming"])))
            print("  %s lookahead: %s" % (u["id"], tok.decode(u["hyp_lookahead"])))
    print("CHECK %s (tol %.0e; work dir %s)" % ("PASSED" if ok else "FAILED", args.tol, work))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
