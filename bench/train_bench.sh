#!/bin/bash
# Training-step benchmark, asrc vs PyTorch (issue 12 "Speed and memory"): one RNN-T training step
# and one KD step of the demo teacher's architecture on the same 16 cathy train utterances of about
# 3 s, at 1 and 2 threads, each configuration in its own process (peak RSS = ru_maxrss).
# Prints a markdown table (the one in BENCHMARKS.md) and keeps the JSON lines in OUT.
#   bench/train_bench.sh [--build build] [--steps 3] [--out /tmp/train_bench] [--max-plans 4] [--max-batch 8]
set -euo pipefail
cd "$(dirname "$0")/.."
build=build steps=3 out=/tmp/train_bench max_plans=4 max_batch=8
manifest=/work/shared/data/cathy/manifest.jsonl
while [ $# -gt 0 ]; do
  case "$1" in
    --build) build=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --max-plans) max_plans=$2; shift 2 ;;
    --max-batch) max_batch=$2; shift 2 ;;
    --manifest) manifest=$2; shift 2 ;;
    *) echo "train_bench.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
mkdir -p "$out"
for mode in rnnt kd; do
  for th in 1 2; do
    echo "load $(cut -d' ' -f1-3 /proc/loadavg) before $mode/$th" >&2
    "$build/bench/train_bench" --bundle experiments/teacher/bundle --manifest "$manifest" --mode $mode \
      --threads $th --steps "$steps" --max-plans "$max_plans" --max-batch "$max_batch" --ids-out "$out/ids.jsonl" > "$out/asrc_${mode}_$th.json"
    /usr/bin/python3 bench/train_bench_torch.py --ids "$out/ids.jsonl" --manifest "$manifest" --mode $mode \
      --threads $th --steps "$steps" > "$out/torch_${mode}_$th.json"
    echo "$(cut -d' ' -f1-3 /proc/loadavg)" > "$out/load_${mode}_$th.txt"
  done
done
/usr/bin/python3 - "$out" <<'PY'
import json, sys
out = sys.argv[1]
print("| step | threads | asrc s | PyTorch s | asrc/PyTorch | asrc / PyTorch CPU s (ratio) | asrc: plan s / run s / rest s (plans built) | asrc cold s | asrc peak RSS MiB | PyTorch peak RSS MiB | RSS ratio | load avg after |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
for mode in ("rnnt", "kd"):
    for th in (1, 2):
        a = json.load(open(f"{out}/asrc_{mode}_{th}.json"))
        t = json.load(open(f"{out}/torch_{mode}_{th}.json"))
        load = open(f"{out}/load_{mode}_{th}.txt").read().strip()
        print(f"| {mode} | {th} | {a['step_s']:.2f} | {t['step_s']:.2f} | **{a['step_s'] / t['step_s']:.2f}x** | "
              f"{a['step_cpu_s']:.2f} / {t['step_cpu_s']:.2f} ({a['step_cpu_s'] / t['step_cpu_s']:.2f}x) | "
              f"{a['step_plan_s']:.2f} / {a['step_run_s']:.2f} / {a['step_other_s']:.2f} ({a['plans_per_step']:.0f}) | "
              f"{a['cold_s']:.2f} | {a['peak_rss_mib']:.0f} | {t['peak_rss_mib']:.0f} | "
              f"**{a['peak_rss_mib'] / t['peak_rss_mib']:.2f}x** | {load} |")
a = json.load(open(f"{out}/asrc_rnnt_1.json"))
print(f"\nBatch: {a['utts']} utterances, {a['frames']} feature frames, {a['tokens']} tokens; {a['params']} trainable parameters.")
PY
