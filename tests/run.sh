#!/usr/bin/env bash
# The test command (README): installs what is missing, builds with -Werror, runs ctest;
# then the ASan+UBSan build of the suite and a bounded fuzz run of the ONNX importer. With CI=true
# (.ci/run sets it) a missing outside reference fails the tests instead of skipping them.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
./third_party/setup.sh
# The benchmark models (gitignored; models.json is written last) are fixtures of the fusion test.
[ -f bench/models/models.json ] || /usr/bin/python3 bench/make_models.py >/dev/null
jobs="${ASRC_JOBS:-2}"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DASRC_WERROR=ON >/dev/null
cmake --build build -j"$jobs"
ctest --test-dir build --output-on-failure -j"$jobs"
if [ "${ASRC_SKIP_SANITIZE:-0}" != "1" ]; then
  cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DASRC_WERROR=ON -DASRC_SANITIZE=ON >/dev/null
  # Build only the sanitize-labelled unit-test executables (not the CLI) and run those.
  mapfile -t names < <(ctest --test-dir build -N -L sanitize | sed -n 's/^ *Test *#[0-9]*: *//p')
  known="$(cmake --build build-asan --target help | sed -n 's/^\.\.\. \([^ ]*\).*/\1/p')"
  targets=()
  for n in "${names[@]}"; do grep -qx "$n" <<<"$known" && targets+=("$n"); done
  cmake --build build-asan -j"$jobs" --target "${targets[@]}"
  regex="^($(IFS='|'; echo "${targets[*]}"))\$"
  ASAN_OPTIONS=detect_leaks=1 ctest --test-dir build-asan --output-on-failure -j"$jobs" -R "$regex"
fi
if [ "${ASRC_SKIP_FUZZ:-0}" != "1" ] && [ -x tests/fuzz/run_fuzz.sh ]; then
  tests/fuzz/run_fuzz.sh "${ASRC_FUZZ_SECONDS:-30}"
fi
echo "tests: all passed"
