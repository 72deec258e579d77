#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (libFuzzer + ASan + UBSan, in build-fuzz) and runs one
# for SECONDS (default 60) over its seed corpus:
#   onnx_import_fuzzer, onnx_run_fuzzer   the committed fixtures, the smaller models of Debian's
#                                         libonnx-testdata (subgraphs, every attribute kind,
#                                         sequences) and the kept regression inputs
#   config_fuzzer                         the committed model.json files (first byte 0) and
#                                         pipelines (first byte 1), and the kept regressions
#   tests/fuzz/run_fuzz.sh [SECONDS] [TARGET]     (TARGET default: onnx_import_fuzzer)
# Exit status is the fuzzer's: non-zero when it found a crash (the input is left in build-fuzz/;
# keep it under tests/fuzz/regressions/TARGET/ once fixed — fuzz_campaign.sh does that).
set -euo pipefail
seconds="${1:-60}"
target="${2:-onnx_import_fuzzer}"
root="$(cd "$(dirname "$0")/../.." && pwd)"
build="$root/build-fuzz"
jobs="${ASRC_JOBS:-2}"
CC=clang CXX=clang++ cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DASRC_FUZZ=ON \
  -DASRC_SANITIZE=ON -DCMAKE_CXX_FLAGS="-fsanitize=fuzzer-no-link" >/dev/null
cmake --build "$build" -j"$jobs" --target "$target"
corpus="$build/fuzz-corpus/$target"
seeds="$build/fuzz-seeds/$target"
rm -rf "$seeds"
mkdir -p "$corpus" "$seeds"
if [ "$target" = config_fuzzer ]; then
  i=0
  for f in "$root"/experiments/teacher/bundle/model.json; do
    { printf '\0'; cat "$f"; } > "$seeds/model_json_$i"; i=$((i + 1))
  done
  for f in "$root"/experiments/pipelines/*.json; do
    { printf '\1'; cat "$f"; } > "$seeds/pipeline_$(basename "$f")"
  done
else
  for f in "$root"/tests/fixtures/joiner.onnx "$root"/tests/fixtures/lstm_decoder.onnx; do
    cp "$f" "$seeds/$(basename "$f")"
  done
  data=/usr/share/libonnx-testdata/data
  if [ -d "$data" ]; then
    # Every model under 4 KiB (several hundred), named after its test folder.
    find "$data" -name '*.onnx' -size -4k | sort | while read -r f; do
      cp "$f" "$seeds/$(basename "$(dirname "$f")").onnx"
    done
  fi
fi
regressions="$root/tests/fuzz/regressions/$target"
[ -d "$regressions" ] && cp "$regressions"/* "$seeds/" 2>/dev/null || true
echo "fuzzing $target for ${seconds}s over $(ls "$seeds" | wc -l) seeds"
cd "$build"
# oneDNN's JIT kernels off (Eigen GEMM, im2col convolutions): libFuzzer's SIGALRM handler running
# inside JIT code trips ASan with a report that is no asrc bug.
ASRC_GEMM=eigen ASRC_CONV=im2col ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 \
  ./tests/fuzz/"$target" "$corpus" "$seeds" -max_total_time="$seconds" -rss_limit_mb=2048 \
  -malloc_limit_mb=1024 -max_len=65536 -timeout=10 -print_final_stats=1 ${ASRC_FUZZ_ARGS:-} 2>&1 | tail -25
exit "${PIPESTATUS[0]}"
