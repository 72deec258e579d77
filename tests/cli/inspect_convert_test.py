#!/usr/bin/python3
"""End-to-end tests of `asrc inspect` and `asrc convert`.

  /usr/bin/python3 inspect_convert_test.py ASRC_BINARY SOURCE_DIR

References from outside asrc: python onnx (checker, initializer counts, op histograms), ONNX
Runtime (converted models give the same outputs as the originals) and PyTorch's outputs stored
with the fixtures. Bad inputs must give a one-line error naming the file and exit code 1.
"""
import collections
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ASRC, SRC = sys.argv[1], sys.argv[2]
FX = os.path.join(SRC, "tests", "fixtures")
FIXTURES = ["conformer", "conformer_causal", "lstm_decoder", "joiner"]
failures = []
checks = 0


def check(cond, msg):
    global checks
    checks += 1
    if not cond:
        failures.append(msg)
        print("FAIL: " + msg)


def have_reference(available, what):
    """tests/reference.h's rule: a missing outside reference is a message, or a failure under CI=true."""
    if available:
        return True
    if os.environ.get("CI", "") not in ("", "0", "false"):
        check(False, "reference missing (CI=true): " + what)
    else:
        print("reference missing, check skipped: %s (a failure under CI=true)" % what)
    return False


def ort_available():
    ort = os.environ.get("ORT_NODE") or os.path.join(SRC, "third_party", "ort", "node_modules", "onnxruntime-node")
    try:
        return subprocess.run(["node", "-e", "require(%s)" % json.dumps(ort)], capture_output=True).returncode == 0
    except OSError:  # no node
        return False


def asrc(*args):
    return subprocess.run([ASRC, *args], capture_output=True, text=True, timeout=120)


def initializer_elements(path):
    m = onnx.load(path)
    return sum(int(np.prod(t.dims)) for t in m.graph.initializer)


def weight_bytes(path):
    m = onnx.load(path)
    n = sum(numpy_helper.to_array(t).nbytes for t in m.graph.initializer)
    for node in m.graph.node:
        for a in node.attribute:
            if a.type == onnx.AttributeProto.TENSOR:
                n += numpy_helper.to_array(a.t).nbytes
    return n


def load_case(name, models):
    m = onnx.load(os.path.join(FX, name + ".onnx"))
    data = os.path.join(FX, "data", name)
    case = {"name": name, "models": models, "inputs": [], "outputs": []}
    for i, vi in enumerate(m.graph.input):
        t = TensorProto()
        with open(os.path.join(data, "input_%d.pb" % i), "rb") as f:
            t.ParseFromString(f.read())
        a = numpy_helper.to_array(t)
        case["inputs"].append({"name": vi.name, "dtype": str(a.dtype), "shape": list(a.shape),
                               "data": a.ravel().tolist()})
    for i, vi in enumerate(m.graph.output):
        t = TensorProto()
        with open(os.path.join(data, "output_%d.pb" % i), "rb") as f:
            t.ParseFromString(f.read())
        a = numpy_helper.to_array(t)
        case["outputs"].append({"name": vi.name, "shape": list(a.shape), "data": a.ravel().tolist()})
    return case


def expect_error(args, must_name, what):
    r = asrc(*args)
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    ok = (r.returncode == 1 and len(lines) == 1 and lines[0].startswith("asrc: ") and must_name in lines[0])
    check(ok, "%s: expected a one-line error naming %r and exit 1, got rc=%d stderr=%r"
          % (what, must_name, r.returncode, r.stderr[-400:]))
    return lines[0] if lines else ""


