#!/usr/bin/python3
"""share-decoder against PyTorch: a two-decoder cascade (model.py lookahead_decoder=True, random
weights, so the two pairs differ) exported by experiments/teacher/export.py; `asrc compress` keeps
one pair with choose = streaming, lookahead and average; ONNX Runtime runs the output bundle's
decoder and joiner (tests/passes/ort_eval.js) on seeded probes and must match PyTorch's
corresponding pair (for average: a pair with the mean of the two pairs' parameters) within --tol
(max abs difference / max abs value); model.json must name exactly the four graphs.

  /usr/bin/python3 experiments/drop_layers/share_check.py
"""
import argparse
import copy
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "experiments", "teacher"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import export as E  # noqa: E402
from model import CascadedTransducer  # noqa: E402
from torch_check import TINY, PlaceholderTokens, compress, rel  # noqa: E402


def ort(model_path, feeds, work):
    os.makedirs(work, exist_ok=True)
    spec = []
    for i, (name, a) in enumerate(feeds):
        f = "in_%d.bin" % i
        a.tofile(os.path.join(work, f))
        spec.append({"name": name, "type": "int64" if a.dtype == np.int64 else "float32", "dims": list(a.shape),
                     "file": f})
    json.dump(spec, open(os.path.join(work, "inputs.json"), "w"))
    r = subprocess.run(["node", os.path.join(ROOT, "tests", "passes", "ort_eval.js"), model_path, work],
                       capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit("ort_eval.js failed on %s:\n%s" % (model_path, r.stderr))
    out = {}
    for o in json.load(open(os.path.join(work, "outputs.json"))):
        out[o["name"]] = np.fromfile(os.path.join(work, o["file"]), dtype=np.float32).reshape(o["dims"])
    return out


def averaged(model):
    m = copy.deepcopy(model)
    for a, b in ((m.decoder, m.decoder_la), (m.joiner, m.joiner_la)):
        sa, sb = a.state_dict(), b.state_dict()
        a.load_state_dict({k: (sa[k] + sb[k]) / 2 for k in sa})
    return m.eval()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--asrc", default=os.path.join(ROOT, "build/apps/asrc/asrc"))
    ap.add_argument("--tol", type=float, default=1e-5)
    ap.add_argument("--work", default="")
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    work = args.work or tempfile.mkdtemp(prefix="asrc_share_check_")
    model = CascadedTransducer(**dict(TINY, lookahead_decoder=True)).eval()
    bundle = os.path.join(work, "bundle")
    with torch.no_grad():
        E.export(model, PlaceholderTokens(TINY["vocab"]), bundle, {"weights": "share_check.py"})
    model.eval()
    g = torch.Generator().manual_seed(1)
    H, V = TINY["dec_hidden"], TINY["vocab"]
    y = torch.randint(0, V, (3, 1), generator=g)
    h, c = torch.randn(1, 3, H, generator=g), torch.randn(1, 3, H, generator=g)
    enc, dec = torch.randn(3, TINY["d"], generator=g), torch.randn(3, H, generator=g)
    ok = True
    refs = {"streaming": model, "lookahead": model, "average": averaged(model)}
    for choose, ref in refs.items():
        out = compress(args.asrc, bundle, [{"pass": "share-decoder", "options": {"choose": choose}}],
                       os.path.join(work, choose))
        graphs = json.load(open(os.path.join(out, "model.json")))["graphs"]
        dec_t, join_t = ref.pair(choose == "lookahead")
        with torch.no_grad():
            d_out, (h2, c2) = dec_t.lstm(dec_t.embed(y), (h, c))
            logit = join_t(enc, dec)
        o_dec = ort(os.path.join(out, "decoder.onnx"), [("y", y.numpy()), ("h", h.numpy()), ("c", c.numpy())],
                    os.path.join(work, choose + "_dec"))
        o_join = ort(os.path.join(out, "joiner.onnx"), [("encoder_out", enc.numpy()), ("decoder_out", dec.numpy())],
                     os.path.join(work, choose + "_join"))
        errs = [rel(o_dec["decoder_out"], d_out[:, 0].numpy()), rel(o_dec["h_out"], h2.numpy()),
                rel(o_dec["c_out"], c2.numpy()), rel(o_join["logit"], logit.numpy())]
        good = sorted(graphs) == ["decoder", "encoder_causal", "encoder_noncausal", "joiner"] and max(errs) <= args.tol
        ok &= good
        print("choose %-9s graphs %s; ORT vs PyTorch rel err decoder_out %.1e h %.1e c %.1e logit %.1e: %s" % (
            choose, sorted(graphs), *errs, "ok" if good else "FAIL"))
    # the two pairs differ, so keeping the wrong one would show
    with torch.no_grad():
        apart = rel(model.joiner(enc, dec).numpy(), model.joiner_la(enc, dec).numpy())
    ok &= apart > 1e-2
    print("CHECK %s (tol %.0e; the pairs' logits differ by %.2f rel; work %s)" % ("PASSED" if ok else "FAILED", args.tol,
                                                                                 apart, work))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
