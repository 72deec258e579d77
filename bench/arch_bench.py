"""Forward-pass latency of the speech architectures of experiments/ops/parity.py (issue 16), asrc
vs ONNX Runtime side by side, and `asrc compress` int8 and low-rank on each single-graph model.

Exports each model (random weights, opset 17) at a benchmark-sized input (3 s of audio or 300
feature frames), then per thread count alternates `bench/model_bench` (asrc's runtime::Session)
and `bench/ort_bench.js` (onnxruntime-node, CPU EP, all graph optimizations) for --rounds rounds
and keeps each side's smallest median (the machine is shared; see BENCHMARKS.md). Then runs the
`int8-dynamic`-style pipeline (quantize-int8 dynamic, per channel) through `asrc compress
--no-eval` on each model, then the `low-rank` one (ratio 0.5; PIPELINES), and compares each
compressed model's output with the fp32 one on the same input: max |out - fp32| / max |fp32|.
Usage (after building asrc and model_bench):

  /usr/bin/python3 bench/arch_bench.py [--build build] [--rounds 3] [--runs 20] [--out /tmp/arch_bench]
      [--only NAME,...] [--threads 1,2] [--no-bench] [--no-compress] [--compress int8,low-rank]
"""
import argparse
import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import onnx
import torch
from onnx import numpy_helper

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Benchmark-sized inputs (parity.py's are tiny): 3 s at 16 kHz or 300 frames.
INPUTS = {
    "deepspeech_birnn": lambda: torch.randn(1, 300, 40),
    "wav2vec2_features": lambda: torch.randn(1, 48000),
    "whisper_encoder": lambda: torch.randn(1, 40, 300),
    "gru_lstm": lambda: torch.randn(1, 300, 32),
    "upsample_decoder": lambda: torch.randn(1, 16, 300),
    "emformer": lambda: torch.randn(1, 301, 32),
    "wav2vec2_torchaudio": lambda: torch.randn(1, 48000),
    "conformer_ctc_torchaudio": lambda: torch.randn(1, 300, 40),
    "emformer_rnnt_transcriber": lambda: torch.randn(1, 602, 32),  # time reduction 2: 300 + 1 frames
    "emformer_rnnt_predictor": lambda: torch.randint(0, 29, (1, 50), dtype=torch.int64),
    "emformer_rnnt_joiner": lambda: (torch.randn(1, 150, 32), torch.randn(1, 50, 32)),
}


def load_parity():
    spec = importlib.util.spec_from_file_location("ops_parity", os.path.join(ROOT, "experiments/ops/parity.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def export(name, make, out, parity):
    """Exports the model at its INPUTS size; returns the .onnx path, the input folder (NAME.pb for
    asrc, NAME.bin + inputs.json for ort_bench.js) and the input names."""
    torch.manual_seed(0)
    model = make().eval()
    xs = INPUTS[name]()
    xs = xs if isinstance(xs, tuple) else (xs,)
    names = parity.input_names(xs)
    path = os.path.join(out, name + ".onnx")
    torch.onnx.export(model, xs, path, opset_version=17, input_names=names, output_names=["y"])
    d = os.path.join(out, name + "_in")
    os.makedirs(d, exist_ok=True)
    spec = []
    for n, x in zip(names, xs):
        arr = x.numpy()
        with open(os.path.join(d, n + ".pb"), "wb") as f:
            f.write(numpy_helper.from_array(arr, n).SerializeToString())
        arr.tofile(os.path.join(d, n + ".bin"))
        spec.append({"name": n, "dtype": str(arr.dtype), "shape": list(arr.shape), "file": n + ".bin"})
    with open(os.path.join(d, "inputs.json"), "w") as f:
        json.dump(spec, f)
    return path, d, names


def input_args(d, names):
    return [a for n in names for a in ("--input", f"{n}={os.path.join(d, n + '.pb')}")]


def run_json(cmd, env=None):
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if p.returncode != 0:
        return None, (p.stderr.strip().splitlines() or ["?"])[-1][:160]
    return json.loads(p.stdout.strip().splitlines()[-1]), None


def bench(path, d, names, threads, a):
    ours_cmd = [os.path.join(a.build, "bench/model_bench"), path] + input_args(d, names) + [
                "--threads", str(threads), "--runs", str(a.runs), "--warmup", "3"]
    ort_cmd = ["node", os.path.join(ROOT, "bench/ort_bench.js"), path, d, "--threads", str(threads),
               "--runs", str(a.runs), "--warmup", "3"]
    best = {"ours": None, "ort": None}
    err = {}
    for _ in range(a.rounds):
        for side, cmd in (("ours", ours_cmd), ("ort", ort_cmd)):
            r, e = run_json(cmd)
            if r is None:
                err[side] = e
                continue
            b = best[side]
            if b is None or r["median_ms"] < b["median_ms"]:
                best[side] = {"median_ms": r["median_ms"], "cpu_ms": r.get("cpu_ms", r["median_ms"])}
    return best, err


def asrc_output(asrc, path, d, names, out_dir):
    p = subprocess.run([asrc, "run", path] + input_args(d, names) + ["--output-dir", out_dir],
                       capture_output=True, text=True)
    if p.returncode != 0:
        return None
    t = onnx.TensorProto()
    with open(os.path.join(out_dir, "y.pb"), "rb") as f:
        t.ParseFromString(f.read())
    return numpy_helper.to_array(t)


PIPELINES = {
    "int8": {"name": "int8-dynamic", "passes": ["cleanup", {"pass": "quantize-int8",
             "options": {"mode": "dynamic", "per_channel": True}}]},
    # Half rank on every MatMul/Gemm weight of >= 4096 elements (these models are small).
    "low-rank": {"name": "lowrank-half", "passes": ["cleanup", {"pass": "low-rank",
                 "options": {"ratio": 0.5, "min_elements": 4096}}]},
}


def compress(kind, name, path, d, names, a):
    """`asrc compress --no-eval` with PIPELINES[kind] on the model: weight bytes before and after,
    output error against the fp32 model on the same input, new op types, the pass's notes."""
    pipe = os.path.join(a.out, kind + ".json")
    with open(pipe, "w") as f:
        json.dump(PIPELINES[kind], f)
    out = os.path.join(a.out, f"{name}_{kind}")
    asrc = os.path.join(a.build, "apps/asrc/asrc")
    p = subprocess.run([asrc, "compress", "--pipeline", pipe, "--model", path, "--no-eval", "--quiet", "--out", out],
                       capture_output=True, text=True)
    if p.returncode != 0:
        return "compress failed: " + (p.stderr.strip().splitlines() or ["?"])[-1][:200] + " | | | "
    with open(os.path.join(out, "report.json")) as f:
        rep = json.load(f)
    onnx_files = [rep["output"]] if rep.get("output", "").endswith(".onnx") else []
    want = asrc_output(asrc, path, d, names, os.path.join(a.out, name + "_fp32_out"))
    got = asrc_output(asrc, onnx_files[0], d, names, os.path.join(a.out, f"{name}_{kind}_out")) if onnx_files else None
    if want is None or got is None:
        return f"{kind} model did not run | | | "
    err = float(np.abs(got - want).max() / max(1e-12, np.abs(want).max()))
    fp32_kb = rep["rows"][0]["bytes"] / 1024
    new_kb = rep["rows"][-1]["bytes"] / 1024
    ops = sorted({n.op_type for n in onnx.load(onnx_files[0]).graph.node} - {n.op_type for n in onnx.load(path).graph.node})
    last = rep["rows"][-1]
    said = "; ".join(last.get("notes", [])) or ", ".join(f"{k} {v}" for k, v in sorted(last.get("counters", {}).items()))
    return f"{fp32_kb:.0f} KiB -> {new_kb:.0f} KiB | {err:.1e} | {' '.join(ops) or '-'} | {said or '-'}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--only", default="", help="comma-separated model names")
    ap.add_argument("--out", default="/tmp/arch_bench")
    ap.add_argument("--no-compress", action="store_true")
    ap.add_argument("--no-bench", action="store_true", help="only export and compress")
    ap.add_argument("--compress", default="int8,low-rank", help="comma-separated: " + ",".join(PIPELINES))
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    parity = load_parity()
    makers = {n: parity.MODELS[n][0] for n in parity.MODELS}
    # parity.py's torchaudio wav2vec2 with the real feature extractor's strides (320x)
    makers["wav2vec2_torchaudio"] = lambda: parity.wav2vec2(parity.WAV2VEC2_320X)
    names = [n for n in makers if not a.only or n in a.only.split(",")]
    exported = {n: export(n, makers[n], a.out, parity) for n in names}
    if not a.no_bench:
        print("| model | threads | asrc ms | ORT ms | asrc/ORT (wall) | asrc CPU ms | ORT CPU ms | asrc/ORT (CPU) |")
        print("|---|---|---|---|---|---|---|---|")
    for name in names if not a.no_bench else []:
        path, d, inputs = exported[name]
        for t in [int(s) for s in a.threads.split(",")]:
            b, err = bench(path, d, inputs, t, a)
            o, r = b["ours"], b["ort"]
            if o is None:
                print(f"| {name} | {t} | asrc failed: {err.get('ours')} | | | | | |")
            elif r is None:
                print(f"| {name} | {t} | {o['median_ms']:.3f} | - (ORT: {err.get('ort')}) | - | {o['cpu_ms']:.3f} | - | - |")
            else:
                print(f"| {name} | {t} | {o['median_ms']:.3f} | {r['median_ms']:.3f} | **{o['median_ms'] / r['median_ms']:.2f}x** | "
                      f"{o['cpu_ms']:.3f} | {r['cpu_ms']:.3f} | **{o['cpu_ms'] / r['cpu_ms']:.2f}x** |")
            sys.stdout.flush()
    if a.no_compress:
        return
    for kind in a.compress.split(","):
        print()
        print(f"| model | asrc compress {kind}: weight bytes fp32 -> {kind} | max abs({kind} - fp32) / max abs(fp32) "
              "| new op types | pass notes / counters |")
        print("|---|---|---|---|---|")
        for name in names:
            print(f"| {name} | {compress(kind, name, *exported[name], a)} |")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
