#!/usr/bin/python3
"""A stand-in stateless-decoder student for the sherpa-onnx export check (issue 13), until the
tar-decoder pass gives one: the demo teacher's cascade and joiner unchanged, its LSTM decoder run
from a zero state over the last CONTEXT labels only (decoder_type "stateless", context_size
CONTEXT). It is a worse decoder than the teacher's (the joiner was trained against the LSTM's full
history), but a real stateless one: decoder_out depends on the last CONTEXT labels and nothing
else, which is what sherpa-onnx's transducer decoder protocol needs.

usage: /usr/bin/python3 experiments/export/make_stateless_teacher.py OUT_DIR [--context 2]
"""
import argparse
import json
import shutil
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

ROOT = Path(__file__).resolve().parents[2]
TEACHER = ROOT / "experiments/teacher/bundle"


def stateless_decoder(path: Path, hidden: int) -> onnx.ModelProto:
    m = onnx.load(str(path))
    g = m.graph
    names = [i.name for i in g.input]
    assert names == ["y", "h", "c"], f"{path}: unexpected decoder inputs {names}"
    # zero state [1, N, hidden], N from y's shape
    nodes = [
        helper.make_node("Shape", ["y"], ["sl/y_shape"]),
        helper.make_node("Slice", ["sl/y_shape", "sl/zero", "sl/one", "sl/zero"], ["sl/n"]),
        helper.make_node("Concat", ["sl/one", "sl/n", "sl/hidden"], ["sl/state_shape"], axis=0),
        helper.make_node("ConstantOfShape", ["sl/state_shape"], ["h"],
                         value=numpy_helper.from_array(np.zeros([1], np.float32))),
        helper.make_node("Identity", ["h"], ["c"]),
    ]
    g.initializer.extend([numpy_helper.from_array(np.array([0], np.int64), "sl/zero"),
                          numpy_helper.from_array(np.array([1], np.int64), "sl/one"),
                          numpy_helper.from_array(np.array([hidden], np.int64), "sl/hidden")])
    # decoder_out = the LSTM output at the LAST context position (the export took position 0 of 1)
    for n in g.node:
        if n.op_type == "Constant" and n.output[0] == "/Constant_output_0":
            n.attribute[0].t.CopyFrom(numpy_helper.from_array(np.array(-1, np.int64)))
    old = list(g.node)
    del g.node[:]
    g.node.extend(nodes + old)
    keep_in = [i for i in g.input if i.name == "y"]
    keep_in[0].type.tensor_type.shape.dim[1].dim_param = "context"  # y [N, context_size]
    del g.input[:]
    g.input.extend(keep_in)
    keep_out = [o for o in g.output if o.name == "decoder_out"]
    del g.output[:]
    g.output.extend(keep_out)
    # h_out / c_out become unused LSTM outputs
    for n in g.node:
        if n.op_type == "LSTM":
            n.output[1] = ""
            n.output[2] = ""
    onnx.checker.check_model(m)
    return m


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--context", type=int, default=2)
    a = ap.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    for f in ["encoder_causal.onnx", "encoder_noncausal.onnx", "joiner.onnx", "tokens.txt"]:
        shutil.copy(TEACHER / f, out / f)
    cfg = json.loads((TEACHER / "model.json").read_text())
    hidden = cfg["info"]["model_config"]["dec_hidden"]
    onnx.save(stateless_decoder(TEACHER / "decoder.onnx", hidden), str(out / "decoder.onnx"))
    dec = cfg["decoding"]
    dec["decoder_type"] = "stateless"
    dec["context_size"] = a.context
    dec.pop("decoder_state", None)
    cfg["info"]["stateless_stand_in"] = (
        f"teacher LSTM decoder run from a zero state over the last {a.context} labels "
        "(experiments/export/make_stateless_teacher.py)")
    (out / "model.json").write_text(json.dumps(cfg, indent=2) + "\n")
    print(f"wrote {out} (stateless decoder, context_size {a.context})")


if __name__ == "__main__":
    main()
