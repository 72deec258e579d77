#!/usr/bin/env bash
# Times every graph of a bundle with `asrc bench` and with ONNX Runtime (bench/ort_bench.js) on
# the same seeded inputs, at 1 and 2 threads, and prints one line per (graph, threads):
#   graph threads ours_median_ms ort_median_ms ratio
#   tests/runtime/bench_bundle.sh [BUNDLE_DIR] [BUILD_DIR] [T_FRAMES] [RUNS]
# Symbolic dims: batch-like (N, batch) = 1, every other symbolic dim = T_FRAMES (default 75,
# i.e. 3 s of audio after 4x subsampling); length inputs (*len*) hold that value.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
bundle="${1:-$root/experiments/teacher/bundle}"
build="${2:-$root/build}"
frames="${3:-75}"
runs="${4:-50}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
/usr/bin/python3 - "$bundle" "$work" "$frames" <<'PY'
import json, os, sys
import numpy as np
import onnx
from onnx import numpy_helper
bundle, work, frames = sys.argv[1], sys.argv[2], int(sys.argv[3])
rng = np.random.default_rng(1)
for f in sorted(os.listdir(bundle)):
    if not f.endswith('.onnx'):
        continue
    m = onnx.load(os.path.join(bundle, f), load_external_data=False)
    inits = {i.name for i in m.graph.initializer}
    d = os.path.join(work, f[:-5]); os.makedirs(d)
    meta = []
    for v in m.graph.input:
        if v.name in inits:
            continue
        tt = v.type.tensor_type
        shape = []
        for dim in tt.shape.dim:
            if dim.HasField('dim_value'): shape.append(dim.dim_value)
            elif dim.dim_param in ('N', 'B') or 'batch' in dim.dim_param: shape.append(1)
            else: shape.append(frames)
        np_t = onnx.mapping.TENSOR_TYPE_TO_NP_TYPE[tt.elem_type]
        if np_t == np.float32: a = rng.uniform(-1, 1, shape).astype(np.float32)
        elif 'len' in v.name: a = np.full(shape, frames, dtype=np_t)
        elif v.name == 'y' or 'token' in v.name: a = rng.integers(1, 10, shape).astype(np_t)
        else: a = np.zeros(shape, dtype=np_t)
        with open(os.path.join(d, v.name + '.pb'), 'wb') as fh:
            fh.write(numpy_helper.from_array(a, v.name).SerializeToString())
        a.tofile(os.path.join(d, v.name + '.bin'))
        meta.append({'name': v.name, 'dtype': str(a.dtype), 'shape': list(a.shape), 'file': v.name + '.bin'})
    json.dump(meta, open(os.path.join(d, 'inputs.json'), 'w'))
PY
printf "%-20s %7s %12s %12s %7s\n" graph threads ours_ms ort_ms ratio
for d in "$work"/*/; do
  g="$(basename "$d")"
  args=()
  for pb in "$d"*.pb; do args+=(--input "$(basename "$pb" .pb)=$pb"); done
  for t in 1 2; do
    ours=$("$build/apps/asrc/asrc" bench "$bundle/$g.onnx" "${args[@]}" --threads "$t" --runs "$runs" --json |
           /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["median_ms"])')
    ort=$(node "$root/bench/ort_bench.js" "$bundle/$g.onnx" "$d" --threads "$t" --runs "$runs" |
          /usr/bin/python3 -c 'import json,sys; print(json.loads(sys.stdin.read().strip().splitlines()[-1])["median_ms"])')
    /usr/bin/python3 -c "import sys; o,r=float('$ours'),float('$ort'); print('%-20s %7s %12.4f %12.4f %7.2f' % ('$g', '$t', o, r, o/r))"
  done
done
