#!/usr/bin/env python3
"""Reliability checks for the asrc commands that run a model or write files (issue 17).

Builds its bad inputs itself (audio, manifests, bundles, ONNX files, shard reports) in a
temporary folder and runs `asrc` on each. Every bad case must exit non-zero without a crash
(exit code < 128, no timeout), print one `asrc:` line naming the culprit, and leave the folder as
it was (nothing written, nothing deleted). Usage: reliability_test.py ASRC_BIN REPO_ROOT
"""
import hashlib
import json
import math
import os
import resource
import shutil
import signal
import struct
import subprocess
import sys
import tempfile

ASRC, ROOT = sys.argv[1], sys.argv[2]
BUNDLE = os.path.join(ROOT, "experiments/teacher/bundle")
DATA = os.path.join(ROOT, "experiments/data/default_eval")
FLAC = os.path.join(DATA, "flac/synth_test_00000.flac")
failures = []


def snapshot(folder):
    """Every path under `folder` with its kind and content hash."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        for d in dirnames:
            out[os.path.join(dirpath, d)] = "dir"
        for f in filenames:
            p = os.path.join(dirpath, f)
            if os.path.islink(p) or not os.path.isfile(p):
                out[p] = "special"
            else:
                with open(p, "rb") as fh:
                    out[p] = hashlib.sha1(fh.read()).hexdigest()
    return out


def small_disk(limit):
    """A child whose files cannot grow past `limit` bytes: writes fail as on a full disk."""
    def setup():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return setup


def run(args, stdout=subprocess.PIPE, timeout=60, preexec=None):
    try:
        p = subprocess.run([ASRC] + args, stdout=stdout, stderr=subprocess.PIPE, timeout=timeout,
                           preexec_fn=preexec)
    except subprocess.TimeoutExpired:
        return None, "", "timeout"
    out = p.stdout.decode(errors="replace") if p.stdout else ""
    return p.returncode, out, p.stderr.decode(errors="replace")


def expect_fail(name, args, culprit, folder, stdout=subprocess.PIPE, preexec=None):
    """A bad case: non-zero exit < 128, one asrc: line naming `culprit`, `folder` unchanged."""
    before = snapshot(folder)
    rc, _, err = run(args, stdout=stdout, preexec=preexec)
    after = snapshot(folder)
    lines = [l for l in err.splitlines() if l.startswith("asrc:")]
    problems = []
    if rc is None:
        problems.append("timed out (blocked?)")
    elif rc == 0 or rc >= 128 or rc < 0:
        problems.append(f"exit code {rc}")
    if len(lines) != 1:
        problems.append(f"{len(lines)} 'asrc:' lines")
    if not any(culprit in l for l in lines):
        problems.append(f"message does not name {culprit!r}")
    if before != after:
        changed = sorted(set(before.items()) ^ set(after.items()))
        problems.append(f"folder changed: {changed[:3]}")
    status = "ok" if not problems else "FAIL: " + "; ".join(problems)
    print(f"{name}: {status}\n    {err.strip()[:300]}")
    if problems:
        failures.append(name)


def expect_ok(name, args, must_say=None):
    rc, out, err = run(args)
    problems = [] if rc == 0 else [f"exit code {rc}"]
    if must_say and must_say not in err:
        problems.append(f"stderr does not say {must_say!r}")
    print(f"{name}: {'ok' if not problems else 'FAIL: ' + '; '.join(problems)}")
    if problems:
        print("   ", err.strip()[:300])
        failures.append(name)
    return out


def write_manifest(path, entries):
    with open(path, "w") as f:
        for i, (audio, text) in enumerate(entries):
            f.write(json.dumps({"audio_filepath": audio, "text": text, "id": f"u{i}"}) + "\n")


def write_float_wav(path, samples, rate=16000):
    data = struct.pack(f"<{len(samples)}f", *samples)
    fmt = struct.pack("<HHIIHH", 3, 1, rate, rate * 4, 4, 32)  # IEEE float, mono
    with open(path, "wb") as f:
        f.write(b"RIFF" + struct.pack("<I", 4 + 8 + len(fmt) + 8 + len(data)) + b"WAVE")
        f.write(b"fmt " + struct.pack("<I", len(fmt)) + fmt)
        f.write(b"data" + struct.pack("<I", len(data)) + data)


def eval_args(manifest, *extra, model=BUNDLE):
    return ["eval", model, "--data", manifest, "--mode", "lookahead", "--no-progress"] + list(extra)


def audio_cases(t):
    good = "good.flac"
    shutil.copy(FLAC, os.path.join(t, good))
    os.makedirs(os.path.join(t, "dir.wav"))
    open(os.path.join(t, "empty.wav"), "w").close()
    with open(os.path.join(t, "corrupt.wav"), "wb") as f:
        f.write(b"RIFF\x10\x00\x00\x00WAVEjunkjunk not audio at all")
    os.mkfifo(os.path.join(t, "fifo.wav"))
    write_float_wav(os.path.join(t, "nan.wav"), [0.1, float("nan")] * 8000)
    for bad in ["missing.wav", "dir.wav", "empty.wav", "corrupt.wav", "fifo.wav", "nan.wav"]:
        m = os.path.join(t, f"m_{bad}.jsonl")
        write_manifest(m, [(good, "at the sound of the second shot"), (bad, "words here")])
        expect_fail(f"eval unreadable {bad}", eval_args(m), bad, t)
        expect_fail(f"transcribe unreadable {bad}", ["transcribe", BUNDLE, os.path.join(t, bad)], bad, t)
    # A folder first is the model: one without model.json (a sherpa-onnx download) is an error
    # naming it, with no transcript from the default teacher on stdout.
    os.makedirs(os.path.join(t, "sherpa_like"))
    open(os.path.join(t, "sherpa_like", "tokens.txt"), "w").close()
    expect_fail("transcribe FOLDER-without-model.json AUDIO", ["transcribe", os.path.join(t, "sherpa_like"), FLAC],
                "no model.json", t)
    rc, out, _ = run(["transcribe", os.path.join(t, "sherpa_like"), FLAC])
    if out.strip():
        print(f"transcribe FOLDER-without-model.json AUDIO: FAIL: printed a transcript {out.strip()[:80]!r}")
        failures.append("transcribe FOLDER-without-model.json AUDIO (stdout)")
    m = os.path.join(t, "m_all_bad.jsonl")
    write_manifest(m, [("missing.wav", "a b"), ("dir.wav", "c d")])
    expect_fail("eval --skip-unreadable, nothing readable", eval_args(m, "--skip-unreadable"),
                "WER undefined", t)
    m = os.path.join(t, "m_empty_path.jsonl")
    write_manifest(m, [(good, "at the sound of the second shot"), ("", "words here")])
    expect_fail("eval with an empty audio_filepath", eval_args(m), "m_empty_path.jsonl:2: 'audio_filepath' is empty", t)
    m = os.path.join(t, "m_no_words.jsonl")
    write_manifest(m, [(good, "")])
    expect_fail("eval over zero reference words", eval_args(m), "WER undefined", t)
    m = os.path.join(t, "m_skip.jsonl")
    write_manifest(m, [(good, "at the sound of the second shot"), ("missing.wav", "x")])
    expect_ok("eval --skip-unreadable, one readable", eval_args(m, "--skip-unreadable"),
              "skipped 1 unreadable")
    os.remove(os.path.join(t, "fifo.wav"))  # shutil.rmtree copes, but keep the folder plain


def bundle_cases(t):
    import onnx
    from onnx import numpy_helper
    import numpy as np
    m = os.path.join(t, "m.jsonl")
    shutil.copy(FLAC, os.path.join(t, "good.flac"))
    write_manifest(m, [("good.flac", "at the sound of the second shot")])
    nan_bundle = os.path.join(t, "nan_bundle")
    shutil.copytree(BUNDLE, nan_bundle)
    j = onnx.load(os.path.join(nan_bundle, "joiner.onnx"))
    for init in j.graph.initializer:
        a = numpy_helper.to_array(init)
        if a.dtype == np.float32:
            init.CopyFrom(numpy_helper.from_array(np.full_like(a, np.nan), init.name))
    onnx.save(j, os.path.join(nan_bundle, "joiner.onnx"))
    expect_fail("eval NaN joiner weights", eval_args(m, model=nan_bundle), "joiner", t)
    # An LSTM decoder squashes NaN weights into finite garbage ("atatat..."): refused by name.
    nan_dec = os.path.join(t, "nan_dec")
    shutil.copytree(BUNDLE, nan_dec)
    d = onnx.load(os.path.join(nan_dec, "decoder.onnx"))
    for init in d.graph.initializer:
        a = numpy_helper.to_array(init)
        if a.dtype == np.float32 and a.size > 1000:
            init.CopyFrom(numpy_helper.from_array(np.full_like(a, np.nan), init.name))
    onnx.save(d, os.path.join(nan_dec, "decoder.onnx"))
    expect_fail("eval NaN decoder weights", eval_args(m, model=nan_dec), "decoder.onnx: weight", t)
    expect_fail("transcribe NaN decoder weights", ["transcribe", nan_dec, FLAC], "decoder.onnx: weight", t)
    big = os.path.join(t, "big_cache")
    shutil.copytree(BUNDLE, big)
    cfg = json.load(open(os.path.join(big, "model.json")))
    cfg["streaming"]["cache"][0]["shape"] = [1, 1 << 20, 1 << 20]
    json.dump(cfg, open(os.path.join(big, "model.json"), "w"))
    named = "big_cache: model.json: streaming.cache"  # the bundle, not only "model.json"
    expect_fail("eval cache of 2^40 elements", eval_args(m, model=big), named, t)
    two = os.path.join(t, "two_roles_one_file")
    shutil.copytree(BUNDLE, two)
    cfg2 = json.load(open(os.path.join(two, "model.json")))
    cfg2["graphs"]["joiner"] = "decoder.onnx"
    json.dump(cfg2, open(os.path.join(two, "model.json"), "w"))
    for args in (["convert", two, os.path.join(t, "conv")],
                 ["compress", "--pipeline", os.path.join(ROOT, "experiments/pipelines/int8-weight-only.json"),
                  "--model", two, "--no-eval", "--quiet", "--out", os.path.join(t, "c")]):
        expect_fail(f"{args[0]}: two roles name one file (blames the input)", args, "two_roles_one_file", t)
    expect_fail("transcribe cache of 2^40 elements", ["transcribe", big, FLAC], named, t)
    expect_fail("compress cache of 2^40 elements", ["compress", "--pipeline", os.path.join(
        ROOT, "experiments/pipelines/int8-weight-only.json"), "--model", big, "--eval", m, "--quiet",
        "--out", os.path.join(t, "c")], named, t)


def output_cases(t):
    shutil.copy(FLAC, os.path.join(t, "good.flac"))
    m = os.path.join(t, "m.jsonl")
    write_manifest(m, [("good.flac", "at the sound of the second shot"), ("good.flac", "again")])
    expect_fail("eval --json onto its manifest", eval_args(m, "--json", m), "m.jsonl", t)
    expect_fail("eval --json onto the bundle's model.json",
                eval_args(m, "--json", os.path.join(BUNDLE, "model.json")), "model.json", t)
    # --json replaces only an eval report: not the manifest's audio, not any other file.
    expect_fail("eval --json onto the manifest's audio", eval_args(m, "--json", os.path.join(t, "good.flac")),
                "good.flac", t)
    expect_fail("eval --json ''", eval_args(m, "--json", ""), "--json", t)
    expect_fail("eval --json into a missing folder", eval_args(m, "--json", os.path.join(t, "no/r.json")),
                "no/r.json", t)
    parts = []
    for i in range(2):
        p = os.path.join(t, f"part{i}.json")
        expect_ok(f"eval shard {i}/2", eval_args(m, "--shard", f"{i}/2", "--json", p))
        parts.append(p)
    expect_fail("eval-merge --json onto an input", ["eval-merge"] + parts + ["--json", parts[0]], "part0.json", t)
    expect_fail("eval-merge --json onto the shards' audio",
                ["eval-merge"] + parts + ["--json", os.path.join(t, "good.flac")], "good.flac", t)
    expect_fail("eval-merge --json ''", ["eval-merge"] + parts + ["--json", ""], "--json", t)
    p1 = json.load(open(parts[1]))

    def variant(name, edit):
        j = json.loads(json.dumps(p1))
        edit(j)
        path = os.path.join(t, name + ".json")
        json.dump(j, open(path, "w"))
        return path
    other_beam = variant("beam4", lambda j: j["provenance"].update(beam=4))
    other_model = variant("model", lambda j: j["provenance"].update(model_hash="0" * 16))
    negative = variant("negative", lambda j: j["lookahead"].update(words=-3))
    dup = variant("dup", lambda j: j["lookahead"]["per_utterance"][0].update(id="u0"))
    wrong_shard = variant("wrong_shard", lambda j: j["lookahead"]["per_utterance"][0].update(index=2))
    too_many_errors = variant("errors", lambda j: j["lookahead"].update(substitutions=j["lookahead"]["words"] + 1))
    count_off = variant("count_off", lambda j: j["lookahead"].update(utterances=5))
    out = os.path.join(t, "merged.json")
    expect_fail("eval-merge shards of different beams", ["eval-merge", parts[0], other_beam, "--json", out], "beam", t)
    expect_fail("eval-merge shards of different models", ["eval-merge", parts[0], other_model, "--json", out],
                "model_hash", t)
    expect_fail("eval-merge negative counts", ["eval-merge", parts[0], negative, "--json", out], "words", t)
    expect_fail("eval-merge duplicate utterance", ["eval-merge", parts[0], dup, "--json", out], "twice", t)
    expect_fail("eval-merge utterance in the wrong shard", ["eval-merge", parts[0], wrong_shard, "--json", out],
                "not in this shard", t)
    expect_fail("eval-merge more errors than words", ["eval-merge", parts[0], too_many_errors, "--json", out],
                "more than words", t)
    expect_fail("eval-merge utterances unlike per_utterance", ["eval-merge", parts[0], count_off, "--json", out],
                "per_utterance", t)
    expect_ok("eval-merge of the two shards", ["eval-merge", parts[0], parts[1], "--json", out])
    m2 = os.path.join(t, "dup_ids.jsonl")
    with open(m2, "w") as f:
        f.write('{"audio_filepath": "good.flac", "text": "a"}\n{"audio_filepath": "good.flac", "text": "b"}\n')
    expect_fail("eval manifest with an id twice", eval_args(m2), "dup_ids.jsonl:2", t)
    # asrc run: an output path that is an input tensor.
    import onnx
    from onnx import helper, numpy_helper, TensorProto
    import numpy as np
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])
    g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y])
    relu = os.path.join(t, "relu.onnx")
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), relu)
    os.makedirs(os.path.join(t, "out"))
    with open(os.path.join(t, "out/y.pb"), "wb") as f:
        f.write(numpy_helper.from_array(np.array([-1, 2], np.float32), "x").SerializeToString())
    expect_fail("run --output-dir over an input tensor",
                ["run", relu, "--input", "x=" + os.path.join(t, "out/y.pb"), "--output-dir", os.path.join(t, "out")],
                "y.pb", t)
    # convert: a folder with the user's files is not replaced; a bad input is blamed, not OUT.
    keep = os.path.join(t, "keep")
    os.makedirs(keep)
    open(os.path.join(keep, "notes.txt"), "w").write("mine\n")
    expect_fail("convert bundle into a folder with other files", ["convert", BUNDLE, keep], "notes.txt", t)
    g2 = helper.make_graph([helper.make_node("Relu", ["x", "x"], ["y"])], "g", [x], [y])
    arity = os.path.join(t, "arity.onnx")
    onnx.save(helper.make_model(g2, opset_imports=[helper.make_opsetid("", 13)]), arity)
    expect_fail("convert OUT ''", ["convert", relu, ""], "output is empty", t)
    expect_fail("convert blames the input", ["convert", arity, os.path.join(t, "o.onnx")], "arity.onnx", t)
    fifo = os.path.join(t, "fifo.onnx")
    os.mkfifo(fifo)
    for args in (["inspect", fifo], ["convert", fifo, os.path.join(t, "c.onnx")], ["bench", fifo],
                 eval_args(fifo), ["eval-merge", fifo, "--json", out],
                 ["run", relu, "--input", "x=" + fifo, "--output-dir", os.path.join(t, "o2")]):
        expect_fail(f"{args[0]} reading a FIFO", args, "fifo.onnx", t)
    report = os.path.join(t, "report.json")
    open(report, "w").write(json.dumps({"lookahead": {"wer": 12.5}}) + "\n")  # an older report
    expect_fail("eval --json on a full disk", eval_args(m, "--json", report), "report.json", t,
                preexec=small_disk(64))
    expect_fail("convert on a full disk", ["convert", relu, os.path.join(t, "copy.onnx")], "copy.onnx", t,
                preexec=small_disk(16))
    expect_fail("stdout is a full disk", ["inspect", relu], "standard output", t,
                stdout=open("/dev/full", "w"))
    expect_fail("--help to a full stdout", ["eval", "--help"], "standard output", t, stdout=open("/dev/full", "w"))
    inp = os.path.join(t, "x.pb")
    with open(inp, "wb") as f:
        f.write(numpy_helper.from_array(np.array([-1, 2], np.float32), "x").SerializeToString())
    expect_fail("run on a full disk (no temporary, no folder left)",
                ["run", relu, "--input", "x=" + inp, "--output-dir", os.path.join(t, "new/o")], "y.pb", t,
                preexec=small_disk(8))
    expect_fail("run --output-dir ''", ["run", relu, "--input", "x=" + inp, "--output-dir", ""], "--output-dir", t)
    os.remove(inp)
    return relu


def flag_cases(t, relu):
    import onnx
    from onnx import helper, TensorProto
    shutil.copy(FLAC, os.path.join(t, "good.flac"))
    m = os.path.join(t, "m.jsonl")
    write_manifest(m, [("good.flac", "at the sound of the second shot")])
    for flag, value in [("--beam", "-1"), ("--beam", "100000"), ("--max-symbols", "0"), ("--threads", "0")]:
        expect_fail(f"eval {flag} {value}", eval_args(m, flag, value), flag, t)
        expect_fail(f"transcribe {flag} {value}", ["transcribe", BUNDLE, FLAC, flag, value], flag, t)
    expect_ok("eval --threads 1000 is lowered", eval_args(m, "--threads", "1000"), "lowered to")
    expect_ok("transcribe --threads 1000 is lowered", ["transcribe", BUNDLE, FLAC, "--threads", "1000"], "lowered to")
    for flag, value in [("--lookahead-segment", "-1"), ("--lookahead-segment", "nan"), ("--lookahead-context", "-5"),
                        ("--lookahead-context", "inf")]:
        expect_fail(f"eval {flag} {value}", eval_args(m, flag, value), flag, t)
        expect_fail(f"transcribe {flag} {value}", ["transcribe", BUNDLE, FLAC, flag, value], flag, t)
    expect_fail("transcribe to a full stdout", ["transcribe", BUNDLE, FLAC], "standard output", t,
                stdout=open("/dev/full", "w"))
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", "T"])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", "T"])
    g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y])
    dyn = os.path.join(t, "dyn.onnx")
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), dyn)
    expect_fail("bench --dim UNKNOWN=5", ["bench", dyn, "--dim", "UNKNOWN=5"], "UNKNOWN", t)
    expect_fail("bench --dim T=2^63-1", ["bench", dyn, "--dim", "T=9223372036854775807"], "budget", t)
    xs = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1 << 40])
    ys = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1 << 40])
    huge = os.path.join(t, "huge_input.onnx")
    onnx.save(helper.make_model(helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [xs], [ys]),
                                opset_imports=[helper.make_opsetid("", 13)]), huge)
    expect_fail("bench on a declared input of 2^40 elements", ["bench", huge], "budget", t)
    expect_fail("bench --default-dim 2^30", ["bench", dyn, "--default-dim", "1073741824"], "budget", t)
    for value in ("abc", "-5", "8 G"):  # lib/ir ignored what it could not read (or read "8 G" as 8 bytes)
        os.environ["ASRC_MEMORY_BUDGET"] = value
        expect_fail(f"ASRC_MEMORY_BUDGET={value}", ["transcribe", BUNDLE, FLAC], "ASRC_MEMORY_BUDGET", t)
    del os.environ["ASRC_MEMORY_BUDGET"]
    expect_fail("convert --external-threshold -1", ["convert", relu, os.path.join(t, "o.onnx"),
                                                    "--external-threshold", "-1"], "--external-threshold", t)


def graph_cases(t):
    """Graphs the runtime must refuse at planning (before any kernel runs), naming the node."""
    import onnx
    from onnx import helper as h, TensorProto as T, numpy_helper
    import numpy as np

    def model(name, nodes, inits=(), opsets=(("", 13),)):
        x = h.make_tensor_value_info("x", T.FLOAT, [2, 3])
        y = h.make_tensor_value_info("y", T.FLOAT, None)
        g = h.make_graph(nodes, "g", [x], [y], list(inits))
        path = os.path.join(t, name + ".onnx")
        onnx.save(h.make_model(g, opset_imports=[h.make_opsetid(d, v) for d, v in opsets]), path)
        return path
    w = numpy_helper.from_array(np.ones((3, 4), np.float32), "w")
    w_t = numpy_helper.from_array(np.ones((4, 3), np.float32), "w_t")
    strings = h.make_tensor("b", T.STRING, [4], [b"a", b"b", b"c", b"d"])
    string_attr = h.make_node("Gemm", ["x", "w_t"], ["y"], name="gemm_tb")
    string_attr.attribute.append(h.make_attribute("transB", "yes"))
    cases = [
        ("Identity without an input", model("id", [h.make_node("Identity", [], ["y"], name="id0")]),
         "id0"),
        ("Squeeze without an input", model("sq", [h.make_node("Squeeze", [], ["y"], name="sq0")]), "sq0"),
        ("Gemm with input A empty", model("ga", [h.make_node("Gemm", ["", "w"], ["y"], name="gemm_a")], [w]),
         "gemm_a"),
        ("Gemm with a STRING bias", model("gs", [h.make_node("Gemm", ["x", "w", "b"], ["y"], name="gemm_s")],
                                          [w, strings]), "gemm_s"),
        ("Gemm with a string transB", model("gt", [string_attr], [w_t]), "gemm_tb"),
        ("Cast without its required 'to'", model("cast", [h.make_node("Cast", ["x"], ["y"], name="cast0")]),
         "cast0"),
        ("Add of float and int64", model("add", [h.make_node("Add", ["x", "i"], ["y"], name="add0")],
                                         [numpy_helper.from_array(np.ones((3,), np.int64), "i")]), "add0"),
        ("Relu with two inputs", model("relu2", [h.make_node("Relu", ["x", "x"], ["y"], name="relu0")]), "relu0"),
        ("ConstantOfShape of 2^62 elements", model("cos", [h.make_node("ConstantOfShape", ["s"], ["y"], name="cos0")],
                                                   [numpy_helper.from_array(np.array([1 << 31, 1 << 31], np.int64), "s")]),
         "memory budget"),
        ("opset 0", model("op0", [h.make_node("Relu", ["x"], ["y"])], opsets=[("", 0)]), "opset 0"),
        ("opset 99", model("op99", [h.make_node("Relu", ["x"], ["y"])], opsets=[("", 99)]), "opset 99"),
        ("no opset imported", model("op_none", [h.make_node("Relu", ["x"], ["y"])], opsets=[]), "opset 0"),
    ]
    untyped = os.path.join(t, "untyped.onnx")
    g = h.make_graph([h.make_node("Relu", ["x"], ["y"])], "g", [onnx.ValueInfoProto(name="x")],
                     [h.make_tensor_value_info("y", T.FLOAT, [2, 3])])
    onnx.save(h.make_model(g, opset_imports=[h.make_opsetid("", 13)]), untyped)
    cases.append(("an input with no type", untyped, "'x' has no type"))
    for name, path, culprit in cases:
        expect_fail(f"bench: {name}", ["bench", path, "--runs", "1"], culprit, t)
        inp = os.path.join(t, "x.pb")
        with open(inp, "wb") as f:
            f.write(numpy_helper.from_array(np.ones((2, 3), np.float32), "x").SerializeToString())
        expect_fail(f"run: {name}", ["run", path, "--input", "x=" + inp, "--output-dir", os.path.join(t, "o")],
                    culprit, t)
        os.remove(inp)


def compress_cases(t):
    """compress writes --out only when it has something to put there, and never leaves a part."""
    pipeline = os.path.join(ROOT, "experiments/pipelines/int8-weight-only.json")
    out = os.path.join(t, "new/out")
    expect_fail("compress --out ''", ["compress", "--pipeline", pipeline, "--no-eval", "--out", ""], "--out", t)
    for flag, value in [("--eval-limit", "-7"), ("--eval-repeat", "0"), ("--threads", "0")]:  # were taken as "the pipeline's"
        expect_fail(f"compress {flag} {value}", ["compress", "--pipeline", pipeline, flag, value, "--out", out], flag, t)
    expect_fail("compress with a missing model", ["compress", "--pipeline", pipeline, "--no-eval",
                                                 "--model", os.path.join(t, "none"), "--out", out], "none", t)
    # A bundle pipeline whose graph roles a single-graph model does not have.
    x = os.path.join(t, "one.onnx")
    shutil.copy(os.path.join(ROOT, "tests/fixtures/joiner.onnx"), x)
    expect_fail("compress: graphs that match no graph of the model",
                ["compress", "--pipeline", os.path.join(ROOT, "experiments/pipelines/int8-dynamic.json"),
                 "--no-eval", "--model", x, "--out", out], "options.graphs", t)
    os.remove(x)
    # --out's outputs replace no input (the pipeline, the eval manifest) and no folder of the user's.
    own = os.path.join(t, "own")
    os.makedirs(os.path.join(own, "model"))
    shutil.copy(pipeline, os.path.join(own, "report.json"))
    expect_fail("compress: --out/report.json is the pipeline", ["compress", "--pipeline", os.path.join(own, "report.json"),
                                                             "--no-eval", "--out", own], "report.json", t)
    shutil.copy(os.path.join(DATA, "manifest.jsonl"), os.path.join(own, "report.md"))
    expect_fail("compress: --out/report.md is the eval manifest",
                ["compress", "--pipeline", pipeline, "--eval", os.path.join(own, "report.md"), "--out", own],
                "report.md", t)
    open(os.path.join(own, "model", "notes.txt"), "w").write("mine\n")
    expect_fail("compress: --out/model holds the user's files", ["compress", "--pipeline", pipeline, "--no-eval",
                                                                 "--out", own], "notes.txt", t)
    shutil.rmtree(own)
    # A full disk while saving: the partial folder and the folders compress created are removed.
    expect_fail("compress on a full disk", ["compress", "--pipeline", pipeline, "--no-eval", "--quiet",
                                           "--out", out], "model.partial", t, preexec=small_disk(1 << 16))
    # A stale partial folder of a process that is gone is removed by the next run.
    os.makedirs(out, exist_ok=True)
    stale = os.path.join(out, ".model.partial.999999999")
    os.makedirs(stale)
    expect_ok("compress cleans a stale partial folder", ["compress", "--pipeline", pipeline, "--no-eval",
                                                         "--quiet", "--out", out])
    left = sorted(os.listdir(out))
    if left != ["model", "report.html", "report.json", "report.md"]:
        print(f"compress output folder: FAIL: {left}")
        failures.append("compress output folder")
    # SIGTERM in the middle: no partial folder, no empty --out.
    out2 = os.path.join(t, "int/out")
    for delay in [0.05 * k for k in range(1, 13)]:  # a run takes about 0.5 s: some land in the save
        p = subprocess.Popen([ASRC, "compress", "--pipeline", pipeline, "--no-eval", "--quiet", "--out", out2],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            p.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            p.send_signal(signal.SIGTERM)
            p.wait(timeout=60)
        left = sorted(os.listdir(out2)) if os.path.isdir(out2) else None
        ok = left is None or left == ["model", "report.html", "report.json", "report.md"]
        if not ok:
            print(f"compress SIGTERM after {delay:.2f}s (exit {p.returncode}): FAIL: left {left}")
            failures.append(f"compress SIGTERM after {delay:.2f}s")
        shutil.rmtree(os.path.join(t, "int"), ignore_errors=True)
    # convert: a signal in the save lets it finish (or undo it); no '.out.tmp-PID' folder is left.
    for k, delay in enumerate([0.03 * k for k in range(1, 11)]):
        conv = os.path.join(t, "conv")
        os.makedirs(conv)
        p = subprocess.Popen([ASRC, "convert", BUNDLE, os.path.join(conv, "out")],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            p.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            p.send_signal(signal.SIGINT if k % 2 else signal.SIGTERM)
            p.wait(timeout=60)
        left = sorted(os.listdir(conv))
        if left not in ([], ["out"]) or (left and len(os.listdir(os.path.join(conv, "out"))) != 6):
            print(f"convert interrupted after {delay:.2f}s (exit {p.returncode}): FAIL: left {left}")
            failures.append(f"convert interrupted after {delay:.2f}s")
        shutil.rmtree(conv)


def run_suite(cases, done):
    """Runs each case in a fresh temporary folder (after checking for the demo teacher); prints
    the failures or `done`; returns the exit code."""
    if not os.path.isfile(os.path.join(BUNDLE, "model.json")):
        print(f"reference missing: {BUNDLE}", file=sys.stderr)
        return 0 if os.environ.get("CI", "") in ("", "0", "false") else 1
    for case in cases:
        with tempfile.TemporaryDirectory(prefix="asrc_reliability.") as t:
            case(t)
    if failures:
        print(f"{len(failures)} failed: {failures}")
        return 1
    print(done)
    return 0


def main():
    def outputs_and_flags(t):
        flag_cases(t, output_cases(t))
    return run_suite((audio_cases, bundle_cases, graph_cases, compress_cases, outputs_and_flags), "reliability ok")


if __name__ == "__main__":
    sys.exit(main())
