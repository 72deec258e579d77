#!/usr/bin/env bash
# Runs every committed pipeline on the demo teacher and writes reports under
# experiments/compress/out/<pipeline>/ (gitignored: model/ is large; report.* are summarized in
# RESULTS.md). Usage: experiments/compress/run_all.sh [EVAL_MANIFEST] [SPLIT] [LIMIT]
#   default: cathy test (all 267 utterances), the issue's reference set.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
asrc="${ASRC:-build/apps/asrc/asrc}"
manifest="${1:-/work/shared/data/cathy/manifest.jsonl}"
split="${2:-test}"
limit="${3:-0}"
for p in int8-dynamic int8-weight-only int8-static lowrank lowrank-data-aware prune-structured prune-magnitude; do
  echo "=== $p"
  "$asrc" compress --pipeline "experiments/pipelines/$p.json" --eval "$manifest" --split "$split" \
    --eval-limit "$limit" --out "experiments/compress/out/$p" > "experiments/compress/out_$p.log" 2>&1 || true
  grep -E "^\| [0-9]" "experiments/compress/out/$p/report.md" || tail -3 "experiments/compress/out_$p.log"
done
