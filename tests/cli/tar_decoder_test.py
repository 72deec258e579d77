"""End-to-end: the tar-decoder pass on the demo teacher through the asrc CLI.

  /usr/bin/python3 tar_decoder_test.py ASRC_BINARY SOURCE_DIR

- `asrc compress` with experiments/pipelines/tar-decoder.json and tar-decoder-int8.json (sizes only):
  the decoder's parameters fall to the tied matrix plus the position vectors, the tied matrix is
  written once (shared_weights.bin) in float and after int8, model.json says stateless;
- ONNX Runtime runs every output graph, and the decoder and joiner agree with `asrc run`;
- `asrc eval` decodes the result greedy and beam, streaming and look-ahead (2 utterances);
- a joiner with no output layer to tie to is an error naming the graph.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import helper, numpy_helper

# check / have_reference / ort_available and the check counters are inspect_convert_test.py's.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import inspect_convert_test as cli  # noqa: E402  (reads ASRC, SRC from sys.argv as this file does)
from inspect_convert_test import check, have_reference, ort_available  # noqa: E402

ASRC, SRC = sys.argv[1], sys.argv[2]
TEACHER = os.path.join(SRC, "experiments", "teacher", "bundle")


def asrc(*args, timeout=600):
    return subprocess.run([ASRC, *args], capture_output=True, text=True, timeout=timeout)


def compress(tmp, pipeline, out):
    r = asrc("compress", "--pipeline", os.path.join(SRC, "experiments", "pipelines", pipeline), "--model", TEACHER,
             "--no-eval", "--quiet", "--out", os.path.join(tmp, out))
    check(r.returncode == 0, "compress %s: rc %d %s" % (pipeline, r.returncode, r.stderr[-400:]))
    with open(os.path.join(tmp, out, "report.json")) as f:
        return json.load(f)


def save_pb(arr, name, path):
    with open(path, "wb") as f:
        f.write(numpy_helper.from_array(arr, name).SerializeToString())


def ort_vs_asrc(tmp, model_dir, tag):
    """Decoder and joiner of `model_dir` on seeded inputs: asrc run vs ONNX Runtime."""
    rng = np.random.default_rng(1)
    with open(os.path.join(model_dir, "model.json")) as f:
        ctx = json.load(f)["decoding"]["context_size"]
    y = rng.integers(0, 256, size=(3, ctx)).astype(np.int64)
    y[0, :] = 0  # the start: blank context
    enc = rng.standard_normal((3, 144)).astype(np.float32)
    cases, io = [], os.path.join(tmp, tag + "_io")
    os.makedirs(io)
    save_pb(y, "y", os.path.join(io, "y.pb"))
    r = asrc("run", os.path.join(model_dir, "decoder.onnx"), "--input", "y=" + os.path.join(io, "y.pb"),
             "--output-dir", os.path.join(io, "dec"))
    check(r.returncode == 0, "%s: asrc run decoder: %s" % (tag, r.stderr[-300:]))
    dec = numpy_helper.to_array(onnx.load_tensor(os.path.join(io, "dec", "decoder_out.pb")))
    check(dec.shape[0] == 3 and np.isfinite(dec).all(), "%s: decoder_out [3, D], finite" % tag)
    save_pb(enc, "encoder_out", os.path.join(io, "enc.pb"))
    save_pb(dec, "decoder_out", os.path.join(io, "dec.pb"))
    r = asrc("run", os.path.join(model_dir, "joiner.onnx"), "--input", "encoder_out=" + os.path.join(io, "enc.pb"),
             "--input", "decoder_out=" + os.path.join(io, "dec.pb"), "--output-dir", os.path.join(io, "join"))
    check(r.returncode == 0, "%s: asrc run joiner: %s" % (tag, r.stderr[-300:]))
    logit = numpy_helper.to_array(onnx.load_tensor(os.path.join(io, "join", "logit.pb")))

    def spec(name, a):
        return {"name": name, "dtype": "int64" if a.dtype == np.int64 else "float32", "shape": list(a.shape),
                "data": a.flatten().tolist()}

    cases.append({"name": tag + "/decoder", "models": [os.path.join(model_dir, "decoder.onnx")],
                  "inputs": [spec("y", y)], "outputs": [{"name": "decoder_out", "data": dec.flatten().tolist()}]})
    cases.append({"name": tag + "/joiner", "models": [os.path.join(model_dir, "joiner.onnx")],
                  "inputs": [spec("encoder_out", enc), spec("decoder_out", dec)],
                  "outputs": [{"name": "logit", "data": logit.flatten().tolist()}]})
    print("ORT vs asrc run (the 'PyTorch' column below is asrc's output here):")
    cli.ort_parity(io, cases)


def ort_runs_every_graph(model_dir, tag):
    r = subprocess.run(["node", os.path.join(SRC, "tests", "cli", "ort_bundle.js"), model_dir],
                       capture_output=True, text=True, timeout=300)
    print(r.stdout.strip())
    check(r.returncode == 0 and r.stdout.count(" ok,") == 4 and "finite false" not in r.stdout,
          "%s: ONNX Runtime runs all four graphs: %s" % (tag, r.stderr[-300:]))


def run(tmp):
    # --- float: tar-decoder alone ---
    rep = compress(tmp, "tar-decoder.json", "tar")
    rows = {row["pass"]: row for row in rep["rows"]} if "rows" in rep else {}
    check("tar-decoder" in rows, "report has a tar-decoder row")
    model = os.path.join(tmp, "tar", "model")
    with open(os.path.join(model, "model.json")) as f:
        dcfg = json.load(f)["decoding"]
    check(dcfg["decoder_type"] == "stateless" and dcfg["context_size"] == 2 and "decoder_state" not in dcfg,
          "model.json: stateless, context_size 2, no decoder_state")
    if rows:
        g = rows["tar-decoder"]["graphs"]
        tied = 256 * 256
        check(g["decoder"]["params"] <= tied + 4 * 2 * 256 + 8,
              "decoder params %d: the tied matrix plus the position vectors" % g["decoder"]["params"])
        saved = rows["cleanup"]["params"] - rows["tar-decoder"]["params"]
        dec_before = rows["tar-decoder"]["counters"]["decoder_params_before"]
        check(saved == dec_before - g["decoder"]["params"] + tied,
              "params saved %d = decoder before - after + tied (the tie counted once)" % saved)
        check(g["decoder"]["bytes"] + g["joiner"]["bytes"] - tied * 4 ==
              rows["tar-decoder"]["bytes"] - sum(v["bytes"] for k, v in g.items() if k.startswith("encoder")),
              "bundle bytes count the tied matrix once")
    check(os.path.getsize(os.path.join(model, "shared_weights.bin")) == 256 * 256 * 4,
          "shared_weights.bin holds the float tied matrix once")
    # --- int8 ---
    rep8 = compress(tmp, "tar-decoder-int8.json", "tar8")
    model8 = os.path.join(tmp, "tar8", "model")
    check(256 * 256 <= os.path.getsize(os.path.join(model8, "shared_weights.bin")) < 256 * 256 * 2,
          "after quantize-int8 the tied matrix is one int8 buffer in shared_weights.bin")
    rows8 = {row["pass"]: row for row in rep8.get("rows", [])}
    if "quantize-int8" in rows8:
        print("sizes: input %.2f MB, tar-decoder %.2f MB, + int8 %.2f MB" %
              (rows8["input"]["bytes"] / 1e6, rows8["tar-decoder"]["bytes"] / 1e6, rows8["quantize-int8"]["bytes"] / 1e6))
    # --- ONNX Runtime ---
    if have_reference(ort_available(), "ONNX Runtime (node + third_party/ort/node_modules/onnxruntime-node)"):
        for d, tag in ((model, "tar"), (model8, "tar8")):
            ort_runs_every_graph(d, tag)
            ort_vs_asrc(tmp, d, tag)
    # --- eval: greedy and beam, both modes ---
    for extra in ([], ["--beam", "2"]):
        r = asrc("eval", model, "--limit", "2", "--mode", "both", "--threads", "1", *extra)
        check(r.returncode == 0 and "streaming" in r.stdout and "lookahead" in r.stdout,
              "asrc eval %s on the TAR bundle: rc %d %s" % (" ".join(extra) or "greedy", r.returncode, r.stderr[-300:]))
    # --- bad input: a joiner whose output is a LogSoftmax ---
    bad = os.path.join(tmp, "bad")
    shutil.copytree(TEACHER, bad)
    j = onnx.load(os.path.join(bad, "joiner.onnx"))
    out = j.graph.output[0]
    j.graph.node.append(helper.make_node("LogSoftmax", [out.name], ["log_probs"], name="log_softmax"))
    out.name = "log_probs"
    onnx.save(j, os.path.join(bad, "joiner.onnx"))
    err = cli.expect_error(["compress", "--pipeline", os.path.join(SRC, "experiments", "pipelines", "tar-decoder.json"),
                            "--model", bad, "--no-eval", "--quiet", "--out", os.path.join(tmp, "bad_out")],
                           "graph 'joiner'", "tar-decoder on a joiner without an output layer")
    print("bad joiner: " + err)
    check("no output layer to tie" in err, "the error says why")


def main():
    with tempfile.TemporaryDirectory(prefix="asrc_cli_tar_") as tmp:
        run(tmp)
    print("cli tar-decoder: %d checks, %d failed" % (cli.checks, len(cli.failures)))
    sys.exit(1 if cli.failures else 0)


if __name__ == "__main__":
    main()
