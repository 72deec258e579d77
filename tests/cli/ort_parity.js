// ONNX Runtime side of the CLI test: runs pairs of models (original, converted) on the same inputs
// and reports the largest output differences, also against the PyTorch reference outputs.
//   node ort_parity.js CASES.json   -> prints one JSON line per case, exits 1 on a load/run error
// CASES.json: [{"name", "models": [path, ...], "inputs": [{"name","dtype","shape","data"}],
//               "outputs": [{"name","shape","data"}]}]
'use strict';
const fs = require('fs');
const path = require('path');
const ort = require(process.env.ORT_NODE ||
  path.join(__dirname, '..', '..', 'third_party', 'ort', 'node_modules', 'onnxruntime-node'));

function tensor(spec) {
  if (spec.dtype === 'int64') return new ort.Tensor('int64', BigInt64Array.from(spec.data.map(BigInt)), spec.shape);
  return new ort.Tensor('float32', Float32Array.from(spec.data), spec.shape);
}

function maxAbsDiff(a, b) {
  if (a.length !== b.length) return Infinity;
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(Number(a[i]) - Number(b[i])));
  return m;
}

async function main() {
  const cases = JSON.parse(fs.readFileSync(process.argv[2]));
  const opts = { intraOpNumThreads: 1, interOpNumThreads: 1 };
  for (const c of cases) {
    const feeds = {};
    for (const i of c.inputs) feeds[i.name] = tensor(i);
    const results = [];
    for (const m of c.models) {
      const sess = await ort.InferenceSession.create(m, opts);
      results.push(await sess.run(feeds));
    }
    const report = { name: c.name, vs_first: 0, vs_torch: 0 };
    for (const o of c.outputs) {
      const first = results[0][o.name].data;
      for (const r of results.slice(1)) report.vs_first = Math.max(report.vs_first, maxAbsDiff(first, r[o.name].data));
      for (const r of results) report.vs_torch = Math.max(report.vs_torch, maxAbsDiff(o.data, r[o.name].data));
    }
    console.log(JSON.stringify(report));
  }
}

main().catch((e) => { console.error('ort_parity: ' + e.message); process.exit(1); });
