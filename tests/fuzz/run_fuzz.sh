#!/usr/bin/env bash
# Builds the ONNX importer fuzzer with clang (libFuzzer + ASan + UBSan, in build-fuzz) and runs it
# for SECONDS (default 60) over a seed corpus of small .onnx files: the committed fixtures and the
# smaller models of Debian's libonnx-testdata (subgraphs, every attribute kind, sequences).
#   tests/fuzz/run_fuzz.sh [SECONDS]
# Exit status is the fuzzer's: non-zero when it found a crash (the input is left in build-fuzz/).
set -euo pipefail
seconds="${1:-60}"
root="$(cd "$(dirname "$0")/../.." && pwd)"
build="$root/build-fuzz"
jobs="${ASRC_JOBS:-2}"
CC=clang CXX=clang++ cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DASRC_FUZZ=ON \
  -DASRC_SANITIZE=ON -DCMAKE_CXX_FLAGS="-fsanitize=fuzzer-no-link" >/dev/null
cmake --build "$build" -j"$jobs" --target onnx_import_fuzzer
corpus="$build/fuzz-corpus"
seeds="$build/fuzz-seeds"
rm -rf "$seeds"
mkdir -p "$corpus" "$seeds"
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
echo "fuzzing the ONNX importer for ${seconds}s over $(ls "$seeds" | wc -l) seeds"
cd "$build"
ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 \
  ./tests/fuzz/onnx_import_fuzzer "$corpus" "$seeds" -max_total_time="$seconds" -rss_limit_mb=2048 \
  -malloc_limit_mb=1024 -max_len=65536 -timeout=10 -print_final_stats=1 2>&1 | tail -25
exit "${PIPESTATUS[0]}"
