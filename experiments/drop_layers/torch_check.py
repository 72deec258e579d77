#!/usr/bin/python3
"""drop-layers against PyTorch: `asrc compress` drops causal block k (and non-causal block j) from
an exported bundle; ONNX Runtime runs the result with the streaming protocol of docs/bundle.md
(tests/asr/ort_stream_ref.js: caches allocated from the new model.json, fed back chunk by chunk);
PyTorch runs the same model built without those layers (forward_chunk with the smaller stacked
caches, then the non-causal encoder). Passes when both encoder outputs agree within --tol
(max abs difference / max abs value), and dropping nothing gives bit-identical ONNX Runtime
outputs to the unmodified export.

  /usr/bin/python3 experiments/drop_layers/torch_check.py --drop-causal 3            # demo teacher
  /usr/bin/python3 experiments/drop_layers/torch_check.py --tiny --drop-causal 1 --drop-noncausal 0
  /usr/bin/python3 experiments/drop_layers/torch_check.py --tiny --per-layer-caches --drop-causal 0,2
"""
import argparse
import copy
import json
import math
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "experiments", "teacher"))
import common as C  # noqa: E402
import export as E  # noqa: E402
from model import CascadedTransducer  # noqa: E402

TINY = dict(vocab=16, d=32, heads=2, ff=64, causal_layers=4, noncausal_layers=2, kernel=5, sub_channels=8,
            chunk_frames=16, left_context=8, dec_embed=16, dec_hidden=16, dec_layers=1, joint=16, dropout=0.0)


class PlaceholderTokens:
    def __init__(self, vocab):
        self.vocab = vocab

    def tokens_txt(self):
        return "<blk> 0\n" + "".join("t%d %d\n" % (i, i) for i in range(1, self.vocab))


class PerLayerCausal(torch.nn.Module):
    """The causal encoder with one cache input/output per layer and kind (k_i, v_i, conv_i), as
    other exporters lay them out, instead of model.py's stacked [layers, ...] caches."""

    def __init__(self, enc):
        super().__init__()
        self.enc = enc

    def forward(self, x, offset, *caches):
        enc, n = self.enc, self.enc.num_layers
        x = enc.sub(enc.normalize(x))
        L = enc.left_context
        valid = torch.arange(L, dtype=torch.int64) >= (L - offset)
        allowed = torch.cat([valid, torch.ones(x.shape[1], dtype=torch.bool)])[None, None, None, :]
        new = []
        for i, layer in enumerate(enc.layers):
            x, nk, nv, nc = layer.forward_chunk(x, caches[i], caches[n + i], caches[2 * n + i], allowed)
            new += [nk, nv, nc]
        return (x, offset + x.shape[1], *new)


def export_per_layer_caches(model, bundle):
    enc = model.encoder_causal
    n, L, d, K = enc.num_layers, enc.left_context, enc.d, enc.kernel
    kinds = [("k", [1, L, d]), ("v", [1, L, d]), ("conv", [1, d, K - 1])]
    ins = ["%s_%d" % (kind, i) for kind, _ in kinds for i in range(n)]
    outs = ["new_%s_%d" % (kind, i) for i in range(n) for kind, _ in kinds]
    caches = [torch.zeros(*shape) for _, shape in kinds for _ in range(n)]
    torch.onnx.export(PerLayerCausal(enc), (torch.randn(1, enc.chunk_frames + 3, 80), torch.zeros(1, dtype=torch.int64),
                                            *caches),
                      os.path.join(bundle, "encoder_causal.onnx"), opset_version=E.OPSET,
                      input_names=["x", "offset"] + ins, output_names=["encoder_out", "new_offset"] + outs,
                      do_constant_folding=True)
    model.eval()
    mj_path = os.path.join(bundle, "model.json")
    mj = json.load(open(mj_path))
    mj["streaming"]["cache"] = [{"input": "offset", "output": "new_offset", "shape": [1], "dtype": "int64"}] + [
        {"input": "%s_%d" % (kind, i), "output": "new_%s_%d" % (kind, i), "shape": shape, "dtype": "float32"}
        for kind, shape in kinds for i in range(n)]
    json.dump(mj, open(mj_path, "w"), indent=2)


def without(model, causal, noncausal):
    m = copy.deepcopy(model)
    for layers, drop in ((m.encoder_causal.layers, causal), (m.encoder_noncausal.layers, noncausal)):
        for k in sorted(drop, reverse=True):
            del layers[k]
    m.encoder_causal.num_layers = len(m.encoder_causal.layers)
    return m.eval()


def torch_outputs(model, feats):
    enc = model.encoder_causal
    T = feats.shape[0]
    xp = enc.pad_features(feats[None], torch.tensor([T]))
    cache = enc.init_cache(1)
    outs = []
    for k in range(math.ceil(T / enc.chunk_frames)):
        o, *cache = enc.forward_chunk(xp[:, k * enc.chunk_frames: k * enc.chunk_frames + enc.chunk_frames + 3], *cache)
        outs.append(o)
    Tp = (T + 3) // 4
    causal = torch.cat(outs, 1)[:, :Tp]
    noncausal, _ = model.encoder_noncausal(causal, torch.tensor([Tp]))
    return causal[0].numpy(), noncausal[0].numpy()


