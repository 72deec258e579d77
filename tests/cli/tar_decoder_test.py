"""End-to-end: the tar-decoder pass on the demo teacher through the asrc CLI.

  /usr/bin/python3 tar_decoder_test.py ASRC_BINARY SOURCE_DIR

- `asrc compress` with experiments/pipelines/tar-decoder.json and tar-decoder-int8.json (sizes only):
  the decoder's parameters fall to the tied matrix plus the position vectors, the tied matrix is
  written once (shared_weights.bin) in float and after int8, model.json says stateless;
- ONNX Runtime runs every output graph and agrees with `asrc run` (experiments/compress/ort_parity.py);
- `asrc eval` decodes the result greedy and beam, streaming and look-ahead (2 utterances);
- a joiner with no output layer to tie to is an error naming the graph.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

import onnx
from onnx import helper

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


def ort_parity(model_dir, tag, encoder_tol):
    """experiments/compress/ort_parity.py: every graph of the bundle, `asrc run` vs ONNX Runtime on
    seeded inputs (relative max error per output)."""
    r = subprocess.run(["/usr/bin/python3", os.path.join(SRC, "experiments", "compress", "ort_parity.py"), model_dir, ASRC],
                       capture_output=True, text=True, timeout=300)
    check(r.returncode == 0, "%s: ort_parity.py: %s" % (tag, r.stderr[-300:]))
    errs = {}
    for line in r.stdout.splitlines():
        if "max|ort-asrc|/max|ort|" in line:
            role, out = line.split()[:2]
            errs[(role, out)] = float(line.rsplit("=", 1)[1])
            print("ORT %-5s %s" % (tag, line.strip()))
    for role in ("encoder_causal", "encoder_noncausal", "decoder", "joiner"):
        check(any(k[0] == role for k in errs), "%s: ONNX Runtime ran graph %s" % (tag, role))
    for (role, out), e in errs.items():
        tol = encoder_tol if role.startswith("encoder") else 1e-4
        check(e <= tol, "%s: %s/%s ORT vs asrc %g > %g" % (tag, role, out, e, tol))


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
        ort_parity(model, "tar", 1e-3)
        ort_parity(model8, "tar8", 0.05)  # int8 encoders: ORT and asrc round activations differently
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
