#!/usr/bin/env bash
# The paper's ablation (issue 14), one command: experiments/paper/ablate.sh [demo|41m|all|report]
#
# demo: paper-int8.json (steps layers, tar, kd, int8) on the demo teacher, cumulative,
#       leave-one-out and alone (--mode all: 11 distinct configurations), evaluated on cathy test
#       and the synthetic test set. The configurations without distill run first, so a study cut
#       short has every cheap row; a killed run resumes where it stopped when re-run.
#       Configurations start from a finished prefix's model (1-2-3-4 = 1-2-3's + int8, 1-3-4 =
#       1's + kd + int8), so the four distill configurations (1-2-3, 3, 2-3-4, 1-3-4) each
#       distill once and nothing distills twice.
# report: no runs; the reports of what the two studies finished so far (ablate --report-only),
#       copied next to this script (for a study cut short or still running).
# 41m:  paper-41m.json (layers, tar, int8; no distill) on the random-weight 41M teacher, size and
#       latency only (--no-wer); exports the bundle first when it is missing (~165 MB, gitignored).
#
# Environment: ASRC (binary), OUT (output root, default out/), CATHY (cathy manifest), LIMIT
# (utterances per eval set, default 100), LIMIT_41M (default 20), NICE (default 19).
set -euo pipefail
cd "$(dirname "$0")/../.."
ASRC=${ASRC:-build/apps/asrc/asrc}
OUT=${OUT:-out}
CATHY=${CATHY:-/work/shared/data/cathy/manifest.jsonl}
LIMIT=${LIMIT:-100}
LIMIT_41M=${LIMIT_41M:-20}
NICE=${NICE:-19}
SYNTH=experiments/data/default_eval/manifest.jsonl
what=${1:-all}

BUNDLE_41M=experiments/teacher/paper_scale/bundle
DEMO=(--pipeline experiments/pipelines/paper-int8.json --eval "cathy=$CATHY:test" --eval "synth=$SYNTH"
      --eval-limit "$LIMIT" --eval-repeat 3 --mode all --jobs 1 --out "$OUT/paper-ablate")
M41=(--pipeline experiments/pipelines/paper-41m.json --model "$BUNDLE_41M" --no-wer --eval "synth=$SYNTH"
     --eval-limit "$LIMIT_41M" --eval-repeat 3 --mode all --jobs 1 --out "$OUT/paper-ablate-41m")

# copy NAME STUDY: the study's report next to this script as ablation-NAME.{md,html}
copy() {
  cp "$2/ablation.md" "experiments/paper/ablation-$1.md"
  cp "$2/ablation.html" "experiments/paper/ablation-$1.html"
}

demo() {
  nice -n "$NICE" "$ASRC" ablate "${DEMO[@]}" > /dev/null
  copy demo "$OUT/paper-ablate"
}

paper41m() {
  if [ ! -f "$BUNDLE_41M/model.json" ]; then
    nice -n "$NICE" /usr/bin/python3 experiments/teacher/export.py --random paper --out "$BUNDLE_41M"
  fi
  nice -n "$NICE" "$ASRC" ablate "${M41[@]}" > /dev/null
  copy 41m "$OUT/paper-ablate-41m"
}

report() {
  nice -n "$NICE" "$ASRC" ablate "${DEMO[@]}" --report-only > /dev/null
  copy demo "$OUT/paper-ablate"
  nice -n "$NICE" "$ASRC" ablate "${M41[@]}" --report-only > /dev/null
  copy 41m "$OUT/paper-ablate-41m"
}

case "$what" in
  demo) demo ;;
  41m) paper41m ;;
  all) paper41m; demo ;;
  report) report ;;
  *) echo "usage: $0 [demo|41m|all|report]" >&2; exit 2 ;;
esac