def ort_outputs(bundle, feats, work, tag):
    f = os.path.join(work, "feats.f32")
    np.ascontiguousarray(feats.numpy().astype(np.float32)).tofile(f)
    prefix = os.path.join(work, tag)
    r = subprocess.run(["node", os.path.join(ROOT, "tests", "asr", "ort_stream_ref.js"), bundle, f,
                        str(feats.shape[0]), prefix, "3"], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit("ort_stream_ref.js failed on %s:\n%s" % (bundle, r.stderr))
    res = json.loads(r.stdout)
    D = res["dim"]
    return (np.fromfile(prefix + ".causal.f32", dtype=np.float32).reshape(-1, D),
            np.fromfile(prefix + ".noncausal.f32", dtype=np.float32).reshape(-1, D))


def compress(asrc, bundle, steps, out):
    pipe = os.path.join(out + ".json")
    json.dump({"name": "drop-check", "passes": steps}, open(pipe, "w"))
    r = subprocess.run([asrc, "compress", "--pipeline", pipe, "--model", bundle, "--out", out, "--no-eval", "--quiet"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit("asrc compress failed:\n" + r.stdout + r.stderr)
    return os.path.join(out, "model")


def rel(a, b):
    if a.shape != b.shape:
        return float("inf")
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt", default=os.path.join(ROOT, "experiments/teacher/checkpoint/demo_fp16.pt"))
    ap.add_argument("--tiny", action="store_true", help="a small random model instead of the checkpoint")
    ap.add_argument("--drop-causal", default="3", help="comma-separated causal block indices")
    ap.add_argument("--drop-noncausal", default="", help="comma-separated non-causal block indices")
    ap.add_argument("--asrc", default=os.path.join(ROOT, "build/apps/asrc/asrc"))
    ap.add_argument("--data", default="/work/shared/data")
    ap.add_argument("--utts", type=int, default=2)
    ap.add_argument("--tol", type=float, default=1e-5)
    ap.add_argument("--work", default="")
    ap.add_argument("--per-layer-caches", action="store_true",
                    help="export the causal encoder with one cache input/output per layer (PerLayerCausal)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    work = args.work or tempfile.mkdtemp(prefix="asrc_drop_check_")
    os.makedirs(work, exist_ok=True)
    if args.tiny:
        model = CascadedTransducer(**TINY).eval()
        tok = PlaceholderTokens(TINY["vocab"])
    else:
        model, tok, _ = C.load_checkpoint(args.ckpt)
    model = model.float().eval()
    bundle = os.path.join(work, "bundle")
    with torch.no_grad():
        E.export(model, tok, bundle, {"weights": "torch_check.py"})
        if args.per_layer_caches:
            export_per_layer_caches(model, bundle)
    # torch.onnx.export restores the wrappers' default train mode into the submodules: back to eval
    model.eval()
    dc = [int(v) for v in args.drop_causal.split(",") if v != ""]
    dn = [int(v) for v in args.drop_noncausal.split(",") if v != ""]
    steps = []
    if dc:
        steps.append({"pass": "drop-layers", "options": {"method": "index", "blocks": args.drop_causal}})
    if dn:
        steps.append({"pass": "drop-layers", "options": {"method": "index", "blocks": args.drop_noncausal,
                                                         "graphs": ["encoder_noncausal"]}})
    dropped = compress(args.asrc, bundle, steps, os.path.join(work, "dropped"))
    nothing = compress(args.asrc, bundle, [{"pass": "drop-layers", "options": {"count": 0}}],
                       os.path.join(work, "nothing"))
    ref_model = without(model, dc, dn)
    mj = json.load(open(os.path.join(dropped, "model.json")))
    print("model.json: streaming.cache %s, causal_layers %s, noncausal_layers %s" % (
        [(c["input"], c["shape"]) for c in mj["streaming"]["cache"]], mj["info"]["model_config"]["causal_layers"],
        mj["info"]["model_config"]["noncausal_layers"]))
    if args.tiny:
        g = torch.Generator().manual_seed(1)
        feats = [torch.randn(T, 80, generator=g) * 2 - 4 for T in (37, 70)][: args.utts]
    else:
        items = C.read_manifest(os.path.join(args.data, "cathy", "manifest.jsonl"), "test")
        items = sorted(items[:20], key=lambda d: d["duration"])
        feats = [C.fbank(C.load_wave(it["audio_filepath"])) for it in (items[0], items[-1])][: args.utts]
    # model.json's caches are exactly the causal graph's inputs and outputs besides the stream's
    import onnx
    g = onnx.load(os.path.join(dropped, "encoder_causal.onnx")).graph
    spec = mj["streaming"]["cache"]
    consistent = (sorted(c["input"] for c in spec) == sorted(i.name for i in g.input if i.name != "x") and
                  sorted(c["output"] for c in spec) == sorted(o.name for o in g.output if o.name != "encoder_out"))
    print("model.json streaming.cache matches the graph's cache inputs/outputs: %s" % consistent)
    ok = consistent
    worst = {"causal": 0.0, "noncausal": 0.0}
    with torch.no_grad():
        for i, f in enumerate(feats):
            rc, rn = torch_outputs(ref_model, f)
            oc, on = ort_outputs(dropped, f, work, "dropped_%d" % i)
            base_c, base_n = ort_outputs(bundle, f, work, "base_%d" % i)
            same_c, same_n = ort_outputs(nothing, f, work, "nothing_%d" % i)
            identical = np.array_equal(base_c, same_c) and np.array_equal(base_n, same_n)
            ec, en = rel(oc, rc), rel(on, rn)
            worst["causal"] = max(worst["causal"], ec)
            worst["noncausal"] = max(worst["noncausal"], en)
            ok &= identical and ec <= args.tol and en <= args.tol
            print("utt %d (%d frames): ORT(dropped) vs PyTorch(without blocks) rel err causal %.2e noncausal %.2e; "
                  "drop nothing bit-identical: %s" % (i, f.shape[0], ec, en, identical))
    print("CHECK %s (drop causal %s, non-causal %s; tol %.0e; worst causal %.2e noncausal %.2e; work %s)" % (
        "PASSED" if ok else "FAILED", dc, dn, args.tol, worst["causal"], worst["noncausal"], work))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
