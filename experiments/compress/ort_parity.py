#!/usr/bin/python3
"""ONNX Runtime parity of a compressed bundle: every graph run by `asrc run` and by ONNX Runtime
(onnxruntime-node, tests/passes/ort_eval.js) on the same seeded random inputs; prints the max abs
difference relative to the output's max magnitude per output.

Usage: /usr/bin/python3 experiments/compress/ort_parity.py BUNDLE [ASRC_BINARY]
Symbolic dims become 1 (batch "N") or 20 (anything else); int64 inputs are 0 except x_lens (= T).
"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import numpy_helper

root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
bundle = sys.argv[1]
asrc = sys.argv[2] if len(sys.argv) > 2 else os.path.join(root, "build/apps/asrc/asrc")
cfg = json.load(open(os.path.join(bundle, "model.json")))
rng = np.random.default_rng(0)
worst = 0.0
for role, fname in cfg["graphs"].items():
    path = os.path.join(bundle, fname)
    m = onnx.load(path, load_external_data=False)
    inits = {i.name for i in m.graph.initializer}
    tmp = tempfile.mkdtemp(prefix="asrc_parity_")
    spec, args, T = [], [], 20
    for i, vi in enumerate(x for x in m.graph.input if x.name not in inits):
        tt = vi.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") else (1 if d.dim_param == "N" else T) for d in tt.shape.dim]
        if tt.elem_type == onnx.TensorProto.INT64:
            a = np.zeros(dims, np.int64)
            if vi.name == "x_lens":
                a[:] = T
            ty = "int64"
        else:
            a = rng.standard_normal(dims).astype(np.float32)
            ty = "float32"
        pb = os.path.join(tmp, f"in_{i}.pb")
        t = numpy_helper.from_array(a, vi.name)
        open(pb, "wb").write(t.SerializeToString())
        args += ["--input", f"{vi.name}={pb}"]
        a.tofile(os.path.join(tmp, f"in_{i}.bin"))
        spec.append({"name": vi.name, "type": ty, "dims": dims, "file": f"in_{i}.bin"})
    json.dump(spec, open(os.path.join(tmp, "inputs.json"), "w"))
    subprocess.run([asrc, "run", path, "--output-dir", os.path.join(tmp, "asrc")] + args, check=True)
    subprocess.run(["node", os.path.join(root, "tests/passes/ort_eval.js"), path, tmp], check=True)
    meta = json.load(open(os.path.join(tmp, "outputs.json")))
    for o in meta:
        ort = np.fromfile(os.path.join(tmp, o["file"]), {"float32": np.float32, "int64": np.int64}[o["type"]])
        ours = numpy_helper.to_array(onnx.load_tensor(os.path.join(tmp, "asrc", o["name"] + ".pb"))).ravel()
        scale = max(1e-6, float(np.abs(ort).max()))
        rel = float(np.abs(ort.astype(np.float64) - ours.astype(np.float64)).max()) / scale
        worst = max(worst, rel)
        print(f"{role:18s} {o['name']:20s} max|ort-asrc|/max|ort| = {rel:.2e}")
print(f"worst {worst:.2e}")