def main():
    tmp = tempfile.mkdtemp(prefix="asrc_cli_")
    try:
        run(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("cli: %d checks, %d failed" % (checks, len(failures)))
    sys.exit(1 if failures else 0)


def ort_parity(tmp, cases):
    cases_path = os.path.join(tmp, "cases.json")
    with open(cases_path, "w") as f:
        json.dump(cases, f)
    r = subprocess.run(["node", os.path.join(SRC, "tests", "cli", "ort_parity.js"), cases_path],
                       capture_output=True, text=True, timeout=300)
    check(r.returncode == 0, "ort_parity.js: %s" % r.stderr)
    reports = [json.loads(l) for l in r.stdout.splitlines() if l.startswith("{")]
    check(len(reports) == len(cases) and len(cases) > 0, "ORT ran every case")
    for rep in reports:
        print("ORT %-18s max|converted - original| = %g   max|ORT - PyTorch| = %g" % (rep["name"], rep["vs_first"], rep["vs_torch"]))
        check(rep["vs_first"] == 0, "%s: converted model output differs in ORT by %g" % (rep["name"], rep["vs_first"]))
        check(rep["vs_torch"] < 1e-4, "%s: ORT vs PyTorch %g" % (rep["name"], rep["vs_torch"]))


def run(tmp):
    r = asrc("--help")
    check(r.returncode == 0 and "inspect" in r.stdout and "convert" in r.stdout, "asrc --help lists inspect and convert")

    # --- convert: single files, inline and with external data ---
    cases = []
    for name in FIXTURES:
        src = os.path.join(FX, name + ".onnx")
        out = os.path.join(tmp, name + ".onnx")
        ext = os.path.join(tmp, name + "_ext.onnx")
        r = asrc("convert", src, out)
        check(r.returncode == 0, "convert %s: rc=%d %s" % (name, r.returncode, r.stderr))
        r = asrc("convert", "--external-threshold", "1024", src, ext)
        check(r.returncode == 0, "convert --external-threshold %s: rc=%d %s" % (name, r.returncode, r.stderr))
        check(os.path.exists(ext + ".data"), "%s: external data file written" % name)
        for p in (out, ext):
            try:
                onnx.checker.check_model(p)  # python onnx's checker, path form resolves external data
            except Exception as e:  # noqa: BLE001
                check(False, "python onnx checker on %s: %s" % (p, e))
        check(initializer_elements(ext) == initializer_elements(src), "%s: external copy keeps the initializers" % name)
        cases.append(load_case(name, [src, out, ext]))

    # --- inspect --json against python onnx ---
    for name in FIXTURES:
        src = os.path.join(FX, name + ".onnx")
        r = asrc("inspect", "--json", src)
        check(r.returncode == 0, "inspect %s: rc=%d %s" % (name, r.returncode, r.stderr))
        j = json.loads(r.stdout)
        check(j["params_total"] == initializer_elements(src),
              "%s: params_total %d != ONNX initializer elements %d" % (name, j["params_total"], initializer_elements(src)))
        check(j["bytes_unique"] == weight_bytes(src),
              "%s: bytes_unique %d != initializer+Constant bytes %d" % (name, j["bytes_unique"], weight_bytes(src)))
        ops = dict(collections.Counter(n.op_type for n in onnx.load(src).graph.node))
        check(j["graphs"][0]["ops"] == ops, "%s: op histogram differs from python onnx" % name)
        check(sum(l["params"] for l in j["graphs"][0]["layers"]) == j["params_total"], "%s: layers sum to the total" % name)
        r = asrc("inspect", src)
        check(r.returncode == 0 and "params_total" in r.stdout, "inspect %s (text)" % name)
    j = json.loads(asrc("inspect", "--json", os.path.join(FX, "conformer.onnx")).stdout)
    layer_names = [l["name"] for l in j["graphs"][0]["layers"]]
    check("layers.0" in layer_names and "layers.1" in layer_names, "conformer: layers grouped by scope: %s" % layer_names)

    # --- bundle folder: load, convert, inspect ---
    bundle = os.path.join(tmp, "bundle_in")
    os.makedirs(bundle)
    for role, name in (("encoder", "conformer"), ("decoder", "lstm_decoder"), ("joiner", "joiner")):
        shutil.copy(os.path.join(FX, name + ".onnx"), os.path.join(bundle, role + ".onnx"))
    tokens = ["<blk>"] + ["t%d" % i for i in range(1, 16)]
    with open(os.path.join(bundle, "tokens.txt"), "w") as f:
        f.write("".join("%s %d\n" % (t, i) for i, t in enumerate(tokens)))
    cfg = {"format": "asrc-bundle", "version": 1, "model_type": "transducer",
           "graphs": {"encoder": "encoder.onnx", "decoder": "decoder.onnx", "joiner": "joiner.onnx"},
           "tokens": "tokens.txt", "decoding": {"blank_id": 0, "vocab_size": 16, "decoder_type": "lstm"},
           "info": {"note": "cli test"}}
    with open(os.path.join(bundle, "model.json"), "w") as f:
        json.dump(cfg, f)
    out = os.path.join(tmp, "bundle_out")
    r = asrc("convert", bundle, out)
    check(r.returncode == 0, "convert bundle: rc=%d %s" % (r.returncode, r.stderr))
    with open(os.path.join(out, "model.json")) as f:
        cfg2 = json.load(f)
    check(cfg2["graphs"] == cfg["graphs"] and cfg2["decoding"] == cfg["decoding"] and cfg2["info"] == cfg["info"]
          and cfg2["model_type"] == "transducer", "bundle model.json survives: %s" % cfg2)
    with open(os.path.join(out, "tokens.txt")) as f:
        check(f.read().split() == open(os.path.join(bundle, "tokens.txt")).read().split(), "tokens.txt survives")
    for role in ("encoder", "decoder", "joiner"):
        try:
            onnx.checker.check_model(os.path.join(out, role + ".onnx"))
        except Exception as e:  # noqa: BLE001
            check(False, "bundle %s fails the python checker: %s" % (role, e))
    j = json.loads(asrc("inspect", "--json", out).stdout)
    expect = sum(initializer_elements(os.path.join(FX, n + ".onnx")) for n in ("conformer", "lstm_decoder", "joiner"))
    check(j["params_total"] == expect, "bundle params_total %d != %d" % (j["params_total"], expect))
    check([g["role"] for g in j["graphs"]] == ["decoder", "encoder", "joiner"] or len(j["graphs"]) == 3, "bundle graphs listed")
    for c in cases:
        role = {"conformer": "encoder", "lstm_decoder": "decoder", "joiner": "joiner"}.get(c["name"])
        if role:
            c["models"].append(os.path.join(out, role + ".onnx"))
    r = asrc("convert", out, out + "_again")  # a converted bundle converts again
    check(r.returncode == 0, "convert converted bundle: %s" % r.stderr)

    # --- a sherpa-onnx folder (no model.json) loads as a transducer bundle ---
    sherpa = os.path.join(tmp, "sherpa")
    os.makedirs(sherpa)
    for role, name in (("encoder", "conformer"), ("decoder", "lstm_decoder"), ("joiner", "joiner")):
        shutil.copy(os.path.join(FX, name + ".onnx"), os.path.join(sherpa, role + "-epoch-9-avg-1.onnx"))
    shutil.copy(os.path.join(bundle, "tokens.txt"), os.path.join(sherpa, "tokens.txt"))
    r = asrc("inspect", "--json", sherpa)
    check(r.returncode == 0 and json.loads(r.stdout)["params_total"] == expect and json.loads(r.stdout)["tokens"] == 16,
          "sherpa-onnx folder inspects: %s" % r.stderr)
    r = asrc("convert", sherpa, os.path.join(tmp, "sherpa_out"))
    check(r.returncode == 0, "sherpa-onnx folder converts: %s" % r.stderr)
    if r.returncode == 0:
        with open(os.path.join(tmp, "sherpa_out", "model.json")) as f:
            cfg3 = json.load(f)
        check(cfg3["model_type"] == "transducer" and cfg3["graphs"]["joiner"] == "joiner-epoch-9-avg-1.onnx",
              "sherpa-onnx folder gets a model.json: %s" % cfg3)

    # --- ONNX Runtime: converted models give the same outputs ---
    if have_reference(ort_available(), "ONNX Runtime (node + third_party/ort/node_modules/onnxruntime-node)"):
        ort_parity(tmp, cases)

    # --- bad input: one-line error naming the file, exit code 1 ---
    conf = open(os.path.join(FX, "conformer.onnx"), "rb").read()
    p = os.path.join(tmp, "truncated.onnx")
    open(p, "wb").write(conf[: len(conf) // 3])
    expect_error(["inspect", p], "truncated.onnx", "truncated protobuf")
    expect_error(["convert", p, os.path.join(tmp, "x.onnx")], "truncated.onnx", "convert truncated protobuf")
    p = os.path.join(tmp, "notes.onnx")
    open(p, "w").write("this is a text file, not an ONNX model\n" * 20)
    expect_error(["inspect", p], "notes.onnx", "text file")
    p = os.path.join(tmp, "random.onnx")
    open(p, "wb").write(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    expect_error(["inspect", p], "random.onnx", "random bytes")
    expect_error(["inspect", os.path.join(tmp, "nonexistent.onnx")], "nonexistent.onnx", "missing file")

    ext = os.path.join(tmp, "ext_missing.onnx")
    asrc("convert", "--external-threshold", "1024", os.path.join(FX, "joiner.onnx"), ext)
    os.remove(ext + ".data")
    expect_error(["inspect", ext], "ext_missing.onnx.data", "missing external data")

    def bad_model(fname, tensor):
        x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])
        y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])
        g = helper.make_graph([helper.make_node("Add", ["x", tensor.name], ["y"])], "g", [x], [y], [tensor])
        path = os.path.join(tmp, fname)
        onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), path)
        return path

    t = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[4], raw_data=b"\0" * 8)
    line = expect_error(["inspect", bad_model("short_raw.onnx", t)], "short_raw.onnx", "short raw_data")
    check("raw_data" in line and "'w'" in line, "short raw_data error names the tensor: " + line)
    t = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[4], float_data=[1.0, 2.0])
    expect_error(["inspect", bad_model("short_floats.onnx", t)], "short_floats.onnx", "short float_data")
    t = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[2 ** 40, 2 ** 40], raw_data=b"")
    line = expect_error(["inspect", bad_model("overflow.onnx", t)], "overflow.onnx", "overflowing shape")
    check("overflow" in line, "overflow error says so: " + line)
    t = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[2 ** 31, 2 ** 31], raw_data=b"")
    expect_error(["inspect", bad_model("huge.onnx", t)], "huge.onnx", "huge shape without data")
    t = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[4], data_location=TensorProto.EXTERNAL)
    t.external_data.add(key="location", value="../../etc/passwd")
    expect_error(["inspect", bad_model("escape.onnx", t)], "escape.onnx", "external data outside the folder")

    def bad_bundle(dirname, cfg):
        d = os.path.join(tmp, dirname)
        os.makedirs(d)
        shutil.copy(os.path.join(FX, "joiner.onnx"), os.path.join(d, "joiner.onnx"))
        with open(os.path.join(d, "model.json"), "w") as f:
            f.write(cfg if isinstance(cfg, str) else json.dumps(cfg))
        return d

    d = bad_bundle("b_missing", {"graphs": {"joiner": "joiner.onnx", "decoder": "decoder.onnx"}})
    line = expect_error(["inspect", d], "decoder.onnx", "model.json with a missing graph file")
    check("model.json" in line, "missing graph error names model.json: " + line)
    d = bad_bundle("b_unknown", {"graphs": {"joiner": "joiner.onnx"}, "colour": "blue"})
    line = expect_error(["inspect", d], "model.json", "model.json with an unknown key")
    check("colour" in line, "unknown key error names the key: " + line)
    expect_error(["inspect", bad_bundle("b_json", "{not json")], "model.json", "model.json not JSON")
    d = bad_bundle("b_type", {"model_type": "transducer", "graphs": {"joiner": "joiner.onnx"}})
    expect_error(["inspect", d], "model.json", "model_type without its graphs")
    d = bad_bundle("b_nographs", {"format": "asrc-bundle"})
    expect_error(["inspect", d], "model.json", "model.json without graphs")
    d = bad_bundle("b_tokens", {"graphs": {"joiner": "joiner.onnx"}, "tokens": "tokens.txt"})
    with open(os.path.join(d, "tokens.txt"), "w") as f:
        f.write("a 0\nb 2\n")
    expect_error(["inspect", d], "tokens.txt", "tokens.txt with a gap")

    # convert refuses to write over its input
    src = os.path.join(tmp, "joiner.onnx")
    before = open(src, "rb").read()
    expect_error(["convert", src, src], "joiner.onnx", "convert onto itself")
    check(open(src, "rb").read() == before, "input untouched after refused convert")
    expect_error(["convert", bundle, os.path.join(bundle, "inner")], "bundle_in", "convert into its own bundle")
    expect_error(["convert", os.path.join(bundle, "encoder.onnx"), bundle], "bundle_in", "convert over the folder holding the input")


if __name__ == "__main__":
    main()
