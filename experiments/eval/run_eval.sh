#!/usr/bin/env bash
# Reproduces experiments/eval/RESULTS.md: asrc eval of the teacher bundle on the default eval set
# and on cathy test (both modes, greedy, 1 thread), the comparison with the PyTorch recipe's greedy
# hypotheses (also at 2 threads), and the streaming-only RTF on the full cathy test set with 1 thread.
#   experiments/eval/run_eval.sh [ASRC_BINARY] [BUNDLE]
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
asrc="${1:-$root/build/apps/asrc/asrc}"
bundle="${2:-$root/experiments/teacher/bundle}"
out="$root/experiments/eval/results"
mkdir -p "$out"
cathy=/work/shared/data/cathy/manifest.jsonl
echo "== default eval set, both modes"
"$asrc" eval "$bundle" --json "$out/default_eval.json" --no-progress | tee "$out/default_eval.txt"
echo "== cathy test, both modes"
"$asrc" eval "$bundle" --data "$cathy" --split test --json "$out/cathy_test.json" --no-progress | tee "$out/cathy_test.txt"
echo "== cathy test, streaming only, 1 thread (RTF)"
"$asrc" eval "$bundle" --data "$cathy" --split test --mode streaming --threads 1 --json "$out/cathy_test_streaming_rtf.json" --no-progress | tee "$out/cathy_test_streaming_rtf.txt"
echo "== cathy test, both modes, 2 threads"
"$asrc" eval "$bundle" --data "$cathy" --split test --threads 2 --json "$out/cathy_test_threads2.json" --no-progress | tee "$out/cathy_test_threads2.txt"
ref="$root/experiments/teacher/results/cathy_test_greedy.jsonl"
if [ -f "$ref" ]; then
  echo "== comparison with the PyTorch recipe ($ref)"
  /usr/bin/python3 "$root/experiments/eval/compare_with_pytorch.py" "$out/cathy_test.json" --pytorch "$ref" \
      --out "$out/compare_with_pytorch.json" | tee "$out/compare_with_pytorch.txt" || true
  echo "== the same at 2 threads"
  /usr/bin/python3 "$root/experiments/eval/compare_with_pytorch.py" "$out/cathy_test_threads2.json" --pytorch "$ref" \
      --out "$out/compare_with_pytorch_threads2.json" | tee "$out/compare_with_pytorch_threads2.txt" || true
else
  echo "no $ref yet: run experiments/teacher/evaluate.py first"
fi
