#!/usr/bin/python3
"""asrc run on graphs with sequence and optional inputs and outputs (ONNX conformance cases),
checked with python onnx, which reads the SequenceProto / OptionalProto files asrc writes.

Usage: run_test.py ASRC_BINARY
"""
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import numpy_helper

ASRC = sys.argv[1]
ROOT = os.path.join(os.environ.get("ASRC_ONNX_TESTDATA", "/usr/share/libonnx-testdata/data"), "node")
# Cases whose graph inputs or outputs are sequences or optionals; each runs as a user would.
CASES = ["test_sequence_insert_at_front", "test_optional_get_element_sequence", "test_if_opt",
         "test_loop13_seq", "test_sequence_map_add_2_sequences"]
failures = []


def check(cond, msg):
    if not cond:
        failures.append(msg)
        print("FAIL: " + msg)


def read_value(path, type_proto):
    """A file as python onnx reads it: a list of arrays (sequence), None / a value (optional), or an array."""
    kind = type_proto.WhichOneof("value")
    data = open(path, "rb").read()
    if kind == "sequence_type":
        p = onnx.SequenceProto()
        p.ParseFromString(data)
        return [numpy_helper.to_array(t) for t in p.tensor_values]
    if kind == "optional_type":
        p = onnx.OptionalProto()
        p.ParseFromString(data)
        if p.elem_type == onnx.OptionalProto.TENSOR:
            return numpy_helper.to_array(p.tensor_value)
        if p.elem_type == onnx.OptionalProto.SEQUENCE:
            return [numpy_helper.to_array(t) for t in p.sequence_value.tensor_values]
        return None
    p = onnx.TensorProto()
    p.ParseFromString(data)
    return numpy_helper.to_array(p)


def same(a, b):
    if isinstance(b, list):
        return isinstance(a, list) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if b is None:
        return a is None
    return (a is not None and not isinstance(a, list) and a.dtype == b.dtype and a.shape == b.shape
            and np.allclose(a, b, rtol=1e-3, atol=1e-5))


def main():
    if not os.path.isdir(ROOT):
        if os.environ.get("CI") == "true":
            sys.exit("missing ONNX conformance data: " + ROOT)
        print("skipped: no ONNX conformance data at " + ROOT)
        return
    with tempfile.TemporaryDirectory(prefix="asrc_run_test_") as tmp:
        for name in CASES:
            case = os.path.join(ROOT, name)
            m = onnx.load(os.path.join(case, "model.onnx"))
            data = os.path.join(case, "test_data_set_0")
            args = [ASRC, "run", os.path.join(case, "model.onnx"), "--output-dir", os.path.join(tmp, name)]
            for i, v in enumerate(m.graph.input):
                args += ["--input", "%s=%s" % (v.name, os.path.join(data, "input_%d.pb" % i))]
            r = subprocess.run(args, capture_output=True, text=True, timeout=60)
            check(r.returncode == 0, "%s: asrc run rc=%d: %s" % (name, r.returncode, r.stderr.strip()))
            if r.returncode != 0:
                continue
            for i, v in enumerate(m.graph.output):
                got = read_value(os.path.join(tmp, name, v.name + ".pb"), v.type)
                want = read_value(os.path.join(data, "output_%d.pb" % i), v.type)
                check(same(got, want), "%s: output %s differs from the stored one" % (name, v.name))
        # A tensor file where the graph declares a sequence: a one-line error naming the file.
        case = os.path.join(ROOT, "test_sequence_insert_at_back")
        tensor_file = os.path.join(case, "test_data_set_0", "input_1.pb")
        r = subprocess.run([ASRC, "run", os.path.join(case, "model.onnx"), "--input", "sequence=" + tensor_file,
                            "--input", "tensor=" + tensor_file, "--output-dir", os.path.join(tmp, "bad")],
                           capture_output=True, text=True, timeout=60)
        check(r.returncode != 0 and "input_1.pb" in r.stderr and "SequenceProto" in r.stderr,
              "a tensor file fed as a sequence is refused naming the file: rc=%d %s" % (r.returncode, r.stderr.strip()))
    if failures:
        sys.exit("%d failures" % len(failures))
    print("run_test: %d cases OK" % len(CASES))


if __name__ == "__main__":
    main()
