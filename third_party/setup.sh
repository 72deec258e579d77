#!/usr/bin/env bash
# Installs every Debian and npm package that the build, tests and experiments need.
# Idempotent: re-running only installs what is missing.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
pkgs=(
  build-essential cmake ninja-build pkg-config clang libclang-rt-14-dev
  libprotobuf-dev protobuf-compiler libonnx-dev libonnx-testdata
  libeigen3-dev libcli11-dev nlohmann-json3-dev doctest-dev
  libopenblas-dev libopenblas0-pthread libdnnl-dev
  libsndfile1-dev libsoxr-dev libfftw3-dev
  python3-torch python3-torchaudio python3-numpy python3-sentencepiece python3-onnx
  libopenmpi-dev openmpi-bin
  espeak-ng flite sox libsox-fmt-all flac
  festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts

)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
command -v node >/dev/null && command -v npm >/dev/null || { echo "setup: node and npm are required (Node.js 20)" >&2; exit 1; }
# ONNX Runtime's CPU library and sherpa-onnx (which ships its native library), as references
# (their post-install scripts download things; not needed).
if [ ! -d "$root/third_party/ort/node_modules/onnxruntime-node" ] || [ ! -d "$root/third_party/ort/node_modules/sherpa-onnx-node" ]; then
  (cd "$root/third_party/ort" && npm install --ignore-scripts --no-audit --no-fund >/dev/null)
fi
