#!/usr/bin/env bash
# A longer fuzz campaign, off the CI path: runs each libFuzzer target in turn for SECONDS each
# (default 3600) with tests/fuzz/run_fuzz.sh, and copies any input that crashed a target into
# tests/fuzz/regressions/TARGET/ (commit it with the fix: run_fuzz.sh replays it as a seed).
# Prints the executions per target; the issue asks for 10 million in total.
#   tests/fuzz/fuzz_campaign.sh [SECONDS] [TARGET...]
set -uo pipefail
seconds="${1:-3600}"
shift || true
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(onnx_import_fuzzer onnx_run_fuzzer config_fuzzer)
root="$(cd "$(dirname "$0")/../.." && pwd)"
status=0
for t in "${targets[@]}"; do
  log="$root/build-fuzz/campaign-$t.log"
  mkdir -p "$root/build-fuzz/artifacts/$t"
  start=$(date +%s)
  ASRC_FUZZ_ARGS="-artifact_prefix=$root/build-fuzz/artifacts/$t/" \
    "$root/tests/fuzz/run_fuzz.sh" "$seconds" "$t" > "$log" 2>&1
  rc=$?
  wall=$(( $(date +%s) - start ))
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
  rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
  echo "$t: exit $rc, ${execs:-?} executions in ${wall}s wall (build included; ${rate:-?}/s while fuzzing) (log: $log)"
  for a in "$root/build-fuzz/artifacts/$t"/*; do
    [ -f "$a" ] || continue
    mkdir -p "$root/tests/fuzz/regressions/$t"
    cp "$a" "$root/tests/fuzz/regressions/$t/"
    echo "  kept $(basename "$a") in tests/fuzz/regressions/$t/"
  done
  [ $rc -ne 0 ] && status=1
done
exit $status
