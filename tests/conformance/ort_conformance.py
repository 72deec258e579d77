#!/usr/bin/python3
"""ONNX Runtime (npm onnxruntime-node) through the rules of conformance_test.cc, for RESULTS.md.

Usage: /usr/bin/python3 tests/conformance/ort_conformance.py [--root DATA/node] [--verbose]

Converts every case's test_data_set_* (TensorProto files) to raw buffers with onnx.numpy_helper,
then ort_conformance.js runs each model in ONNX Runtime and compares as conformance_test.cc does:
rtol 1e-3, atol 1e-5 for floats (NaN == NaN, equal infinities), integers, bools and strings exact,
dtype and shape equal. Random-output cases (Bernoulli, Random*, Multinomial, training-mode Dropout)
are left out of PASS, as ours are. The Node.js API has tensors only, so cases with sequence or
optional graph inputs/outputs are counted as not run (the reason is printed), and bfloat16 has no
JS type. Prints `ort: PASS/TOTAL p/932`, and PASS over the cases ONNX Runtime can be fed here
less conformance_test.cc's bad references (kBadReference): the same set as the harness's line
"PASS over the cases a tensor-only harness can run", so the two figures compare.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
RANDOM_OPS = {"Bernoulli", "Multinomial", "RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike"}
# conformance_test.cc's kBadReference (stored outputs their own models contradict).
BAD_REFERENCE = {"test_adam_multiple", "test_cast_FLOAT_to_BFLOAT16", "test_castlike_BFLOAT16_to_FLOAT",
                 "test_castlike_BFLOAT16_to_FLOAT_expanded", "test_castlike_FLOAT_to_BFLOAT16",
                 "test_castlike_FLOAT_to_BFLOAT16_expanded"}
ORT_TYPES = {np.float32: "float32", np.float64: "float64", np.float16: "float16", np.int8: "int8",
             np.uint8: "uint8", np.int16: "int16", np.uint16: "uint16", np.int32: "int32",
             np.uint32: "uint32", np.int64: "int64", np.uint64: "uint64", np.bool_: "bool"}


def ops_of(graph):
    out = set()
    for n in graph.node:
        out.add(n.op_type)
        for a in n.attribute:
            if a.HasField("g"):
                out |= ops_of(a.g)
            for g in a.graphs:
                out |= ops_of(g)
    return out


def tensor_entry(path, out_dir, tag):
    t = onnx.TensorProto()
    with open(path, "rb") as f:
        t.ParseFromString(f.read())
    arr = numpy_helper.to_array(t)
    e = {"dims": [int(d) for d in arr.shape]}
    if arr.dtype.kind in "OSU":
        e["type"] = "string"
        e["strings"] = [s.decode() if isinstance(s, bytes) else str(s) for s in arr.reshape(-1)]
        return e
    typ = ORT_TYPES.get(arr.dtype.type)
    if typ is None:
        raise ValueError("no ONNX Runtime JS type for numpy dtype %s" % arr.dtype)
    e["type"] = typ
    e["file"] = os.path.join(out_dir, tag + ".bin")
    np.ascontiguousarray(arr).astype(arr.dtype.newbyteorder("<")).tofile(e["file"])
    return e


def convert(case_dir, out_dir):
    """The manifest entry of one case, or (None, reason) when the JS API cannot feed it."""
    m = onnx.load(os.path.join(case_dir, "model.onnx"))
    name = os.path.basename(case_dir)
    for v in list(m.graph.input) + list(m.graph.output):
        kind = v.type.WhichOneof("value")
        if kind != "tensor_type":
            return None, "graph value '%s' is a %s (the Node.js API feeds tensors only)" % (v.name, kind)
        if v.type.tensor_type.elem_type == onnx.TensorProto.BFLOAT16:
            return None, "graph value '%s' is bfloat16 (no Node.js type)" % v.name
    inits = {i.name for i in m.graph.initializer}
    feed_names = [v.name for v in m.graph.input if v.name not in inits]
    sets = []
    for s in sorted(d for d in os.listdir(case_dir) if d.startswith("test_data_set_")):
        sd = os.path.join(case_dir, s)
        k_in = sorted((f for f in os.listdir(sd) if f.startswith("input_")), key=lambda f: int(f[6:-3]))
        k_out = sorted((f for f in os.listdir(sd) if f.startswith("output_")), key=lambda f: int(f[7:-3]))
        ins = [dict(tensor_entry(os.path.join(sd, f), out_dir, "%s_%s_%s" % (name, s, f[:-3])), name=feed_names[i])
               for i, f in enumerate(k_in)]
        outs = [tensor_entry(os.path.join(sd, f), out_dir, "%s_%s_%s" % (name, s, f[:-3])) for f in k_out]
        sets.append({"inputs": ins, "outputs": outs})
    random = bool(ops_of(m.graph) & RANDOM_OPS) or name.startswith("test_training_dropout")
    return {"name": name, "model": os.path.join(case_dir, "model.onnx"), "random": random, "sets": sets}, None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", default=os.path.join(os.environ.get("ASRC_ONNX_TESTDATA", "/usr/share/libonnx-testdata/data"), "node"))
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()
    cases = sorted(d for d in os.listdir(args.root) if os.path.exists(os.path.join(args.root, d, "model.onnx")))
    with tempfile.TemporaryDirectory(prefix="asrc_ort_conf_") as tmp:
        manifest, not_run = [], {}
        for c in cases:
            try:
                entry, why = convert(os.path.join(args.root, c), tmp)
            except Exception as e:  # a data file numpy cannot read: a case ORT is not given
                entry, why = None, "data: %s" % e
            if entry is None:
                not_run[c] = why
            else:
                manifest.append(entry)
        mpath = os.path.join(tmp, "manifest.json")
        with open(mpath, "w") as f:
            json.dump(manifest, f)
        r = subprocess.run(["node", os.path.join(HERE, "ort_conformance.js"), mpath], capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit("ort_conformance.js failed: " + r.stderr[-2000:])
        results = json.loads(r.stdout)
    passed = [c for c, res in results.items() if res["ok"] and not res["random"]]
    random_ok = [c for c, res in results.items() if res["ok"] and res["random"]]
    total = len(cases)
    good = [c for c in cases if c not in BAD_REFERENCE]
    print("ort: onnxruntime-node, %d cases, %d not run (non-tensor or bfloat16 graph values)" % (total, len(not_run)))
    print("ort: PASS/TOTAL %d/%d" % (len(passed), total))
    runnable = [c for c in good if c not in not_run]
    print("ort: PASS over the cases a tensor-only harness can run (graph inputs and outputs all tensors, none "
          "bfloat16; bad references left out) %d/%d" % (len([c for c in passed if c in runnable]), len(runnable)))
    print("ort: random-output cases that ran (not in PASS): %d" % len(random_ok))
    if args.verbose:
        for c, why in sorted(not_run.items()):
            print("ort: not run %s: %s" % (c, why))
        for c, res in sorted(results.items()):
            if not res["ok"]:
                print("ort: FAIL %s: %s" % (c, res["why"]))


if __name__ == "__main__":
    main()
