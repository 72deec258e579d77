#!/usr/bin/env bash
# The main job: set up, build, then compress the committed demo teacher
# (experiments/teacher/bundle) with dynamic int8 quantization, measured on the committed default
# eval set (experiments/data/default_eval). Output: out/int8-dynamic/{model/,report.*}.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
./third_party/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"${ASRC_JOBS:-2}" --target asrc
out="${1:-out/int8-dynamic}"
rm -rf "$out"
./build/apps/asrc/asrc compress --pipeline experiments/pipelines/int8-dynamic.json --out "$out"
cat "$out/report.md"
